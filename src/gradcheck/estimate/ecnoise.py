"""The loss's computational noise, measured (Moré & Wild's ECnoise), not inferred from a dtype.

A forward that computes in float32 and returns a Python float, a loss with a large constant
part, a threaded reduction: the rounding noise of the loss is whatever its arithmetic makes it,
and the dtype of the returned value says little about it. Moré & Wild measure it from a
*difference table* of ``m + 1`` (here 7) values ``f_i = f(θ + (i - m/2)·δ·v)`` on a line:

* the k-th differences ``Δ^k f_i`` of a smooth function shrink like ``δ^k``, while those of
  independent noise of standard deviation ``σ`` have ``E[(Δ^k f)²] = σ²·(2k)!/(k!)²``;
* so ``σ_k = sqrt(γ_k · mean_i (Δ^k f_i)²)`` with ``γ_k = (k!)²/(2k)!`` estimates ``σ`` at
  every level ``k`` where the smooth part has died out. A level is accepted when ``σ_k``,
  ``σ_{k+1}``, ``σ_{k+2}`` agree within a factor 4 and the k-th differences change sign
  (noise, not a smooth trend).
* When a table's values are mostly equal, the smallest non-zero difference between them is
  the loss's resolution (a float32 loss returned as a Python float moves by whole float32
  ulps), and the noise is never taken below half of it.
* If no level is accepted while the values are distinct, ``δ`` is too large (the paper also
  rejects values that differ in their first digit; that test is left out here, because a loss
  near zero — a sum whose terms cancel — has every digit moving while its noise is fine);
  if more than half of them are equal, ``δ`` is too small (the loss did not move). ``δ`` is
  then changed by a factor 100 and the table is evaluated again.

Reference: J. J. Moré and S. M. Wild, "Estimating computational noise", SIAM J. Sci. Comput.
33(3), 1292–1314, 2011 (their ECnoise; written here from the paper's description).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np

from gradcheck.judge.metrics import chunked_rms
from gradcheck.params.snapshot import flat_chunks

#: Points of the difference table (the paper recommends 7).
POINTS = 7
#: Relative spacing ``δ`` of the first table, and the factor by which it is changed.
FIRST_DELTA = 1e-6
CHANGE = 100.0
#: Tables tried before giving up (then the noise is inferred from the loss's dtype).
TRIES = 6
#: The measured σ is multiplied by this. Seven values estimate a standard deviation only to
#: within a factor of about 2 (Moré & Wild 2011, §5); the error bars built on σ carry their own
#: factors (``K_ROUND``, ``K_FAIL`` in :mod:`gradcheck.judge.ladder`), and a larger factor here
#: was measured to cost decisions (1.5 or 2 leave ReLU nets at init scale 1e-4 above 1 %
#: inconclusive) without removing a false FAIL.
SAFETY = 1.0
#: Checks expected to take fewer evaluations than this assume the noise instead of measuring it.
WORTH_MEASURING = 8
#: Lines (coordinates) tried at most, and evaluations spent on one line at most.
MAX_LINES = 3
MAX_EVALUATIONS = 36
#: A level is confirmed at ``δ/CONFIRM`` or ``δ·CONFIRM``, where the two estimates must agree
#: within a factor ``AGREE``.
CONFIRM, AGREE = 10.0, 3.0
#: Without a usable table, the noise is taken as this many rounding units of the loss's
#: dtype, ``FALLBACK_ULPS·ε·|f0|`` (conservative: a forward that sums many terms).
FALLBACK_ULPS = 16.0

OK, TOO_SMALL, TOO_LARGE = "ok", "step too small", "step too large"


@dataclass(frozen=True)
class Table:
    """What one difference table says: ``sigma`` (``None`` unless ``status == OK``), the
    accepted ``level``, and ``status`` (``OK``, ``TOO_SMALL`` or ``TOO_LARGE``)."""

    sigma: float | None
    level: int
    status: str


def gamma(k: int) -> float:
    """``γ_k = (k!)² / (2k)!``: the variance of the k-th difference of unit white noise is
    ``1/γ_k`` (Moré & Wild 2011, §3)."""
    return factorial(k) ** 2 / factorial(2 * k)


def difference_table(values: np.ndarray) -> Table:
    """Noise standard deviation from equally spaced values (see the module docstring)."""
    f = np.asarray(values, dtype=np.float64)
    m = f.size - 1
    if m < 3 or not np.all(np.isfinite(f)):
        return Table(None, 0, TOO_LARGE)
    lo, hi = float(f.min()), float(f.max())
    unit = max(abs(lo), abs(hi))
    if unit > 0:  # in units of |f| (a table of 1e300s must not overflow), scaled back below
        t = difference_table(f / unit) if unit != 1.0 else None
        if t is not None:
            return Table(None if t.sigma is None else t.sigma * unit, t.level, t.status)
    sigmas, sign_change = [], []
    d = f.copy()
    for k in range(1, m + 1):
        d = np.diff(d)
        sigmas.append(float(np.sqrt(gamma(k) * np.mean(d * d))))
        sign_change.append(bool(d.min() < 0 < d.max()))
    for k in range(m - 2):
        window = sigmas[k:k + 3]
        if min(window) > 0 and max(window) <= 4.0 * min(window) and sign_change[k]:
            return Table(sigmas[k], k + 1, OK)
    if np.unique(f).size <= (m + 1) // 2:
        return Table(None, 0, TOO_SMALL)
    return Table(None, 0, TOO_LARGE)


@dataclass(frozen=True)
class Noise:
    """The loss's noise near θ.

    ``sigma``: standard deviation of one evaluation's rounding noise (absolute);
    ``measured``: whether a difference table gave it (else it is the dtype's floor);
    ``delta``: the relative spacing of the accepted table; ``evaluations``: loss evaluations
    spent.
    """

    sigma: float
    measured: bool
    delta: float
    evaluations: int
    #: ε of the precision the loss was computed in (float32 for a float32 result returned
    #: as a Python float), see :func:`computed_dtype`
    eps: float = float(np.finfo(np.float64).eps)

    def relative(self, f0: float) -> float:
        """``σ / max(|f0|, σ/ε)``: the noise relative to the loss — or, for a loss near zero
        whose terms cancel, relative to the magnitude whose rounding it is."""
        return self.sigma / max(abs(f0), self.sigma / self.eps, np.finfo(np.float64).tiny)


def floor_sigma(f0: float, dtype: np.dtype | None) -> float:
    """The least noise a loss returned in ``dtype`` can have: its own rounding,
    ``ε(dtype)·|f0| / 4`` (about the standard deviation of rounding to the nearest ulp) — in
    float32 when ``f0`` is exactly a float32 number with more than float16's 11 significant
    bits (a float64 result almost never is: the forward computed in float32 and returned a
    Python float)."""
    eps = float(np.finfo(computed_dtype(f0, dtype)).eps)
    return max(0.25 * eps * abs(f0), float(np.finfo(np.float64).smallest_subnormal))


def computed_dtype(f0: float, dtype: np.dtype | None) -> np.dtype:
    """The precision the loss was computed in, as far as its value tells: ``dtype``, or
    float32 for a float64 value whose significand has 12 … 24 bits (exactly a float32 number,
    but not a round one such as 0.5 or 11·2⁻⁵³ — a float64 result almost never is)."""
    dt = np.dtype(dtype if dtype is not None else np.float64)
    if dt.itemsize > 4 and np.isfinite(f0) and f0 != 0:
        if 12 <= significant_bits(f0) <= 24 and float(np.float32(f0)) == f0:
            return np.dtype(np.float32)
    return dt


def significant_bits(x: float) -> int:
    """Bits of ``x``'s significand up to its last 1 (``0.5`` → 1, ``0.1`` → 53)."""
    m, _ = np.frexp(abs(float(x)))
    n = int(m * 2.0**53)
    return 53 - ((n & -n).bit_length() - 1) if n else 0


def measure(line: Callable[[float, np.ndarray], np.ndarray], f0: float,
            dtype: np.dtype | None, jitter: float = 0.0) -> Noise:
    """Measure the noise of ``f`` along a line through θ.

    ``line(delta, t)`` returns ``f(θ + t_i·δ·v)`` for the offsets ``t`` (``-3 … 3`` without
    0; ``f0`` is the centre). A table's level is confirmed by a second table at ``δ/10`` or,
    failing that, at ``10·δ``: noise does not depend on the spacing, while a kink crossing the
    line (or a smooth part not yet died out) gives a "noise" proportional to ``δ`` — so the
    two must agree within a factor ``AGREE``; the larger is kept. (``δ/10`` may not move a
    parameter that the forward rounds to float32; ``10·δ`` may cross a kink: one of the two
    neighbours is enough.) The result is never below :func:`floor_sigma`, half the loss's
    resolution, nor ``jitter`` (the difference of two evaluations at θ).
    """
    half = POINTS // 2
    t = np.array([i - half for i in range(POINTS) if i != half], dtype=np.float64)
    eps = float(np.finfo(computed_dtype(f0, dtype)).eps)
    floor = max(floor_sigma(f0, dtype), jitter)
    spent, quantum = 0, np.inf

    def table_at(delta: float) -> Table:
        nonlocal spent, quantum
        values = np.insert(np.asarray(line(delta, t), dtype=np.float64), half, f0)
        spent += t.size
        tb = difference_table(values)
        if tb.status == TOO_SMALL:  # mostly equal values: their steps are the resolution
            quantum = min(quantum, resolution(values))
        return tb

    delta = FIRST_DELTA
    for _ in range(TRIES):
        tb = table_at(delta)
        if tb.status == OK:
            for other in (delta / CONFIRM, delta * CONFIRM):
                nb = table_at(other)
                if nb.status == OK and max(nb.sigma, tb.sigma) <= AGREE * min(nb.sigma,
                                                                              tb.sigma):
                    sigma = SAFETY * max(nb.sigma, tb.sigma)
                    return Noise(max(sigma, floor, _half(quantum)), True, delta, spent, eps)
            delta /= CHANGE
        elif tb.status == TOO_SMALL:
            delta *= CHANGE
        else:
            delta /= CHANGE
        if spent >= MAX_EVALUATIONS:
            break
    return Noise(max(FALLBACK_ULPS * eps * abs(f0), floor, _half(quantum)), False, delta, spent,
                 eps)


def assumed(f0: float, dtype: np.dtype | None, jitter: float = 0.0) -> Noise:
    """The noise without measuring it, ``FALLBACK_ULPS·ε·|f0|`` in the precision the loss was
    computed in (:func:`computed_dtype`): for checks of a handful of entries, where a
    difference table would cost more than the check."""
    eps = float(np.finfo(computed_dtype(f0, dtype)).eps)
    return Noise(max(FALLBACK_ULPS * eps * abs(f0), floor_sigma(f0, dtype), jitter), False,
                 0.0, 0, eps)


def resolution(values: np.ndarray) -> float:
    """The smallest non-zero difference between finite values: a loss computed in float32
    and returned as a Python float moves in steps of its float32 ulp, whatever the step."""
    v = np.unique(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    d = np.diff(v)
    return float(d.min()) if d.size else np.inf


def _half(quantum: float) -> float:
    return 0.5 * quantum if np.isfinite(quantum) else 0.0


def measure_at_entries(evaluator: Any, arrays: list[np.ndarray], grads: list[np.ndarray],
                       f0: float, jitter: float) -> Noise:
    """:func:`measure` on a line along one coordinate: the entry whose analytic gradient is
    largest (the loss moves most along it) or a random entry, in the largest tensor and in the
    tensor with the largest gradient — the next one when a line gives no usable table.
    ``x_k + t·δ·max(|x_k|, rms)`` are evaluated with the evaluator's ``entries`` call, so a
    forward that raises or writes into its params there is named with that entry."""
    big = int(np.argmax([a.size for a in arrays]))
    strong = int(np.argmax([chunked_rms([g]) for g in grads]))
    rng = np.random.default_rng(0)
    candidates = []
    for j in dict.fromkeys([big, strong]):
        if arrays[j].size:
            candidates += [(j, _argmax_abs(grads[j])), (j, int(rng.integers(arrays[j].size)))]
    spent, noise = 0, None
    for j, k in list(dict.fromkeys(candidates))[:MAX_LINES]:
        x = np.asarray(arrays[j]).reshape(-1)
        xk = float(np.real(x[k]))
        unit = max(abs(xk), chunked_rms([arrays[j]])) or 1.0

        def line(delta: float, t: np.ndarray, j=j, k=k, xk=xk, unit=unit
                 ) -> np.ndarray:
            with np.errstate(over="ignore", invalid="ignore"):
                values = (xk + t * delta * unit).astype(arrays[j].dtype)[None, :]
            return np.real(np.asarray(evaluator.entries(j, np.array([k]), values),
                                      dtype=np.complex128))[0]

        noise = measure(line, float(np.real(f0)), getattr(evaluator, "loss_dtype", None),
                        jitter)
        spent += noise.evaluations
        if noise.measured:
            break
    if noise is None:
        noise = measure(lambda d, t: np.full(t.size, np.nan), float(np.real(f0)), None, jitter)
    return Noise(noise.sigma, noise.measured, noise.delta, spent, noise.eps)


def _chunks(values: np.ndarray):
    for c in flat_chunks(np.asarray(values)):
        yield (c.real if np.iscomplexobj(c) else c)


def _argmax_abs(values: np.ndarray) -> int:
    """Flat index of the largest finite ``|value|``, chunk by chunk."""
    best, where, offset = -1.0, 0, 0
    for c in _chunks(values):
        a = np.where(np.isfinite(c), np.abs(c), -1.0)
        if a.size:
            k = int(np.argmax(a))
            if a[k] > best:
                best, where = float(a[k]), offset + k
        offset += c.size
    return where
