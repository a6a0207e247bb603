"""Entry verdicts: pass, FAIL, kink, inconclusive or skipped, from an estimate and its error bar.

The lecture's test is ``error(a, n) > tol``. Used alone it lies in both directions: it passes NaN
(``nan > tol`` is False), fails entries whose true gradient is zero (analytic 1e-17, numeric
1e-10) and fails correct float32 models. Here an entry FAILs only when the disagreement
exceeds the tolerance, is not negligible at its tensor's gradient scale, and exceeds what the
numerics could explain (the error bar). When the numerics cannot decide, the entry is
*inconclusive* and the report says what would decide it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.judge import metrics

PASS, FAIL, KINK, INCONCLUSIVE, SKIPPED = 0, 1, 2, 3, 4
STATUS_NAMES = {PASS: "pass", FAIL: "FAIL", KINK: "kink", INCONCLUSIVE: "inconclusive",
                SKIPPED: "skipped"}

#: An entry is negligible when its error is below ``tol`` times its tensor's gradient scale.
#: The scale is the RMS of the numeric gradient over the tensor's checked entries.

#: Two evaluations of the forward at the same params that differ by at most this many
#: rounding units of the loss are "jitter" (threaded or unordered sums), not randomness.
JITTER_ULPS = 64.0
#: How many entries a warning names before it says "and N more".
NAMED = 5


@dataclass
class Criteria:
    """How entries are judged (the options of :func:`gradcheck.check` that matter here)."""

    tol: float = 1e-5
    measure: str = "relative"
    denominator: str = "max"
    floor: float = 1e-8
    error_bar_factor: float = 1.0
    #: Gradient scale of the whole model (RMS of every analytic entry). "Zero within
    #: resolution" is only accepted when the error bar is below ``tol`` times this scale:
    #: a bar as large as the gradients themselves (a float32 loss at a tiny step) decides
    #: nothing. ``None``: no such guard.
    zero_scale: float | None = None


@dataclass
class Judgement:
    """Per-entry results of :func:`judge` (arrays of one tensor's checked entries)."""

    status: np.ndarray      # int codes, see STATUS_NAMES
    error: np.ndarray       # the chosen error measure
    abs_error: np.ndarray
    reason: np.ndarray      # object array of short notes ("" when none)


def model_scale(grads: list[np.ndarray]) -> float:
    """Gradient scale of a whole model: RMS of every finite analytic entry of every tensor."""
    # chunked (no gradient-sized temporaries) and in units of the largest entry (gradients
    # of 1e200 do not overflow)
    return metrics.chunked_rms(list(grads))


def tensor_scale(numeric: np.ndarray) -> float:
    """Gradient scale of a tensor: RMS of its finite numeric entries (0 if none)."""
    return metrics.rms(numeric)


def judge(analytic: np.ndarray, numeric: np.ndarray, error_bar: np.ndarray,
          criteria: Criteria, scale: float | None = None) -> Judgement:
    """Judge each entry.

    Rules, in order:

    1. analytic NaN/Inf → FAIL (the textbook ``err > tol`` test silently passes NaN);
    2. numeric NaN/Inf → inconclusive (the loss is not finite next to this entry);
    3. ``error ≤ tol`` → pass;
    4. ``|a - n| ≤ tol · scale`` (negligible against the tensor's gradient scale) → pass;
    5. ``|a - n| ≤ k · error_bar``: if both ``|a|`` and ``|n|`` are within the error bar and
       that bar is negligible at the model's gradient scale (``≤ tol · zero_scale``), both say
       "zero" → pass (a bias feeding batch norm: analytic 1e-17, numeric 1e-10); otherwise the
       numerics cannot decide → inconclusive;
    6. otherwise → FAIL.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    bar = criteria.error_bar_factor * np.asarray(error_bar, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf entries are judged below
        abs_err = metrics.absolute_error(a, n)
        err = metrics.error(a, n, criteria.measure, criteria.denominator, criteria.floor)
    if scale is None:
        scale = tensor_scale(n)
    status = np.full(a.shape, FAIL, dtype=np.int8)
    reason = np.full(a.shape, "", dtype=object)

    bad_a = ~np.isfinite(a)
    bad_n = ~np.isfinite(n) & ~bad_a
    ok = np.isfinite(a) & np.isfinite(n)
    within_tol = ok & (err <= criteria.tol)
    negligible = ok & ~within_tol & (abs_err <= criteria.tol * scale)
    explained = ok & ~within_tol & ~negligible & (abs_err <= bar)
    both_zero = explained & (np.abs(a) <= bar) & (np.abs(n) <= bar)
    if criteria.zero_scale is not None:
        both_zero &= bar <= criteria.tol * criteria.zero_scale

    status[within_tol | negligible | both_zero] = PASS
    status[explained & ~both_zero] = INCONCLUSIVE
    status[bad_n] = INCONCLUSIVE
    reason[bad_a] = "the analytic gradient is not finite"
    reason[bad_n] = "the loss is not finite at θ ± h for this entry"
    reason[negligible] = "negligible at this tensor's gradient scale"
    reason[both_zero] = "zero within numerical resolution"
    reason[explained & ~both_zero] = "difference within the numerical error bar"
    return Judgement(status, err, abs_err, reason)


def nondeterminism_is_rounding(f0: float, f1: float, dtype: np.dtype | None) -> bool:
    """True when two evaluations at the same point differ, but only by rounding jitter.

    ``0 < |f0 - f1| ≤ JITTER_ULPS · ε(dtype) · |f0|``: a parallel or unordered reduction
    (BLAS threads, atomics) changes the last bits of the loss between calls. That is noise the
    error bars can absorb; a new batch or a new dropout mask changes far more.
    """
    if f0 == f1 or not (np.isfinite(f0) and np.isfinite(f1)):
        return False
    eps = float(np.finfo(dtype if dtype is not None else np.float64).eps)
    return abs(f0 - f1) <= JITTER_ULPS * eps * max(abs(f0), abs(f1))


def _names(tensor, positions: np.ndarray) -> str:
    shown = [tensor.entry(int(i)).name for i in positions[:NAMED]]
    more = positions.size - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def entry_warnings(tensors: list) -> list[str]:
    """One sentence per tensor with non-finite analytic values or non-finite losses nearby.

    ``nan > tol`` is False, so the textbook test passes NaN silently; here such entries FAIL
    and are named. Entries whose perturbed loss is not finite are inconclusive and named.
    """
    out = []
    for t in tensors:
        if t.analytic.size == 0:
            continue
        bad_a = np.flatnonzero(~np.isfinite(t.analytic))
        if bad_a.size:
            kinds = sorted({str(v) for v in t.analytic[bad_a]})
            out.append(f"The analytic gradient of '{t.name}' is {'/'.join(kinds)} at "
                       f"{_names(t, bad_a)}; those entries FAIL — look for a division by zero, "
                       "log(0), an overflow or an uninitialised array in the backward pass.")
        bad_n = np.flatnonzero(np.isfinite(t.analytic) & ~np.isfinite(t.numeric))
        if bad_n.size:
            out.append(f"The loss is not finite when {_names(t, bad_n)} is moved by ±h; those "
                       "entries are inconclusive — the forward leaves its domain (log or sqrt "
                       "of a non-positive number, overflow) that close to the params; a smaller "
                       "h or method='complex' may decide them.")
        undecided = np.flatnonzero((t.status == INCONCLUSIVE) & np.isfinite(t.numeric))
        if undecided.size:
            why = str(t.notes[undecided[0]])
            out.append(f"'{t.name}': {undecided.size} entr{'y' if undecided.size == 1 else 'ies'} "
                       f"inconclusive ({_names(t, undecided)}): {why}.")
    return out


def kink_notes(tensors: list) -> list[str]:
    """One note naming the entries accepted as valid subgradients at kinks, if any."""
    parts = []
    total = 0
    for t in tensors:
        at = np.flatnonzero(t.status == KINK)
        if at.size:
            total += at.size
            parts.append(_names(t, at))
    if not total:
        return []
    return [f"{total} entr{'y sits' if total == 1 else 'ies sit'} on a kink (a point where the "
            f"loss is not differentiable) with a valid subgradient: {'; '.join(parts)}. The "
            "one-sided slopes are in each entry's note."]


def mark_unstable(tensors: list, unstable: list[np.ndarray]) -> None:
    """Entries whose analytic gradient changed between two calls of ``forward_backward`` at
    the same params FAIL: no estimate can vouch for a value that is not fixed."""
    for t, mask in zip(tensors, unstable):
        if mask is None or not mask.any() or t.flat_index.size == 0:
            continue
        hit = mask.reshape(-1)[t.flat_index] & (t.status != SKIPPED)
        t.status[hit] = FAIL
        t.notes[hit] = "the analytic gradient changed between two calls at the same params"
