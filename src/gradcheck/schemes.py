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
    truncation ``|f'''|h²/6``. Rounding: ``noise / h``. (Seed §2; Nocedal & Wright,
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


SCHEMES: dict[str, Scheme] = {s.name: s for s in (Central(), Forward(), Backward(), ComplexStep())}


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; a clear error lists the valid names."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; choose one of {', '.join(sorted(SCHEMES))}"
        ) from None
