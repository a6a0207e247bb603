r"""Second order: check a Hessian-vector product (double backward) numerically.

For a loss :math:`f` with gradient :math:`g = \nabla f` and a random direction :math:`v`,
the scalar :math:`\varphi_v(\theta) = \langle g(\theta), v\rangle` has gradient

.. math::

    \nabla \varphi_v = \nabla^2 f\, v = H v \qquad (H \text{ symmetric}),

so ``hvp(θ, v)`` is checked by :func:`gradcheck.check` on :math:`\varphi_v` — entry by entry
(each entry moved by ±h: :math:`e_i^\top H v = (\varphi_v(\theta + h e_i) - \varphi_v(\theta -
h e_i))/2h + O(h^2)`, i.e. central differences of the *gradient*, column :math:`i` of the
Hessian projected on :math:`v`) or directionally with localisation (``mode="directional"``),
with the same error bars, verdicts, second look, executors and diagnosis as a first-order
check. This is what ``torch.autograd.gradgradcheck`` checks (the Jacobian of the gradient),
at one HVP call instead of one double backward per entry.

A failing entry :math:`i` is a wrong row of :math:`Hv`; :func:`gradcheck.derivatives.projection.
attribute` then splits :math:`v` to find the Hessian column :math:`j` carrying most of the
disagreement, comparing ``hvp(θ, v_S)`` with :math:`(g(\theta + h v_S) - g(\theta - h
v_S))/2h` on halves :math:`S`: the report names the second derivative
:math:`\partial^2 f/\partial\theta_i\partial\theta_j`.

Two checks need no numerics at all: :math:`w^\top H v = v^\top H w` for random :math:`v, w`
(a Hessian is symmetric; an HVP that is not is wrong somewhere), within the rounding of the two
inner products, :math:`c\,\varepsilon\,(\sum|w_i (Hv)_i| + \sum|v_i (Hw)_i|)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck.check import check
from gradcheck.derivatives.projection import (
    abs_inner,
    attribute,
    flat_names,
    host,
    inner,
    precision_of,
    projection,
    random_direction_like,
    restricted,
    worst_failing,
)
from gradcheck.errors import ForwardError, InputError
from gradcheck.judge.tolerance import ANALYTIC_ULPS, effective_tol
from gradcheck.params import complexview
from gradcheck.params import tree as trees
from gradcheck.params.analytic import _is_loss_and_grads
from gradcheck.report.results import Report

#: Failing entries whose Hessian column is looked for (worst first).
ATTRIBUTE = 3


def check_hvp(forward_backward: Callable[[Any], Any], hvp: Callable[[Any, Any], Any],
              params: Any, *, direction_seed: int = 0, symmetry: bool = True,
              attribute_worst: int = ATTRIBUTE, **options: Any) -> Report:
    """Check ``hvp(params, v)`` (a Hessian-vector product) against the gradient's differences.

    Parameters
    ----------
    forward_backward : ``forward_backward(params) -> grads`` or ``(loss, grads)``, the
        first-order gradient (assumed right: check it first with :func:`gradcheck.check`).
    hvp : ``hvp(params, v) -> H·v``, a tree shaped like ``params`` (double backward,
        forward-over-reverse, or hand-written).
    params : a numpy array or a dict / list / tuple of them; complex leaves are checked as
        (real, imaginary) pairs in PyTorch's convention (:mod:`gradcheck.params.complexview`).
    direction_seed : seed of the random directions ``v`` and ``w``.
    symmetry : also test ``w·Hv == v·Hw`` (one more HVP call).
    attribute_worst : failing entries whose Hessian column is named (0: none).
    **options : options of :func:`gradcheck.check` (``mode``, ``tol``, ``h``, ``sample``,
        ``executor``, ...), applied to ``φ_v(θ) = ⟨∇f(θ), v⟩``.

    Returns
    -------
    Report
        Entries are the rows of ``H·v``; failing ones carry the Hessian column in their note.
    """
    view = complexview.inspect(params)
    options, auto_note = complexview.real_options(view, options)
    if options.get("batched_forward") is not None:
        raise InputError("batched_forward= evaluates the loss, but check_hvp checks another "
                         "scalar, φ(θ) = ⟨∇f(θ), v⟩ through forward_backward; leave "
                         "batched_forward out.")
    real = complexview.real_tree(params, view) if view.any else params
    leaves = trees.flatten(real)
    trees.validate_leaves(leaves)
    calls = {"grad": 0, "hvp": 0}

    def grads(p: Any) -> list[np.ndarray]:
        calls["grad"] += 1
        out = forward_backward(complexview.complex_tree(p, view) if view.any else p)
        original = complexview.complex_tree(p, view) if view.any else p
        if _is_loss_and_grads(out, original):
            out = out[1]
        if view.any:
            out = complexview.real_gradients(out, original, view)
        return [host(g) for g in trees.align(p, out, "the gradients returned by "
                                                      "forward_backward")]

    def hv(p: Any, v: list[np.ndarray]) -> list[np.ndarray]:
        calls["hvp"] += 1
        if view.any:
            cp = complexview.complex_tree(p, view)
            out = hvp(cp, complexview.complex_tree(trees.replace_leaves(p, v), view))
            out = complexview.real_gradients(out, cp, view)
        else:
            out = hvp(p, trees.replace_leaves(p, v))
        return [host(h) for h in trees.align(p, out, "the Hessian-vector product returned "
                                                       "by hvp")]

    rng = np.random.default_rng(direction_seed)
    base = [leaf.array for leaf in leaves]
    v = random_direction_like(base, rng)
    w = random_direction_like(base, rng)
    try:
        g0 = grads(real)
    except InputError:
        raise
    except Exception as exc:
        raise ForwardError(f"forward_backward raised {type(exc).__name__}: {exc}; fix it and "
                           "check again.") from exc
    phi = projection(grads, v, g0)
    last: dict[str, list[np.ndarray]] = {}

    def phi_gradient(p: Any) -> Any:
        last["hv"] = hv(p, v)
        return trees.replace_leaves(p, last["hv"])

    report = check(phi, phi_gradient, real, **{"repeat_backward": False, **options})
    warnings, notes = list(report.warnings), list(report.notes)
    status = report.status
    if view.any:
        notes += [n for n in (auto_note, view.note()) if n]
    if symmetry and "hv" in last:
        symmetric, sentence = symmetry_test(v, w, last["hv"], hv(real, w),
                                            float(options.get("tol", 1e-5)))
        if symmetric:
            notes.append(sentence)
        else:
            warnings.append(sentence)
            status = "fail"
    h = float(options.get("h") or 1e-5) if options.get("h") != "auto" else 1e-5
    if report.status == "fail" and attribute_worst:
        notes.extend(_attribute_columns(report, leaves, real, v, grads, hv, h,
                                        attribute_worst))
    gradients = report.evaluations + _extra(report, calls)
    notes.insert(0, f"Second order: checked H·v, the Hessian times a random direction v "
                 f"(direction_seed={direction_seed}), against central differences of the "
                 f"gradient projected on v; {gradients} gradient evaluations and "
                 f"{calls['hvp']} HVP calls.")
    options_out = {**report.options, "check": "hvp", "direction_seed": direction_seed}
    return replace(report, status=status, warnings=warnings, notes=notes,
                   options=options_out, evaluations=gradients + calls["hvp"])


def _extra(report: Report, calls: dict[str, int]) -> int:
    """Gradient evaluations outside the check (the base gradient, attribution)."""
    return max(0, calls["grad"] - report.evaluations)


def symmetry_test(v: list[np.ndarray], w: list[np.ndarray], hv: list[np.ndarray],
                  hw: list[np.ndarray], tol: float = 1e-5) -> tuple[bool, str]:
    """``w·(Hv) == v·(Hw)`` within ``max(ANALYTIC_ULPS·ε, tol')·(Σ|w·Hv| + Σ|v·Hw|)`` (ε of
    the HVP's dtype, ``tol' = max(tol, √ε)`` as for gradients: a double backward with
    cancelling sums is not more accurate than that). A Hessian is symmetric (Schwarz's theorem
    for twice continuously differentiable f), so an HVP that is not is wrong whatever the
    numerics say."""
    a, b = inner(w, hv), inner(v, hw)
    dtype = precision_of(hv + hw)
    eps = float(np.finfo(dtype).eps)
    bar = max(ANALYTIC_ULPS * eps, effective_tol(tol, dtype)) * (abs_inner(w, hv)
                                                                 + abs_inner(v, hw))
    if abs(a - b) <= bar:
        return True, (f"The HVP is symmetric: w·Hv = {a:.6g} and v·Hw = {b:.6g} agree within "
                      f"rounding ({bar:.1e}).")
    return False, (f"The HVP is not symmetric: w·Hv = {a:.6g} but v·Hw = {b:.6g} for random "
                   f"v, w (rounding allows {bar:.1e}); a Hessian is symmetric, so hvp is "
                   "wrong — look for a term dropped or detached in the backward's backward.")


def _attribute_columns(report: Report, leaves: list[trees.Leaf], real: Any,
                       v: list[np.ndarray], grads: Callable[[Any], list[np.ndarray]],
                       hv: Callable[[Any, list[np.ndarray]], list[np.ndarray]], h: float,
                       worst: int) -> list[str]:
    """Name the Hessian column of the ``worst`` failing rows (notes, and entry notes)."""
    offsets, name = flat_names(leaves)
    failing = worst_failing(report, worst)
    if not failing:
        return []
    rows = [int(offsets[ti] + report.tensors[ti].flat_index[pos]) for _, ti, pos in failing]
    total = np.zeros(int(offsets[-1]))
    for _, ti, pos in failing:
        t = report.tensors[ti]
        total[offsets[ti] + t.flat_index[pos]] = t.analytic[pos] - t.numeric[pos]
    base = [np.asarray(leaf.array) for leaf in leaves]
    wide = [b.astype(np.result_type(b.dtype, np.float64)) for b in base]

    def residuals(idx: np.ndarray) -> np.ndarray:
        vs = restricted(v, offsets, idx)
        a = np.concatenate([x.reshape(-1) for x in hv(real, vs)]).astype(np.float64)
        plus = trees.replace_leaves(real, [b + h * d for b, d in zip(wide, vs)])
        minus = trees.replace_leaves(real, [b - h * d for b, d in zip(wide, vs)])
        gp, gm = grads(plus), grads(minus)
        n = np.concatenate([((p - m) / (2 * h)).reshape(-1) for p, m in zip(gp, gm)])
        return a - n.astype(np.float64)

    parts = [np.arange(offsets[j], offsets[j + 1]) for j in range(len(leaves))]
    found = attribute(rows, parts, name, residuals, total, [name(r) for r in rows])
    out = []
    for (_, ti, pos), at in zip(failing, found):
        t = report.tensors[ti]
        sentence = (f"column {at.component}" + (f" ({100 * at.share:.0f}% of the "
                                                 "disagreement)" if np.isfinite(at.share)
                                                 else ""))
        t.notes[pos] = f"{t.notes[pos]}; {sentence}" if t.notes[pos] else sentence
        out.append(f"∂²f/∂{at.entry}∂{at.component} is wrong (row {at.entry} of H·v, column "
                   f"{at.component}).")
    return out
