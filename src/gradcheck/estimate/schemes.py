"""Finite-difference and complex-step schemes, each with an error bar (seed §2 and §6).

A scheme is vectorised over a chunk of entries of one tensor: :meth:`Scheme.points` says which
values to write into each entry, the evaluator returns the loss at each of them, and
:meth:`Scheme.combine` turns those losses into an :class:`Estimate` carrying its own error bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Estimate:
    """Numeric derivative of the loss along each entry of a chunk, with its error bar.

    Attributes
    ----------
    value : the estimate ``n_i``.
    rounding : bound on the error caused by rounding in the loss, ``~ noise(f) / h``.
    truncation : estimated truncation error of the stencil (``nan`` when unknown).
    right, left : one-sided slopes ``(f(x+h) - f(x))/h`` and ``(f(x) - f(x-h))/h`` when the
        scheme has them (kink evidence), else ``None``.
    step : the step actually taken per entry.
    """

    value: np.ndarray
    rounding: np.ndarray
    truncation: np.ndarray
    step: np.ndarray
    right: np.ndarray | None = None
    left: np.ndarray | None = None

    @property
    def error_bar(self) -> np.ndarray:
        """Total error bar: rounding plus truncation (where known)."""
        return self.rounding + np.nan_to_num(self.truncation, nan=0.0)


class Scheme:
    """Base class. Subclasses define the stencil and how to combine it."""

    name: str = ""
    order: int = 0
    evaluations: int = 0  # loss evaluations per entry, the base value f(x) excluded
    is_complex: bool = False
    default_h: float = 1e-5
    formula: str = ""

    def points(self, x: np.ndarray, h: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Values to write into each entry: shape ``(len(x), evaluations)``.

        They are rounded to ``dtype``; :meth:`combine` divides by the steps actually taken
        (``fl(x+h) - x``), not by the nominal ``h`` (Press et al., *Numerical Recipes*, §5.7).
        """
        raise NotImplementedError

    def combine(self, x: np.ndarray, points: np.ndarray, f: np.ndarray, f0: float,
                noise: float) -> Estimate:
        """Estimate from the losses ``f`` (same shape as ``points``) and the base value ``f0``.

        ``noise`` is the absolute uncertainty of one loss evaluation.
        """
        raise NotImplementedError


class Central(Scheme):
    """Central difference ``(f(x+h) - f(x-h)) / (x₊ - x₋)``, error ``O(h²)``.

    Taylor: ``f(x±h) = f ± hf' + h²f''/2 ± h³f'''/6 + …``; the ``h²`` terms cancel, leaving
    truncation ``|f'''|h²/6``. Rounding: ``noise / h``. (the lecture §2; Nocedal & Wright,
    *Numerical Optimization*, §8.1.) The divisor is the step actually taken in the dtype.
    """

    name = "central"
    order = 2
    evaluations = 2
    formula = "(f(x+h) - f(x-h)) / 2h"

    def points(self, x, h, dtype):
        xf = x.astype(np.float64)
        return np.stack([xf + h, xf - h], axis=1).astype(dtype)

    def combine(self, x, points, f, f0, noise):
        xf = x.astype(np.float64)
        hp = points[:, 0].astype(np.float64) - xf
        hm = xf - points[:, 1].astype(np.float64)
        value = (f[:, 0] - f[:, 1]) / (hp + hm)
        right = (f[:, 0] - f0) / hp
        left = (f0 - f[:, 1]) / hm
        rounding = 2.0 * noise / (hp + hm)
        return Estimate(value, rounding, np.full_like(value, np.nan), (hp + hm) / 2, right, left)


class Forward(Scheme):
    """Forward difference ``(f(x+h) - f(x)) / h``, truncation ``|f''|h/2`` = ``O(h)`` (seed §2)."""

    name = "forward"
    order = 1
    evaluations = 1
    formula = "(f(x+h) - f(x)) / h"

    def points(self, x, h, dtype):
        return (x.astype(np.float64) + h)[:, None].astype(dtype)

    def combine(self, x, points, f, f0, noise):
        hp = points[:, 0].astype(np.float64) - x.astype(np.float64)
        value = (f[:, 0] - f0) / hp
        return Estimate(value, 2.0 * noise / hp, np.full_like(value, np.nan), hp, right=value)


class Backward(Scheme):
    """Backward difference ``(f(x) - f(x-h)) / h``, truncation ``|f''|h/2`` = ``O(h)`` (seed §2)."""

    name = "backward"
    order = 1
    evaluations = 1
    formula = "(f(x) - f(x-h)) / h"

    def points(self, x, h, dtype):
        return (x.astype(np.float64) - h)[:, None].astype(dtype)

    def combine(self, x, points, f, f0, noise):
        hm = x.astype(np.float64) - points[:, 0].astype(np.float64)
        value = (f0 - f[:, 0]) / hm
        return Estimate(value, 2.0 * noise / hm, np.full_like(value, np.nan), hm, left=value)


class ComplexStep(Scheme):
    """Complex step ``Im f(x + ih) / h``, error ``O(h²)`` with no subtraction (seed §6).

    ``f(x+ih) = f(x) + ihf'(x) - h²f''(x)/2 - ih³f'''(x)/6 + …``, so the imaginary part
    divided by ``h`` is ``f'(x)`` up to ``h²f'''/6``; with ``h = 1e-20`` that is far below
    rounding, and the estimate is accurate to machine precision (Squire & Trapp, SIAM Review
    40(1), 1998; Martins, Sturdza & Alonso, ACM TOMS 29(3), 2003). Needs a forward written with
    complex-analytic operations only.
    """

    name = "complex"
    order = 2
    evaluations = 1
    is_complex = True
    default_h = 1e-20
    formula = "Im f(x + ih) / h"

    def points(self, x, h, dtype):
        return (x.astype(np.complex128) + 1j * h)[:, None]

    def combine(self, x, points, f, f0, noise):
        h = points[:, 0].imag
        value = f[:, 0].imag / h
        eps = np.finfo(np.float64).eps
        rounding = 4.0 * eps * np.abs(value) + np.finfo(np.float64).tiny
        return Estimate(value, rounding, np.full_like(value, np.nan), h)


def stencil_weights(offsets: np.ndarray, order: int = 1) -> np.ndarray:
    """Weights ``w`` with ``f^(order)(x) ≈ Σ_j w_j f(x + d_j)`` for per-entry offsets ``d``.

    ``offsets`` has shape ``(n, p)`` (the steps actually taken, so rounding of ``x + h`` to the
    dtype is accounted for). The weights solve the moment conditions
    ``Σ_j w_j d_j^k = k!·[k = order]``, ``k = 0 … p-1`` (Fornberg, *Math. Comp.* 51(184), 1988;
    FiniteDifferences.jl ``_coefs``), which makes the stencil exact for polynomials of degree
    ``p-1``. The system is solved in units of the entry's largest offset, where it is well
    conditioned.
    """
    d = np.asarray(offsets, dtype=np.float64)
    s = np.max(np.abs(d), axis=1, keepdims=True)
    s = np.where(s > 0, s, 1.0)
    t = d / s
    p = d.shape[1]
    vander = t[:, None, :] ** np.arange(p)[None, :, None]  # (n, k, j) = t_j^k
    rhs = np.zeros((d.shape[0], p))
    rhs[:, order] = float(np.prod(np.arange(1, order + 1)))
    w = np.linalg.solve(vander, rhs[..., None])[..., 0]
    return w / s**order


class Central4(Scheme):
    """Five-point central difference, error ``O(h⁴)``.

    ``f'(x) ≈ (f(x-2h) - 8f(x-h) + 8f(x+h) - f(x+2h)) / 12h`` (Abramowitz & Stegun 25.3.6;
    Fornberg 1988). Taylor: the ``h²`` term of the central difference cancels between the
    steps ``h`` and ``2h``, leaving truncation ``|f⁽⁵⁾|h⁴/30``. Rounding: ``Σ|w_j|·noise =
    (18/12)·noise/h``. Four evaluations per entry (the weight of ``f(x)`` is 0). The weights
    are recomputed from the steps actually taken (:func:`stencil_weights`), so rounding of
    ``x ± h`` to the dtype does not bias the estimate. Best step about ``ε^(1/5)·|f|/|f⁽⁵⁾|``
    ≈ ``1e-3`` in float64; the default ``3e-3`` allows for
    ``|f|`` larger than ``|f'|``.
    """

    name = "central4"
    order = 4
    evaluations = 4
    default_h = 3e-3
    formula = "(f(x-2h) - 8f(x-h) + 8f(x+h) - f(x+2h)) / 12h"
    multipliers = (1.0, -1.0, 2.0, -2.0)

    def points(self, x, h, dtype):
        xf = x.astype(np.float64)
        return np.stack([xf + m * h for m in self.multipliers], axis=1).astype(dtype)

    def combine(self, x, points, f, f0, noise):
        xf = x.astype(np.float64)
        d = points.astype(np.float64) - xf[:, None]
        w = stencil_weights(d)
        # Σw = 0, so subtracting f0 changes nothing in exact arithmetic and makes the estimate
        # exactly 0 when the loss does not move (an unused entry), despite rounding in w.
        value = np.sum(w * (f - f0), axis=1)
        rounding = noise * np.sum(np.abs(w), axis=1)
        hp, hm = d[:, 0], -d[:, 1]
        right = (f[:, 0] - f0) / hp
        left = (f0 - f[:, 1]) / hm
        return Estimate(value, rounding, np.full_like(value, np.nan), (hp + hm) / 2, right, left)


class Richardson(Scheme):
    """Richardson extrapolation of central differences at ``h``, ``h/2``, ``h/4``; ``O(h⁶)``.

    With ``D(s) = (f(x+s) - f(x-s))/2s = f' + c₁s² + c₂s⁴ + …`` (only even powers), the
    tableau ``R[k,0] = D(h/2^k)``, ``R[k,j] = R[k,j-1] + (R[k,j-1] - R[k-1,j-1])/(4^j - 1)``
    removes one power per column; ``R[2,2] = (64D(h/4) - 20D(h/2) + D(h))/45`` has truncation
    ``O(h⁶)`` (Richardson 1911; Press et al., *Numerical Recipes* §5.7 (Ridders' method);
    numdifftools' ``Richardson``). Error estimate, as in Ridders' method:
    ``max(|R[2,2] - R[2,1]|, |R[2,2] - R[1,1]|)`` — the change made by the last
    extrapolation, a conservative bound on the truncation left. Rounding:
    ``(64·4 + 20·2 + 1)/45 · noise/h ≈ 6.6·noise/h``. Six evaluations per entry; default
    ``h = 2e-2`` (best near ``ε^(1/7)`` ≈ 6e-3 times the scale of ``x``).
    """

    name = "richardson"
    order = 6
    evaluations = 6
    default_h = 2e-2
    formula = "(64 D(h/4) - 20 D(h/2) + D(h)) / 45, D(s) = (f(x+s) - f(x-s)) / 2s"
    levels = 3

    def points(self, x, h, dtype):
        xf = x.astype(np.float64)
        cols = []
        for k in range(self.levels):
            s = h / 2.0**k
            cols += [xf + s, xf - s]
        return np.stack(cols, axis=1).astype(dtype)

    def tableau(self, x, points, f) -> tuple[list[list[np.ndarray]], np.ndarray]:
        """The Richardson tableau ``R[k][j]`` and the actual half-spans of each level."""
        xf = x.astype(np.float64)
        d = points.astype(np.float64) - xf[:, None]
        spans, rows = [], []
        for k in range(self.levels):
            hp, hm = d[:, 2 * k], -d[:, 2 * k + 1]
            spans.append((hp + hm) / 2)
            rows.append([(f[:, 2 * k] - f[:, 2 * k + 1]) / (hp + hm)])
        for k in range(1, self.levels):
            for j in range(1, k + 1):
                # the actual step ratio of the two levels (2 up to rounding of x ± s)
                r2 = (spans[k - 1] / spans[k]) ** (2 * j)
                prev, cur = rows[k - 1][j - 1], rows[k][j - 1]
                rows[k].append(cur + (cur - prev) / (r2 - 1.0))
        return rows, np.stack(spans, axis=1)

    def combine(self, x, points, f, f0, noise):
        rows, spans = self.tableau(x, points, f)
        value = rows[-1][-1]
        truncation = np.maximum(np.abs(value - rows[-1][-2]), np.abs(value - rows[-2][-1]))
        weights = (64.0 * 4.0, 20.0 * 2.0, 1.0)
        rounding = noise / spans[:, 0] * sum(weights) / 45.0
        hp = points[:, 0].astype(np.float64) - x.astype(np.float64)
        hm = x.astype(np.float64) - points[:, 1].astype(np.float64)
        right = (f[:, 0] - f0) / hp
        left = (f0 - f[:, 1]) / hm
        return Estimate(value, rounding, truncation, spans[:, 0], right, left)


SCHEMES: dict[str, Scheme] = {s.name: s for s in (Central(), Forward(), Backward(), ComplexStep(),
                                                  Central4(), Richardson())}
#: ``method="auto"``: the complex step where it is safe, else this real scheme.
AUTO_REAL = "central4"


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; a clear error lists the valid names."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; choose one of {', '.join(sorted(SCHEMES))} or auto"
        ) from None
