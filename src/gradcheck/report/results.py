"""The result of a check: per-tensor summaries, worst entries, rendering and JSON.

``Report.to_dict()`` is the stable machine-readable form (schema version
:data:`SCHEMA_VERSION`); its keys are documented in :meth:`Report.to_dict`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, KINK, PASS, SKIPPED, STATUS_NAMES
from gradcheck.params.tree import element_name
from gradcheck.report.plot import plot_report
from gradcheck.report.render import render_report

SCHEMA_VERSION = 1


@dataclass
class EntryResult:
    """One checked element."""

    tensor: str
    index: tuple[int, ...]
    name: str
    analytic: float
    numeric: float
    abs_error: float
    error: float
    error_bar: float
    status: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "index": list(self.index), "name": self.name,
                "analytic": _num(self.analytic), "numeric": _num(self.numeric),
                "abs_error": _num(self.abs_error), "error": _num(self.error),
                "error_bar": _num(self.error_bar), "status": self.status, "note": self.note}


@dataclass
class TensorReport:
    """Summary of one parameter tensor, plus the raw per-entry arrays for plots/diagnosis.

    ``flat_index`` lists the checked entries (C order); ``analytic``, ``numeric``, ``error``,
    ``error_bar`` and ``status`` are aligned with it.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    flat_index: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    error: np.ndarray
    abs_error: np.ndarray
    error_bar: np.ndarray
    status: np.ndarray
    notes: np.ndarray
    diagnosis: str | None = None
    #: the gradcheck.diagnose.patterns.Diagnosis behind ``diagnosis`` (kind, confidence, factor).
    likely_bug: Any = None
    #: gradcheck.modes.directional.DirectionalResult in mode="directional", else None.
    directional: Any = None
    #: gradcheck.judge.significance.Significant when the tensor passed with a small but
    #: significant discrepancy (below the tolerance, many error bars above the numerics).
    significant: Any = None
    #: gradcheck.judge.group.Group when the tensor fails as a group (its entries judged
    #: together along one direction), else None.
    group: Any = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def checked(self) -> int:
        return int(np.count_nonzero(self.status != SKIPPED))

    def count(self, status: int) -> int:
        return int(np.count_nonzero(self.status == status))

    @property
    def failed(self) -> int:
        return self.count(FAIL)

    @property
    def group_failed(self) -> bool:
        """Whether the tensor fails as a group although no entry fails on its own."""
        return self.group is not None and bool(self.group.failed)

    @property
    def verdict(self) -> str:
        if self.failed or self.group_failed:
            return "FAIL"
        if self.count(INCONCLUSIVE) or getattr(self.directional, "inconclusive", False):
            return "inconclusive"
        return "pass"

    @property
    def max_error(self) -> float:
        e = self.error[self.status != SKIPPED]
        return float(np.nanmax(e)) if e.size and not np.all(np.isnan(e)) else float("nan")

    @property
    def median_error(self) -> float:
        e = self.error[self.status != SKIPPED]
        return float(np.nanmedian(e)) if e.size and not np.all(np.isnan(e)) else float("nan")

    def entry(self, i: int) -> EntryResult:
        """The i-th checked entry as an :class:`EntryResult`."""
        index = tuple(int(j) for j in np.unravel_index(int(self.flat_index[i]), self.shape))
        return EntryResult(self.name, index, element_name(self.name, index),
                           float(self.analytic[i]), float(self.numeric[i]),
                           float(self.abs_error[i]), float(self.error[i]),
                           float(self.error_bar[i]), STATUS_NAMES[int(self.status[i])],
                           str(self.notes[i]))

    def ranked(self) -> np.ndarray:
        """Positions of checked entries, failures first, then by decreasing error."""
        severity = np.select([self.status == FAIL, self.status == INCONCLUSIVE,
                              self.status == KINK], [3, 2, 1], 0)
        err = np.nan_to_num(self.error, nan=np.inf)
        return np.lexsort((-err, -severity))

    @property
    def worst(self) -> EntryResult | None:
        order = self.ranked()
        return self.entry(int(order[0])) if order.size else None

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst
        return {
            "name": self.name, "shape": list(self.shape), "dtype": self.dtype, "size": self.size,
            "checked": self.checked, "passed": self.count(PASS), "failed": self.failed,
            "kinks": self.count(KINK), "inconclusive": self.count(INCONCLUSIVE),
            "skipped": self.size - self.checked, "verdict": self.verdict,
            "max_error": _num(self.max_error) if self.checked else None,
            "median_error": _num(self.median_error) if self.checked else None,
            "worst": worst.to_dict() if worst else None, "diagnosis": self.diagnosis,
            "likely_bug": None if self.likely_bug is None else {
                "kind": self.likely_bug.kind, "confidence": self.likely_bug.confidence,
                "factor": _num(self.likely_bug.factor) if self.likely_bug.factor is not None
                else None},
            "directional": self.directional.to_dict() if self.directional else None,
            "group": self.group.to_dict() if self.group is not None else None,
        }


@dataclass
class Report:
    """Everything a check found. ``print(report)`` shows a table; ``to_json()`` a record."""

    status: str
    tensors: list[TensorReport]
    options: dict[str, Any]
    evaluations: int
    wall_time: float
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loss: float = float("nan")
    #: What the run decided (scheme and step actually used, gradient scale, complex-step
    #: rescue, workspace), beside ``options``, the options as asked for.
    decisions: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def significant(self) -> list[Any]:
        """Tensors reported for a small but significant discrepancy (each a
        :class:`gradcheck.judge.significance.Significant`; ``strict=True`` fails them)."""
        return [t.significant for t in self.tensors if t.significant is not None]

    def __bool__(self) -> bool:
        return self.passed

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 2 inconclusive (the CLI's exit codes)."""
        return {"pass": 0, "fail": 1, "inconclusive": 2}[self.status]

    def tensor(self, name: str) -> TensorReport:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r}; tensors are {[t.name for t in self.tensors]}")

    @property
    def failing_tensors(self) -> list[str]:
        return [t.name for t in self.tensors if t.verdict == "FAIL"]

    def entries(self, status: str | None = None) -> list[EntryResult]:
        """All checked entries (optionally only those with ``status``), worst first."""
        out = []
        for t in self.tensors:
            for i in t.ranked():
                e = t.entry(int(i))
                if e.status != "skipped" and (status is None or e.status == status):
                    out.append(e)
        return sorted(out, key=_severity_key)

    def worst(self, k: int = 5) -> list[EntryResult]:
        """The ``k`` worst entries over all tensors (failures first)."""
        best: list[EntryResult] = []
        for t in self.tensors:
            best.extend(t.entry(int(i)) for i in t.ranked()[:k])
        return sorted(best, key=_severity_key)[:k]

    @property
    def counts(self) -> dict[str, int]:
        total = {name: 0 for name in ("checked", "passed", "failed", "kinks", "inconclusive")}
        for t in self.tensors:
            total["checked"] += t.checked
            total["passed"] += t.count(PASS)
            total["failed"] += t.failed
            total["kinks"] += t.count(KINK)
            total["inconclusive"] += t.count(INCONCLUSIVE)
        return total

    def to_dict(self, entries: str = "problems") -> dict[str, Any]:
        """Stable record of the check.

        Keys: ``schema`` (int), ``status`` ("pass" | "fail" | "inconclusive"), ``loss``,
        ``counts`` (checked, passed, failed, kinks, inconclusive), ``tensors`` (one dict each:
        name, shape, dtype, size, checked, passed, failed, kinks, inconclusive, skipped,
        verdict, max_error, median_error — null when no entry was checked elementwise, as for
        a tensor only tested along a direction —, worst, diagnosis, likely_bug: kind,
        confidence, factor, with kind "unknown" when no known pattern fits), ``worst`` (up to
        10 entries: tensor, index, name, analytic, numeric, abs_error, error, error_bar,
        status, note),
        ``entries`` (the same fields for every FAIL and inconclusive entry, worst first; with
        ``entries="all"`` for every checked entry), ``options`` (as asked for), ``decisions``
        (what the run decided), ``evaluations``, ``wall_time`` (seconds), ``warnings``,
        ``notes``, ``significant`` (tensors with a small but significant discrepancy: tensor,
        relative, sigmas, confirmed, scale, cause).
        Non-finite numbers are written as the strings "nan", "inf", "-inf".
        """
        return {
            "schema": SCHEMA_VERSION, "status": self.status, "loss": _num(self.loss),
            "counts": self.counts, "tensors": [t.to_dict() for t in self.tensors],
            "worst": [e.to_dict() for e in self.worst(10)],
            "entries": [e.to_dict() for e in self._listed(entries)],
            "options": {k: _jsonable(v) for k, v in self.options.items()},
            "decisions": {k: _jsonable(v) for k, v in self.decisions.items()},
            "evaluations": self.evaluations, "wall_time": self.wall_time,
            "warnings": list(self.warnings), "notes": list(self.notes),
            "significant": [s.to_dict() for s in self.significant],
        }

    def _listed(self, entries: str) -> list[EntryResult]:
        if entries == "all":
            return self.entries()
        if entries == "problems":
            return [e for e in self.entries() if e.status in ("FAIL", "inconclusive")]
        raise ValueError(f"entries={entries!r}: choose 'problems' or 'all'.")

    def to_json(self, entries: str = "problems", **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON (``kwargs`` go to ``json.dumps``; indent 2 by default)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(entries), **kwargs)

    def __str__(self) -> str:
        return render_report(self)

    def __repr__(self) -> str:
        counts = self.counts
        return (f"<Report {self.status}: {counts['checked']} entries checked, "
                f"{counts['failed']} failed, {counts['inconclusive']} inconclusive in "
                f"{len(self.tensors)} tensor(s); print() it for the table>")

    def plot(self, path: str | None = None, **kwargs: Any) -> Any:
        """Heatmaps of relative error per tensor and a histogram (needs matplotlib)."""
        return plot_report(self, path, **kwargs)


def _severity_key(e: EntryResult) -> tuple[int, float]:
    rank = {"FAIL": 0, "inconclusive": 1, "kink": 2, "pass": 3, "skipped": 4}[e.status]
    err = e.error if np.isfinite(e.error) else np.inf
    return rank, -err


def _num(x: float) -> float | str:
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return repr(v)
