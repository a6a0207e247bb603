"""Attach a one-sentence diagnosis to each failing tensor of a check."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.diagnose.patterns import CONFIDENT, diagnose
from gradcheck.errors import InputError
from gradcheck.judge.verdict import FAIL, SKIPPED
from gradcheck.report.results import TensorReport


def entry_arrays(t: TensorReport) -> tuple[dict[str, np.ndarray], bool]:
    """A tensor's checked entries as arrays for :mod:`gradcheck.diagnose.patterns`: in the tensor's
    shape when every entry was checked, else flat (shape-based patterns then do not apply)."""
    keep = t.status != SKIPPED
    full = bool(keep.all()) and t.flat_index.size == t.size
    out = {}
    for key, values in (("a", t.analytic), ("n", t.numeric), ("noise", t.error_bar),
                        ("failed", t.status == FAIL)):
        if full:
            grid = np.empty(t.size, dtype=np.asarray(values).dtype)
            grid[t.flat_index] = values
            out[key] = grid.reshape(t.shape)
        else:
            out[key] = np.asarray(values)[keep]
    return out, full


def attach_diagnoses(tensors: list[TensorReport], context: dict[str, Any]) -> None:
    """Set ``diagnosis`` (one sentence) and ``likely_bug`` on each failing tensor whose
    pattern :func:`gradcheck.diagnose.patterns.diagnose` finds with confidence
    ≥ ``CONFIDENT`` (0.7).

    Fully checked tensors get the whole context (time axis, repeated rows) and the swap test
    against every other fully checked tensor; sampled tensors only the scalar patterns.
    """
    arrays = {t.name: entry_arrays(t) for t in tensors}
    pool = {name: (d["a"], d["n"]) for name, (d, full) in arrays.items() if full}
    scalar_context = {k: v for k, v in context.items() if k in ("batch_size", "seq_len")}
    for t in tensors:
        if not t.failed:
            continue
        d, full = arrays[t.name]
        kwargs = dict(context) if full else dict(scalar_context)
        if isinstance(kwargs.get("repeated_rows"), dict):
            kwargs["repeated_rows"] = kwargs["repeated_rows"].get(t.name)
        try:
            found = diagnose({t.name: (d["a"], d["n"])}, all_tensors=pool if full else None,
                             failed={t.name: d["failed"]}, noise={t.name: d["noise"]},
                             **kwargs)[t.name]
        except ValueError as exc:
            raise InputError(f"context does not fit tensor '{t.name}': {exc}; give "
                             "repeated_rows as {tensor name: mask over its first axis}.") from exc
        if found.confidence >= CONFIDENT:
            t.diagnosis = found.sentence
            t.likely_bug = found
