"""A central-difference estimator whose error model is validated, entry by entry (issue #10).

A central difference ``D(s) = (f(x+s) - f(x-s)) / 2s`` carries rounding ``~σ/s`` (``σ``: the
loss's measured noise, :mod:`gradcheck.estimate.ecnoise`) and truncation ``f'''s²/6`` — but
only where ``f`` is smooth on ``[x-s, x+s]``. A ReLU, a max or a hinge inside the step breaks
that model, and an estimate at such a step is no evidence at all. So an estimate counts only
when its step is shown to be in the asymptotic regime:

* **the one-sided slopes** ``r(s) = (f(x+s) - f(x))/s`` and ``l(s) = (f(x) - f(x-s))/s``
  differ by the *gap* ``r - l = f''·s + O(s³)`` on a smooth function, which shrinks in
  proportion to ``s``; across a kink of jump ``J`` at distance ``d < s`` it is
  ``≈ J·(1 - d/s)``, which does not. Two steps ``B = ρ·b`` (``ρ = 4``) form a **valid pair**
  when ``|ρ·gap(b) - gap(B)|`` is within the gaps' rounding (and a tenth of ``|gap(B)|`` for
  the higher-order terms);
* at a valid pair, Richardson's estimate of the truncation error is
  ``T(b) = |D(B) - D(b)| / (ρ² - 1)``, ``T(B) = ρ²·T(b)`` (the scheme's order 2), and
  ``E = D(b) + (D(b) - D(B))/(ρ² - 1)`` removes the ``s²`` term; its own error is measured
  from the previous pair's ``E`` (Ridders' tableau; Press et al., *Numerical Recipes* §5.7;
  numdifftools' step ratios; scipy.differentiate's per-element error estimate and status).

Verdicts, with ``A = tol·Z`` the tolerance in absolute units (see
:func:`gradcheck.judge.verdict.allowance`) and ``bar`` an estimate's error bar:

* **pass** when ``|a - n| + bar ≤ A`` at a valid pair (``bar``: the numerical error bar; the
  analytic value's own rounding is what the tolerance ``max(tol, √ε)`` already allows for) —
  or at a single step whose one-sided slopes show no jump larger than the derivative (two
  independent computations that agree within the tolerance are not a coincidence; at a kink,
  the central difference averages two slopes and agrees with the analytic value only at the
  midpoint subgradient — so the bar also holds half the gap beyond ``2A``, what a kink inside
  the step could do, :func:`single_step_pass`). Above the steps already tried it must include
  Richardson's truncation bound from the level below: a step's truncation grows like ``s²``,
  and a bug of its size would agree — measured: a float32 loss walked up to ``s ≈ 0.13``
  passed a hidden-layer gradient missing one sample of twenty;
* **FAIL** when ``|a - D| > max(A, K_FAIL·bar)`` at *both* steps of a valid pair whose
  estimates also converge at the scheme's order: ``D(B) - D(b)`` is within rounding, or it is
  ``ρ²`` times the previous pair's difference (a kink inside both steps makes ``D`` drift like
  ``1/s`` and fails this) — never at a step that was not validated. The bar of a FAIL also
  holds what a kink too small for the gap test could do, ``(|gap| + its rounding)/2``;
* **kink** when the gap keeps its size while the step shrinks down to the noise: ``x`` sits on
  a kink, and the analytic value is accepted if it lies between the one-sided slopes (a valid
  subgradient), else FAIL;
* otherwise **inconclusive**, with what would decide it.

The ladder starts at ``h0``; an entry that does not pass there walks down (``h/4`` …: kinks
and truncation) or up (``4h`` …: rounding), one level at a time, and stops as soon as it is
decided. A correct smooth model pays nothing beyond the first step. Entries it leaves
undecided by noise get a last look at the mean of jittered steps (:func:`averaged_pass`): a
loss computed in float32 rounds independently at each of them, so the mean's bar shrinks like
``1/√m`` — that look can pass an entry, never FAIL one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from gradcheck.errors import ForwardError
from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, KINK, PASS

#: Rounding bar of a central difference: ``K_ROUND·σ/s`` (its standard deviation is
#: ``σ/(√2·s)``, so this is about 3 standard deviations; a FAIL needs ``K_FAIL`` of them).
K_ROUND = 2.0
#: Rounding bar of the gap ``r - l`` (standard deviation ``√6·σ/s``).
K_GAP = 2.0 * np.sqrt(6.0)
#: Safety factor on Richardson's truncation estimate.
SAFETY = 3.0
#: A FAIL needs a discrepancy of more than this many error bars (and the tolerance).
K_FAIL = 3.0
#: Step ratio between levels.
RATIO = 4.0
#: Levels below and above ``h0``, and in all.
MAX_DOWN, MAX_UP, MAX_LEVELS = 9, 5, 11
#: Relative slack on the gap's proportionality (higher-order terms, ``f''''s³``).
SMOOTH_SLACK = 0.1
#: A FAIL needs the loss to move by at least this many noise units across the larger step of
#: its pair, ``2·s·max(|a|, |D|) ≥ MIN_SIGNAL·σ``: a forward computing in low precision rounds away
#: per-sample changes below its ulp, a bias no white-noise error bar describes.
MIN_SIGNAL = 1e3
#: Slack of the order test, relative to the larger difference (ratios 8 … 32 for ρ² = 16).
ORDER_SLACK = 0.5
#: A gap "keeps its size" (a kink) when it shrinks by less than this factor per level.
KINK_KEEP = 0.5


Evaluate = Callable[[np.ndarray, np.ndarray], np.ndarray]
Allowance = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Level:
    """Central difference and one-sided slopes at one step, for a chunk of entries.

    ``step`` is the half-span actually taken in the working dtype; ``finite`` marks entries
    whose step is representable and whose losses are finite.
    """

    step: np.ndarray
    central: np.ndarray
    right: np.ndarray
    left: np.ndarray
    rounding: np.ndarray
    gap_bar: np.ndarray
    finite: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return self.right - self.left

    def take(self, pos: np.ndarray) -> Level:
        return Level(*(getattr(self, f)[pos] for f in FIELDS))


FIELDS = ("step", "central", "right", "left", "rounding", "gap_bar", "finite")


def where(mask: np.ndarray, a: Level, b: Level) -> Level:
    """Entry-wise ``a if mask else b``."""
    return Level(*(np.where(mask, getattr(a, f), getattr(b, f)) for f in FIELDS))


def put(dest: Level, pos: np.ndarray, src: Level) -> None:
    """``dest[pos] = src`` for every field (in place)."""
    for f in FIELDS:
        getattr(dest, f)[pos] = getattr(src, f)


def measure_level(evaluate: Evaluate, x: np.ndarray, steps: np.ndarray, f0: float,
                  sigma: float, dtype: np.dtype, tolerate_errors: bool = True) -> Level:
    """Evaluate ``f(x ± s)`` (rounded to ``dtype``) and return the :class:`Level`.

    ``D = (f₊ - f₋)/(x₊ - x₋)``, ``r = (f₊ - f0)/(x₊ - x)``, ``l = (f0 - f₋)/(x - x₋)``: the
    divisors are the steps actually taken (Press et al., *Numerical Recipes* §5.7). Rounding
    bars: ``K_ROUND·σ/s`` and ``K_GAP·σ/s``. A forward that raises at these points (outside
    its domain) leaves the entries not finite when ``tolerate_errors``.
    """
    xf = np.asarray(x, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        plus = (xf + steps).astype(dtype)
        minus = (xf - steps).astype(dtype)
        hp = plus.astype(np.float64) - xf
        hm = xf - minus.astype(np.float64)
    ok = np.isfinite(hp) & np.isfinite(hm) & (hp > 0) & (hm > 0)
    n = xf.size
    central, right, left = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        try:
            f = np.real(evaluate(ok, np.stack([plus[ok], minus[ok]], axis=1)))
        except ForwardError:
            if not tolerate_errors:
                raise
            ok = np.zeros(n, bool)
            f = np.zeros((0, 2))
        with np.errstate(over="ignore", invalid="ignore"):
            central[ok] = (f[:, 0] - f[:, 1]) / (hp[ok] + hm[ok])
            right[ok] = (f[:, 0] - f0) / hp[ok]
            left[ok] = (f0 - f[:, 1]) / hm[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(ok, (hp + hm) / 2, steps)
        rounding = np.where(ok, K_ROUND * sigma / step, np.inf)
        gap_bar = np.where(ok, K_GAP * sigma / np.minimum(np.where(ok, hp, 1), np.where(ok, hm, 1)),
                           np.inf)
    finite = ok & np.isfinite(central) & np.isfinite(right) & np.isfinite(left)
    return Level(step, central, right, left, rounding, gap_bar, finite)


def single_step_pass(a: np.ndarray, lv: Level, allow: Allowance) -> np.ndarray:
    """Entries that pass at one step: ``|a - D| + R + K ≤ A``, and one-sided slopes without
    a jump larger than the derivative itself (``|r - l| ≤ 2·max(|a|, |D|) + 2A + gap
    rounding``; a smooth function's gap ``f''·h`` is far below that, a kink's is not).

    ``K = max(|r - l| - gap rounding - 2A, 0)/2``: a kink inside the step at distance ``d``
    with jump ``J`` moves ``D`` by ``J·(1 - d/h)/2``, half the gap it makes, so a gap beyond
    ``2A`` is a bias ``D`` may carry, and a wrong gradient of that size would agree (measured:
    a leaky-ReLU net whose slope the backward gets wrong, at init 1e-4 in float64, and a
    float32 loss whose ``h0 ≈ 2e-2`` crosses a kink, passed wrong entries). Up to ``2A`` the
    gap costs nothing (a smooth function's curvature ``f''·h`` there, or a kink whose bias
    keeps a passed entry within twice the tolerance)."""
    with np.errstate(invalid="ignore"):
        A = allow(a, lv.central)
        jump = 2 * np.maximum(np.abs(a), np.abs(lv.central)) + 2 * A + lv.gap_bar
        kink = np.maximum(np.abs(lv.gap) - lv.gap_bar - 2 * A, 0.0) / 2
        return (lv.finite & (np.abs(a - lv.central) + lv.rounding + kink <= A)
                & (np.abs(lv.gap) <= jump))


@dataclass
class Outcome:
    """Per-entry results of :func:`decide` (aligned with its input arrays)."""

    status: np.ndarray
    numeric: np.ndarray
    error_bar: np.ndarray
    step: np.ndarray
    note: np.ndarray
    validated: np.ndarray      # decided at a valid pair (not only by agreement at one step)
    evaluations: int = 0
    #: for the undecided: "noise", "truncation" or "kinks" (what stopped the walk)
    why: np.ndarray | None = None


@dataclass
class _Pair:
    smooth: np.ndarray
    d_small: np.ndarray
    bar_small: np.ndarray
    d_big: np.ndarray
    bar_big: np.ndarray
    best: np.ndarray
    best_bar: np.ndarray
    best_rounding: np.ndarray
    best_step: np.ndarray
    extrapolated: np.ndarray
    extrapolated_rounding: np.ndarray
    kink_small: np.ndarray       # what a kink the gap test cannot see could do to D
    kink_big: np.ndarray
    truncation_bound: np.ndarray  # |D(B) - D(b)| is clearly more than rounding


def analyse_pair(big: Level, small: Level) -> _Pair:
    """Validity, Richardson truncation estimates and the better of the pair's two estimates;
    also the extrapolation ``E`` and its rounding (its truncation needs a second pair, see
    :func:`chain`)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rho = big.step / small.step
        both = big.finite & small.finite
        smooth = both & (np.abs(rho * small.gap - big.gap)
                         <= rho * small.gap_bar + big.gap_bar + SMOOTH_SLACK * np.abs(big.gap))
        r2 = rho**2 - 1.0
        noise = big.rounding + small.rounding
        excess = np.maximum(np.abs(big.central - small.central) - noise, 0.0)
        # truncation of D(b): the part of |D(B) - D(b)| that rounding cannot explain (with the
        # safety factor) plus what rounding could hide, over ρ² - 1; D(B)'s is ρ² times that
        t_small = (SAFETY * excess + noise) / r2
        t_big = (rho**2) * t_small
        e = small.central + (small.central - big.central) / r2
        r_e = (rho**2 * small.rounding + big.rounding) / r2
        bar_s = small.rounding + t_small
        bar_b = big.rounding + t_big
        # what kinks the gap test cannot see could do to D: half the gap itself. (Only the
        # residual |ρ·gap(b) - gap(B)| would bound a single kink; several kinks inside both
        # steps with cancelling jumps bias D while keeping the gaps proportional — measured:
        # a ReLU net at init scale 1e-6 then FAILs. On a smooth function the gap is f''·s,
        # which costs decisions on noisy float32 losses, never a false FAIL.)
        kink_s = (np.abs(small.gap) + small.gap_bar) / 2
        kink_b = (np.abs(big.gap) + big.gap_bar) / 2
        truncation_bound = excess > noise
        cands = np.stack([bar_s, bar_b])
        cands = np.where(np.isfinite(cands), cands, np.inf)
        k = np.argmin(cands, axis=0)
        vals = np.stack([small.central, big.central])
        rnd = np.stack([small.rounding, big.rounding])
        stp = np.stack([small.step, big.step])
        idx = np.arange(k.size)
        return _Pair(smooth, small.central, bar_s, big.central, bar_b, vals[k, idx],
                     cands[k, idx], rnd[k, idx], stp[k, idx], e, r_e, kink_s, kink_b,
                     truncation_bound)


def second_order(d_small, d_big, n_small, n_big, r2):
    """Whether three estimates ``D(s), D(ρs), D(ρ²s)`` converge at the central scheme's
    order: their differences ``d_small = D(ρs) - D(s)`` and ``d_big = D(ρ²s) - D(ρs)`` are
    both within their rounding ``n_small``, ``n_big``, or ``d_big ≈ ρ²·d_small`` (``r2 = ρ²``)
    within the rounding and ``ORDER_SLACK`` of ``|d_big|`` (a kink inside the steps makes ``D``
    drift like ``1/s`` and fails this)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return ((np.abs(d_small) <= n_small) & (np.abs(d_big) <= n_big)) | (
            np.abs(d_big - r2 * d_small) <= n_big + r2 * n_small + ORDER_SLACK * np.abs(d_big))


def chain(e_small: np.ndarray, r_small: np.ndarray, e_big: np.ndarray, r_big: np.ndarray,
          rho: np.ndarray) -> np.ndarray:
    """Error bar of the extrapolation ``E_small`` from two consecutive valid pairs.

    ``E`` has truncation ``O(s⁴)``, so ``T(E_big) ≈ ρ⁴·T(E_small)`` and
    ``|E_big - E_small| ≤ T(E_big) + R_big + R_small`` give
    ``T(E_small) ≤ (|E_big - E_small| + R_big + R_small)/(ρ⁴ - 1)`` (the second column of
    Ridders' tableau; Press et al., *Numerical Recipes* §5.7)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return r_small + SAFETY * (np.abs(e_big - e_small) + r_big + r_small) / (rho**4 - 1.0)


def decide(evaluate: Evaluate, x: np.ndarray, analytic: np.ndarray, first: Level,
           f0: float, sigma: float, dtype: np.dtype, allow: Allowance,
           analytic_bar: np.ndarray, cap: np.ndarray | None = None) -> Outcome:
    """Walk the ladder for entries that did not pass at the first step (see module docstring).

    ``first`` is the :class:`Level` at ``h0`` for these entries; ``allow(a, n)`` gives the
    tolerance in absolute units; ``analytic_bar`` the rounding of the analytic values;
    ``cap`` the largest step allowed per entry (a step far beyond the parameter's own scale
    crosses every kink of a ReLU layer at once, and its one-sided slopes can no longer tell).
    """
    walk = _Walk.start(np.asarray(analytic, dtype=np.float64), first, analytic_bar, allow,
                       sigma, cap)
    n = x.size
    for _ in range(MAX_LEVELS):
        pos, down = walk.moves(cap)
        if pos.size == 0:
            break
        new_step = np.where(down, walk.lo.level.step[pos] / RATIO,
                            walk.hi.level.step[pos] * RATIO)
        lv = measure_level(lambda m, pts, pos=pos: evaluate(_mask(n, pos[m]), pts), x[pos],
                           new_step, f0, sigma, dtype)
        walk.spent += 2 * int(np.count_nonzero(np.isfinite(new_step)))
        walk.take(pos, down, lv)
    return walk.finish()


@dataclass
class _End:
    """One end of the ladder — the smallest or the largest step an entry has reached: its
    level, the extrapolation ``E`` of its last valid pair (``nan`` when none) with E's
    rounding, the pair's difference ``D(B) - D(b)`` with its rounding (the order test), and
    how many levels the walk took in this direction."""

    level: Level
    e: np.ndarray
    e_rounding: np.ndarray
    diff: np.ndarray
    diff_noise: np.ndarray
    moves: np.ndarray

    @classmethod
    def at(cls, first: Level) -> _End:
        n = first.step.size
        return cls(first.take(np.arange(n)), np.full(n, np.nan), np.full(n, np.inf),
                   np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int))

    def update(self, pos: np.ndarray, lv: Level, pair: _Pair, diff: np.ndarray,
               noise: np.ndarray) -> None:
        """This end moved to ``lv`` at ``pos`` (``pair``: the pair it formed)."""
        put(self.level, pos, lv)
        self.e[pos] = np.where(pair.smooth, pair.extrapolated, np.nan)
        self.e_rounding[pos] = pair.extrapolated_rounding
        self.diff[pos], self.diff_noise[pos] = diff, noise
        self.moves[pos] += 1


@dataclass
class _Walk:
    """The state of :func:`decide`: the verdict arrays, the two ends of every entry's ladder,
    the level pair the kink test runs at, and the walk's bookkeeping."""

    a: np.ndarray
    analytic_bar: np.ndarray
    allow: Allowance
    sigma: float
    outcome: Outcome
    lo: _End
    hi: _End
    # the deepest down-pair whose two gaps are both clearly above their rounding and of about
    # the same size (a jump that does not shrink): the kink test runs there — deep, so that
    # no other kink is inside the step, yet before the noise swallows the gap
    kink: Level
    kink_prev: Level
    seen_valid: np.ndarray
    pending: np.ndarray
    direction: np.ndarray
    spent: int = 0

    @classmethod
    def start(cls, a: np.ndarray, first: Level, analytic_bar: np.ndarray, allow: Allowance,
              sigma: float, cap: np.ndarray | None) -> _Walk:
        n = a.size
        out = Outcome(np.full(n, INCONCLUSIVE, np.int8), first.central.copy(),
                      first.rounding + analytic_bar, first.step.copy(),
                      np.full(n, "", dtype=object), np.zeros(n, bool), 0,
                      np.full(n, "", dtype=object))
        pending = np.isfinite(a)
        out.status[~pending] = FAIL
        out.note[~pending] = "the analytic gradient is not finite"
        # first direction: a disagreement beyond the noise suggests a kink or truncation
        # (down); one within the noise asks for a larger step (up); a non-finite first step
        # goes down.
        with np.errstate(invalid="ignore"):
            direction = np.where(first.finite & (np.abs(a - first.central)
                                                 <= 2 * first.rounding), 1, -1)
            if cap is not None:
                # hopeless from the start: the noise would swamp the tolerance even at the
                # largest step allowed, and the disagreement is what that noise explains
                A0 = allow(a, first.central)
                at_cap = K_ROUND * sigma / np.maximum(cap, first.step)
                hopeless = (first.finite & (at_cap > A0)
                            & (np.abs(a - first.central) <= 2 * first.rounding + A0))
                pending &= ~hopeless
                out.why[hopeless] = "noise"
        everything = np.arange(n)
        return cls(a, analytic_bar, allow, sigma, out, _End.at(first), _End.at(first),
                   first.take(everything), first.take(everything), np.zeros(n, bool),
                   pending, direction)

    def moves(self, cap: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The entries that walk one more level, and which of them go down: an exhausted
        direction flips once; an entry stops when both are blocked."""
        up_ok = (self.hi.moves < MAX_UP) & np.isfinite(self.hi.level.step)
        if cap is not None:
            up_ok &= self.hi.level.step * RATIO <= cap
        down_ok = self.lo.moves < MAX_DOWN
        d = np.where((self.direction > 0) & ~up_ok, -1, self.direction)
        d = np.where((d < 0) & ~down_ok, np.where(up_ok, 1, 0), d)
        self.direction = d
        self.pending &= d != 0
        pos = np.flatnonzero(self.pending)
        return pos, d[pos] < 0

    def take(self, pos: np.ndarray, down: np.ndarray, lv: Level) -> None:
        """Judge the pair the new level ``lv`` forms with the end it extends, record the
        decisions, move the ends, and choose each undecided entry's next direction."""
        old_lo, old_hi = self.lo.level.take(pos), self.hi.level.take(pos)
        big, small = where(down, old_lo, lv), where(down, lv, old_hi)
        pair = analyse_pair(big, small)
        self._extrapolate(pos, down, pair, big, small, old_hi)
        diff, dnoise = big.central - small.central, big.rounding + small.rounding
        ordered = self._ordered(pos, down, pair, diff, dnoise, (big.step / small.step) ** 2)
        ok_pass, ok_fail, single = self._judge(pos, down, pair, big, ordered, lv)
        self._move_ends(pos, down, lv, old_lo, pair, diff, dnoise)
        self._record(pos, down, lv, pair, big, small, ok_pass, ok_fail, single)
        self._plan(pos, down, lv, pair)

    def _extrapolate(self, pos, down, pair: _Pair, big: Level, small: Level,
                     old_hi: Level) -> None:
        """Two consecutive valid pairs: the extrapolation of the smaller one, with its bar
        (:func:`chain`), where it beats the pair's own best."""
        prev_e = np.where(down, self.lo.e[pos], self.hi.e[pos])
        prev_r = np.where(down, self.lo.e_rounding[pos], self.hi.e_rounding[pos])
        e_s = np.where(down, pair.extrapolated, prev_e)
        r_s = np.where(down, pair.extrapolated_rounding, prev_r)
        e_b = np.where(down, prev_e, pair.extrapolated)
        r_b = np.where(down, prev_r, pair.extrapolated_rounding)
        with np.errstate(invalid="ignore", divide="ignore"):
            c_bar = chain(e_s, r_s, e_b, r_b, big.step / small.step)
            use = (pair.smooth & np.isfinite(prev_e) & np.isfinite(c_bar)
                   & (c_bar < pair.best_bar))
        pair.best = np.where(use, e_s, pair.best)
        pair.best_bar = np.where(use, c_bar, pair.best_bar)
        pair.best_rounding = np.where(use, r_s, pair.best_rounding)
        pair.best_step = np.where(use, np.where(down, small.step, old_hi.step),
                                  pair.best_step)

    def _ordered(self, pos, down, pair: _Pair, diff, dnoise, r2) -> np.ndarray:
        """The order test: consecutive differences scale like ``ρ²`` (order 2); a pair whose
        difference is within rounding has nothing to test and passes it."""
        p_d = np.where(down, self.lo.diff[pos], self.hi.diff[pos])
        p_n = np.where(down, self.lo.diff_noise[pos], self.hi.diff_noise[pos])
        d_big, n_big = np.where(down, p_d, diff), np.where(down, p_n, dnoise)
        d_small, n_small = np.where(down, diff, p_d), np.where(down, dnoise, p_n)
        with np.errstate(invalid="ignore"):
            ordered = (np.abs(diff) <= dnoise) | (
                np.isfinite(p_d) & (np.abs(d_big - r2 * d_small)
                                    <= n_big + r2 * n_small + ORDER_SLACK * np.abs(d_big)))
        return ordered & pair.smooth

    def _judge(self, pos, down, pair: _Pair, big: Level, ordered, lv: Level
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pass at a valid pair; FAIL at both steps of a valid, ordered pair beyond the
        tolerance and ``K_FAIL`` bars (kink allowance included) with enough signal; else the
        single-step agreement test (going up: with Richardson's truncation bound)."""
        ap, abar = self.a[pos], self.analytic_bar[pos]
        allow = self.allow
        with np.errstate(invalid="ignore"):
            ok_pass = pair.smooth & (np.abs(ap - pair.best) + pair.best_bar
                                     <= allow(ap, pair.best))
            # a FAIL must also survive whatever a kink too small for the gap test could do
            fail_s = np.abs(ap - pair.d_small) > np.maximum(
                allow(ap, pair.d_small), K_FAIL * (pair.bar_small + pair.kink_small) + abar)
            fail_b = np.abs(ap - pair.d_big) > np.maximum(
                allow(ap, pair.d_big), K_FAIL * (pair.bar_big + pair.kink_big) + abar)
            signal = 2 * big.step * np.maximum(np.abs(ap), np.abs(pair.d_big))
            ok_fail = ordered & fail_s & fail_b & (signal >= MIN_SIGNAL * self.sigma)
            # above the steps already tried, an agreement at one step is no evidence without
            # a bound on the truncation, which grows like s² (a bug of its size would agree):
            # Richardson's from the level below, as at a valid pair but without the gap test
            bounded = np.abs(ap - pair.d_big) + pair.bar_big <= allow(ap, pair.d_big)
        single = ~ok_pass & ~ok_fail & single_step_pass(ap, lv, allow) & (down | bounded)
        return ok_pass, ok_fail, single

    def _move_ends(self, pos, down, lv: Level, old_lo: Level, pair: _Pair, diff,
                   dnoise) -> None:
        """The end each entry walked from moves to ``lv``; a down-pair whose gaps keep
        their size becomes the kink test's pair."""
        with np.errstate(invalid="ignore"):
            seen = (down & lv.finite & old_lo.finite
                    & (np.abs(lv.gap) > 2 * lv.gap_bar)
                    & (np.abs(old_lo.gap) > 2 * old_lo.gap_bar)
                    & (np.abs(lv.gap) >= KINK_KEEP * np.abs(old_lo.gap)))
        put(self.kink, pos[seen], lv.take(np.flatnonzero(seen)))
        put(self.kink_prev, pos[seen], old_lo.take(np.flatnonzero(seen)))
        for end, mask in ((self.lo, down), (self.hi, ~down)):
            k = np.flatnonzero(mask)
            end.update(pos[k], lv.take(k), _take_pair(pair, k), diff[k], dnoise[k])
        self.seen_valid[pos] |= pair.smooth

    def _record(self, pos, down, lv: Level, pair: _Pair, big: Level, small: Level, ok_pass,
                ok_fail, single) -> None:
        """Store the decisions of this level."""
        out, abar = self.outcome, self.analytic_bar[pos]
        single_bar = np.where(down, lv.rounding, pair.bar_big)
        for k in np.flatnonzero(ok_pass | ok_fail | single):
            i = pos[k]
            self.pending[i] = False
            out.validated[i] = not single[k]
            if single[k]:
                out.status[i], out.numeric[i] = PASS, lv.central[k]
                out.error_bar[i], out.step[i] = single_bar[k] + abar[k], lv.step[k]
                out.note[i] = f"agrees at step {lv.step[k]:.1e}"
                continue
            out.status[i] = PASS if ok_pass[k] else FAIL
            out.numeric[i], out.error_bar[i] = pair.best[k], pair.best_bar[k] + abar[k]
            out.step[i] = pair.best_step[k]
            out.note[i] = (f"agrees at step {pair.best_step[k]:.1e}" if ok_pass[k] else
                           f"disagrees at steps {small.step[k]:.1e} and {big.step[k]:.1e}, "
                           "where the estimate is validated (smooth there: the one-sided "
                           "slopes converge at first order and the estimates at second "
                           "order)")

    def _plan(self, pos, down, lv: Level, pair: _Pair) -> None:
        """Next direction of the undecided (up where rounding bounds the pair, down where
        truncation or kinks do), what stopped them so far, and the best estimate seen."""
        out, ap, abar = self.outcome, self.a[pos], self.analytic_bar[pos]
        und = self.pending[pos]
        rounding_bound = ~pair.truncation_bound
        nxt = np.where(pair.smooth, np.where(rounding_bound, 1, -1), -1)
        # further down is useless once the noise at the smallest step swamps everything
        with np.errstate(invalid="ignore"):
            hopeless = down & lv.finite & (lv.rounding > 4 * np.maximum(
                np.abs(ap - lv.central), self.allow(ap, lv.central))) & ~pair.smooth
        self.lo.moves[pos[hopeless]] = MAX_DOWN
        why = out.why
        why[pos[und & pair.smooth & rounding_bound]] = "noise"
        why[pos[und & pair.smooth & ~rounding_bound]] = "truncation"
        why[pos[und & ~pair.smooth & (why[pos] == "")]] = "kinks"
        self.direction[pos] = np.where(und, nxt, 0)
        better = und & pair.smooth & (pair.best_bar + abar < out.error_bar[pos])
        out.numeric[pos[better]] = pair.best[better]
        out.error_bar[pos[better]] = pair.best_bar[better] + abar[better]
        out.step[pos[better]] = pair.best_step[better]

    def finish(self) -> Outcome:
        """The kink test for the undecided, then the remedy for those still undecided."""
        out, a = self.outcome, self.a
        undecided = np.flatnonzero((out.status == INCONCLUSIVE) & np.isfinite(a))
        _kinks(undecided, a, self.kink, self.kink_prev, self.allow, self.analytic_bar,
               self.sigma, out.status, out.numeric, out.error_bar, out.step, out.note)
        for i in np.flatnonzero((out.status == INCONCLUSIVE) & np.isfinite(a)):
            out.why[i] = out.why[i] or ("kinks" if not self.seen_valid[i] else "noise")
            out.note[i] = _remedy(out.why[i])
        out.evaluations = self.spent
        return out


def _take_pair(pair: _Pair, k: np.ndarray) -> _Pair:
    """The pair's fields at positions ``k``."""
    return _Pair(*(getattr(pair, f.name)[k] for f in fields(_Pair)))


def _mask(n: int, idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, bool)
    m[idx] = True
    return m


def _kinks(cand: np.ndarray, a, lo: Level, lo_prev: Level, allow: Allowance,
           analytic_bar, sigma, status, numeric, bar, step, note) -> None:
    """Undecided entries whose gap keeps its size down to the smallest step sit on a kink:
    accept the analytic value if it lies between the one-sided slopes, else FAIL."""
    if cand.size == 0:
        return
    g, gp = lo.gap[cand], lo_prev.gap[cand]
    with np.errstate(invalid="ignore"):
        kinked = (lo.finite[cand] & lo_prev.finite[cand] & (np.abs(g) > 2 * lo.gap_bar[cand])
                  & (np.abs(g) >= KINK_KEEP * np.abs(gp)) & (lo.step[cand] < lo_prev.step[cand]))
    for k in np.flatnonzero(kinked):
        i = cand[k]
        resolved = 2 * lo.step[i] * max(abs(a[i]), abs(lo.central[i])) >= MIN_SIGNAL * sigma
        side = 2 * K_ROUND * np.sqrt(2.0) * sigma / lo.step[i]   # ~4 std of a slope
        lo_s, hi_s = sorted((lo.left[i], lo.right[i]))
        lo_p, hi_p = sorted((lo_prev.left[i], lo_prev.right[i]))
        margin = allow(a[i:i + 1], np.array([lo.central[i]]))[0] + side + analytic_bar[i]
        inside = lo_s - margin <= a[i] <= hi_s + margin
        inside_prev = lo_p - margin <= a[i] <= hi_p + margin
        numeric[i], step[i] = lo.central[i], lo.step[i]
        if inside:
            status[i] = KINK
            bar[i] = lo.rounding[i] + analytic_bar[i] + 0.5 * (hi_s - lo_s)
            note[i] = (f"kink: one-sided slopes [{lo_s:.4g}, {hi_s:.4g}] at step "
                       f"{lo.step[i]:.0e} (the jump does not shrink with the step); the "
                       "analytic value is a valid subgradient")
        elif not inside_prev and resolved:
            status[i] = FAIL
            bar[i] = lo.rounding[i] + analytic_bar[i]
            note[i] = (f"at a kink (the one-sided slopes keep a jump as the step shrinks), but "
                       f"the analytic value lies outside them: [{lo_s:.4g}, {hi_s:.4g}] at "
                       f"step {lo.step[i]:.0e}: not a subgradient")


def _remedy(why: str) -> str:
    if why == "noise":
        return ("the loss's measured noise swamps the difference at every valid step; "
                "method='complex' (if the forward is complex-analytic), a larger h, a float64 "
                "forward, or a loss without its large constant part would decide it")
    if why == "truncation":
        return ("the difference is within the estimated truncation error at every valid "
                "step; method='complex' or a smaller h would decide it")
    return ("no step tried was in the smooth regime (kinks inside every step, down to the "
            "loss's noise); method='complex' or a float64 loss with less noise would decide it")


#: Jittered steps averaged per level by :func:`averaged_level`, and their relative spread.
AVERAGE = 32
JITTER = 0.1


def effective_count(steps: np.ndarray) -> np.ndarray:
    """Per entry (column), the effective number of independent samples among ``m`` steps
    actually taken (rows): ``m² / Σ_k n_k²`` with ``n_k`` the multiplicity of each distinct
    step (a float16 parameter rounds nearby steps to the same point, whose noise is the same
    sample)."""
    m = steps.shape[0]
    out = np.ones(steps.shape[1])
    srt = np.sort(steps, axis=0)
    for j in range(steps.shape[1]):
        _, counts = np.unique(srt[:, j], return_counts=True)
        out[j] = m * m / float(np.sum(counts.astype(np.float64) ** 2))
    return out


def averaged_level(evaluate: Evaluate, x: np.ndarray, steps: np.ndarray, f0: float,
                   sigma: float, dtype: np.dtype, m: int = AVERAGE) -> Level:
    """A :class:`Level` averaged over ``m`` steps ``s·(1 + JITTER·u)``, ``u`` evenly in
    ``[-1/2, 1/2]``: the rounding of ``f(x ± s_j)`` is independent between the jittered points
    (they differ by many ulps of the arithmetic), so the mean central difference has rounding
    ``σ/(s·√m_eff)`` (``m_eff``: :func:`effective_count`), while its truncation is
    ``f'''·mean(s_j²)/6`` — an order-2 estimate at the step ``√mean(s_j²)``, which
    Richardson's test of :func:`analyse_pair` treats like any other (the jitter pattern is the
    same at every level). The bar is the larger of the noise-based one and the measured
    scatter of the ``m`` estimates (``K_ROUND·√2·std/√m_eff``: the scatter is this entry's
    own noise, not the model's). The one-sided slopes share ``f(x)``, whose noise does not
    average: the gap's bar is ``2·√(2/m_eff + 4)·σ/s`` (``K_GAP`` for ``m_eff = 1``).
    Reference: the averaging of independent noisy differences, Moré & Wild, "Estimating
    derivatives of noisy simulations", ACM TOMS 38(3), 2012, §2."""
    factors = 1.0 + JITTER * (np.arange(m) / (m - 1) - 0.5)
    levels = [measure_level(evaluate, x, steps * f, f0, sigma, dtype) for f in factors]
    finite = np.logical_and.reduce([lv.finite for lv in levels])
    st = np.stack([lv.step for lv in levels])
    m_eff = effective_count(np.where(finite, st, 0.0))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        central = np.mean([lv.central for lv in levels], axis=0)
        scatter = np.std([lv.central for lv in levels], axis=0, ddof=1)
        right = np.mean([lv.right for lv in levels], axis=0)
        left = np.mean([lv.left for lv in levels], axis=0)
        step = np.sqrt(np.mean(st**2, axis=0))
        root = np.sqrt(m_eff)
        rounding = np.maximum(np.mean([lv.rounding for lv in levels], axis=0),
                              K_ROUND * np.sqrt(2.0) * scatter) / root
        gap_bar = (np.mean([lv.gap_bar for lv in levels], axis=0) / K_GAP
                   * 2.0 * np.sqrt(2.0 / m_eff + 4.0))
    rounding = np.where(finite, rounding, np.inf)
    gap_bar = np.where(finite, gap_bar, np.inf)
    return Level(step, central, right, left, rounding, gap_bar, finite & np.isfinite(central))


def averaged_pass(evaluate: Evaluate, x: np.ndarray, analytic: np.ndarray, steps: np.ndarray,
                  cap: np.ndarray, f0: float, sigma: float, dtype: np.dtype, allow: Allowance,
                  m: int = AVERAGE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """A last look at entries the ladder left undecided by noise: the levels ``s`` and ``ρs``
    (``s/ρ`` and ``s`` when ``ρs`` exceeds ``cap``) of :func:`averaged_level`, judged as the
    ladder judges its own — **pass** at the pair when the one-sided slopes are smooth there
    and ``|a - D| + bar ≤ A``, or at one level by :func:`single_step_pass` (agreement within
    the tolerance including the bar, without a jump in the one-sided slopes) with the pair's
    Richardson truncation bound in the bar; never FAIL (the
    bar of a FAIL must also hold what a hidden kink can do, which averaging does not shrink).
    Returns (passed, numeric, bar, step, evaluations)."""
    a = np.asarray(analytic, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    s = np.where(s * RATIO <= cap, s, s / RATIO)
    small = averaged_level(evaluate, x, s, f0, sigma, dtype, m)
    big = averaged_level(evaluate, x, s * RATIO, f0, sigma, dtype, m)
    pair = analyse_pair(big, small)
    with np.errstate(invalid="ignore"):
        ok_pair = pair.smooth & (np.abs(a - pair.best) + pair.best_bar <= allow(a, pair.best))
        # one level agreeing is evidence only with a bound on its truncation (a bug of the
        # truncation's size would agree too): Richardson's from the pair, without the gap test
        one_s = ~ok_pair & single_step_pass(a, small, allow) & (
            np.abs(a - small.central) + pair.bar_small <= allow(a, small.central))
        one_b = ~ok_pair & ~one_s & single_step_pass(a, big, allow) & (
            np.abs(a - big.central) + pair.bar_big <= allow(a, big.central))
    num = np.where(one_s, small.central, np.where(one_b, big.central, pair.best))
    bar = np.where(one_s, pair.bar_small, np.where(one_b, pair.bar_big, pair.best_bar))
    step = np.where(one_s, small.step, np.where(one_b, big.step, pair.best_step))
    return ok_pair | one_s | one_b, num, bar, step, 4 * m * x.size
