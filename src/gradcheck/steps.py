"""Step-size policies: how far each entry is moved by a finite-difference scheme."""

from __future__ import annotations

import numpy as np


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
