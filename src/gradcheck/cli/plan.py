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
from typing import Any, TextIO

from gradcheck.check import expected_evaluations
from gradcheck.evaluate.randomness import make_reset
from gradcheck.options import make_plan
from gradcheck.params import tree as trees

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


def estimate(forward: Callable[[Any], Any], params: Any, options: dict[str, Any]
             ) -> tuple[int, int, float] | None:
    """``(entries, evaluations, seconds)`` of the check ``options`` describe, or ``None`` when
    it cannot be told (the forward raises: the check itself will say so properly)."""
    try:
        plan = make_plan(options)
        leaves = trees.flatten(params)
        evaluations = expected_evaluations(leaves, plan)
        one = time_forward(forward, params, make_reset(plan.seed, plan.reset))
    except Exception:  # noqa: BLE001 - any failure: no plan; the check reports it
        return None
    entries = sum(leaf.size for leaf in leaves)
    if plan.mode == "elementwise" and plan.scheme.evaluations:
        entries = max(0, evaluations - 2) // plan.scheme.evaluations
    workers = plan.workers or 1
    return entries, evaluations, one * evaluations / workers


def announce(forward: Callable[[Any], Any], params: Any, options: dict[str, Any],
             stream: TextIO) -> None:
    """Print :func:`plan_line` to ``stream`` when the check should take longer than
    :data:`SHOW_ABOVE` seconds."""
    found = estimate(forward, params, options)
    if found is not None and found[2] > SHOW_ABOVE:
        print(plan_line(*found), file=stream, flush=True)
