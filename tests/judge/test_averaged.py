"""The averaged last look of the ladder (gradcheck.judge.ladder.averaged_level/averaged_pass):
a loss computed in float32 whose noise swamps one central difference, on a grid of points,
curvatures and analytic errors."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.judge import ladder

TOL = 3.45e-4


def f32_loss(scale: float):
    """``scale·sin(v) + 2`` computed in float32 (noise ~ half a float32 ulp of 2)."""
    def f(v: float) -> float:
        return float(np.float32(scale) * np.sin(np.float32(v)) + np.float32(2.0))
    return f


def look(f, x, a, s, cap=0.5, m=ladder.AVERAGE):
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    f0s = np.array([f(v) for v in x])
    sigma = 0.5 * float(np.finfo(np.float32).eps) * 2.0

    def ev(mask, pts):
        idx = np.flatnonzero(mask)
        return np.array([[f(v) - f0s[i] for v in row] for i, row in zip(idx, pts)])

    def allow(aa, nn):
        return TOL * np.maximum(np.maximum(np.abs(aa), np.abs(np.nan_to_num(nn))), 0.05)

    return ladder.averaged_pass(ev, x, a, np.full(x.size, s), np.full(x.size, cap), 0.0,
                                sigma, np.dtype(np.float64), allow, m)


@pytest.mark.parametrize("scale", [0.05, 0.1, 0.3])
def test_correct_values_pass_where_one_difference_is_too_noisy(scale: float) -> None:
    x = np.linspace(-1.0, 1.0, 9)
    ok, num, bar, _, _ = look(f32_loss(scale), x, scale * np.cos(x), 1e-2)
    assert ok.mean() >= 0.8
    assert np.all(np.abs(num[ok] - scale * np.cos(x[ok])) <= bar[ok])


@pytest.mark.parametrize("error", [1e-3, 3e-3, 1e-2])
@pytest.mark.parametrize("scale", [0.05, 0.1, 0.3])
def test_wrong_values_never_pass(scale: float, error: float) -> None:
    x = np.linspace(-1.0, 1.0, 9)
    ok, *_ = look(f32_loss(scale), x, scale * np.cos(x) * (1 + error) + error * 0.05, 1e-2)
    assert not ok.any()


def test_a_kink_inside_the_steps_never_passes_a_wrong_slope() -> None:
    def f(v: float) -> float:
        return float(np.float32(0.1) * np.maximum(np.float32(v), np.float32(0)) + np.float32(2))
    x = np.array([1e-3, 2e-3, -1e-3])
    ok, *_ = look(f, x, np.array([0.1001, 0.1001, 0.0001]), 1e-2)
    assert not ok.any()


def test_effective_count_discounts_repeated_points() -> None:
    steps = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 2.0]])
    assert np.allclose(ladder.effective_count(steps), [4.0, 16.0 / 10.0])


def test_averaging_identical_points_does_not_shrink_the_bar() -> None:
    # a float16 parameter: every jittered step rounds to the same point
    f = f32_loss(0.1)
    x = np.array([0.5])
    one = ladder.averaged_level(lambda m, p: np.array([[f(v) - f(0.5) for v in p[0]]]), x,
                                np.array([1e-3]), 0.0, 1.2e-7, np.dtype(np.float16), m=8)
    single = ladder.measure_level(lambda m, p: np.array([[f(v) - f(0.5) for v in p[0]]]), x,
                                  np.array([1e-3]), 0.0, 1.2e-7, np.dtype(np.float16))
    assert one.rounding[0] >= 0.99 * single.rounding[0]
