r"""Forward mode: check a Jacobian-vector product (JVP) of the loss numerically.

``jvp(θ, t)`` returns the directional derivative :math:`\langle\nabla f(\theta), t\rangle` of
the loss (or ``(loss, dloss)``). Along the one-hot tangent :math:`e_i` it is the gradient
entry :math:`\partial f/\partial\theta_i`, so the JVPs along the entries to be checked make an
analytic gradient, and :func:`gradcheck.check` compares it with its finite differences — every
entry (or a ``sample=``) with error bars, verdicts, second look, executors and diagnosis, or
``mode="directional"`` with localisation. This is ``torch.autograd.gradcheck(...,
check_forward_ad=True)`` (one JVP per input entry) and the forward half of
``jax.test_util.check_grads`` (one JVP along a random tangent), with names.

One check needs no numerics: a JVP is linear in its tangent, so for a random :math:`t`,
``jvp(θ, t)`` must equal :math:`\sum_i t_i\,` ``jvp(θ, e_i)`` up to rounding and the
tolerance — a rule that is not (one using ``|t|``, a tangent squared, a stray constant) FAILs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck.check import check
from gradcheck.derivatives.projection import (
    abs_inner,
    flat_names,
    host,
    inner,
    precision_of,
    projection,
    random_direction_like,
)
from gradcheck.derivatives.vjp import ATTRIBUTE, output_leaves, random_cotangent
from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import loss_value
from gradcheck.judge.tolerance import effective_tol
from gradcheck.judge.verdict import FAIL
from gradcheck.params import complexview
from gradcheck.params import tree as trees
from gradcheck.params.sampling import select
from gradcheck.report.results import Report


def check_jvp(forward: Callable[[Any], Any], jvp: Callable[[Any, Any], Any], params: Any, *,
              tangent_seed: int = 0, linearity: bool = True, **options: Any) -> Report:
    """Check ``jvp(params, tangents)`` — the directional derivative of ``forward`` — numerically.

    Parameters
    ----------
    forward : ``forward(params) -> loss`` (a scalar).
    jvp : ``jvp(params, tangents) -> dloss`` or ``(loss, dloss)``, with ``tangents`` shaped like
        ``params`` (``torch.func.jvp``, ``torch.autograd.forward_ad``, ``jax.jvp`` or a
        hand-written forward-mode rule).
    params : a numpy array or a dict / list / tuple of them; complex leaves are checked as
        (real, imaginary) pairs, a tangent ``(t_x, t_y)`` being ``t_x + i·t_y``.
    tangent_seed : seed of the random tangent of the linearity test.
    linearity : test ``jvp(t) == Σ t_i·jvp(e_i)`` (one more JVP call).
    **options : options of :func:`gradcheck.check`.

    Returns
    -------
    Report
    """
    view = complexview.inspect(params)
    options, auto_note = complexview.real_options(view, options)
    real = complexview.real_tree(params, view) if view.any else params
    leaves = trees.flatten(real)
    trees.validate_leaves(leaves)
    calls = {"jvp": 0}

    def call_jvp(p: Any, tangent: list[np.ndarray]) -> tuple[Any, Any]:
        calls["jvp"] += 1
        t = trees.replace_leaves(p, tangent)
        try:
            if view.any:
                out = jvp(complexview.complex_tree(p, view), complexview.complex_tree(t, view))
            else:
                out = jvp(p, t)
        except InputError:
            raise
        except Exception as exc:
            raise ForwardError(f"jvp raised {type(exc).__name__}: {exc}; fix it and check "
                               "again.") from exc
        loss = None
        if isinstance(out, tuple) and len(out) == 2:
            loss, out = out
        return loss, out

    def forward_real(p: Any) -> Any:
        return forward(complexview.complex_tree(p, view) if view.any else p)

    wanted = _entries(leaves, options)
    base: dict[str, Any] = {}

    def gradient(p: Any) -> Any:
        arrays = [np.asarray(leaf.array) for leaf in trees.flatten(p)]
        zeros = [np.zeros_like(a) for a in arrays]
        grads, loss, dtype = [], None, None
        for j, a in enumerate(arrays):
            g = np.full(a.shape, np.nan if wanted[j] is not None else 0.0)
            for k in (range(a.size) if wanted[j] is None else wanted[j]):
                tangent = list(zeros)
                one = np.zeros(a.size, dtype=a.dtype)
                one[k] = 1
                tangent[j] = one.reshape(a.shape)
                value, d = call_jvp(p, tangent)
                if loss is None and value is not None:
                    loss = value
                d_host = host(d)
                if dtype is None and np.issubdtype(d_host.dtype, np.inexact):
                    dtype = d_host.real.dtype
                g.reshape(-1)[k] = loss_value(d_host, "as the directional derivative of jvp")
            grads.append(g)
        if dtype is not None:
            grads = [g.astype(dtype) for g in grads]
        base["grads"] = grads
        out = trees.replace_leaves(p, grads)
        return (loss_value(host(loss), "as the loss of jvp"), out) if loss is not None else out

    check_options = {"repeat_backward": False, **options}   # one product per entry
    if any(w is not None for w in wanted):
        check_options["sample"] = {leaf.name: [int(k) for k in w]
                                   for leaf, w in zip(leaves, wanted) if w is not None}
    tangent, direct = random_tangent_jvp(real, leaves, call_jvp, tangent_seed)
    if options.get("mode") == "directional":
        return _directional(forward_real, call_jvp, real, leaves, tangent, options, calls,
                            [n for n in (auto_note, view.note() if view.any else "") if n])
    report = check(forward_real, gradient, real, **check_options)
    warnings, notes, status = list(report.warnings), list(report.notes), report.status
    if view.any:
        notes += [n for n in (auto_note, view.note()) if n]
    if linearity and "grads" in base and all(w is None for w in wanted):
        ok, sentence = linearity_test(tangent, direct, base["grads"], tangent_seed,
                                      float(options.get("tol", 1e-5)))
        if ok:
            notes.append(sentence)
        else:
            warnings.append(sentence)
            status = "fail"
    notes.insert(0, f"Forward mode: the analytic gradient is jvp along one-hot tangents "
                 f"({calls['jvp']} jvp calls), compared with finite differences of the loss.")
    return replace(report, status=status, warnings=warnings, notes=notes,
                   options={**report.options, "check": "jvp", "sample": options.get("sample")},
                   evaluations=report.evaluations + calls["jvp"])


def _directional(forward: Callable[[Any], Any],
                 call_jvp: Callable[[Any, list[np.ndarray]], tuple[Any, Any]], real: Any,
                 leaves: list[trees.Leaf], tangent: list[np.ndarray], options: dict[str, Any],
                 calls: dict[str, int], extra_notes: list[str]) -> Report:
    r"""``mode="directional"``: one JVP per tensor along the random tangent ``u`` restricted
    to it, against the central difference of :math:`s \mapsto f(\theta + s\,u)` at
    :math:`s = 0` (a one-entry :func:`gradcheck.check`, error bars and all: 1 JVP and about 4
    evaluations per tensor, where ``jax.test_util.check_jvp`` spends 1 and 2 on all tensors
    at once). Only a tensor that fails has its gradient built from one-hot JVPs and localised
    by :func:`gradcheck.check`'s directional mode."""
    start = time.perf_counter()
    screen = {k: v for k, v in options.items() if k not in ("mode", "sample", "h")}
    tensors: list[Any] = []
    failing: list[int] = []
    asked: dict[str, Any] = {"repeat_backward": False, **options, "mode": "directional"}
    evaluations, warnings, notes = 0, [], []
    for j, leaf in enumerate(leaves):
        u = [np.zeros_like(t) for t in tangent]
        u[j] = tangent[j]
        _, d = call_jvp(real, u)
        a = host(d)
        a = np.asarray(loss_value(a, "as the directional derivative of jvp")).astype(
            a.real.dtype if np.issubdtype(a.dtype, np.inexact) else np.float64)
        step = tangent[j] / float(np.max(np.abs(tangent[j]))) if leaf.size else tangent[j]

        def along(p: Any, j: int = j, step: np.ndarray = step) -> Any:
            moved = [np.asarray(x.array) for x in leaves]
            moved[j] = (moved[j] + p * step).astype(np.result_type(moved[j].dtype, p.dtype))
            return forward(trees.replace_leaves(real, moved))

        scale = float(np.max(np.abs(tangent[j]))) if leaf.size else 1.0
        sub = check(along, lambda p, a=a, scale=scale: a / scale, np.zeros(()),
                    h=options.get("h") or 1e-5, **screen)
        evaluations += sub.evaluations
        asked = {**sub.options, "mode": "directional", "h": options.get("h") or sub.options["h"]}
        warnings += [f"{leaf.name}: {w}" for w in sub.warnings]
        t = replace(sub.tensors[0], name=f"{leaf.name}·u")
        tensors.append(t)
        if sub.status == "fail":
            failing.append(j)
    if failing:
        names = [leaves[j].name for j in failing]
        sub_params = {leaves[j].name: leaves[j].array for j in failing}

        def forward_sub(p: dict[str, Any]) -> Any:
            arrays = [np.asarray(x.array) for x in leaves]
            for j in failing:
                arrays[j] = p[leaves[j].name]
            return forward(trees.replace_leaves(real, arrays))

        def gradient_sub(p: dict[str, Any]) -> dict[str, Any]:
            arrays = [np.asarray(x.array) for x in leaves]
            for j in failing:
                arrays[j] = np.asarray(p[leaves[j].name])
            out = {}
            for j in failing:
                g = np.zeros(arrays[j].shape)
                for k in range(arrays[j].size):
                    one = [np.zeros_like(x) for x in arrays]
                    one[j].reshape(-1)[k] = 1
                    _, d = call_jvp(trees.replace_leaves(real, arrays), one)
                    g.reshape(-1)[k] = loss_value(host(d), "as the directional derivative")
                out[leaves[j].name] = g.astype(host(d).real.dtype) if arrays[j].size else g
            return out

        located = check(forward_sub, gradient_sub, sub_params,
                        **{"repeat_backward": False, **options})
        evaluations += located.evaluations
        warnings += located.warnings
        notes += located.notes
        found = {t.name for t in located.tensors if t.verdict == "FAIL"}
        for j in failing:   # the located entries stand for the directional derivative
            if leaves[j].name in found:
                notes.append(f"{leaves[j].name}·u: jvp = {tensors[j].analytic[0]:.6g}, "
                             f"central difference {tensors[j].numeric[0]:.6g}.")
        tensors = [t for j, t in enumerate(tensors)
                   if not (j in failing and leaves[j].name in found)]
        tensors += located.tensors
        notes.append(f"{', '.join(names)}: the JVP along a random tangent disagrees; their "
                     "gradient was built from one-hot JVPs and localised.")
    status = "fail" if any(t.verdict == "FAIL" for t in tensors) else (
        "inconclusive" if any(t.verdict == "inconclusive" for t in tensors) else "pass")
    notes.insert(0, f"Forward mode, directional: one JVP per tensor along a random tangent u "
                 f"against the central difference of f(θ + s·u) ({calls['jvp']} jvp calls); "
                 "entries named 'x·u' are those directional derivatives.")
    return Report(status, tensors, {**asked, "check": "jvp"}, evaluations + calls["jvp"],
                  time.perf_counter() - start, warnings, notes + extra_notes)


def _entries(leaves: list[trees.Leaf], options: dict[str, Any]) -> list[np.ndarray | None]:
    """Flat indices the check will look at per leaf (``None``: all of them), chosen exactly
    as :func:`gradcheck.check` chooses its sample, so only those JVPs are computed."""
    sample = options.get("sample")
    if sample is None or options.get("mode", "elementwise") != "elementwise":
        return [None] * len(leaves)
    rng = np.random.default_rng(options.get("sample_seed", 0))
    out: list[np.ndarray | None] = []
    for leaf in leaves:
        idx = select(leaf.shape, sample, rng, leaf.name)
        out.append(None if idx.size == leaf.size else np.asarray(idx, dtype=np.int64))
    return out


def random_tangent_jvp(real: Any, leaves: list[trees.Leaf],
                       call_jvp: Callable[[Any, list[np.ndarray]], tuple[Any, Any]],
                       seed: int) -> tuple[list[np.ndarray], float]:
    """A random tangent ``t`` and ``jvp(θ, t)`` — the first JVP call, made before the check so
    that a rule that raises or returns something else is named plainly."""
    rng = np.random.default_rng(seed)
    t = random_direction_like([np.asarray(leaf.array) for leaf in leaves], rng)
    _, d = call_jvp(real, t)
    try:
        return t, float(np.real(host(d)))
    except (TypeError, ValueError) as exc:
        raise InputError("jvp returned something that is not a number; return the directional "
                         "derivative of the loss as a scalar.") from exc


def linearity_test(t: list[np.ndarray], direct: float, grads: list[np.ndarray], seed: int,
                   tol: float) -> tuple[bool, str]:
    """``jvp(t)`` against ``Σ_i t_i·jvp(e_i)`` for a random tangent ``t``.

    The two differ only by rounding for a linear rule; a difference above both
    ``ANALYTIC_ULPS``-style rounding and ``tol`` (at least √ε of the JVP's dtype) times the
    size of the terms ``Σ|t_i g_i|`` is a rule that is not linear in its tangent."""
    summed = inner(grads, t)
    size = abs_inner(grads, t)
    dtype = grads[0].dtype if grads else np.dtype(np.float64)
    allowed = effective_tol(tol, dtype) * size + 64 * float(np.finfo(dtype).eps) * size
    if abs(direct - summed) <= allowed:
        return True, (f"The JVP is linear in its tangent: jvp(t) = {direct:.6g} equals "
                      f"Σ tᵢ·jvp(eᵢ) = {summed:.6g} for a random t.")
    return False, (f"The JVP is not linear in its tangent: jvp(t) = {direct:.6g} but "
                   f"Σ tᵢ·jvp(eᵢ) = {summed:.6g} for a random t (tangent_seed={seed}); a JVP "
                   "must be linear in t — look for |t|, t², or a term that ignores t.")


def check_output_jvp(function: Callable[[Any], Any], jvp_outputs: Callable[[Any, Any], Any],
                     inputs: Any, *, output_names: Sequence[str] | None = None,
                     cotangent_seed: Any = 0, attribute_worst: int = ATTRIBUTE,
                     **options: Any) -> Report:
    r"""Forward mode of a vector-valued function, failures named by input entry and output.

    ``jvp_outputs(inputs, t)`` returns the output tangents :math:`J t` (a tree shaped like
    ``function(inputs)``). With a random cotangent :math:`c`, the scalar
    :math:`L = \langle c, F\rangle` has the JVP :math:`\langle c, J t\rangle`, checked by
    :func:`check_jvp`; a failing entry :math:`i` is then attributed to the output element
    :math:`k` with the largest :math:`|c_k\,(J_{ki} - \hat J_{ki})|`, from one JVP along
    :math:`e_i` (every output at once) and the central-difference column
    :math:`\hat J_{:,i}` (two evaluations).

    Parameters
    ----------
    function : ``function(inputs) -> outputs`` (an array or a tuple / list / dict of arrays).
    jvp_outputs : ``jvp_outputs(inputs, tangents) -> output tangents``.
    inputs : a numpy array or a dict / list / tuple of them (complex allowed).
    output_names, cotangent_seed, attribute_worst : as for :func:`gradcheck.check_vjp`.
    **options : options of :func:`gradcheck.check`.
    """
    view = complexview.inspect(inputs)
    outs = output_leaves(function(inputs), output_names)
    c = random_cotangent(outs, cotangent_seed)

    def values(p: Any) -> list[np.ndarray]:
        return [leaf.array for leaf in output_leaves(function(p), output_names)]

    def tangents(p: Any, t: Any) -> list[np.ndarray]:
        return [leaf.array for leaf in output_leaves(jvp_outputs(p, t), output_names)]

    loss = projection(values, c, [leaf.array for leaf in outs])
    def jvp_loss(p: Any, t: Any) -> Any:
        out = tangents(p, t)
        return np.asarray(inner(out, c)).astype(precision_of(out))

    report = check_jvp(loss, jvp_loss, inputs, **options)
    if report.status != "fail" or not attribute_worst:
        return report
    real = complexview.real_tree(inputs, view) if view.any else inputs
    leaves = trees.flatten(real)
    h = float(options["h"]) if isinstance(options.get("h"), (int, float)) else 1e-5

    def complex_of(p: Any) -> Any:
        return complexview.complex_tree(p, view) if view.any else p

    _, out_name = flat_names(outs)
    c_flat = np.concatenate([x.reshape(-1) for x in c]).astype(np.complex128)
    notes = list(report.notes)
    position = {leaf.name: j for j, leaf in enumerate(leaves)}
    failing = sorted(((float(np.nan_to_num(t.error[pos], nan=np.inf)), ti, int(pos))
                      for ti, t in enumerate(report.tensors) if t.name in position
                      for pos in np.flatnonzero(t.status == FAIL)),
                     key=lambda item: (-item[0], item[1], item[2]))[:attribute_worst]
    for _, ti, pos in failing:
        t = report.tensors[ti]
        lj = position[t.name]
        k = int(t.flat_index[pos])
        one = [np.zeros_like(leaf.array) for leaf in leaves]
        one[lj].reshape(-1)[k] = 1
        analytic = np.concatenate([host(a).reshape(-1) for a in tangents(
            complex_of(real), complex_of(trees.replace_leaves(real, one)))])
        wide = [np.asarray(leaf.array).astype(np.result_type(leaf.array.dtype, np.float64))
                for leaf in leaves]
        plus, minus = [w.copy() for w in wide], [w.copy() for w in wide]
        plus[lj].reshape(-1)[k] += h
        minus[lj].reshape(-1)[k] -= h
        step = float(plus[lj].reshape(-1)[k] - minus[lj].reshape(-1)[k])
        fp = values(complex_of(trees.replace_leaves(real, plus)))
        fm = values(complex_of(trees.replace_leaves(real, minus)))
        numeric = np.concatenate([((host(a).astype(np.complex128) - b) / step).reshape(-1)
                                  for a, b in zip(fp, fm)])
        share = np.real(np.conj(c_flat) * (analytic.astype(np.complex128) - numeric))
        j = int(np.argmax(np.abs(share)))
        whole = float(np.sum(share))
        part = f" ({100 * share[j] / whole:.0f}% of the disagreement)" if whole else ""
        sentence = f"output {out_name(j)}{part}"
        t.notes[pos] = f"{t.notes[pos]}; {sentence}" if t.notes[pos] else sentence
        notes.append(f"{t.entry(pos).name}: the tangent of output {out_name(j)} is wrong{part}.")
    return replace(report, notes=notes)
