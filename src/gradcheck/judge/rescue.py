"""The complex step's rescue of entries a real scheme left inconclusive (``method="auto"``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck.estimate.schemes import get_scheme
from gradcheck.judge.verdict import INCONCLUSIVE, Criteria, Judgement, judge


def rescue_inconclusive(evaluator: Any, leaf: int, idx: np.ndarray, x: np.ndarray,
                        analytic: np.ndarray, j: Judgement, numeric: np.ndarray, bar: np.ndarray,
                        criteria: Criteria, scale: float, analytic_bar: np.ndarray
                        ) -> tuple[Judgement, np.ndarray, np.ndarray]:
    """Re-estimate the entries a real scheme left inconclusive with the complex step.

    ``Im f(x + ih)/h`` at ``h = 1e-20`` has no cancellation, so an entry whose central
    difference drowned in rounding (a gradient near round-off, a float32-level loss) gets an
    estimate with error bar ``~4ε|n|`` and is judged again (:func:`gradcheck.judge.verdict.judge`).
    Used by ``method='auto'`` when the complex step is safe but slower than the real scheme.
    """
    m = np.asarray(j.status) == INCONCLUSIVE
    if not m.any():
        return j, numeric, bar
    scheme = get_scheme("complex")
    xm = np.asarray(x)[m]
    pts = scheme.points(xm, np.full(xm.shape, scheme.default_h), np.complex128)
    est = scheme.combine(xm, pts, evaluator.entries(leaf, np.asarray(idx)[m], pts), 0.0, 0.0)
    new_bar = est.error_bar + np.asarray(analytic_bar)[m]
    jm = judge(np.asarray(analytic)[m], est.value, new_bar, criteria, scale)
    numeric, bar = np.array(numeric, dtype=np.float64), np.array(bar, dtype=np.float64)
    numeric[m], bar[m] = est.value, new_bar
    merged = {}
    for name in ("status", "error", "abs_error", "reason"):
        arr = getattr(j, name).copy()
        arr[m] = getattr(jm, name)
        if name == "reason":
            arr[m] = [f"{r}; complex step" if r else "complex step" for r in arr[m]]
        merged[name] = arr
    return replace(j, **merged), numeric, bar
