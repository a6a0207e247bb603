"""Plain-text rendering of a :class:`~gradcheck.report.Report` (what ``print(report)`` shows)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.judge.verdict import INCONCLUSIVE, KINK

if TYPE_CHECKING:
    from gradcheck.report.results import Report, TensorReport

HEADLINES = {
    "pass": "PASS — the analytic gradients agree with the numerical ones",
    "fail": "FAIL — some analytic gradients are wrong",
    "inconclusive": "INCONCLUSIVE — the numerics could not decide some entries",
}


def fmt(x: float) -> str:
    """A number in 9 characters: ``1.234e-05``, or ``nan`` / ``inf``."""
    if x is None or not np.isfinite(x):
        return str(x)
    return f"{x:.3e}" if x != 0 else "0"


def table(rows: list[list[str]], right: set[int]) -> list[str]:
    """Align ``rows`` (first row = header) into columns; ``right``-aligned column indices."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(r, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def render_report(report: Report, worst: int = 5) -> str:
    """The report as a table a student reads at a glance."""
    c = report.counts
    out = [f"gradcheck: {HEADLINES[report.status]}"]
    bits = [f"{c['checked']} entries checked", f"{c['failed']} failed"]
    if c["kinks"]:
        bits.append(f"{c['kinks']} at kinks")
    if c["inconclusive"]:
        bits.append(f"{c['inconclusive']} inconclusive")
    if report.options.get("mode") == "directional":
        bits.insert(0, f"{len(report.tensors)} tensors tested along a random direction")
        bits[1] = bits[1].replace("entries checked", "entries then checked elementwise")
    out.append("  " + ", ".join(bits))
    o, d = report.options, report.decisions
    method = o.get("method")
    if d.get("scheme", method) != method:
        method = f"{method} (used {d['scheme']})"
    if d.get("ladder") and d.get("scheme", method) != d["ladder"]:
        method = f"{method}, then the validated {d['ladder']} ladder for what it did not pass"
    out.append(f"  method {method}, h={d.get('h', o.get('h'))}, tol={o.get('tol')}, "
               f"{o.get('measure')} error (Z={o.get('denominator')}, "
               f"floor {o.get('floor') or 'the gradient scale'})")
    out.append("")
    measure = "rel err" if o.get("measure", "relative") == "relative" else "abs err"
    rows = [["tensor", "shape", "checked", "failed", "kinks", "inconcl.", f"max {measure}",
             f"median {measure}", "verdict"]]
    for t in report.tensors:
        rows.append([t.name, "x".join(map(str, t.shape)) or "scalar", _checked(t),
                     str(t.failed), str(t.count(KINK)), str(t.count(INCONCLUSIVE)),
                     _error(t, t.max_error), _error(t, t.median_error), t.verdict])
    out += table(rows, right={2, 3, 4, 5, 6, 7})
    out += _directional_lines(report)
    entries = report.worst(worst)
    if entries:
        out.append("")
        out.append("Worst entries:")
        rows = [["entry", "analytic", "numeric", measure, "error bar", "status", "note"]]
        for e in entries:
            rows.append([e.name, fmt(e.analytic), fmt(e.numeric), fmt(e.error),
                         fmt(e.error_bar), e.status, e.note])
        out += table(rows, right={1, 2, 3, 4})
    groups = [t.group for t in report.tensors if t.group_failed]
    if groups:
        out.append("")
        out.append("Tensors that fail as a group (no single entry could be resolved):"
                   if all(g.kind == "together" for g in groups) else
                   "Tensors that fail as a group:")
        out += [f"  {g.sentence}" for g in groups]
    if report.significant:
        out.append("")
        out.append("Small but significant discrepancies (reported; strict=True fails them):")
        out += [f"  {s.sentence}" for s in report.significant]
    shared: dict[str, list[str]] = {}   # one line per sentence: "U, W, b: ..." when shared
    for t in report.tensors:
        if t.diagnosis:
            shared.setdefault(t.diagnosis, []).append(t.name)
    diagnoses = [(", ".join(names), text) for text, names in shared.items()]
    if diagnoses:
        out.append("")
        out.append("Likely bugs:")
        out += [f"  {name}: {text}" for name, text in diagnoses]
    if report.warnings:
        out.append("")
        out.append("Warnings:")
        out += [f"  - {w}" for w in report.warnings]
    if report.notes:
        out.append("")
        out += [f"Note: {n}" for n in report.notes]
    out.append("")
    out.append(f"{report.evaluations} loss evaluations in {report.wall_time:.2f} s")
    return "\n".join(out)



def _checked(t: TensorReport) -> str:
    """Entries checked elementwise, or that the tensor was tested along a direction only."""
    if t.checked == 0 and t.directional is not None:
        return "direction"
    return f"{t.checked}/{t.size}" if t.checked != t.size else str(t.checked)


def _error(t: TensorReport, value: float) -> str:
    """An error column: ``-`` when no entry of the tensor was checked elementwise (its
    directional test is in the table below), else the number."""
    return "-" if t.checked == 0 else fmt(value)


def _directional_lines(report: Report) -> list[str]:
    """Table of the directional tests (mode="directional"): per tensor ⟨g, d̂⟩ against
    (f(x₊) − f(x₋))/‖d‖, the error bar, the smallest single-element error the test resolves
    and what localisation spent."""
    results = [t.directional for t in report.tensors if t.directional is not None]
    if not results:
        return []
    rows = [["tensor", "analytic", "numeric", "|diff|", "error bar", "resolves", "evals",
             "result"]]
    for r in results:
        result = getattr(r, "result", "pass" if r.passed else "differs")
        if r.note:
            result += f" ({r.note})"
        rows.append([r.tensor, fmt(r.analytic), fmt(r.numeric), fmt(r.abs_error),
                     fmt(r.error_bar), f"{fmt(r.detectable_relative)} x RMS",
                     str(r.evaluations), result])
    seed = results[0].seed
    return ["", f"Directional tests (random direction, sample_seed={seed}; 'resolves' = the "
            "smallest error on one element that the test detects, relative to the tensor's "
            "RMS gradient):"] + table(rows, right={1, 2, 3, 4, 5, 6})
