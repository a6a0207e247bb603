"""Kink analysis: a second look at entries that would fail (seed §4, "non-smooth functions").

ReLU, leaky ReLU, max, max-pooling, ``abs``, L1 and hinge losses are not differentiable
everywhere. When a kink lies between ``x - h`` and ``x + h`` the central difference averages
the two slopes and disagrees with a perfectly good analytic gradient. The lecture's remedies are
"a smaller h" and "detect that case and ignore it"; this module does both, without ignoring
real bugs:

1. Re-estimate with smaller steps ``h/10, h/100, h/1000``. If the estimate then agrees, the
   kink was inside the step: pass, with a note.
2. If it never agrees, look at the one-sided slopes ``r_s = (f(x+s) - f(x))/s`` and
   ``l_s = (f(x) - f(x-s))/s`` at the smallest step. On a smooth function they differ by
   ``|f''|·s``, which vanishes with ``s``; on a kink they keep differing by the jump. The
   analytic value is accepted only if it lies in ``[min(l, r), max(l, r)]`` (the Clarke
   subdifferential of the function restricted to this coordinate: a valid subgradient, as
   ``ReLU'(0) = 0`` is), else the entry FAILs. This is the test asked for in BVLC/caffe#1334;
   Chainer's ``detect_nondifferentiable`` only flags kinks and cannot accept a subgradient.

Why a wrong mask is still caught: if ``x`` lies at distance ``d`` from a kink, every step
``s < d`` gives an estimate that agrees with the *correct* one-sided derivative, and every step
``s > d`` gives one-sided slopes of which one is exactly the correct derivative and the other a
mix ``(d/s)·g_near + (1 - d/s)·g_far``; a backward that takes ``g_far`` (the wrong side of the
mask) lies outside that interval by ``|g_far - g_near|·d/s``, so only a point within
``tol·s`` of the kink — numerically *on* it, where both sides are valid — can pass as a kink.

Steps are only used where the rounding error of a one-sided slope, ``2·noise/s``, is small
(below a tenth of the disagreement being explained), so that a noisy loss can never widen the
interval enough to swallow a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError
from gradcheck.judge import metrics
from gradcheck.judge.verdict import FAIL, KINK, PASS, Criteria

#: Step divisors tried, in order.
DIVISORS = (10.0, 100.0, 1000.0)
#: A smaller step is usable when the one-sided rounding error is below this fraction of the
#: disagreement at ``h`` (so the interval cannot be widened by noise to accept a bug).
USABLE_NOISE_FRACTION = 0.1
#: A one-sided interval counts as a kink when its width exceeds this many rounding errors.
KINK_WIDTH_NOISE = 4.0
#: At the first smaller step, an estimate that moved by less than this fraction of its
#: disagreement with the analytic value is stable: the function is smooth here and the
#: disagreement is real (no need for even smaller steps).
STABLE_FRACTION = 0.1


@dataclass
class Probe:
    """Central estimate and one-sided slopes at one step, for a set of entries.

    ``valid`` marks entries whose step is representable in the working dtype (``x ± s != x``).
    """

    step: np.ndarray
    central: np.ndarray
    left: np.ndarray
    right: np.ndarray
    rounding_central: np.ndarray
    rounding_side: np.ndarray
    valid: np.ndarray


def probe(evaluator: Any, leaf: int, flat_index: np.ndarray, x: np.ndarray,
          steps: np.ndarray, f0: float, noise: float, dtype: np.dtype) -> Probe:
    """Evaluate ``f(x ± s)`` for each entry and return the central and one-sided slopes.

    ``central = (f(x+s) - f(x-s)) / (x₊ - x₋)``, ``right = (f(x₊) - f(x))/(x₊ - x)``,
    ``left = (f(x) - f(x₋))/(x - x₋)`` with ``x±`` rounded to ``dtype`` (the divisors are the
    steps actually taken; Press et al., *Numerical Recipes*, §5.7). Rounding: ``noise/s`` for
    the central, ``2·noise/s`` for a one-sided slope.
    """
    xf = np.asarray(x, dtype=np.float64)
    plus = (xf + steps).astype(dtype)
    minus = (xf - steps).astype(dtype)
    hp = plus.astype(np.float64) - xf
    hm = xf - minus.astype(np.float64)
    valid = (hp > 0) & (hm > 0)
    n = xf.size
    central = np.full(n, np.nan)
    left = np.full(n, np.nan)
    right = np.full(n, np.nan)
    if np.any(valid):
        values = np.stack([plus[valid], minus[valid]], axis=1)
        try:
            f = np.real(evaluator.entries(leaf, flat_index[valid], values))
        except ForwardError:
            # A second look is optional: a forward that raises at these steps (outside its
            # domain) leaves the entries as the first look judged them.
            valid[:] = False
            f = np.zeros((0, 2))
        central[valid] = (f[:, 0] - f[:, 1]) / (hp[valid] + hm[valid])
        right[valid] = (f[:, 0] - f0) / hp[valid]
        left[valid] = (f0 - f[:, 1]) / hm[valid]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(valid, (hp + hm) / 2, np.nan)
        rc = np.where(valid, 2.0 * noise / (hp + hm), np.inf)
        rs = np.where(valid, 2.0 * noise / np.minimum(hp, hm), np.inf)
    return Probe(step, central, left, right, rc, rs, valid)


@dataclass
class KinkOutcome:
    """What the kink analysis decided for each entry it was given (aligned arrays).

    ``decided`` entries have a new ``status`` (PASS, KINK or FAIL), a ``numeric`` estimate and
    ``error_bar`` at the step that decided them, and a ``note``; undecided entries (no usable
    smaller step: the loss is too noisy) keep their original judgement.
    """

    decided: np.ndarray
    status: np.ndarray
    numeric: np.ndarray
    error_bar: np.ndarray
    note: np.ndarray
    left: np.ndarray
    right: np.ndarray
    evaluations: int = 0
    kinks: list[int] = field(default_factory=list)


def analyse(evaluator: Any, leaf: int, flat_index: np.ndarray, x: np.ndarray, analytic: np.ndarray,
            numeric_h: np.ndarray, step_h: np.ndarray, f0: float, noise: float, dtype: np.dtype,
            criteria: Criteria, scale: float, analytic_bar: np.ndarray) -> KinkOutcome:
    """Second look at entries that would FAIL at step ``h`` (see the module docstring).

    Parameters
    ----------
    evaluator : anything with ``entries(leaf, flat_index, values) -> losses``.
    leaf, flat_index : which tensor and which of its entries (only the would-be failures).
    x : the entries' values in the working arrays; analytic : their analytic gradients.
    numeric_h, step_h : the central estimate at ``h`` and the step it took.
    f0, noise : the base loss and the absolute rounding noise of one evaluation.
    dtype : dtype of the working array (steps are rounded to it).
    criteria, scale : as for :func:`gradcheck.judge.verdict.judge`.
    analytic_bar : rounding allowance of the analytic values.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = a.size
    disagreement = np.abs(a - numeric_h)
    out = KinkOutcome(np.zeros(n, bool), np.full(n, FAIL, np.int8), np.array(numeric_h, float),
                      np.full(n, np.nan), np.full(n, "", dtype=object), np.full(n, np.nan),
                      np.full(n, np.nan))
    seen = np.zeros(n, bool)         # at least one usable smaller step was evaluated
    last = {k: np.full(n, np.nan) for k in ("lo", "hi", "c", "step", "rs", "rc", "plo", "phi")}
    prev_c = np.array(numeric_h, dtype=np.float64)
    for level, divisor in enumerate(DIVISORS):
        s = np.asarray(step_h, dtype=np.float64) / divisor
        usable = ~out.decided & (2.0 * noise / s < USABLE_NOISE_FRACTION * disagreement)
        if not np.any(usable):
            break
        pos = np.flatnonzero(usable)
        before = getattr(evaluator, "count", 0)
        p = probe(evaluator, leaf, flat_index[pos], x[pos], s[pos], f0, noise, dtype)
        out.evaluations += getattr(evaluator, "count", 0) - before
        pos, p = pos[p.valid], _subset(p, p.valid)
        if pos.size == 0:
            break
        ap = a[pos]
        seen[pos] = True
        lo, hi = np.minimum(p.left, p.right), np.maximum(p.left, p.right)
        last["plo"][pos], last["phi"][pos] = last["lo"][pos], last["hi"][pos]
        for key, val in (("lo", lo), ("hi", hi), ("c", p.central), ("step", p.step),
                         ("rs", p.rounding_side), ("rc", p.rounding_central)):
            last[key][pos] = val
        # 1. agreement at the smaller step: the kink (or strong curvature) was inside h.
        dev = np.abs(ap - p.central)
        err = metrics.error(ap, p.central, criteria.measure, criteria.denominator, criteria.floor)
        agree = ((err <= criteria.tol) | (dev <= criteria.tol * scale)
                 | (dev <= p.rounding_central + analytic_bar[pos]))
        _decide(out, pos[agree], PASS, p.central[agree], (p.rounding_central
                + analytic_bar[pos])[agree],
                [f"agrees at step {st:.0e} (at h a kink or strong curvature lay within the step)"
                 for st in p.step[agree]])
        # 2. at the first smaller step: a stable estimate that still disagrees, one-sided
        #    slopes much closer together than the disagreement (no jump: smooth here) and an
        #    analytic value outside them mean a real bug; no need for smaller steps.
        if level == 0:
            margin = _margin(ap, lo, hi, p.rounding_side, analytic_bar[pos], criteria)
            inside = (ap >= lo - margin) & (ap <= hi + margin)
            stable = np.abs(p.central - prev_c[pos]) <= STABLE_FRACTION * dev
            narrow = (hi - lo) <= STABLE_FRACTION * dev
            smooth_fail = ~agree & ~inside & stable & narrow
            wide = (hi - lo) > KINK_WIDTH_NOISE * p.rounding_side
            _decide(out, pos[smooth_fail], FAIL, p.central[smooth_fail],
                    (p.rounding_central + analytic_bar[pos])[smooth_fail],
                    [_outside_note(lo_k, hi_k, st) if w else
                     f"disagrees at step {st:.0e} as well (smooth here, not a kink)"
                     for lo_k, hi_k, st, w in zip(lo[smooth_fail], hi[smooth_fail],
                                                  p.step[smooth_fail], wide[smooth_fail])])
        prev_c[pos] = p.central
    # 3. entries still undecided but probed: kink if the analytic value is a subgradient.
    rest = np.flatnonzero(~out.decided & seen)
    if rest.size:
        lo, hi, rs = last["lo"][rest], last["hi"][rest], last["rs"][rest]
        ar = a[rest]
        # the smooth part of a one-sided slope moves by ~|f''|·s/2: estimated from how far that
        # side moved since the previous (10× larger) step, ~4.5·|f''|·s.
        # Per side: a side that straddles a nearby kink moves by ~0.9·jump·d/s between steps,
        # a ninth of which is far less than the jump·d/s by which a wrong-side value lies out.
        below = np.nan_to_num(np.abs(lo - last["plo"][rest]) / 9.0)
        above = np.nan_to_num(np.abs(hi - last["phi"][rest]) / 9.0)
        margin = _margin(ar, lo, hi, rs, analytic_bar[rest], criteria)
        kinky = (hi - lo) > KINK_WIDTH_NOISE * rs
        inside = (ar >= lo - margin - below) & (ar <= hi + margin + above)
        ok = kinky & inside
        for k, j in enumerate(rest):
            st = last["step"][j]
            if ok[k]:
                note = (f"kink: one-sided slopes [{lo[k]:.4g}, {hi[k]:.4g}] at step {st:.0e}; "
                        "the analytic value is a valid subgradient")
            elif kinky[k]:
                note = _outside_note(lo[k], hi[k], st)
            else:
                note = f"disagrees at step {st:.0e} as well"
            bar = last["rc"][j] + analytic_bar[j] + (0.5 * (hi[k] - lo[k]) if ok[k] else 0.0)
            _decide(out, np.array([j]), KINK if ok[k] else FAIL, last["c"][j:j + 1],
                    np.array([bar]), [note])
        out.left[rest], out.right[rest] = lo, hi
        out.kinks = [int(j) for j in rest[ok]]
    return out


def _outside_note(lo: float, hi: float, step: float) -> str:
    return (f"at a kink, but the analytic value lies outside the one-sided slopes "
            f"[{lo:.4g}, {hi:.4g}] (step {step:.0e}): not a subgradient")


def _margin(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, rounding_side: np.ndarray,
            analytic_bar: np.ndarray, criteria: Criteria) -> np.ndarray:
    """How far outside ``[lo, hi]`` the analytic value may lie: rounding plus tolerance."""
    if criteria.measure == "absolute":
        tol = np.full(a.shape, criteria.tol)
    else:
        z = np.maximum(np.abs(a), np.maximum(np.abs(lo), np.abs(hi)))
        tol = criteria.tol * np.maximum(z, criteria.floor)
    return rounding_side + analytic_bar + tol


def _decide(out: KinkOutcome, pos: np.ndarray, status: int, numeric: np.ndarray,
            bar: np.ndarray, notes: list[str]) -> None:
    if pos.size == 0:
        return
    out.decided[pos] = True
    out.status[pos] = status
    out.numeric[pos] = numeric
    out.error_bar[pos] = bar
    out.note[pos] = np.array(notes, dtype=object)


def _subset(p: Probe, mask: np.ndarray) -> Probe:
    return Probe(*(getattr(p, f)[mask] for f in ("step", "central", "left", "right",
                                                 "rounding_central", "rounding_side", "valid")))
