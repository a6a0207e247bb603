"""The validated ladder (gradcheck.judge.ladder) on one-dimensional functions with known
derivatives: smooth, curved, kinked near and at the point, noisy."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.judge import ladder
from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, KINK, PASS

TOL = 1e-5


def run(f, x, a, h0=1e-5, sigma=1e-16, noise=0.0, seed=0):
    """Judge analytic values ``a`` at points ``x`` of the separable loss Σ f(x_i)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    f0 = 0.0   # each entry is judged on its own term: f(x_i + s) - f(x_i) enters as f(·) - f0

    def evaluate_for(i0):
        def ev(mask, pts):
            idx = np.flatnonzero(mask)
            out = np.array([[f(v) - f(x[i0[k]]) for v in row] for k, row in zip(idx, pts)])
            return out + noise * rng.normal(size=out.shape)
        return ev

    def allow(aa, nn):
        return TOL * np.maximum(np.maximum(np.abs(aa), np.abs(np.nan_to_num(nn))), 1e-3)

    pos = np.arange(x.size)
    first = ladder.measure_level(evaluate_for(pos), x, np.full(x.size, h0), f0, sigma,
                                 np.dtype(np.float64))
    return ladder.decide(evaluate_for(pos), x, a, first, f0, sigma, np.dtype(np.float64), allow,
                         np.zeros(x.size))


def test_strong_curvature_passes_at_a_validated_smaller_step() -> None:
    x = np.array([0.3, 1.1, -0.4])
    out = run(lambda v: np.sin(2000 * v) / 2000, x, np.cos(2000 * x), h0=1e-3)
    assert (out.status == PASS).all()
    assert out.validated.all() or all("agrees" in n for n in out.note)


def test_a_wrong_value_on_a_smooth_function_fails_at_a_valid_pair() -> None:
    x = np.array([0.3, 1.1, -0.4])
    out = run(np.sin, x, 1.001 * np.cos(x))
    assert (out.status == FAIL).all()
    assert all("validated" in n for n in out.note)


@pytest.mark.parametrize("distance", [3e-6, 3e-7, 3e-8])
def test_a_kink_near_the_point_is_no_evidence_against_a_correct_value(distance: float) -> None:
    # relu(v) at v = distance (a kink at 0 inside the first step): the slope is 1
    out = run(lambda v: max(v, 0.0), [distance], [1.0])
    assert out.status[0] == PASS


@pytest.mark.parametrize("distance", [3e-6, 3e-7])
def test_a_wrong_mask_next_to_the_kink_still_fails(distance: float) -> None:
    out = run(lambda v: max(v, 0.0), [distance], [0.0])
    assert out.status[0] == FAIL


def test_on_the_kink_a_subgradient_is_a_kink_and_anything_else_fails() -> None:
    ok = run(lambda v: max(v, 0.0) + 2 * v, [0.0, 0.0], [2.0, 3.0])   # slopes 2 and 3
    assert ok.status.tolist() in ([KINK, KINK], [KINK, PASS], [PASS, KINK])
    bad = run(lambda v: max(v, 0.0) + 2 * v, [0.0], [4.0])
    assert bad.status[0] == FAIL and "outside" in bad.note[0]


def test_noise_that_swamps_every_step_is_inconclusive_with_a_remedy() -> None:
    out = run(lambda v: 1e-9 * np.sin(v), [0.3], [1e-9 * np.cos(0.3)], sigma=1e-8, noise=1e-8)
    assert out.status[0] == INCONCLUSIVE
    assert "larger h" in out.note[0] or "complex" in out.note[0]


def test_chain_bar_is_rounding_plus_a_fraction_of_the_difference() -> None:
    bar = ladder.chain(np.array([1.0]), np.array([1e-6]), np.array([1.0 + 1e-3]),
                       np.array([1e-6]), np.array([4.0]))
    assert bar[0] == pytest.approx(1e-6 + ladder.SAFETY * (1e-3 + 2e-6) / 255)
