"""Random directions regenerated chunk by chunk: exact, reproducible, bounded weights."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from gradcheck.params.directions import (
    CHUNK,
    Direction,
    DirectionMove,
    DirectionStats,
    ExplicitMove,
    as_move,
    moved_values,
    read_flat,
    spans,
)

N = 3 * CHUNK + 123


def test_any_span_regenerates_the_same_values() -> None:
    d = Direction(seed=7, leaf=2, size=N)
    whole = d.values(0, N)
    rng = np.random.default_rng(0)
    for _ in range(20):
        lo, hi = sorted(rng.integers(0, N, size=2))
        assert np.array_equal(d.values(lo, hi), whole[lo:hi])
    # a copy in another process (here: a pickle round trip) sees the same direction
    assert np.array_equal(pickle.loads(pickle.dumps(d)).values(5, 900), whole[5:900])


def test_weights_are_signs_times_magnitudes_in_1_2() -> None:
    v = Direction(seed=0, leaf=0, size=200_000).values(0, 200_000)
    assert np.all((np.abs(v) >= 1.0) & (np.abs(v) < 2.0))
    assert abs(np.mean(v > 0) - 0.5) < 0.01                # Rademacher signs
    assert abs(np.mean(np.abs(v)) - 1.5) < 0.01             # magnitudes uniform on [1, 2)
    other = Direction(seed=0, leaf=1, size=200_000).values(0, 200_000)
    assert abs(np.corrcoef(v, other)[0, 1]) < 0.01          # leaves get independent directions


@pytest.mark.parametrize("lo,hi", [(0, N), (5, 17), (CHUNK - 3, CHUNK + 4), (1, 2 * CHUNK),
                                   (CHUNK, 3 * CHUNK), (100, N - 1), (N - 1, N)])
def test_span_statistics_match_the_values(lo, hi) -> None:
    d = Direction(seed=3, leaf=0, size=N)
    stats = DirectionStats(d)
    v = np.abs(d.values(lo, hi))
    norm, vmin, vmax = stats.span(lo, hi)
    assert norm == pytest.approx(float(np.linalg.norm(v)), rel=1e-12)
    assert (vmin, vmax) == (float(v.min()), float(v.max()))


def test_spans_are_chunk_aligned_and_cover_the_range() -> None:
    parts = list(spans(10, 3 * CHUNK + 5))
    assert parts[0] == (10, CHUNK) and parts[-1] == (3 * CHUNK, 3 * CHUNK + 5)
    assert all(b == c for (_, b), (c, _) in zip(parts, parts[1:]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_move_writes_x_plus_coef_v_in_the_working_dtype(dtype) -> None:
    x = np.random.default_rng(1).normal(size=N).astype(dtype)
    d = Direction(seed=1, leaf=0, size=N)
    move = DirectionMove(d, 17, 2 * CHUNK + 9, 1e-3)
    out = x.copy()
    for pos, values in move.pieces():
        out[pos] = values(out[pos])
    expected = x.copy()
    expected[17:2 * CHUNK + 9] = moved_values(x[17:2 * CHUNK + 9], 1e-3,
                                              d.values(17, 2 * CHUNK + 9), np.dtype(dtype))
    assert np.array_equal(out, expected)
    assert np.array_equal(out[:17], x[:17]) and np.array_equal(out[2 * CHUNK + 9:],
                                                               x[2 * CHUNK + 9:])
    assert move.leaf == 0 and move.size == 2 * CHUNK - 8


def test_tuples_become_explicit_moves() -> None:
    m = as_move((1, [0, 3], [5.0, 6.0]))
    assert isinstance(m, ExplicitMove) and m.leaf == 1 and m.size == 2
    (pos, values), = list(m.pieces())
    assert pos.tolist() == [0, 3] and values(np.zeros(2, np.float32)).dtype == np.float32


def test_read_flat_of_a_non_contiguous_array() -> None:
    a = np.arange(24.0).reshape(4, 6).T           # Fortran-ordered view
    assert np.array_equal(read_flat(a, 3, 11), a.reshape(-1)[3:11])
