"""Entries judged together along one direction (gradcheck.judge.group): a validated FAIL where
no entry can be resolved alone, never a FAIL of a correct gradient (smooth or kinked, float32
noise or float64), and the significance look below the nearest kink."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples import regimes as R
from gradcheck.judge import group

TOL = 3.45e-4     # the tolerance a float32 loss allows (√ε of float32)


class Smooth:
    """``f(θ) = Σ_i w_i·tanh(θ_i) + 2``, in float32 (``low=True``) or float64."""

    def __init__(self, n: int, scale: float, seed: int, low: bool) -> None:
        rng = np.random.default_rng(seed)
        self.w = scale * rng.normal(size=n)
        self.x = rng.normal(size=n)
        self.low = low

    def __call__(self, theta: np.ndarray) -> float:
        if self.low:
            t = theta.astype(np.float32)
            return float(np.sum(self.w.astype(np.float32) * np.tanh(t)) + np.float32(2.0))
        return float(np.sum(self.w * np.tanh(theta)) + 2.0)

    def grad(self) -> np.ndarray:
        return self.w / np.cosh(self.x) ** 2


class Kinked:
    """``f(θ) = Σ_j v_j·relu(Σ_i M_ji θ_i + z_j) + 2`` with the kinks ``z_j`` tiny: every
    step of an entry crosses some of them."""

    def __init__(self, n: int, units: int, seed: int, kink: float) -> None:
        rng = np.random.default_rng(seed)
        self.m = rng.normal(size=(units, n))
        self.v = rng.normal(size=units)
        self.x = kink * rng.normal(size=n)
        self.z = kink * rng.normal(size=units)

    def __call__(self, theta: np.ndarray) -> float:
        return float(self.v @ np.maximum(self.m @ theta + self.z, 0.0) + 2.0)

    def grad(self) -> np.ndarray:
        return self.m.T @ (self.v * (self.m @ self.x + self.z > 0))


def members(f, a: np.ndarray, step: float, eps: float, floor: float) -> group.Members:
    allow = TOL * np.maximum(np.abs(a), floor)
    return group.Members("w", f.x, a, allow, np.zeros_like(a), eps, step, 0.5)


def losses(f):
    return lambda values: np.array([f(v) for v in values])


F32_SIGMA = 0.5 * float(np.finfo(np.float32).eps) * 2.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_a_uniform_1e3_error_fails_together_where_each_entry_is_below_the_noise(
        seed: int, scale: float) -> None:
    f = Smooth(40, scale, seed, low=True)
    g = f.grad()
    floor = float(np.sqrt(np.mean(g ** 2)))
    m = members(f, g * (1 + 3e-3), 6e-3, 0.0, floor)
    found = group.fail_look(m, None, f(f.x), F32_SIGMA, losses(f))
    assert found is not None and found.failed
    assert found.scale == pytest.approx(3e-3, rel=0.3)
    assert "at least one of these entries is wrong" in found.sentence


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scale", [0.01, 0.1, 1.0])
@pytest.mark.parametrize("low", [True, False])
def test_a_correct_smooth_gradient_never_fails_together(seed: int, scale: float,
                                                         low: bool) -> None:
    f = Smooth(40, scale, seed, low)
    g = f.grad()
    floor = float(np.sqrt(np.mean(g ** 2)))
    sigma = F32_SIGMA if low else 4e-16
    noisy = g + np.random.default_rng(seed).normal(size=g.size) * 1e-3 * floor
    m = members(f, g, 6e-3 if low else 1e-5, 0.0, floor)
    assert group.fail_look(m, noisy, f(f.x), sigma, losses(f)) is None


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("kink", [1e-8, 1e-6, 1e-4])
def test_a_correct_kinked_gradient_never_fails_together(seed: int, kink: float) -> None:
    f = Kinked(30, 50, seed, kink)
    g = f.grad()
    floor = float(np.sqrt(np.mean(g ** 2)))
    noisy = g + np.random.default_rng(seed).normal(size=g.size) * 0.1 * floor
    m = members(f, g, 1e-5, float(np.finfo(np.float64).eps), floor)
    assert group.fail_look(m, noisy, f(f.x), 4e-16, losses(f)) is None


@pytest.mark.parametrize("seed", range(5))
def test_the_significance_look_resolves_a_1e6_error_below_the_nearest_kink(seed: int) -> None:
    f = Kinked(30, 50, seed, 1e-6)
    g = f.grad()
    floor = float(np.sqrt(np.mean(g ** 2)))
    wrong = group.significance_look(members(f, g * (1 + 1e-6), 2e-5, 2.2e-16, floor),
                                    f(f.x), 4e-16, losses(f))
    right = group.significance_look(members(f, g, 2e-5, 2.2e-16, floor), f(f.x), 4e-16,
                                    losses(f))
    assert wrong is not None and wrong.sigmas > 10
    assert wrong.scale == pytest.approx(1e-6, rel=0.2)
    assert right is None or right.sigmas < 10


def test_a_float32_forward_with_a_1e3_bug_fails_as_a_group_and_says_so() -> None:
    m = R.build(R.Regime(1.0, "tanh", "f32in", 1.0, 0), bug=1e-3)
    report = gc.check(m.forward, m.forward_backward, m.params, progress=False)
    assert report.status == "fail" and report.failing_tensors == [m.bug_tensor]
    t = report.tensor(m.bug_tensor)
    assert t.group_failed and t.failed == 0
    assert "judged together" in str(report)
    assert report.to_dict()["tensors"][0]["group"]["failed"] is True


@pytest.mark.parametrize("nonlinearity", ["relu", "maxpool", "abs"])
def test_a_1e6_bug_under_kinks_at_tiny_init_is_caught_along_the_tensor(nonlinearity: str
                                                                        ) -> None:
    m = R.build(R.Regime(1e-5, nonlinearity, "f64", 1.0, 1), bug=1e-6)   # the bug in b1
    report = gc.check(m.forward, m.forward_backward, m.params, progress=False)
    reported = [s.tensor for s in report.significant] + report.failing_tensors
    assert reported == [m.bug_tensor], report
    correct = R.build(R.Regime(1e-5, nonlinearity, "f64", 1.0, 1))
    clean = gc.check(correct.forward, correct.forward_backward, correct.params,
                     progress=False)
    assert clean.status == "pass" and not clean.significant, clean


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kink", [1e-6, 1e-4])
def test_a_wrong_kinked_gradient_fails_together_below_the_kinks(seed: int, kink: float) -> None:
    f = Kinked(30, 50, seed, kink)
    g = f.grad()
    floor = float(np.sqrt(np.mean(g ** 2)))
    m = members(f, g * (1 + 1e-2), 1e-5, float(np.finfo(np.float64).eps), floor)
    found = group.fail_look(m, None, f(f.x), 4e-16, losses(f))
    assert found is not None and found.scale == pytest.approx(1e-2, rel=0.1)
