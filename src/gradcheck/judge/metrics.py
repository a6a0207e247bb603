"""Error measures between an analytic value ``a`` and a numeric estimate ``n`` (seed, §3)."""

from __future__ import annotations

import numpy as np

from gradcheck.params.snapshot import flat_chunks

DENOMINATORS = ("max", "abs_analytic", "sum")
MEASURES = ("relative", "absolute")


def absolute_error(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``|a - n|``. Not informative on its own: |10.001 - 10.0001| and |1e-3 - 1e-4| look
    alike, which is why the relative error is the default."""
    return np.abs(np.asarray(a, dtype=np.float64) - np.asarray(n, dtype=np.float64))


def denominator(a: np.ndarray, n: np.ndarray, kind: str = "max", floor: float = 1e-8
                ) -> np.ndarray:
    """Scale ``Z`` of the relative error, never below ``floor``.

    ``"max"`` (default): ``Z = max(|a|, |n|)``; ``"abs_analytic"``: ``Z = |a|``;
    ``"sum"``: ``Z = |a| + |n|``. The floor (seed: 1e-8) keeps ``Z`` finite when both are 0
    (CS231n notes, "Gradient checks").
    """
    a = np.abs(np.asarray(a, dtype=np.float64))
    n = np.abs(np.asarray(n, dtype=np.float64))
    if kind == "max":
        z = np.maximum(a, n)
    elif kind == "abs_analytic":
        z = a
    elif kind == "sum":
        z = a + n
    else:
        raise ValueError(f"unknown denominator {kind!r}; choose one of {DENOMINATORS}")
    return np.maximum(z, floor)


def relative_error(a: np.ndarray, n: np.ndarray, kind: str = "max", floor: float = 1e-8
                   ) -> np.ndarray:
    """``|a - n| / Z`` with ``Z`` from :func:`denominator`."""
    return absolute_error(a, n) / denominator(a, n, kind, floor)


def error(a: np.ndarray, n: np.ndarray, measure: str = "relative", kind: str = "max",
          floor: float = 1e-8) -> np.ndarray:
    """The error measure named by ``measure`` (``"relative"`` or ``"absolute"``)."""
    if measure == "absolute":
        return absolute_error(a, n)
    if measure == "relative":
        return relative_error(a, n, kind, floor)
    raise ValueError(f"unknown error measure {measure!r}; choose one of {MEASURES}")


def rms(values: np.ndarray) -> float:
    """Root mean square of the finite entries of ``values`` (0 if none), without overflow:
    ``m·sqrt(mean((v/m)²))`` with ``m = max|v|`` (gradients of 1e200 are not infinite)."""
    v = np.asarray(values)
    v = (v.real if np.iscomplexobj(v) else v).astype(np.float64, copy=False).reshape(-1)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0
    m = float(np.max(np.abs(v)))
    if m == 0.0:
        return 0.0
    return m * float(np.sqrt(np.mean((v / m) ** 2)))


def chunked_rms(arrays: list[np.ndarray]) -> float:
    """:func:`rms` over several arrays, in C-order chunks: no array-sized temporaries."""
    from_chunks = [(c.real if np.iscomplexobj(c) else c) for a in arrays
                   for c in flat_chunks(np.asarray(a))]
    m = 0.0
    for c in from_chunks:
        f = c[np.isfinite(c)]
        if f.size:
            m = max(m, float(np.max(np.abs(f))))
    if m == 0.0:
        return 0.0
    total, count = 0.0, 0
    for c in from_chunks:
        u = c[np.isfinite(c)].astype(np.float64) / m
        total += float(np.dot(u, u))
        count += u.size
    return m * float(np.sqrt(total / count))


def chunked_max_abs(a: np.ndarray) -> float:
    """``max |a|`` over the finite entries, in chunks (0 for an empty array)."""
    m = 0.0
    for c in flat_chunks(np.asarray(a)):
        c = c.real if np.iscomplexobj(c) else c
        f = c[np.isfinite(c)]
        if f.size:
            m = max(m, float(np.max(np.abs(f))))
    return m
