r"""Vector-valued functions: check a vector-Jacobian product (VJP) and name the wrong output.

For :math:`F:\mathbb R^n \to \mathbb R^m` (any tree of outputs) and a random cotangent
:math:`c` over every output element, :math:`L_c(x) = \langle c, F(x)\rangle` has gradient
:math:`J^\top c`, which is ``vjp(x, c)``; :func:`gradcheck.check` compares it with finite
differences of :math:`L_c` — every input entry or a sample, or directionally with
localisation — with error bars and verdicts. A wrong Jacobian entry :math:`J_{ki}` changes
:math:`(J^\top c)_i` for almost every :math:`c`, so one VJP call replaces the :math:`m`
backward calls of a full Jacobian (``torch.autograd.gradcheck``'s slow mode).

A failing input entry :math:`i` is then attributed to an output: the Jacobian column
:math:`J_{:,i}` is estimated once by central differences (two evaluations of :math:`F`, every
output at once), and the residual :math:`\rho = (J^\top c)_i - \langle c, J_{:,i}\rangle` is
split over the outputs and bisected within the worst one
(:func:`gradcheck.derivatives.projection.attribute`, one VJP per level): the report names the output
tensor and element, e.g. ``x[4]`` ← ``out1[4]``.

Complex outputs use :math:`L_c = \operatorname{Re}\sum \bar c\, F` (what ``backward(c)``
differentiates in PyTorch); complex inputs are (real, imaginary) pairs
(:mod:`gradcheck.params.complexview`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck.check import check
from gradcheck.derivatives.projection import (
    attribute,
    flat_names,
    host,
    projection,
    restricted,
    worst_failing,
)
from gradcheck.errors import ForwardError, InputError
from gradcheck.params import complexview
from gradcheck.params import tree as trees
from gradcheck.report.results import Report

#: Failing input entries attributed to an output (worst first).
ATTRIBUTE = 5


def output_leaves(outputs: Any, names: Sequence[str] | None = None) -> list[trees.Leaf]:
    """The output arrays with names: ``output`` for one array, ``output0``, ``output1``, ...
    (or ``names``) for a tuple / list, the keys for a dict."""
    if isinstance(outputs, (tuple, list)) and not hasattr(outputs, "_fields"):
        labels = list(names) if names is not None else [f"output{i}" for i in
                                                        range(len(outputs))]
        if len(labels) != len(outputs):
            raise InputError(f"output_names has {len(labels)} names but the function returns "
                             f"{len(outputs)} outputs; give one name per output.")
        outputs = dict(zip(labels, outputs))
    elif not isinstance(outputs, dict):
        outputs = {(names[0] if names else "output"): outputs}
    leaves = trees.flatten(trees.map_leaves(outputs, host))
    for leaf in leaves:
        if not np.issubdtype(leaf.array.dtype, np.inexact):
            raise InputError(f"Output '{leaf.name}' has dtype {leaf.array.dtype}; only "
                             "floating or complex outputs have a Jacobian — leave it out of "
                             "the outputs.")
    return leaves


def random_cotangent(leaves: Sequence[trees.Leaf], seed: int) -> list[np.ndarray]:
    """Standard normal cotangents (complex normal for complex outputs) in each output's dtype."""
    rng = np.random.default_rng(seed)
    out = []
    for leaf in leaves:
        c = rng.standard_normal(leaf.shape)
        if np.iscomplexobj(leaf.array):
            c = c + 1j * rng.standard_normal(leaf.shape)
        out.append(np.asarray(c).astype(leaf.array.dtype))
    return out


def check_vjp(function: Callable[[Any], Any], vjp: Callable[[Any, Any], Any], inputs: Any, *,
              output_names: Sequence[str] | None = None, cotangent_seed: int = 0,
              attribute_worst: int = ATTRIBUTE, **options: Any) -> Report:
    """Check ``vjp(inputs, cotangents)`` of a vector-valued ``function`` numerically.

    Parameters
    ----------
    function : ``function(inputs) -> outputs``, an array or a tuple / list / dict of arrays.
    vjp : ``vjp(inputs, cotangents) -> gradients`` shaped like ``inputs``; ``cotangents`` is
        shaped like the outputs (a tuple for a tuple, ...). In PyTorch:
        ``torch.autograd.grad(outputs, inputs, cotangents)``.
    inputs : a numpy array or a dict / list / tuple of them (complex allowed).
    output_names : names of the outputs of a tuple / list (default ``output0``, ...).
    cotangent_seed : seed of the random cotangent.
    attribute_worst : failing entries attributed to an output element (0: none).
    **options : options of :func:`gradcheck.check`.

    Returns
    -------
    Report
        Failing entries name the output element carrying the disagreement in their note.
    """
    view = complexview.inspect(inputs)
    options, auto_note = complexview.real_options(view, options)
    if options.get("batched_forward") is not None:
        raise InputError("batched_forward= evaluates the loss, but check_vjp checks another "
                         "scalar, ⟨c, F(x)⟩ through function; leave batched_forward out.")
    real = complexview.real_tree(inputs, view) if view.any else inputs
    leaves = trees.flatten(real)
    trees.validate_leaves(leaves)
    calls = {"f": 0, "vjp": 0}

    def outputs(p: Any) -> Any:
        calls["f"] += 1
        return function(complexview.complex_tree(p, view) if view.any else p)

    try:
        out0 = outputs(real)
    except Exception as exc:
        raise ForwardError(f"function raised {type(exc).__name__}: {exc}; fix it and check "
                           "again.") from exc
    shape = out0
    outs = output_leaves(out0, output_names)
    c = random_cotangent(outs, cotangent_seed)

    def values(p: Any) -> list[np.ndarray]:
        return [host(leaf.array) for leaf in output_leaves(outputs(p), output_names)]

    def cotangent_tree(arrays: list[np.ndarray]) -> Any:
        flat = iter(arrays)
        return trees.map_leaves(shape, lambda _: next(flat))

    def gradient_of(p: Any, cot: list[np.ndarray]) -> list[np.ndarray]:
        calls["vjp"] += 1
        cp = complexview.complex_tree(p, view) if view.any else p
        out = vjp(cp, cotangent_tree(cot))
        if view.any:
            out = complexview.real_gradients(out, cp, view)
        return [host(g) for g in trees.align(p, out, "the gradients returned by vjp")]

    loss = projection(values, c, [leaf.array for leaf in outs])
    report = check(loss, lambda p: trees.replace_leaves(p, gradient_of(p, c)), real,
                   **{"repeat_backward": False, **options})
    notes, warnings = list(report.notes), list(report.warnings)
    if view.any:
        notes += [n for n in (auto_note, view.note()) if n]
    if report.status == "fail" and attribute_worst:
        h = float(options["h"]) if isinstance(options.get("h"), (int, float)) else 1e-5
        notes.extend(_attribute_outputs(report, leaves, outs, c, outputs, values, gradient_of,
                                        real, h, attribute_worst, output_names))
    names = ", ".join(leaf.name for leaf in outs)
    notes.insert(0, f"Vector-valued: checked vjp(x, c) = Jᵀc for a random cotangent c over "
                 f"the outputs {names} (cotangent_seed={cotangent_seed}) against finite "
                 f"differences of ⟨c, F(x)⟩; {calls['vjp']} VJP calls.")
    return replace(report, notes=notes, warnings=warnings,
                   options={**report.options, "check": "vjp",
                            "cotangent_seed": cotangent_seed},
                   evaluations=report.evaluations + calls["vjp"]
                   + max(0, calls["f"] - report.evaluations))


def _attribute_outputs(report: Report, leaves: list[trees.Leaf], outs: list[trees.Leaf],
                       c: list[np.ndarray], outputs: Callable[[Any], Any],
                       values: Callable[[Any], list[np.ndarray]],
                       gradient_of: Callable[[Any, list[np.ndarray]], list[np.ndarray]],
                       real: Any, h: float, worst: int,
                       output_names: Sequence[str] | None) -> list[str]:
    """Name the output element behind each of the ``worst`` failing input entries."""
    in_offsets, in_name = flat_names(leaves)
    out_offsets, out_name = flat_names(outs)
    failing = worst_failing(report, worst)
    if not failing:
        return []
    base = [np.asarray(leaf.array) for leaf in leaves]
    wide = [b.astype(np.result_type(b.dtype, np.float64)) for b in base]
    rows = []
    columns: dict[int, np.ndarray] = {}
    for _, ti, pos in failing:
        row = int(in_offsets[ti] + report.tensors[ti].flat_index[pos])
        rows.append(row)
        plus = [w.copy() for w in wide]
        minus = [w.copy() for w in wide]
        k = row - int(in_offsets[ti])
        plus[ti].reshape(-1)[k] += h
        minus[ti].reshape(-1)[k] -= h
        step = float(plus[ti].reshape(-1)[k] - minus[ti].reshape(-1)[k])
        fp = values(trees.replace_leaves(real, plus))
        fm = values(trees.replace_leaves(real, minus))
        columns[row] = np.concatenate([((a.astype(np.complex128) - b) / step).reshape(-1)
                                       for a, b in zip(fp, fm)])
    c_flat = np.concatenate([x.reshape(-1) for x in c]).astype(np.complex128)
    total = np.zeros(int(in_offsets[-1]))
    for row, (_, ti, pos) in zip(rows, failing):
        t = report.tensors[ti]
        total[row] = t.analytic[pos] - t.numeric[pos]

    def residuals(idx: np.ndarray) -> np.ndarray:
        cs = restricted(c, out_offsets, idx)
        a = np.concatenate([g.reshape(-1) for g in gradient_of(real, cs)]).astype(np.float64)
        r = np.zeros_like(total)
        mask = np.zeros(c_flat.size, dtype=bool)
        mask[idx] = True
        for row in rows:
            r[row] = a[row] - float(np.real(np.vdot(c_flat[mask], columns[row][mask])))
        return r

    parts = [np.arange(out_offsets[j], out_offsets[j + 1]) for j in range(len(outs))]
    found = attribute(rows, parts, out_name, residuals, total, [in_name(r) for r in rows])
    out = []
    for (_, ti, pos), at in zip(failing, found):
        t = report.tensors[ti]
        share = f" ({100 * at.share:.0f}% of the disagreement)" if np.isfinite(at.share) else ""
        sentence = f"output {at.component}{share}"
        t.notes[pos] = f"{t.notes[pos]}; {sentence}" if t.notes[pos] else sentence
        out.append(f"{at.entry}: the disagreement comes from output {at.component}{share} — "
                   f"∂{at.component}/∂{at.entry} is wrong in the backward.")
    return out
