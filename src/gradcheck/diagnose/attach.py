"""Attach a one-sentence diagnosis to each failing tensor of a check.

Three sources, tried in turn for each failing tensor:

1. the tensor's own pattern (:func:`gradcheck.diagnose.patterns.diagnose`), with the whole
   context when every entry was checked — the tensor's value, the terms its gradient must
   add up, the time axis, the repeated rows — or only the scalar context for a sample;
2. the groups of tensors that share an upstream gradient (``context["groups"]``): which of
   them fail locates the bug (:func:`gradcheck.diagnose.groups.diagnose_groups`);
3. otherwise a sentence saying that no known pattern fits, with the shape of the error
   (:func:`gradcheck.diagnose.groups.describe_error`, ``kind="unknown"``).

A tensor localised by the directional mode counts as fully checked: its entries outside the
located ones were cleared by passing directional tests, so ``N = A`` is taken there and the
positional patterns (rows, edges, steps, masks) apply to what localisation found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck.diagnose.evidence import Diagnosis
from gradcheck.diagnose.groups import describe_error, diagnose_groups
from gradcheck.diagnose.patterns import CONFIDENT, diagnose
from gradcheck.errors import InputError
from gradcheck.judge.verdict import FAIL, SKIPPED
from gradcheck.report.results import TensorReport

#: Context keys that hold one value per tensor, as ``{tensor name: value}``.
PER_TENSOR_CONTEXT = ("repeated_rows", "terms")
#: Context keys that apply to every tensor, sampled ones included.
SCALAR_CONTEXT = ("batch_size", "seq_len")
#: Largest tensor (entries) whose directional localisation is diagnosed on full grids (four
#: float64 copies and the patterns' temporaries, ~15× the tensor); larger ones are diagnosed
#: on their located entries, so a failing check of a big model stays within its memory.
GRID_LIMIT = 2**20


def entry_arrays(t: TensorReport, grad: np.ndarray | None = None
                 ) -> tuple[dict[str, np.ndarray], bool]:
    """A tensor's checked entries as arrays for :mod:`gradcheck.diagnose.patterns`: in the
    tensor's shape when every entry was checked (or, with ``grad``, when directional
    localisation found the bad entries), else flat (shape-based patterns then do not apply)."""
    keep = t.status != SKIPPED
    full = bool(keep.all()) and t.flat_index.size == t.size
    localised = (not full and grad is not None and t.directional is not None
                 and not t.directional.sampled and np.size(grad) == t.size
                 and t.size <= GRID_LIMIT)
    out = {}
    for key, values in (("a", t.analytic), ("n", t.numeric), ("noise", t.error_bar),
                        ("failed", t.status == FAIL)):
        values = np.asarray(values)
        if full:
            grid = np.empty(t.size, dtype=values.dtype)
            grid[t.flat_index] = values
            out[key] = grid.reshape(t.shape)
        elif localised:
            # outside the located entries the directional tests passed: there N = A
            if key in ("a", "n"):
                grid = np.asarray(grad, dtype=np.float64).reshape(-1).copy()
            else:
                grid = np.zeros(t.size, dtype=values.dtype)
            grid[t.flat_index[keep]] = values[keep]
            out[key] = grid.reshape(t.shape)
        else:
            out[key] = values[keep]
    return out, full or localised


def _tensor_context(context: Mapping[str, Any], name: str, full: bool,
                    value: np.ndarray | None) -> dict[str, Any]:
    """The keyword arguments of :func:`diagnose` for one tensor."""
    if not full:
        kwargs = {k: v for k, v in context.items() if k in SCALAR_CONTEXT}
        kwargs["layout"] = False         # a flat sample: nothing positional applies
        return kwargs
    kwargs = {k: v for k, v in context.items() if k != "groups"}
    for key in PER_TENSOR_CONTEXT:
        if isinstance(kwargs.get(key), Mapping):
            kwargs[key] = kwargs[key].get(name)
    if value is not None:
        kwargs["value"] = value
    return kwargs


def attach_diagnoses(tensors: list[TensorReport], context: Mapping[str, Any],
                     grads: Sequence[np.ndarray] | None = None,
                     values: Sequence[np.ndarray] | None = None) -> None:
    """Set ``diagnosis`` (one sentence) and ``likely_bug`` on each failing tensor.

    Parameters
    ----------
    tensors : the check's tensor reports, in leaf order.
    context : the check's ``context=`` (batch size, sequence length, time axis, repeated
        rows, terms, groups).
    grads, values : per tensor, the full analytic gradient (for tensors the directional mode
        localised) and the tensor's value (for the patterns that need it), or None.

    A likely bug is a pattern found with confidence ≥ ``CONFIDENT`` (0.7), for the tensor
    alone or from the failing group it belongs to; otherwise the sentence says that no known
    pattern fits and shows the error's shape, with ``likely_bug.kind == "unknown"``.
    """
    grads = list(grads) if grads is not None else [None] * len(tensors)
    values = list(values) if values is not None else [None] * len(tensors)
    arrays = {t.name: entry_arrays(t, g) for t, g in zip(tensors, grads)}
    pool = {name: (d["a"], d["n"]) for name, (d, full) in arrays.items() if full}
    found: dict[str, Diagnosis] = {}
    for t, value in zip(tensors, values):
        if not t.failed:
            continue
        d, full = arrays[t.name]
        v = np.asarray(value) if value is not None and np.size(value) == t.size else None
        kwargs = _tensor_context(context, t.name, full,
                                 None if v is None else v.reshape(t.shape))
        try:
            got = diagnose({t.name: (d["a"], d["n"])}, all_tensors=pool if full else None,
                           failed={t.name: d["failed"]}, noise={t.name: d["noise"]},
                           **kwargs)[t.name]
        except ValueError as exc:
            raise InputError(f"context does not fit tensor '{t.name}': {exc}; give "
                             "repeated_rows as {tensor name: mask over its first axis} and "
                             "terms as {tensor name: array of shape (K, *tensor shape)}."
                             ) from exc
        if got.confidence >= CONFIDENT:
            found[t.name] = got
    groups = context.get("groups") or []
    by_group = diagnose_groups(groups, {t.name: bool(t.failed) for t in tensors},
                               {t.name: t.verdict == "pass" for t in tensors})
    for t in tensors:
        if not t.failed:
            continue
        got = found.get(t.name) or by_group.get(t.name)
        if got is None:
            d, full = arrays[t.name]
            got = describe_error(t.name, d["a"], d["n"], d["failed"], layout=full)
        t.diagnosis = got.sentence
        t.likely_bug = got
