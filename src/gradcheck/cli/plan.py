"""The plan printed before a long check: entries, evaluations, an estimated time, and — when
the check would take more than about a minute — the faster ways to check.

The time is ``evaluations × t₁`` with ``t₁`` one forward timed just before the check (on a
copy of the params, so the check itself still sees them untouched). It is a floor: the second
look at hard entries adds some evaluations (about 10 % on correct models).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

#: Print the plan when the check is estimated to take longer than this (seconds).
SHOW_ABOVE = 5.0
#: Suggest --mode directional / --sample when the estimate exceeds this (seconds).
SUGGEST_ABOVE = 60.0


def duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min``, ``2.5 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_line(entries: int, evaluations: int, seconds: float) -> str:
    """One line: what the check will do and how long it should take, with the faster ways
    when that is more than :data:`SUGGEST_ABOVE` seconds."""
    line = (f"Plan: {entries:,} entries, {evaluations:,} evaluations, about "
            f"{duration(seconds)}.")
    if seconds > SUGGEST_ABOVE:
        line += (" For a quicker answer use --mode directional (a few evaluations per tensor, "
                 "then the wrong entries located) or --sample 20 (20 entries per tensor).")
    return line


def time_forward(forward: Callable[[Any], Any], params: Any,
                 reset: Callable[[], None] | None = None) -> float:
    """Seconds of one ``forward`` on a deep copy of ``params`` (the user's stay untouched)."""
    work = copy.deepcopy(params)
    if reset is not None:
        reset()
    start = time.perf_counter()
    forward(work)
    return time.perf_counter() - start
