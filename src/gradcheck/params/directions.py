r"""Random directions over a leaf, regenerated chunk by chunk instead of stored.

A directional check moves a whole tensor to :math:`x \pm c\,v` for a random :math:`v`.
Storing :math:`v` (and :math:`u = v/\lVert v\rVert`, the moved copies, the displacement) costs
several parameter-sized buffers; here :math:`v` is a pure function of ``(seed, leaf, i)``:

.. math::

    r_i \sim U[0, 1) \text{ (the } i\text{-th draw of PCG64 seeded with (seed, leaf))},
    \qquad v_i = \begin{cases} 2 r_i & r_i \ge \tfrac12 \\ -(1 + 2 r_i) & r_i < \tfrac12
    \end{cases}

— a Rademacher sign times a magnitude uniform on [1, 2) (the direction of
:mod:`gradcheck.modes.directional`), from one draw per entry. PCG64 can jump ahead in
O(log i) (``advance``; O'Neill 2014, *PCG: A Family of Simple Fast Space-Efficient
Statistically Good Algorithms for Random Number Generation*, §4.3.1), so any span
``[lo, hi)`` is regenerated exactly, in any process, without generating what precedes it.

A :class:`DirectionMove` describes one displaced point ``fl(x + coef·v)`` on a span of a leaf
by a few numbers; evaluators compute its values chunk by chunk from the base values they
hold (:meth:`DirectionMove.pieces`), so neither the caller nor a worker process ever holds
a parameter-sized copy of the direction or of the moved values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Entries per chunk: big enough that Python overhead vanishes, small enough that the
#: temporaries of one chunk (a few float64 arrays) stay in cache.
CHUNK = 1 << 13


def spans(start: int, stop: int, chunk: int = CHUNK) -> Iterator[tuple[int, int]]:
    """``[lo, hi)`` pieces of ``[start, stop)``, aligned to multiples of ``chunk``."""
    lo = start
    while lo < stop:
        hi = min(stop, (lo // chunk + 1) * chunk)
        yield lo, hi
        lo = hi


@lru_cache(maxsize=256)
def _base_state(seed: int, leaf: int) -> dict:
    """PCG64's state at draw 0 for ``(seed, leaf)`` (seeding costs more than a jump)."""
    return np.random.PCG64(np.random.SeedSequence((seed, leaf))).state


@dataclass(frozen=True)
class Direction:
    """The random direction ``v`` of leaf number ``leaf`` (``size`` entries) for ``seed``."""

    seed: int
    leaf: int
    size: int

    def values(self, lo: int, hi: int) -> np.ndarray:
        """``v[lo:hi]`` (float64), regenerated exactly (see the module docstring)."""
        bits = np.random.PCG64(0)
        bits.state = _base_state(int(self.seed), int(self.leaf))
        bits.advance(int(lo))
        r = np.random.Generator(bits).random(hi - lo)
        r *= 2.0
        return np.where(r >= 1.0, r, -(1.0 + r))

    def stats(self, lo: int, hi: int) -> tuple[float, float, float]:
        """``(Σ v², min |v|, max |v|)`` over ``[lo, hi)``, chunk by chunk."""
        total, vmin, vmax = 0.0, np.inf, 0.0
        for a, b in spans(lo, hi):
            v = np.abs(self.values(a, b))
            total += float(np.dot(v, v))
            vmin = min(vmin, float(v.min()))
            vmax = max(vmax, float(v.max()))
        return total, vmin, vmax


class DirectionStats:
    """Per-chunk ``Σ v²``, ``min |v|``, ``max |v|`` of a direction (computed once, O(n/CHUNK)
    memory), so the norm and the extremes of any span cost at most two chunks of draws."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        rows = [direction.stats(a, b) for a, b in spans(0, direction.size)]
        arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
        self.sumsq, self.vmin, self.vmax = arr[:, 0], arr[:, 1], arr[:, 2]

    def span(self, lo: int, hi: int) -> tuple[float, float, float]:
        """``(‖v[lo:hi]‖, min |v[lo:hi]|, max |v[lo:hi]|)``."""
        if hi <= lo:
            return 0.0, np.inf, 0.0
        c0, c1 = lo // CHUNK, (hi - 1) // CHUNK
        total, vmin, vmax = 0.0, np.inf, 0.0
        parts: list[tuple[float, float, float]] = []
        full_lo, full_hi = c0, c1 + 1
        if lo % CHUNK:
            parts.append(self.direction.stats(lo, min(hi, (c0 + 1) * CHUNK)))
            full_lo = c0 + 1
        if hi % CHUNK and c1 >= full_lo:
            parts.append(self.direction.stats(max(lo, c1 * CHUNK), hi))
            full_hi = c1
        if full_hi > full_lo:
            parts.append((float(self.sumsq[full_lo:full_hi].sum()),
                          float(self.vmin[full_lo:full_hi].min()),
                          float(self.vmax[full_lo:full_hi].max())))
        for s, a, b in parts:
            total += s
            vmin, vmax = min(vmin, a), max(vmax, b)
        return float(np.sqrt(total)), vmin, vmax


def moved_values(base: np.ndarray, coef: float, v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``fl(x + coef·v)`` in ``dtype``: the one formula for a moved entry, shared by the
    evaluators (which write it) and the directional mode (which measures the displacement),
    so both see the same bits."""
    return (np.asarray(base, dtype=np.float64) + coef * v).astype(dtype, copy=False)


@dataclass(frozen=True)
class DirectionMove:
    """Entries ``[start, stop)`` (flat, C order) of leaf ``direction.leaf`` moved to
    ``fl(x + coef·v)``, everything else at the base point."""

    direction: Direction
    start: int
    stop: int
    coef: float

    @property
    def leaf(self) -> int:
        return self.direction.leaf

    @property
    def size(self) -> int:
        return self.stop - self.start

    def pieces(self) -> Iterator[tuple[slice, Callable[[np.ndarray], np.ndarray]]]:
        """``(positions, new values as a function of the base values there)`` per chunk."""
        for lo, hi in spans(self.start, self.stop):
            yield slice(lo, hi), self._values_at(lo, hi)

    def _values_at(self, lo: int, hi: int) -> Callable[[np.ndarray], np.ndarray]:
        def values(base: np.ndarray) -> np.ndarray:
            return moved_values(base, self.coef, self.direction.values(lo, hi), base.dtype)
        return values


@dataclass(frozen=True)
class ExplicitMove:
    """Entries ``index`` of leaf ``leaf`` set to ``values`` (a move given by its values)."""

    leaf: int
    index: np.ndarray
    values: np.ndarray

    @property
    def size(self) -> int:
        return int(np.size(self.index))

    def pieces(self) -> Iterator[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        vals = np.asarray(self.values)
        yield np.asarray(self.index, dtype=np.int64), lambda base: vals.astype(base.dtype)


def as_move(move: object) -> DirectionMove | ExplicitMove:
    """A move object from a :class:`DirectionMove`, an :class:`ExplicitMove` or a tuple
    ``(leaf, flat_index, values)``."""
    if isinstance(move, (DirectionMove, ExplicitMove)):
        return move
    leaf, index, values = move  # type: ignore[misc]
    return ExplicitMove(int(leaf), np.asarray(index), np.asarray(values))


def read_flat(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Entries ``[lo, hi)`` of ``a`` in C order: a view when ``a`` is C-contiguous, else a
    copy of just those entries."""
    if a.flags.c_contiguous:
        return a.reshape(-1)[lo:hi]
    return np.asarray(a.flat[lo:hi])


def write_flat(a: np.ndarray, pos: slice | np.ndarray, values: np.ndarray) -> None:
    """``a.flat[pos] = values`` without a whole-array temporary."""
    if a.flags.c_contiguous:
        a.reshape(-1)[pos] = values
    else:
        a.flat[pos] = values


def get_flat(a: np.ndarray, pos: slice | np.ndarray) -> np.ndarray:
    """``a.flat[pos]`` (a view for a slice of a C-contiguous array)."""
    if isinstance(pos, slice):
        return read_flat(a, pos.start, pos.stop)
    if a.flags.c_contiguous:
        return a.reshape(-1)[pos]
    return np.asarray(a.flat[pos])
