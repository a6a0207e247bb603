"""The loss's noise from a difference table (Moré & Wild's ECnoise), against known noise."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.estimate import ecnoise


def noisy_line(sigma: float, seed: int = 0, kink_at: float | None = None):
    """f(θ + t·δ) = cos(1 + t·δ) (+ |t·δ - kink|) + white noise of standard deviation σ."""
    rng = np.random.default_rng(seed)

    def line(delta: float, t: np.ndarray) -> np.ndarray:
        x = t * delta
        f = np.cos(1.0 + x)
        if kink_at is not None:
            f = f + np.abs(x - kink_at)
        return f + sigma * rng.normal(size=t.size)

    return line


@pytest.mark.parametrize("sigma", [1e-12, 1e-9, 1e-6])
@pytest.mark.parametrize("seed", range(5))
def test_white_noise_is_measured_within_a_factor_three(sigma: float, seed: int) -> None:
    noise = ecnoise.measure(noisy_line(sigma, seed), float(np.cos(1.0)), np.float64)
    assert noise.measured
    assert sigma / 3 <= noise.sigma <= 3 * sigma


def test_gamma_is_the_variance_factor_of_differences() -> None:
    rng = np.random.default_rng(1)
    e = rng.normal(size=(200_000, 8))
    for k in range(1, 6):
        d = np.diff(e, n=k, axis=1)
        assert np.var(d) * ecnoise.gamma(k) == pytest.approx(1.0, rel=0.03)


def test_a_kink_on_the_line_is_not_taken_for_noise() -> None:
    # a kink inside the table gives a "noise" proportional to δ: the confirmation at another
    # spacing rejects it, and the measured noise stays near the true one
    line = noisy_line(1e-12, kink_at=1.5e-6)
    noise = ecnoise.measure(line, float(np.cos(1.0)) + 1.5e-6, np.float64)
    assert noise.sigma < 1e-10


def test_a_float32_loss_returned_as_a_float_is_recognised() -> None:
    f0 = float(np.float32(1.0986123))
    assert ecnoise.computed_dtype(f0, np.float64) == np.float32
    assert ecnoise.computed_dtype(1.0986122886681098, np.float64) == np.float64
    assert ecnoise.computed_dtype(0.5, np.float64) == np.float64    # a round number
    quantised = ecnoise.measure(lambda d, t: np.full(t.size, f0), f0, np.float64)
    assert quantised.sigma >= 0.25 * np.finfo(np.float32).eps * f0


def test_a_loss_near_zero_is_measured_in_absolute_terms() -> None:
    # Σ sin over a symmetric grid is ~1e-15: the noise is that of its O(1) terms
    xs = np.linspace(-1, 1, 20)

    def line(delta: float, t: np.ndarray) -> np.ndarray:
        return np.array([float(np.sum(np.sin(xs + tk * delta * (1 + xs)))) for tk in t])

    f0 = float(np.sum(np.sin(xs)))
    noise = ecnoise.measure(line, f0, np.float64)
    assert noise.measured and noise.sigma < 1e-14
    assert noise.relative(f0) < 1e-14      # relative to the terms' magnitude, not to |f0|
