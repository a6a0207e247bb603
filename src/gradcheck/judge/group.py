"""Entries judged together, along one direction (issue #10).

An entry is decided on its own only when some step resolves its derivative. A loss computed
in float32 rounds away the change one small entry makes; a ReLU layer at a tiny initial
scale crowds every usable step of an entry with kinks. Such entries can still be judged
*together*. Along a unit direction ``u`` supported on them, ``φ(t) = f(θ + t·u)`` is a
function of one variable whose derivative the analytic gradient predicts, ``φ'(0) = a·u``.
The validated ladder (:mod:`gradcheck.judge.ladder`) estimates it like any entry's: its error
bar is one entry's (the loss's noise over the step), its signal the whole group's.

What may be claimed from it, with ``A_G = √(Σ_i A_i²)`` (``A_i``: entry ``i``'s tolerance in
absolute units) and ``e = a - g`` the error of the analytic gradient:

* **FAIL** when ``|a·u - φ'(0)|`` exceeds ``A_G`` and ``K_FAIL`` error bars at a validated
  pair of steps (the ladder's own FAIL rule). Were every entry within its tolerance,
  ``|e·u| ≤ ‖e‖ ≤ A_G`` (Cauchy–Schwarz), so at least one entry of the group is wrong —
  which one, the numerics cannot say, and the entries keep their own (inconclusive) verdicts;
* **significant** when a tensor whose entries passed one by one shows, at three validated
  steps (:func:`gradcheck.judge.significance.confirm`), ``|a·u - φ'(0)|`` of more than
  ``Z_SIGNIFICANT`` error bars: the per-entry confirmation found no step free of kinks, while
  along one direction the walk goes below the nearest kink;
* nothing otherwise: agreement along a few directions does not bound each entry.

The directions: the analytic gradient's own, ``u = a/‖a‖`` (a uniform scale error ``c`` shows
there in full, ``c·‖a‖``), and the residual of the entries' own estimates, ``u ∝ n - a`` (where
a systematic error stands out of their noise: ``e·u ≈ ‖e‖²/√(‖e‖² + Σ bar²)``).

References: directional-derivative checks (Baydin et al., "Automatic differentiation in
machine learning: a survey", JMLR 18, 2018, §2; PyTorch's ``gradcheck(fast_mode=True)``);
Richardson validation as in :mod:`gradcheck.judge.ladder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.judge import ladder, significance

#: The losses at the group's entries set to each of a list of value vectors.
MoveLoss = Callable[[list[np.ndarray]], np.ndarray]

#: Why a group fails: its entries are undecided one by one and the group disagrees beyond the
#: tolerance; or they passed one by one and the group's discrepancy is beyond the tolerance at
#: the tensor's own gradient scale; or it is significant and ``strict`` is on.
TOGETHER, OWN_SCALE, STRICT = "together", "own scale", "strict"

ANALYTIC = "its analytic gradient's direction"
RESIDUAL = "the direction of its estimates' residual n − a"


@dataclass(frozen=True)
class Group:
    """What a group of entries, judged together along ``direction``, showed.

    ``analytic`` is ``a·u``, ``numeric`` the validated estimate of ``φ'(0)`` with its
    ``error_bar``; ``allowance`` is ``A_G``; ``scale`` the uniform relative error ``c`` with
    ``a·u = (1 + c)·φ'(0)`` (along the analytic direction only, else ``None``).
    """

    tensor: str
    entries: int
    direction: str
    analytic: float
    numeric: float
    error_bar: float
    allowance: float
    step: float
    failed: bool
    scale: float | None = None
    kind: str = TOGETHER
    #: the discrepancy relative to the group's own analytic value (kind ``OWN_SCALE``)
    own: float | None = None

    @property
    def discrepancy(self) -> float:
        return abs(self.analytic - self.numeric)

    @property
    def sigmas(self) -> float:
        return self.discrepancy / self.error_bar if self.error_bar > 0 else float("inf")

    @property
    def sentence(self) -> str:
        found = (f"the derivative along {self.direction} is {self.numeric:.6g} where the "
                 f"analytic gradient says {self.analytic:.6g}, off by {self.discrepancy:.1e} "
                 f"({self.sigmas:.0f} error bars at a validated step {self.step:.1e})")
        if self.kind == TOGETHER:
            out = (f"'{self.tensor}': {self.entries} entries no step could decide one by one, "
                   f"judged together: {found}, {self.discrepancy / self.allowance:.1f}× the "
                   "tolerance — at least one of these entries is wrong")
        elif self.kind == OWN_SCALE:
            out = (f"'{self.tensor}': its {self.entries} entries pass one by one, but {found}: "
                   f"wrong by a relative {self.own:.1e} at this tensor's own gradient scale; "
                   "only the model's larger gradients keep it below the tolerance")
        else:
            out = (f"'{self.tensor}': strict: below the tolerance, but {found} (a small but "
                   "significant discrepancy)")
        if self.scale is not None:
            out += f" (a uniform relative error of {self.scale:+.1e} would explain it)"
        return out + "."

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "entries": self.entries, "direction": self.direction,
                "analytic": self.analytic, "numeric": self.numeric,
                "error_bar": self.error_bar, "allowance": self.allowance, "step": self.step,
                "failed": self.failed, "scale": self.scale, "kind": self.kind,
                "own": self.own}


@dataclass(frozen=True)
class Members:
    """The entries of one tensor judged together: their values ``x`` (float64), analytic
    gradients ``a``, tolerances in absolute units ``allow`` and analytic rounding ``a_bar``,
    the work array's ``eps``, the per-entry first step ``step`` and largest step ``cap``."""

    tensor: str
    x: np.ndarray
    a: np.ndarray
    allow: np.ndarray
    a_bar: np.ndarray
    eps: float
    step: float
    cap: float

    @property
    def allowance(self) -> float:
        """``A_G = √(Σ A_i²)``."""
        return float(np.sqrt(np.sum(self.allow ** 2)))


def directions(m: Members, numeric: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The unit directions to look along (see the module docstring), those that exist."""
    out = []
    norm = float(np.linalg.norm(m.a))
    if norm > 0 and np.isfinite(norm):
        out.append((ANALYTIC, m.a / norm))
    if numeric is not None:
        r = np.where(np.isfinite(numeric), numeric - m.a, 0.0)
        rn = float(np.linalg.norm(r))
        if rn > 0 and np.isfinite(rn):
            out.append((RESIDUAL, r / rn))
    return out


def _scalar(m: Members, u: np.ndarray, move_loss: MoveLoss) -> ladder.Evaluate:
    """``φ`` as the ladder's ``evaluate(mask, points)`` for the single "entry" ``t = 0``."""
    def evaluate(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64)
        if pts.size == 0:
            return np.zeros(pts.shape)
        losses = move_loss([m.x + t * u for t in pts.ravel()])
        return np.asarray(losses, dtype=np.float64).reshape(pts.shape)
    return evaluate


def _noise(m: Members, sigma: float) -> float:
    """The loss's noise plus what rounding the moved entries to the work dtype can do to
    ``φ``: ``σ + ε·Σ|a_i·x_i|``."""
    return sigma + m.eps * float(np.sum(np.abs(m.a * m.x)))


def _cap(m: Members, u: np.ndarray) -> float:
    """The largest ``t``: no entry moves by more than its tensor's cap."""
    top = float(np.max(np.abs(u)))
    return max(m.cap / top if top > 0 else m.cap, m.step)


#: Levels of the fail look: ``t0·ρ^k`` for ``k`` in this range (below ``t0``: kinks and
#: truncation; above: rounding).
LEVELS = range(-8, 4)


def fail_look(m: Members, numeric: np.ndarray | None, f0: float, sigma: float,
              move_loss: MoveLoss) -> Group | None:
    """A validated FAIL of the group along one of :func:`directions`, or ``None``.

    The derivative along ``u`` is measured at the steps ``t0·ρ^k`` (:data:`LEVELS`, capped)
    and judged on every three consecutive ones by :func:`triple_fails`."""
    allowance = m.allowance
    if not np.isfinite(allowance) or m.a.size < 2:
        return None
    noise = _noise(m, sigma)
    a_bar = float(np.sqrt(np.sum(m.a_bar ** 2)))
    zero = np.zeros(1)
    for name, u in directions(m, numeric):
        evaluate = _scalar(m, u, move_loss)
        alpha = float(m.a @ u)
        cap = _cap(m, u)
        levels: list[ladder.Level] = []
        for k in LEVELS:   # smallest step first; stop at the first triple that proves it
            step = m.step * ladder.RATIO ** k
            if step > cap:
                break
            levels.append(ladder.measure_level(evaluate, zero, np.array([step]), f0, noise,
                                               np.dtype(np.float64)))
            found = (triple_fails(levels[-3:], alpha, allowance, a_bar, noise)
                     if len(levels) >= 3 else None)
            if found is not None:
                num, bar, at = found
                scale = alpha / num - 1.0 if name == ANALYTIC and num != 0 else None
                return Group(m.tensor, m.a.size, name, alpha, num, bar, allowance, at, True,
                             scale)
    return None


def triple_fails(levels: list[ladder.Level], alpha: float, allowance: float, a_bar: float,
                 sigma: float) -> tuple[float, float, float] | None:
    """Whether three consecutive levels ``s, ρs, ρ²s`` (smallest first) prove ``alpha``
    wrong: returns (estimate, error bar, step) at ``s`` or ``None``.

    Validity is stricter than one pair's: both pairs smooth (one-sided gaps proportional to
    the step, :func:`gradcheck.judge.ladder.analyse_pair`) and the three estimates converging
    at second order (``D(ρ²s) - D(ρs) ≈ ρ²·(D(ρs) - D(s))``, or both differences within
    rounding). A kink inside the steps adds to the gap a part that is not proportional to the
    step; what such kinks can do to ``D`` is bounded by half the gaps' departure from
    proportionality (plus their rounding), not by half the gap itself — the curvature's share
    ``f''·s`` of the gap is measured, consistently at three steps. FAIL when
    ``|alpha - D(s)| > max(A_G, K_FAIL·(bar + kink))`` (``bar``: rounding plus Richardson's
    truncation from the pair ``s, ρs``), with the loss moving by at least ``MIN_SIGNAL`` noise
    units across the step (as in :mod:`gradcheck.judge.ladder`)."""
    small, mid, big = levels
    if not (small.finite[0] and mid.finite[0] and big.finite[0]):
        return None
    lower, upper = ladder.analyse_pair(mid, small), ladder.analyse_pair(big, mid)
    if not (lower.smooth[0] and upper.smooth[0]):
        return None
    rho = float(mid.step[0] / small.step[0])
    d_small = float(mid.central[0] - small.central[0])
    d_big = float(big.central[0] - mid.central[0])
    n_small = float(mid.rounding[0] + small.rounding[0])
    n_big = float(big.rounding[0] + mid.rounding[0])
    if not ladder.second_order(d_small, d_big, n_small, n_big, rho**2):
        return None
    # kinks inside the smallest step add ≈ J·(1 - d/s) to every gap, so ρ·gap(ρs) - gap(ρ²s)
    # holds at least (ρ - 2)·J of them; what they can do to D(s) is half their gap there
    kink = (abs(rho * mid.gap[0] - big.gap[0]) + rho * mid.gap_bar[0] + big.gap_bar[0]) / (
        2 * (rho - 2))
    d = float(small.central[0])
    bar = float(lower.bar_small[0])
    if not abs(alpha - d) > max(allowance, ladder.K_FAIL * (bar + kink) + a_bar):
        return None
    signal = 2 * float(mid.step[0]) * max(abs(alpha), abs(float(mid.central[0])))
    if signal < ladder.MIN_SIGNAL * sigma:
        return None
    return float(small.central[0]), float(lower.bar_small[0]) + a_bar, float(small.step[0])


def significance_look(m: Members, f0: float, sigma: float, move_loss: MoveLoss,
                      numeric: np.ndarray | None = None) -> Group | None:
    """Along each of :func:`directions` (the analytic gradient's, and the residual of the
    entries' estimates ``numeric`` when given: an error orthogonal to the gradient — a wrong
    ReLU mask at a small init — is invisible along the first), walk down from ``ρ·step``
    until three consecutive steps validate (:func:`gradcheck.judge.significance.confirm`).
    Returns the group's estimate with its bar (rounding and Richardson's truncation) along
    the direction where the discrepancy is most significant, or ``None`` when no triple
    validates before the noise swamps the derivative."""
    if m.a.size < 2:
        return None
    found = [g for name, u in directions(m, numeric)
             if (g := _walk_down(m, name, u, f0, sigma, move_loss)) is not None]
    return max(found, key=lambda g: g.sigmas, default=None)


def _walk_down(m: Members, name: str, u: np.ndarray, f0: float, sigma: float,
               move_loss: MoveLoss) -> Group | None:
    """The first validated triple of :func:`significance_look` along ``u``."""
    noise = _noise(m, sigma)
    evaluate = _scalar(m, u, move_loss)
    zero = np.zeros(1)
    alpha = np.array([float(m.a @ u)])
    a_bar = np.array([float(np.sqrt(np.sum(m.a_bar ** 2)))])

    def level(s: float) -> ladder.Level:
        return ladder.measure_level(evaluate, zero, np.array([s]), f0, noise,
                                    np.dtype(np.float64))

    big, mid = level(m.step * ladder.RATIO), level(m.step)
    for _ in range(ladder.MAX_DOWN):
        small = level(float(mid.step[0]) / ladder.RATIO)
        valid, _z = significance.confirm(big, mid, small, alpha, a_bar)
        if valid[0]:
            bar = float(ladder.analyse_pair(big, mid).bar_small[0] + a_bar[0])
            num = float(mid.central[0])
            scale = float(alpha[0]) / num - 1.0 if name == ANALYTIC and num != 0 else None
            return Group(m.tensor, m.a.size, name, float(alpha[0]), num, bar, m.allowance,
                         float(mid.step[0]), False, scale)
        if not small.finite[0] or small.rounding[0] > abs(alpha[0]) + m.allowance:
            return None
        big, mid = mid, small
    return None
