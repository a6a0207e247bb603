"""Small but significant discrepancies: below the tolerance, far above the error bars.

A tensor whose entries all pass the tolerance can still be wrong: a data-term gradient
accumulated twice under a dominating weight decay, or a uniform scale error of 1e-6, stays
below ``tol = 1e-5`` while it is thousands of error bars away from a float64 numerical
gradient. Such a tensor is *reported* (never silently passed), and fails with ``strict=True``.

The test is deliberately hard to trigger on a correct model:

1. **candidate**: the median, over the tensor's passed entries, of ``|a - n| / bar`` exceeds
   ``Z_SIGNIFICANT`` (``bar``: the estimate's error bar at its step);
2. **confirmation**: up to ``SAMPLE`` of those entries are estimated again at ``4h`` and
   ``h/4`` around their step ``h`` and validated as in :mod:`gradcheck.judge.ladder` (one-sided
   slopes that converge at first order, differences at second order); the error bar then
   includes Richardson's truncation estimate. The tensor is reported when at least
   ``MIN_CONFIRMED`` entries are validated and the median of ``|a - D(h)| / bar`` over them
   still exceeds ``Z_SIGNIFICANT``.

The likely cause is named from the fit ``a ≈ (1 + c)·n``: a consistent ``c`` is a uniform
relative error (a constant slightly off); otherwise a small term is wrong under a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.judge import ladder

#: Discrepancy, in error bars, above which a passed tensor is looked at (and reported).
Z_SIGNIFICANT = 10.0
#: Entries re-estimated to confirm, and how many must be validated.
SAMPLE = 16
MIN_CONFIRMED = 3
SMALL_TERM = ("a small term is wrong under a larger one: check with the dominating term "
              "switched off")
#: A fitted scale ``c`` explains the discrepancy when the residual is below this fraction.
UNIFORM_FIT = 0.2


@dataclass(frozen=True)
class Significant:
    """A tensor reported for a small but significant discrepancy.

    ``relative``: median ``|a - n| / Z`` (below the tolerance); ``sigmas``: median
    ``|a - n| / bar`` over the confirmed entries; ``confirmed``: how many entries were
    validated; ``scale``: the fitted uniform relative error ``c`` (``a ≈ (1 + c)·n``) or
    ``None``; ``cause``: one sentence; ``how``: how it was confirmed when not entry by entry
    (along a direction, :mod:`gradcheck.judge.group`).
    """

    tensor: str
    relative: float
    sigmas: float
    confirmed: int
    scale: float | None
    cause: str
    how: str | None = None

    @property
    def sentence(self) -> str:
        return (f"'{self.tensor}' differs from the numerical gradient by a relative "
                f"{self.relative:.1e}: below the tolerance, but {self.sigmas:.0f} times its "
                f"error bar ({self.how or 'confirmed at two steps'} on {self.confirmed} "
                "entries) — "
                f"{self.cause}. strict=True fails it.")

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "relative": self.relative, "sigmas": self.sigmas,
                "confirmed": self.confirmed, "scale": self.scale, "cause": self.cause,
                "how": self.how}


def is_candidate(a: np.ndarray, n: np.ndarray, bar: np.ndarray, passed: np.ndarray) -> bool:
    """Step 1 of the module docstring."""
    if not passed.any():
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(a[passed] - n[passed]) / bar[passed]
    z = z[np.isfinite(z)]
    return bool(z.size) and float(np.median(z)) > Z_SIGNIFICANT


def pick(a: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Up to ``SAMPLE`` eligible positions, largest ``|a|`` first (best resolved)."""
    pos = np.flatnonzero(eligible)
    return pos[np.argsort(-np.abs(a[pos]), kind="stable")[:SAMPLE]]


def confirm(big: ladder.Level, mid: ladder.Level, small: ladder.Level, a: np.ndarray,
            analytic_bar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2: per entry, whether the estimate ``D(s)`` at the middle of three steps
    ``ρs, s, s/ρ`` is validated — both pairs smooth (the gap test of
    :mod:`gradcheck.judge.ladder`) and the differences of second order (``D(ρs) - D(s) ≈
    ρ²·(D(s) - D(s/ρ))``, or both within rounding) — and ``|a - D(s)| / bar`` with
    ``bar`` = rounding + Richardson truncation (three smooth, ordered steps leave no room
    for a kink)."""
    upper = ladder.analyse_pair(big, mid)
    lower = ladder.analyse_pair(mid, small)
    d_big, d_small = big.central - mid.central, mid.central - small.central
    n_big, n_small = big.rounding + mid.rounding, mid.rounding + small.rounding
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ordered = ladder.second_order(d_small, d_big, n_small, n_big, (big.step / mid.step) ** 2)
        z = np.abs(a - mid.central) / (upper.bar_small + analytic_bar)
    return upper.smooth & lower.smooth & ordered & np.isfinite(z), z


def cause(a: np.ndarray, n: np.ndarray) -> tuple[float | None, str]:
    """Name the likely cause from ``a ≈ (1 + c)·n`` (least squares)."""
    m = float(np.max(np.abs(n))) if n.size else 0.0
    if m > 0:
        a, n = a / m, n / m
    nn = float(n @ n)
    if nn > 0:
        c = float(a @ n) / nn - 1.0
        if np.linalg.norm(a - (1.0 + c) * n) <= UNIFORM_FIT * np.linalg.norm(a - n):
            return c, (f"a uniform relative error of {c:+.1e} (a constant factor slightly off, "
                       "or a small term proportional to the gradient counted wrongly)")
    return None, SMALL_TERM


def report(name: str, a: np.ndarray, n: np.ndarray, z: np.ndarray, valid: np.ndarray,
           allowance: np.ndarray) -> Significant | None:
    """The :class:`Significant` record when the confirmation holds, else ``None``."""
    if np.count_nonzero(valid) < min(MIN_CONFIRMED, valid.size):
        return None
    zv = z[valid]
    if float(np.median(zv)) <= Z_SIGNIFICANT:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(a[valid] - n[valid]) / allowance[valid]
    scale, why = cause(a[valid], n[valid])
    return Significant(name, float(np.median(rel)), float(np.median(zv)),
                       int(np.count_nonzero(valid)), scale, why)
