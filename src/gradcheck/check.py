"""The check itself, as a pipeline: plan → analytic gradient → workspace → evaluators →
mode → report → diagnosis.

This is the lecture's ``grad_check`` (§3) made careful: perturbation in place with exact
restore, the base loss computed once (twice, to catch a forward that is not deterministic),
error bars on every estimate, and a report instead of a stream of prints. :func:`check` only
orchestrates; each step is a stage of its own package (``params``, ``evaluate``, ``estimate``,
``judge``, ``modes``, ``report``, ``diagnose``) and no stage calls back into this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck import validate
from gradcheck.diagnose.attach import attach_diagnoses
from gradcheck.errors import ForwardError, InputError
from gradcheck.estimate import complex_safety, ecnoise
from gradcheck.estimate.complex_safety import SchemeChoice
from gradcheck.estimate.noise import noise_level
from gradcheck.evaluate import parallel
from gradcheck.evaluate.base import Evaluator
from gradcheck.evaluate.choose import make_evaluator, scaled
from gradcheck.evaluate.progress import make_progress
from gradcheck.evaluate.randomness import make_reset, nondeterminism_message
from gradcheck.judge import ladder
from gradcheck.judge.tolerance import tolerance_note
from gradcheck.judge.verdict import (
    entry_warnings,
    kink_notes,
    mark_unstable,
    model_scale,
    nondeterminism_is_rounding,
)
from gradcheck.modes import directional, elementwise, validated
from gradcheck.modes.elementwise import empty_tensor
from gradcheck.modes.run import Run
from gradcheck.options import Plan, make_plan
from gradcheck.params import complexview
from gradcheck.params import tree as trees
from gradcheck.params.analytic import (
    Analytic,
    analytic_gradients,
    gradients_changed,
    loss_mismatch,
    nan_loss_warning,
    precision_notes,
    unstable_entries,
    unstable_warnings,
)
from gradcheck.params.workspace import (
    ParamsGuard,
    Workspace,
    choose_workspace,
    promoted_workspace,
    readonly_note,
    workspace_changed,
)
from gradcheck.report.results import Report, TensorReport


def check(forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any], params: Any,
          **options: Any) -> Report:
    """Compare the analytic gradients of ``forward_backward`` with numeric estimates.

    Parameters
    ----------
    forward : ``forward(params) -> loss`` (a scalar).
    forward_backward : ``forward_backward(params) -> grads`` or ``(loss, grads)``; ``grads``
        shaped like ``params``.
    params : a numpy array or a dict / list / tuple of them (nested). Perturbed in place and
        restored exactly; bit-identical afterwards, also when the forward raises. Up to
        16 MiB of params are copied first, so even a forward's own writes are undone; larger
        params are fingerprinted instead (:mod:`gradcheck.params.snapshot`): such writes are
        detected and named, but cannot be undone.
    method : ``"central"`` (default, error O(h²)), ``"forward"``, ``"backward"`` (O(h)) or
        ``"complex"`` (``Im f(θ+ih)/h``, machine precision; needs a complex-analytic forward,
        probed first and refused with a reason when it is not), ``"central4"`` (five-point,
        O(h⁴)), ``"richardson"`` (Richardson-extrapolated central differences, O(h⁶), with an
        error estimate) or ``"auto"`` (complex step where safe, else central4; see
        :mod:`gradcheck.estimate.complex_safety`).
    h : first step (default for central: from the loss's measured noise,
        ``2·(σ/|f|)^(1/3)·max(|θ|, 1)``, about 1e-5 in float64, then validated steps as needed
        — :mod:`gradcheck.modes.validated`; central4 3e-3, richardson 2e-2, complex 1e-20), or
        ``"auto"``: central steps chosen by the validated engine (another scheme's first step
        per entry from :func:`gradcheck.estimate.steps.auto_estimate`).
        relative_step : ``h·|θ_i|`` for an explicit ``h`` (the default step is already
        relative to ``|θ|`` above 1).
    tol : tolerance on the error measure (default 1e-5).
    measure : ``"relative"`` (default) or ``"absolute"``.
    denominator : ``Z`` of the relative error: ``"max"`` (max(|a|,|n|), default),
        ``"abs_analytic"`` (|a|) or ``"sum"`` (|a|+|n|). floor : lower bound of Z. Z is never
        below the model's own gradient scale (the smaller of the RMS analytic and RMS
        numerical gradient), so a loss of 1e-15 is judged at its own scale; ``floor`` can
        only raise it (default None).
    promote : run the numerics in float64 when params are float32/float16 and the forward
        accepts float64 (default True).
    sample : check ``k`` entries per tensor (int) or a fraction (float); corners always
        included; ``sample_seed`` makes it reproducible. A dict ``{name: k | fraction |
        [indices]}`` sets it per tensor (tensors not named are checked in full).
    seed : re-seed numpy, ``random`` and torch before every evaluation (dropout); f(θ) is
        evaluated twice first, and a forward that still differs gets no gradient verdict.
    reset : a callable run before every evaluation, for any other random state.
    loss_scale : multiply the loss (and the gradients) by this constant, the lecture's remedy for
        gradients too small to resolve.
    second_look : re-examine entries the first estimate cannot settle (default True): the
        validated ladder of :mod:`gradcheck.judge.ladder` (central steps /4 and ×4, a FAIL
        only where a pair of steps is shown smooth and of second order, the kink test where
        the one-sided slopes keep a jump). Another real scheme's estimate may pass an entry;
        the entries it does not pass go to that ladder, so only validated central differences
        FAIL an entry (:mod:`gradcheck.modes.validated`). ``second_look=False`` judges the
        first estimate alone: it may pass an entry, and an entry it would fail is
        inconclusive (one step is no validated evidence).
    context : facts that help explain a failure, e.g. ``{"batch_size": 32, "seq_len": 10,
        "time_axis": 0, "repeated_rows": {"W_embed": mask}}``: a gradient B times too large
        is then named as a missing division by the batch size. ``"terms": {"b": T}`` gives
        the ``K`` terms ``T[k]`` a gradient must add up (a bias kept to one term is named);
        ``"groups": [["U", "W", "b"], ["V", "c"]]`` lists tensors built from one shared
        upstream gradient, from the input to the loss (which of them fail locates the bug).
    diagnose : explain each failing tensor in one sentence (default True; see
        :mod:`gradcheck.diagnose.patterns`).
    mode : ``"elementwise"`` (default) or ``"directional"`` (one random direction per tensor,
        then the wrong entries located). batched_forward, batch_size : a forward of stacked
        params and how many perturbations per call.
    workers : evaluate on ``N`` local processes (started by fork where safe, so closures and
        lambdas work); a check predicted to take under about a second runs serially and the
        report says so. executor : any ``concurrent.futures`` executor (a Dask cluster).
    progress : a progress bar on a terminal for checks longer than about a second.
    strict : a gradient returned in a lower precision than its parameter (float32 for
        float64) is a FAIL instead of a note, and so are the entries of a tensor with a small
        but significant discrepancy — below ``tol``, many validated error bars above the
        numerics (default False; ``report.significant`` lists those tensors either way, see
        :mod:`gradcheck.judge.significance`).

    repeat_backward : call ``forward_backward`` a second time at the same params and FAIL the
        entries whose gradient changed (a backward that leaves part of an ``np.empty`` buffer
        unwritten, or accumulates into state); default True.

    Every option is validated first (:func:`gradcheck.options.make_plan`): a bad value raises
    :class:`InputError` with one sentence, a misspelt name TypeError naming the closest one.

    Complex parameters are checked as (real, imaginary) pairs against the gradient in
    PyTorch's convention, ∂L/∂Re z + i·∂L/∂Im z (see :mod:`gradcheck.params.complexview`).

    Returns
    -------
    Report
    """
    start = time.perf_counter()
    plan = make_plan(options)
    view = complexview.inspect(params)
    if view.any:   # complex leaves: (real, imaginary) pairs, PyTorch's convention
        return complexview.check_pairs(check, forward, forward_backward, params, view, options)
    leaves = trees.flatten(params)
    trees.validate_leaves(leaves)
    names = [leaf.name for leaf in leaves]
    validate.sample_keys(plan.sample, names)
    reset = make_reset(plan.seed, plan.reset)
    log = Log()
    log.note(non_finite_note(leaves))
    with ParamsGuard(leaves, params) as guard, ExitStack() as opened:
        intake = _take_analytic(forward_backward, params, leaves, plan, reset, guard, log)
        analytic = intake.analytic
        base = _start(forward, params, leaves, plan, reset, guard, opened, log)
        evaluator, f0, f0_again = base.evaluator, base.f0, base.f0_again
        if f0 != f0_again and not nondeterminism_is_rounding(f0, f0_again,
                                                             evaluator.loss_dtype):
            log.warn(nondeterminism_message(f0, f0_again, reset is not None))
            return _report("inconclusive", [empty_tensor(leaf) for leaf in leaves], plan, {},
                           base.probes + evaluator.count, start, log, f0)
        # (said only for a deterministic forward: otherwise the message above explains both)
        log.warnings += unstable_warnings(leaves, intake.unstable, analytic.grads,
                                          intake.again.grads)
        if analytic.loss is not None and plan.loss_scale == 1.0:
            log.warn(loss_mismatch(analytic.loss, f0, analytic.grads))
        noise = max(noise_level(f0, evaluator.loss_dtype), 4.0 * abs(f0 - f0_again))
        choice, probes = SchemeChoice(plan.scheme, plan.h), base.probes
        if plan.method in ("complex", "auto") and plan.mode == "elementwise":
            safety = complex_safety.probe(scaled(forward, plan.loss_scale), params,
                                          analytic.grads, noise, reset)
            probes += safety.evaluations
            choice = complex_safety.choose_scheme(plan.method, safety, plan.scheme, plan.h)
            log.note(choice.note)
        measured = _measure_noise(plan, choice, leaves, base, analytic)
        if measured is not None:
            noise = max(noise, ladder.K_ROUND * measured.sigma)
        numeric, rescue = _numeric_evaluators(forward, params, leaves, plan, reset, choice,
                                              base, opened)
        grads = (analytic.grads if plan.loss_scale == 1.0 else  # no copies when unscaled
                 [g * plan.loss_scale for g in analytic.grads])
        state = Run(plan, leaves, base.work, grads, evaluator, numeric, rescue, choice.scheme,
                    choice.h, model_scale(analytic.grads) * plan.loss_scale, f0, noise,
                    base.progress, measured, NoiseMeter(base, analytic, measured))
        tensors = MODES[plan.mode](state)
        if state.measured is None and state.meter is not None:  # measured on demand
            state = replace(state, measured=state.meter.known())
        mark_unstable(tensors, intake.unstable)
        evaluations = probes + sum(e.count for e in {id(e): e for e in
                                                     (evaluator, numeric, rescue) if e}.values())
        moved = workspace_changed(base.work, leaves)
        if moved:
            raise InputError(f"forward modified the parameter(s) {', '.join(moved)} in place "
                             "during the check; it must not change params (compute into new "
                             "arrays). Your arrays were not touched.")
        gradients_changed(analytic, leaves)
        if plan.mode == "elementwise":
            log.warnings += entry_warnings(tensors)
            log.notes += kink_notes(tensors) + validated.notes(state, tensors)
        status = "fail" if plan.strict and intake.low_precision else overall_status(tensors)
        decisions = state.decisions()
        # only validated central differences FAIL an entry: another scheme may pass at once
        decisions["ladder"] = ("central" if plan.mode == "elementwise" and validated.applies(state)
                               else None)
        return _report(status, tensors, plan, decisions, evaluations, start, log, f0, state)


@dataclass(frozen=True)
class Intake:
    """The analytic gradient as taken in: the first call, the second (``repeat_backward``),
    the entries that changed between them, and the lower-precision gradients' notes."""

    analytic: Analytic
    again: Analytic
    unstable: Any
    low_precision: list[str]


def _take_analytic(forward_backward: Callable[[Any], Any], params: Any,
                   leaves: list[trees.Leaf], plan: Plan, reset: Callable[[], None] | None,
                   guard: ParamsGuard, log: Log) -> Intake:
    """Call ``forward_backward`` (twice with ``repeat_backward``), validate what it gave and
    refuse a backward that modified the params."""
    analytic = analytic_gradients(forward_backward, params, leaves, reset)
    trees.check_structure(params, leaves, "forward_backward")
    # a second call: entries that change between calls get no pass (issue #10, item 8)
    again = (analytic_gradients(forward_backward, params, leaves, reset)
             if plan.repeat_backward else analytic)
    unstable = unstable_entries(analytic.grads, again.grads)
    log.warn(nan_loss_warning(analytic.loss))
    low = precision_notes(leaves, analytic.grads, plan.strict)
    if plan.strict:
        log.warnings += low
    else:
        log.notes += low
    log.notes += tolerance_note(analytic.grads, plan.tol)
    if guard.moved():
        raise InputError(f"forward_backward modified the parameter(s) "
                         f"{', '.join(guard.moved())} in place; it must not change params "
                         "(compute into new arrays).")
    return Intake(analytic, again, unstable, low)


@dataclass(frozen=True)
class Start:
    """The numeric pass set up: the arrays it perturbs, the progress bar, the evaluator of
    real losses, the loss at θ twice, the probe evaluations spent, and whether ``workers=N``
    gave way to a serial check."""

    work: Workspace
    progress: Any
    evaluator: Evaluator
    f0: float
    f0_again: float
    probes: int
    serially: bool


def _start(forward: Callable[[Any], Any], params: Any, leaves: list[trees.Leaf], plan: Plan,
           reset: Callable[[], None] | None, guard: ParamsGuard, opened: ExitStack,
           log: Log) -> Start:
    """Choose the workspace and the evaluator, evaluate f(θ) twice, and refuse a forward that
    modifies its params or returns a non-finite loss."""
    names = [leaf.name for leaf in leaves]
    work, dtype_note, probes = choose_workspace(forward, params, leaves, plan.promote, reset)
    log.note(dtype_note)
    log.note(readonly_note(work))
    progress = make_progress(plan.progress, expected_evaluations(leaves, plan))
    if progress is not None:
        opened.callback(progress.close)
    base_only = plan.scheme.is_complex and plan.mode == "elementwise"
    evaluator = _opened(opened, make_evaluator(forward, work, names, plan, reset,
                                               serial=base_only), progress)
    clock = time.perf_counter()
    f0, f0_again = evaluator.base(), evaluator.base()
    serially = _serially(plan, (time.perf_counter() - clock) / 2 *
                         expected_evaluations(leaves, plan), log)
    if serially and not base_only:  # workers=N on a short check: a pool costs more
        probes += evaluator.count
        dtype = evaluator.loss_dtype
        evaluator = _opened(opened, make_evaluator(forward, work, names, plan, reset,
                                                   parallel=False), progress)
        evaluator.loss_dtype = dtype  # what the two base evaluations found
    trees.check_structure(work.tree, work.leaves(leaves), "forward")
    moved = guard.moved() or workspace_changed(work, leaves)
    if moved:
        raise InputError(f"forward modified the parameter(s) {', '.join(moved)} in place; "
                         "it must not change params (compute into new arrays).")
    if not np.isfinite(f0):
        raise non_finite_loss(f0, leaves, plan.loss_scale,
                              lambda: _unscaled_loss(forward, work.tree, reset))
    if f0 != f0_again and nondeterminism_is_rounding(f0, f0_again, evaluator.loss_dtype):
        log.note(f"Two calls of the forward at the same params differ by "
                 f"{abs(f0 - f0_again):.1e} (a few rounding errors, e.g. a threaded or "
                 "unordered sum); that jitter is counted in the error bars.")
    return Start(work, progress, evaluator, f0, f0_again, probes, serially)


def _measure_noise(plan: Plan, choice: SchemeChoice, leaves: list[trees.Leaf], base: Start,
                   analytic: Analytic) -> Any:
    """The loss's noise, measured (issue #10) for every elementwise check with a real scheme,
    else ``None`` (directional mode measures on demand, :class:`NoiseMeter`): a difference
    table (:mod:`gradcheck.estimate.ecnoise`), or the assumed level when the table would cost
    more than the check. A noise assumed from the returned dtype is wrong for a forward that
    computes in float32 and returns a Python float, and every path's error bars rest on it."""
    if plan.mode != "elementwise" or choice.scheme.is_complex:
        return None
    if expected_evaluations(leaves, plan) >= ecnoise.WORTH_MEASURING:
        measured = _difference_table(base, analytic)
    else:
        measured = ecnoise.assumed(base.f0, base.evaluator.loss_dtype,
                                   abs(base.f0 - base.f0_again))
    if base.progress is not None:
        base.progress.add_total(measured.evaluations)
    return measured


def _difference_table(base: Start, analytic: Analytic) -> Any:
    """The loss's noise from a difference table at a few entries
    (:func:`gradcheck.estimate.ecnoise.measure_at_entries`), the base losses' spread
    included."""
    return ecnoise.measure_at_entries(base.evaluator, base.work.arrays, analytic.grads,
                                      base.f0, abs(base.f0 - base.f0_again))


@dataclass
class NoiseMeter:
    """The loss's measured noise on demand, measured at most once (``value``: the run's own
    measurement when it has one): a mode that needs it only sometimes — directional mode,
    when a test disagrees — pays the difference table only then."""

    base: Start
    analytic: Analytic
    value: Any = None

    def __call__(self) -> Any:
        if self.value is None:
            self.value = _difference_table(self.base, self.analytic)
        return self.value

    def known(self) -> Any:
        """The noise measured so far, or ``None``."""
        return self.value


def _numeric_evaluators(forward: Callable[[Any], Any], params: Any, leaves: list[trees.Leaf],
                        plan: Plan, reset: Callable[[], None] | None, choice: SchemeChoice,
                        base: Start, opened: ExitStack) -> tuple[Evaluator, Evaluator | None]:
    """Where the scheme's points are evaluated (complex copies for the complex step, else the
    real evaluator) and the complex-step rescue of inconclusive entries (or ``None``)."""
    names = [leaf.name for leaf in leaves]
    numeric = base.evaluator
    if choice.scheme.is_complex:
        cwork = promoted_workspace(params, leaves, np.complex128)
        numeric = _opened(opened, make_evaluator(forward, cwork, names, plan, reset,
                                                 complex_mode=True,
                                                 parallel=not base.serially), base.progress)
    rescue = None
    if choice.rescue:
        rwork = promoted_workspace(params, leaves, np.complex128)
        rescue = _opened(opened, make_evaluator(forward, rwork, names, plan, reset,
                                                complex_mode=True, serial=True), None)
    return numeric, rescue


#: The modes :func:`check` can run, each ``run(state: Run) -> list[TensorReport]``.
MODES: dict[str, Callable[[Run], list[TensorReport]]] = {
    "elementwise": elementwise.run,
    "directional": directional.run,
}


@dataclass
class Log:
    """Warnings (something may be wrong) and notes (how the check was done) of one run."""

    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def warn(self, text: str | None) -> None:
        if text:
            self.warnings.append(text)

    def note(self, text: str | None) -> None:
        if text:
            self.notes.append(text)


def _opened(opened: ExitStack, evaluator: Evaluator, progress: Any) -> Evaluator:
    """Register ``evaluator`` to be closed with the check and give it the progress bar."""
    opened.callback(evaluator.close)
    evaluator.progress = progress
    return evaluator


def _serially(plan: Plan, predicted: float, log: Log) -> bool:
    """Whether ``workers=N`` should give way to a serial check: below
    :data:`~gradcheck.evaluate.parallel.SERIAL_BELOW` seconds of predicted work, starting the
    pool and shipping the problem cost more than they save (the report says so)."""
    if plan.workers is None or predicted >= parallel.SERIAL_BELOW:
        return False
    log.note(f"The check ran serially, not on workers={plan.workers}: it was predicted to take "
             f"{predicted:.2g} s, less than starting worker processes costs.")
    return True


def non_finite_note(leaves: list[trees.Leaf]) -> str | None:
    """A note naming parameter entries that are NaN or ±inf: they cannot be moved by a step,
    so an elementwise check leaves them out."""
    bad = trees.non_finite_entries(leaves)
    if not bad:
        return None
    return (f"The params hold non-finite entries ({', '.join(bad[:5])}"
            f"{', …' if len(bad) > 5 else ''}); they cannot be moved by a step and were not "
            "checked.")


def non_finite_loss(f0: float, leaves: list[trees.Leaf], loss_scale: float,
                    unscaled: Callable[[], float]) -> Exception:
    """The error for a non-finite loss at θ: name the non-finite parameter entries when there
    are any, blame ``loss_scale`` when the loss without it (``unscaled()``) is finite, else
    the forward."""
    bad = trees.non_finite_entries(leaves)
    if bad:
        return InputError(f"The loss at the given params is {f0} and the params hold "
                          f"non-finite entries ({', '.join(bad[:3])}"
                          f"{', …' if len(bad) > 3 else ''}); give finite parameters.")
    if loss_scale != 1.0 and np.isfinite(unscaled()):
        return InputError(f"loss_scale={loss_scale!r} makes the loss {f0}; choose a smaller "
                          "loss_scale (the loss times loss_scale must stay finite).")
    return ForwardError(f"The loss at the given params is {f0}; a gradient check needs a "
                        "finite loss — check the forward and the data.")


def _unscaled_loss(forward: Callable[[Any], Any], tree: Any,
                   reset: Callable[[], None] | None) -> float:
    """The loss without ``loss_scale`` (only to tell whose fault a non-finite loss is)."""
    if reset is not None:
        reset()
    try:
        return float(np.real(forward(tree)))
    except Exception:  # noqa: BLE001 - any failure: not evidence that loss_scale overflowed
        return float("nan")


def expected_evaluations(leaves: list[trees.Leaf], plan: Plan) -> int:
    """About how many evaluations the check will take (for the progress bar's ETA)."""
    if plan.mode == "directional":
        return directional.expected_evaluations(len(leaves))
    return elementwise.expected_evaluations(leaves, plan)


def overall_status(tensors: list[TensorReport]) -> str:
    """fail if any tensor failed, else inconclusive if any is, else pass."""
    if any(t.verdict == "FAIL" for t in tensors):
        return "fail"
    if any(t.verdict == "inconclusive" for t in tensors):
        return "inconclusive"
    return "pass"


def _report(status: str, tensors: list[TensorReport], plan: Plan, decisions: dict[str, Any],
            evaluations: int, start: float, log: Log, f0: float, state: Run | None = None
            ) -> Report:
    if status == "fail" and plan.diagnose:
        attach_diagnoses(tensors, plan.context or {},
                         grads=state.grads if state is not None else None,
                         values=[leaf.array for leaf in state.leaves] if state else None)
    return Report(status, tensors, plan.public(), evaluations, time.perf_counter() - start,
                  log.warnings, log.notes, float(np.real(f0)), decisions)
