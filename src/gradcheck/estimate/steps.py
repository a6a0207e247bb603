"""Step-size policies: how far each entry is moved by a finite-difference scheme."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.estimate.schemes import Estimate


def nominal_steps(x: np.ndarray, h: float, relative: bool) -> np.ndarray:
    """The step asked for at each entry, before rounding to the entry's dtype.

    absolute: ``h_i = h``; relative: ``h_i = h·|x_i|`` (``h`` where ``x_i == 0``, so that an
    entry at zero still moves).
    """
    x = np.asarray(x)
    steps = np.full(x.shape, float(h))
    if relative:
        mag = np.abs(x.real if np.iscomplexobj(x) else x).astype(np.float64)
        steps = np.where(mag > 0, h * mag, h)
    return steps


#: The step is chosen for the typical rounding of a loss (about 2 ulps, ``TYPICAL_NOISE`` times
#: the 16-ulp bound used in error bars); the error bar itself stays conservative.
TYPICAL_NOISE = 0.125
#: The pilot step is this many times the textbook optimum ``ε_f^(1/(p+1))·max(1, |x|)``, so
#: that its truncation error is large enough to measure.
PILOT_FACTOR = 4.0


def auto_estimate(scheme: Any, evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  x: np.ndarray, f0: float, noise: float, dtype: np.dtype) -> Any:
    """``h="auto"``: a step per entry from the measured truncation constant; returns an Estimate.

    For a scheme of order ``p`` the error at step ``h`` is ``R/h + C·h^p`` (rounding plus
    truncation). ``R`` is the scheme's typical rounding times ``h``; ``C`` is measured per entry
    from the scheme at a pilot step ``h₁`` and at ``2h₁``: ``D(2h₁) - D(h₁) ≈ C·h₁^p·(2^p - 1)``.
    The total is smallest at ``h* = (R/(p·C))^(1/(p+1))`` (FiniteDifferences.jl's
    ``estimate_step``, with the derivative bound measured instead of assumed; Gill, Murray,
    Saunders & Wright, *SIAM J. Sci. Stat. Comput.* 4(2), 1983). The pilot is
    ``h₁ = PILOT_FACTOR·(noise/|f0|)^(1/(p+1))·max(1, |x_i|)`` — relative to the entry's
    magnitude and to the loss's precision (``noise`` comes from the dtype). When the difference
    of the two pilots is within rounding, truncation is already negligible at ``h₁`` and the
    pilot estimate is kept; otherwise the scheme is evaluated once more at ``h* ≤ h₁``. Cost:
    ``2e`` or ``3e`` evaluations per entry for a scheme of ``e`` evaluations.

    ``evaluate(mask, points)`` returns the losses at ``points`` for the entries ``x[mask]``.
    """
    p = max(int(scheme.order), 1)
    xf = np.asarray(x, dtype=np.float64)
    rel = max(noise / max(abs(float(np.real(f0))), 1e-300), float(np.finfo(dtype).eps))
    h1 = PILOT_FACTOR * rel ** (1.0 / (p + 1)) * np.maximum(1.0, np.abs(xf))
    every = np.ones(xf.shape, bool)
    pts1, pts2 = scheme.points(xf, h1, dtype), scheme.points(xf, 2 * h1, dtype)
    both = evaluate(every, np.concatenate([pts1, pts2], axis=1))
    e = pts1.shape[1]
    est1 = scheme.combine(xf, pts1, both[:, :e], f0, noise)
    est2 = scheme.combine(xf, pts2, both[:, e:], f0, noise)
    diff = np.abs(est2.value - est1.value)
    trunc1 = diff / (2.0**p - 1.0)
    R = TYPICAL_NOISE * est1.rounding * est1.step
    C = trunc1 / np.maximum(est1.step, 1e-300) ** p
    resolved = diff > 2.0 * (est1.rounding + est2.rounding)
    with np.errstate(divide="ignore", invalid="ignore"):
        h_star = (R / (p * C)) ** (1.0 / (p + 1))
    h_star = np.where(resolved & np.isfinite(h_star), np.clip(h_star, 1e-4 * h1, h1), h1)
    again = h_star < 0.7 * h1
    value, rounding, step = est1.value.copy(), est1.rounding.copy(), est1.step.copy()
    truncation = trunc1.copy()
    right = None if est1.right is None else est1.right.copy()
    left = None if est1.left is None else est1.left.copy()
    if again.any():
        pts = scheme.points(xf[again], h_star[again], dtype)
        est = scheme.combine(xf[again], pts, evaluate(again, pts), f0, noise)
        value[again], rounding[again], step[again] = est.value, est.rounding, est.step
        truncation[again] = C[again] * est.step**p
        if right is not None and est.right is not None:
            right[again] = est.right
        if left is not None and est.left is not None:
            left[again] = est.left
    return Estimate(value, rounding, truncation, step, right, left)
