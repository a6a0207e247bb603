"""One report from several checks of the same code (``modes=("fwd", "rev")``, ``order=2``).

Tensors are prefixed with the check that produced them (``jvp/x``, ``vjp/x``, ``hvp/x``), so
every entry keeps a unique name (``hvp/x[3]``); the status is the worst of the parts (fail,
then inconclusive, then pass); evaluations and wall time add up; warnings and notes are kept,
each prefixed with its check.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gradcheck.errors import InputError
from gradcheck.report.results import Report

#: Worst first.
_ORDER = ("fail", "inconclusive", "pass")


def combine(reports: dict[str, Report]) -> Report:
    """Merge ``{label: report}`` into one report (a single report is returned unchanged)."""
    if len(reports) == 1:
        return next(iter(reports.values()))
    items = list(reports.items())
    status = min((r.status for _, r in items), key=_ORDER.index)
    tensors = [replace(t, name=f"{label}/{t.name}") for label, r in items for t in r.tensors]
    first = items[0][1]
    return replace(
        first, status=status, tensors=tensors,
        options={**first.options, "check": "+".join(label for label, _ in items)},
        evaluations=sum(r.evaluations for _, r in items),
        wall_time=sum(r.wall_time for _, r in items),
        warnings=[f"{label}: {w}" for label, r in items for w in r.warnings],
        notes=[f"{label}: {n}" for label, r in items for n in r.notes])


#: Modes of the adapters' ``modes=``: reverse (backward / VJP) and forward (JVP).
MODES = ("rev", "fwd")


def validate_modes(order: int, modes: Any) -> tuple[str, ...]:
    """``modes`` as a tuple of known names, ``order`` 1 or 2 — else one plain sentence."""
    if isinstance(modes, str):
        modes = (modes,)
    modes = tuple(modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise InputError(f"modes={modes!r}: give 'rev' (backward), 'fwd' (forward-mode AD) or "
                         "both, e.g. modes=('fwd', 'rev').")
    if order not in (1, 2):
        raise InputError(f"order={order!r}: 1 checks first derivatives, 2 also second "
                         "derivatives (double backward); higher orders are not supported.")
    return modes
