"""A second look at the entries the first estimate could not settle.

After :func:`gradcheck.judge.verdict.judge`, two kinds of entries are looked at again, each with a
few more loss evaluations (only for those entries, so a correct smooth model pays nothing):

* **would-be failures** go to the kink analysis (:mod:`gradcheck.judge.kinks`): smaller steps and
  one-sided slopes;
* **inconclusive entries** (the loss's rounding noise, divided by ``h``, swamps the difference)
  and failures too close to the noise for smaller steps to help get *larger* steps
  ``s_k = h·max(1, |x|)·10^k``, ``k = 0..3``. The truncation error at ``s_k`` is estimated from
  the next step: central differences are ``O(s²)``, so ``|n(s_k) - n(s_{k+1})| ≈ 99·T(s_k)``
  (Richardson; see Press et al., *Numerical Recipes*, §5.7, and the step-ladder of
  numdifftools). The entry is re-judged at ``s_k`` with the error bar
  ``noise/s_k + SAFETY·|n(s_k) - n(s_{k+1})|/99``; the first step that decides wins. Steps
  never grow beyond ``UP_CAP·max(|x|, RMS of the chunk's values)``: a step far beyond the
  parameter's own scale crosses every kink of a ReLU layer, where two estimates can agree
  with each other and not with the gradient (as :data:`gradcheck.modes.validated.UP_CAP`).

What is still undecided stays *inconclusive* with a note saying what would decide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.judge import kinks, metrics
from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, KINK, PASS, Criteria, Judgement, judge

#: Largest step multiplier tried by the step-up ladder (times ``h·max(1, |x|)``).
LADDER = (1.0, 10.0, 100.0, 1000.0)
#: At most this many would-be failures of one tensor are re-examined before deciding whether
#: to look at the rest (a wholly wrong 10⁵-entry tensor should not double the cost of a check).
MAX_REEXAMINE = 64
#: ... and the rest are left as FAIL when at least this many of them confirm the failure.
CONFIRMED = 16
#: Step divisors tried when the loss is not finite at ``x ± h`` (a domain edge within h).
LADDER_DOWN = (1e-1, 1e-2, 1e-3, 1e-4)
#: Safety factor on the Richardson truncation estimate.
SAFETY = 3.0
#: The step-up ladder's steps stay below this multiple of the parameter's own scale.
UP_CAP = 0.5


@dataclass
class Context:
    """Everything a second look needs about one tensor's chunk of entries."""

    evaluator: Any
    leaf: int
    flat_index: np.ndarray
    x: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    step: np.ndarray
    f0: float
    noise: float
    dtype: np.dtype
    criteria: Criteria
    scale: float
    analytic_bar: np.ndarray
    h: float
    loss_dtype: np.dtype | None = None
    rounding: np.ndarray | None = None     # the estimate's error components at h, if known
    truncation: np.ndarray | None = None


@dataclass
class Revised:
    """The revised per-entry arrays (same length as the chunk) and the extra evaluations."""

    judgement: Judgement
    numeric: np.ndarray
    error_bar: np.ndarray
    evaluations: int


def second_look(ctx: Context, j: Judgement, error_bar: np.ndarray, kinks_enabled: bool = True
                ) -> Revised:
    """Revise ``j`` (from :func:`judge`) by looking again at FAIL and inconclusive entries."""
    status = j.status.copy()
    reason = j.reason.copy()
    numeric = np.array(ctx.numeric, dtype=np.float64)
    bar = np.array(error_bar, dtype=np.float64)
    evaluations = 0
    finite = np.isfinite(ctx.analytic) & np.isfinite(numeric)
    # 1. would-be failures: kink analysis with smaller steps.
    noisy_fail = np.zeros(status.shape, bool)
    fails = np.flatnonzero((status == FAIL) & finite)
    if fails.size > MAX_REEXAMINE and kinks_enabled:
        # A tensor with many failures: re-examine an evenly spread subset first; if it
        # confirms the failure, the tensor is broken and the rest keep their FAIL.
        subset = fails[np.linspace(0, fails.size - 1, MAX_REEXAMINE).astype(int)]
        k = kinks.analyse(ctx.evaluator, ctx.leaf, ctx.flat_index[subset], ctx.x[subset],
                          ctx.analytic[subset], numeric[subset], ctx.step[subset], ctx.f0,
                          ctx.noise, ctx.dtype, ctx.criteria, ctx.scale,
                          ctx.analytic_bar[subset])
        confirmed = int(np.count_nonzero(k.decided & (k.status == FAIL)))
        if confirmed >= CONFIRMED:
            evaluations += k.evaluations
            d = subset[k.decided]
            status[d] = k.status[k.decided]
            reason[d] = k.note[k.decided]
            numeric[d] = k.numeric[k.decided]
            bar[d] = k.error_bar[k.decided]
            rest = np.setdiff1d(fails, subset)
            reason[rest] = (f"not re-examined: {confirmed} of {subset.size} re-examined "
                            "entries of this tensor confirm the failure")
            fails = fails[:0]
    if fails.size and kinks_enabled:
        k = kinks.analyse(ctx.evaluator, ctx.leaf, ctx.flat_index[fails], ctx.x[fails],
                          ctx.analytic[fails], numeric[fails], ctx.step[fails], ctx.f0, ctx.noise,
                          ctx.dtype, ctx.criteria, ctx.scale, ctx.analytic_bar[fails])
        evaluations += k.evaluations
        d = fails[k.decided]
        status[d] = k.status[k.decided]
        reason[d] = k.note[k.decided]
        numeric[d] = k.numeric[k.decided]
        bar[d] = k.error_bar[k.decided]
        noisy_fail[fails[~k.decided]] = True
    # 2. inconclusive entries whose error bar is mostly truncation (a scheme with a large
    #    default step, a kink inside it): smaller steps.
    trunc_bound = _truncation_dominated(ctx)
    todo = np.flatnonzero((status == INCONCLUSIVE) & finite & trunc_bound)
    if todo.size:
        evaluations += _ladder(ctx, todo, np.asarray(ctx.step[todo], dtype=np.float64),
                               LADDER_DOWN, noisy_fail, status, reason, numeric, bar,
                               why="the estimate at h was within its truncation error")
    # 3. inconclusive entries and noise-limited failures: larger steps, up to the cap.
    todo = np.flatnonzero(((status == INCONCLUSIVE) | noisy_fail) & finite & ~trunc_bound)
    if todo.size:
        xs = np.abs(np.asarray(ctx.x, dtype=np.float64))
        base = np.asarray(ctx.step[todo], dtype=np.float64) * np.maximum(1.0, xs[todo])
        cap = np.maximum(UP_CAP * np.maximum(xs[todo], metrics.rms(xs)), base)
        evaluations += _ladder(ctx, todo, base, LADDER, noisy_fail, status, reason, numeric,
                               bar, cap=cap)
    # 4. the loss is not finite at x ± h (a domain edge within h): smaller steps.
    todo = np.flatnonzero(np.isfinite(ctx.analytic) & ~np.isfinite(numeric)
                          & np.isfinite(ctx.step))
    if todo.size:
        evaluations += _ladder(ctx, todo, np.asarray(ctx.step[todo], dtype=np.float64),
                               LADDER_DOWN, noisy_fail, status, reason, numeric, bar,
                               why="the loss is not finite at x ± h")
    # 5. say what would decide what is left.
    left = np.flatnonzero((status == INCONCLUSIVE) & finite)
    for i in left:
        reason[i] = what_would_decide(bar[i], ctx.noise, ctx.step[i], ctx.loss_dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf entries keep their status
        abs_err = metrics.absolute_error(ctx.analytic, numeric)
        err = metrics.error(ctx.analytic, numeric, ctx.criteria.measure,
                            ctx.criteria.denominator, ctx.criteria.floor)
    return Revised(Judgement(status, err, abs_err, reason), numeric, bar, evaluations)


def _truncation_dominated(ctx: Context) -> np.ndarray:
    """Entries whose estimated truncation error exceeds their rounding error."""
    n = np.asarray(ctx.numeric).shape
    if ctx.rounding is None or ctx.truncation is None:
        return np.zeros(n, bool)
    t = np.nan_to_num(np.asarray(ctx.truncation, dtype=np.float64), nan=0.0)
    return t > np.asarray(ctx.rounding, dtype=np.float64)


def _ladder(ctx: Context, todo: np.ndarray, base: np.ndarray, multipliers: tuple[float, ...],
            noisy_fail: np.ndarray, status: np.ndarray, reason: np.ndarray, numeric: np.ndarray,
            bar: np.ndarray, why: str = "", cap: np.ndarray | None = None) -> int:
    """Re-judge ``todo`` at steps ``base·m`` for ``m`` in ``multipliers``, each judged with a
    truncation bar from the next step, never beyond ``cap`` (per entry); update the arrays in
    place; return evaluations. ``why`` is the reason a down-ladder was needed (the note)."""
    count0 = getattr(ctx.evaluator, "count", 0)
    down = multipliers[-1] < multipliers[0]
    n = todo.size
    prev = {k: np.full(n, np.nan) for k in ("c", "rc", "step")}
    pending = np.ones(n, bool)
    for level, m in enumerate(multipliers):
        if cap is not None:
            pending &= base * m <= cap
        pos = np.flatnonzero(pending)
        if pos.size == 0:
            break
        p = kinks.probe(ctx.evaluator, ctx.leaf, ctx.flat_index[todo[pos]], ctx.x[todo[pos]],
                        base[pos] * m, ctx.f0, ctx.noise, ctx.dtype)
        if level > 0:
            c, rc, st = prev["c"][pos], prev["rc"][pos], prev["step"][pos]
            a = ctx.analytic[todo[pos]]
            abar = ctx.analytic_bar[todo[pos]]
            ratio = (multipliers[level] / multipliers[level - 1]) ** 2
            trunc = SAFETY * np.abs(c - p.central) / abs(ratio - 1.0)
            if down:  # judge at the smaller step, with the larger one as the second opinion
                c, rc, st = p.central, p.rounding_central, p.step
                trunc = trunc * min(ratio, 1.0 / ratio)
            b = rc + trunc + abar
            jj = judge(a, c, b, ctx.criteria, ctx.scale)
            usable = np.isfinite(c) & np.isfinite(p.central)
            passed = usable & (jj.status == PASS)
            # a failure found here must not be a noise artefact either: the disagreement must
            # also exceed the (larger) error bar of the next step.
            other = prev["c"][pos] if down else p.central
            other_rc = prev["rc"][pos] if down else p.rounding_central
            b_next = other_rc + max(ratio, 1.0 / ratio) * trunc + abar
            failed = usable & (jj.status == FAIL) & (np.abs(a - other) > b_next)
            for k in np.flatnonzero(passed | failed):
                i = todo[pos[k]]
                status[i] = PASS if passed[k] else FAIL
                numeric[i] = c[k]
                bar[i] = b[k]
                if down:
                    cause = why
                elif noisy_fail[i]:
                    cause = "the disagreement at h was within a few rounding errors"
                else:
                    cause = "rounding swamped the difference at h"
                verdict = "agrees" if passed[k] else "disagrees"
                size = "smaller" if down else "larger"
                reason[i] = f"{verdict} at the {size} step {st[k]:.1e} ({cause})"
            pending[pos[passed | failed]] = False
        prev["c"][pos], prev["rc"][pos], prev["step"][pos] = (p.central, p.rounding_central,
                                                               p.step)
    return getattr(ctx.evaluator, "count", 0) - count0


def what_would_decide(bar: float, noise: float, step: float, loss_dtype: np.dtype | None) -> str:
    """One sentence on why an entry is inconclusive and what would decide it."""
    low = loss_dtype is not None and np.dtype(loss_dtype).itemsize < 8
    if low:
        return ("the loss is computed in low precision and its rounding swamps the difference; "
                "a float64 forward (or promote=True with a forward that accepts float64) would "
                "decide it")
    if bar > 0 and noise / max(step, 1e-300) >= 0.5 * bar:
        return ("the loss's rounding noise (relative to |f|) swamps the difference even at "
                "larger steps; method='complex' (if the forward is complex-analytic), a larger "
                "h, or a loss without its large constant part would decide it")
    return ("the difference is within the estimated truncation error; a smaller h or "
            "method='complex' would decide it")


__all__ = ["Context", "Revised", "second_look", "what_would_decide", "KINK"]
