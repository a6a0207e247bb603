"""The rounding noise of one loss evaluation, the floor below which differences mean nothing."""

from __future__ import annotations

import numpy as np

#: Rounding noise of one loss evaluation, in units of ε·|f|. A forward that sums many terms
#: accumulates several ulps; 16 keeps a correct model from being called wrong by rounding.
NOISE_ULPS = 16.0


def noise_level(f0: float, dtype: np.dtype) -> float:
    """Absolute rounding noise of one loss evaluation: ``NOISE_ULPS · ε(dtype) · |f0|``.

    The rounding error of a sum of n terms is bounded by about ``n·ε·Σ|terms|`` (Higham,
    *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §4.2) and is typically
    ``√n·ε·|f|``; ``NOISE_ULPS`` ulps of ``|f0|`` is the working assumption.
    """
    eps = float(np.finfo(dtype).eps)
    return NOISE_ULPS * eps * max(abs(f0), float(np.finfo(dtype).tiny))
