"""What every pattern of the diagnosis shares: the :class:`Diagnosis` record, the context of
one tensor (``A``, ``N``, their difference, the per-entry tolerance, the errors) and the small
helpers that turn a fit into evidence and evidence into a confidence (see
:mod:`gradcheck.diagnose.patterns` for the method)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

KINDS = ("sign", "scale", "transpose", "swapped", "zero", "edges", "first_step", "last_step",
         "repeated_rows", "small_term", "nan", "mask", "one_hot", "flipped", "shifted",
         "one_step", "factor", "activation", "slopes", "mean_terms", "one_term", "shared",
         "own_formula", "unknown")

#: Confidence at or above which a diagnosis is "confident".
CONFIDENT = 0.7
#: Below this confidence a candidate is not reported at all.
WEAK = 0.5

_R_FLOOR = 1e-12        # r below this is as good as exact (float64 round-off)
_LOG_CAP = 12.0         # -log10 of _R_FLOOR
_GAP_MIN = 20.0         # region errors must stand this far above everything outside
_GAP_LOG_CAP = 6.0      # a gap beyond 1e6 (or an exact zero outside) counts as 1e6
_HEAVY_TAIL = 0.75      # discount on gap evidence for heavy-tailed noise
_REGION_MAX = 0.75      # a region must leave a quarter of the tensor outside
_CLEAN_CAP = 6.0        # most evidence a clean outside can give (error bars may be off)
_SPECIAL_RTOL = 0.02    # c within 2 % of a special value is that value
_SMALL_TERM = 0.02      # |c - 1| below this is a small missing term, not a scale
_ZERO_RATIO = 0.01      # |A| <= 1 % of |N| counts as zero
_DEFAULT_RTOL = 1e-5    # default per-entry tolerance when no error bar is given ...
_DEFAULT_ATOL = 1e-6    # ... plus this fraction of the tensor's gradient scale


@dataclass(frozen=True)
class Diagnosis:
    """The likely bug behind a failed gradient check of one tensor.

    Attributes
    ----------
    tensor : str
        Tensor name, e.g. ``"W"`` or ``"encoder.W"``.
    kind : str
        One of :data:`KINDS`.
    sentence : str
        One plain sentence naming the tensor, the likely mistake and where to look.
    confidence : float
        In ``[0, 1]``; >= 0.7 means the pattern is very unlikely to arise by chance.
    factor : float or None
        For ``"sign"``, ``"scale"`` and ``"small_term"`` (when fitted as a constant): the
        fitted ``c`` in ``A ≈ c·N``.
    """

    tensor: str
    kind: str
    sentence: str
    confidence: float
    factor: float | None = None


# --------------------------------------------------------------------------------------------
# small helpers


def _norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(x))))


def _pr(w: np.ndarray) -> float:
    """Participation ratio ``(Σw)² / Σw²`` of non-negative weights (effective count)."""
    w = np.asarray(w, dtype=np.float64).ravel()
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def _neglog(r: float) -> float:
    """``-log10 r``, floored at 0 and capped at :data:`_LOG_CAP`."""
    if not r > _R_FLOOR:
        return _LOG_CAP
    return max(0.0, -math.log10(r))


def _confidence(evidence: float, cap: float = 0.95) -> float:
    """Map evidence (``-log10`` chance probability) to a confidence in ``[0, cap]``."""
    if not np.isfinite(evidence):
        evidence = 2.0 * _LOG_CAP
    return float(np.clip(0.5 + 0.05 * (evidence - 2.0), 0.0, cap))


def _fmt(x: float) -> str:
    """Short human form of a number: ``2``, ``0.5``, ``-1``, ``0.0312``, ``1.5e-05``."""
    if x == 0:
        return "0"
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)) and abs(x) < 1e6:
        return str(int(round(x)))
    return f"{x:.3g}"


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _index_list(idx: np.ndarray, limit: int = 5) -> str:
    idx = [int(i) for i in np.asarray(idx).ravel()]
    if len(idx) <= limit:
        return _join([str(i) for i in idx])
    return ", ".join(str(i) for i in idx[:limit]) + f", ... ({len(idx)} in all)"


def _slice_word(axis: int, ndim: int, plural: bool = False) -> str:
    """What one index along ``axis`` selects: an entry, a row, a column or a slice."""
    if ndim == 1:
        word = "entry"
    elif ndim == 2:
        word = "row" if axis == 0 else "column"
    else:
        word = f"slice along axis {axis}"
    if not plural:
        return word
    if word == "entry":
        return "entries"
    return word.replace("slice", "slices") if ndim > 2 else word + "s"


def _slab(shape: tuple[int, ...], axis: int, index: int) -> np.ndarray:
    """Boolean mask of the entries with ``index`` along ``axis``."""
    mask = np.zeros(shape, dtype=bool)
    sl = [slice(None)] * len(shape)
    sl[axis] = index
    mask[tuple(sl)] = True
    return mask


# --------------------------------------------------------------------------------------------
# context shared by the tests


@dataclass
class _Ctx:
    name: str
    a: np.ndarray
    n: np.ndarray
    d: np.ndarray            # a - n
    tol: np.ndarray          # per-entry tolerance above which an entry is an error
    tol_abs: np.ndarray      # its absolute part (error bar and a floor), for gaps
    bad: np.ndarray          # entries that failed (given mask or |d| > tol)
    failed: np.ndarray | None
    others: Mapping[str, tuple[np.ndarray, np.ndarray]]
    batch_size: int | None
    seq_len: int | None
    time_axis: int
    time_given: bool
    repeated_rows: np.ndarray | None
    value: np.ndarray | None
    layout: bool = True
    terms: np.ndarray | None = None

    @property
    def dnorm(self) -> float:
        return _norm(self.d)

    def fit_r(self, pred: np.ndarray) -> float:
        """Misfit of a prediction of ``A``: ``||A - pred||`` relative to both ``||A - N||``
        (it must explain the discrepancy) and ``||A||`` (it must explain ``A`` itself)."""
        res = _norm(self.a - pred)
        an = _norm(self.a)
        return max(res / self.dnorm, res / an if an > 0 else math.inf)

    def proportional(self) -> bool:
        """Whether ``A ≈ c·N`` for some constant (misfit below 0.1): the constant test's
        case, which the patterns of where the error is leave to it."""
        nn = float(np.sum(self.n * self.n))
        return nn > 0 and self.fit_r(float(np.sum(self.a * self.n)) / nn * self.n) < 0.1

    def zero_like(self, mask: np.ndarray) -> bool:
        """Whether ``A`` is (about) zero on every entry of ``mask``."""
        return bool(np.all(np.abs(self.a[mask]) <= _ZERO_RATIO * np.abs(self.n[mask])
                           + self.tol[mask]))


def _broadcast_noise(noise: np.ndarray | float | None, shape: tuple[int, ...]) -> np.ndarray:
    if noise is None:
        return np.zeros(shape)
    s = np.abs(np.asarray(noise, dtype=np.float64))
    s = np.where(np.isfinite(s), s, 0.0)
    try:
        return np.broadcast_to(s, shape).astype(np.float64)
    except ValueError as exc:
        raise ValueError(f"noise of shape {s.shape} does not broadcast to {shape}") from exc

