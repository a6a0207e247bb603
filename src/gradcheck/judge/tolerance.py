"""Tolerance policy by dtype: what precision an analytic gradient can be held to."""

from __future__ import annotations

import numpy as np

#: Rounding noise of an analytic gradient entry, in units of ε(dtype)·(|a| + tensor scale).
ANALYTIC_ULPS = 64.0


def effective_tol(tol: float, analytic_dtype: np.dtype) -> float:
    """Tolerance adapted to the analytic gradient's precision: ``max(tol, √ε(dtype))``.

    A float32 backward cannot be more accurate than a few ulps times the conditioning of its
    sums, so asking for 1e-5 would fail correct float32 code; √ε32 ≈ 3.5e-4.
    """
    if not np.issubdtype(analytic_dtype, np.inexact):
        return tol
    return max(tol, float(np.sqrt(np.finfo(analytic_dtype).eps)))


def tolerance_note(grads: list[np.ndarray], tol: float) -> list[str]:
    """Say which tolerance low-precision analytic gradients were judged with."""
    low = sorted({str(g.dtype) for g in grads if np.issubdtype(g.dtype, np.floating)
                  and effective_tol(tol, g.dtype) > tol})
    return [f"{dt} analytic gradients are judged with tol = max({tol:g}, √ε({dt})) = "
            f"{effective_tol(tol, np.dtype(dt)):.2e}: a {dt} backward cannot be more accurate."
            for dt in low]
