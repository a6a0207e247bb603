"""Elementwise mode: a numeric estimate for every selected entry of every tensor.

With every real scheme (central differences by default; central4, richardson, forward,
backward; any ``h``, ``"auto"`` included) the validated engine of
:mod:`gradcheck.modes.validated` decides (issue #10): another scheme's estimate may pass an
entry, only the validated central ladder can FAIL one. The complex step and
``second_look=False`` take the path below (as do, with the complex step, the entries
directional mode localises).

For each tensor the selected entries (all, or a sample) are perturbed one at a time by the
run's scheme; each estimate carries an error bar (truncation + rounding + the analytic
gradient's own precision) and is judged by :func:`gradcheck.judge.verdict.judge`; with
``method="auto"`` the complex step re-estimates the entries it left inconclusive. With
``second_look=False`` a real scheme's estimate at one step is never validated (a kink or the
truncation inside the step can make a correct entry disagree), so an entry it would FAIL is
reported inconclusive instead (:func:`unvalidated`); only a non-finite analytic value still FAILs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gradcheck.estimate.steps import auto_estimate, nominal_steps
from gradcheck.judge.rescue import rescue_inconclusive
from gradcheck.judge.tolerance import ANALYTIC_ULPS, effective_tol
from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, Criteria, Judgement, judge, tensor_scale
from gradcheck.modes import validated
from gradcheck.modes.run import Run
from gradcheck.options import Plan
from gradcheck.params.sampling import select
from gradcheck.params.tree import Leaf
from gradcheck.report.results import TensorReport


def run(state: Run) -> list[TensorReport]:
    """Check the entries ``plan.sample`` selects in every tensor (all by default)."""
    rng = np.random.default_rng(state.plan.sample_seed)
    idxs = [finite(leaf, select(leaf.shape, state.plan.sample, rng, leaf.name))
            for leaf in state.leaves]
    if validated.applies(state):
        return [t if t is not None else empty_tensor(leaf)
                for t, leaf in zip(validated.run(state, idxs), state.leaves)]
    tensors = []
    for i, idx in enumerate(idxs):
        if state.progress is not None:  # the ETA counts entries
            state.progress.begin(idx.size, state.scheme.evaluations)
        tensors.append(check_entries(state, i, idx))
        if state.progress is not None:
            state.progress.end()
    return tensors


def finite(leaf: Leaf, idx: np.ndarray) -> np.ndarray:
    """The entries of ``idx`` whose value is finite: a NaN or ±inf entry cannot be moved by a
    step (the check's notes name them)."""
    return idx[np.isfinite(leaf.array.reshape(-1)[idx])]


def check_entries(state: Run, i: int, idx: np.ndarray) -> TensorReport:
    """Estimate and judge entries ``idx`` (flat, C order) of leaf ``i`` with the run's scheme
    at one step; returns their :class:`TensorReport`."""
    leaf = state.leaves[i]
    if idx.size == 0:
        return empty_tensor(leaf)
    plan, scheme, evaluator = state.plan, state.scheme, state.numeric
    work_array, grad = state.work.arrays[i], state.grads[i]
    dtype = work_array.dtype
    x = np.asarray(work_array).reshape(-1)[idx] if work_array.ndim else work_array.reshape(1)
    a = np.asarray(grad).reshape(-1)[idx]
    if state.h == "auto" and not scheme.is_complex:
        est = auto_estimate(scheme, lambda m, pts: evaluator.entries(i, idx[m], pts), x,
                            state.f0, state.noise, dtype)
    else:
        steps = nominal_steps(x, state.nominal_h, plan.relative_step)
        points = scheme.points(x, steps, np.complex128 if scheme.is_complex else dtype)
        losses = evaluator.entries(i, idx, points)
        est = scheme.combine(x, points, losses, state.f0, state.noise)
    a_dtype = grad.dtype if np.issubdtype(grad.dtype, np.inexact) else np.dtype(np.float64)
    a_real = a.real.astype(np.float64) if np.iscomplexobj(a) else a.astype(np.float64)
    scale = tensor_scale(est.value)
    analytic_bar = ANALYTIC_ULPS * float(np.finfo(a_dtype).eps) * (
        np.abs(a_real) + tensor_scale(a_real))
    floor = plan.floor if plan.floor is not None else min(1e-8, max(state.grad_scale, 1e-300))
    criteria = Criteria(effective_tol(plan.tol, a_dtype), plan.measure, plan.denominator,
                        floor, zero_scale=state.grad_scale)
    bar = est.error_bar + analytic_bar
    j = judge(a_real, est.value, bar, criteria, scale)
    numeric = est.value
    if not scheme.is_complex:   # second_look=False: one estimate, not validated
        j = unvalidated(j, a_real)
    if state.rescue is not None:
        j, numeric, bar = rescue_inconclusive(state.rescue, i, idx, x, a_real, j, numeric, bar,
                                              criteria, scale, analytic_bar)
    return TensorReport(leaf.name, leaf.shape, str(leaf.array.dtype), idx, a_real, numeric,
                        j.error, j.abs_error, bar, j.status, j.reason)


#: Note of an entry a single unvalidated step would have failed (``second_look=False``).
UNVALIDATED_NOTE = ("disagrees beyond its error bar at one step, which second_look=False does "
                    "not validate (a kink or the truncation inside the step can do that to a "
                    "correct gradient); second_look=True would decide it")


def unvalidated(j: Judgement, analytic: np.ndarray) -> Judgement:
    """``second_look=False``: the FAILs of a finite analytic value at one real step become
    inconclusive (:data:`UNVALIDATED_NOTE`) — one estimate, with no second step to show it is
    in the smooth regime, is no evidence against the gradient (see
    :mod:`gradcheck.judge.ladder`)."""
    m = (j.status == FAIL) & np.isfinite(analytic)
    if not m.any():
        return j
    status, reason = j.status.copy(), j.reason.copy()
    status[m] = INCONCLUSIVE
    reason[m] = UNVALIDATED_NOTE
    return replace(j, status=status, reason=reason)


def empty_tensor(leaf: Leaf) -> TensorReport:
    """The report of a tensor none of whose entries was checked."""
    empty = np.zeros(0)
    return TensorReport(leaf.name, leaf.shape, str(leaf.array.dtype), np.zeros(0, np.int64),
                        empty, empty, empty, empty, empty, np.zeros(0, np.int8),
                        np.zeros(0, object))


def expected_evaluations(leaves: list[Leaf], plan: Plan) -> int:
    """About how many evaluations an elementwise check takes (for the progress bar's ETA)."""
    total = 0
    for leaf in leaves:
        size = leaf.size
        if isinstance(plan.sample, float):
            size = max(1, int(round(plan.sample * size)))
        elif isinstance(plan.sample, int):
            size = min(size, plan.sample)
        total += size
    return 2 + total * plan.scheme.evaluations
