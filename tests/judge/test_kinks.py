"""Kinks: valid subgradients at non-differentiable points pass as 'kink', kinks inside the
step pass at smaller steps, and wrong masks / non-subgradients still FAIL."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.judge.verdict import PASS

W = np.array([[0.5, -0.25], [0.75, 0.125]])


def relu_loss(p):
    """Σ c ⊙ relu(x) with fixed weights c: exactly piecewise linear."""
    return float(np.sum(np.array([1.0, -2.0, 0.5, 3.0]) * np.maximum(p, 0.0)))


def relu_grad(p, at_zero: float = 0.0, mask=None):
    c = np.array([1.0, -2.0, 0.5, 3.0])
    m = (p > 0).astype(float) if mask is None else mask
    m = np.where(p == 0, at_zero, m)
    return c * m


def test_relu_midpoint_subgradient_is_a_valid_kink_not_a_plain_pass() -> None:
    # the central difference equals the midpoint subgradient, but a kink inside the step is
    # what makes it so: the entries at 0 are kinks (a valid subgradient), never plain passes
    x = np.array([0.0, 0.0, 0.7, -0.4])
    report = gc.check(relu_loss, lambda p: relu_grad(p, 0.5), x)
    assert report.status == "pass" and report.counts["kinks"] == 2
    assert all("valid subgradient" in e.note for e in report.entries("kink"))


@pytest.mark.parametrize("at_zero", [0.0, 1.0])
def test_relu_exactly_at_zero_any_subgradient_is_a_kink(at_zero: float) -> None:
    x = np.array([0.0, 0.0, 0.7, -0.4])
    report = gc.check(relu_loss, lambda p: relu_grad(p, at_zero), x)
    assert report.status == "pass", report
    assert report.counts["kinks"] == 2
    kink_names = sorted(e.name for e in report.entries("kink"))
    assert kink_names == ["params[0]", "params[1]"]
    assert all("valid subgradient" in e.note for e in report.entries("kink"))
    assert "2 at kinks" in str(report)
    assert report.to_dict()["tensors"][0]["kinks"] == 2


def test_relu_value_outside_the_one_sided_slopes_fails() -> None:
    x = np.array([0.0, 0.0, 0.7, -0.4])
    report = gc.check(relu_loss, lambda p: relu_grad(p, at_zero=2.0), x)
    assert report.status == "fail"
    failed = report.entries("FAIL")
    assert sorted(e.name for e in failed) == ["params[0]", "params[1]"]
    assert all("not a subgradient" in e.note for e in failed)


def test_kink_inside_the_step_passes_at_a_smaller_step() -> None:
    x = np.array([8e-7, -1e-6, 0.7, -5e-7])   # kinks inside the first step (~2e-6)
    report = gc.check(relu_loss, relu_grad, x)
    assert report.status == "pass" and report.counts["kinks"] == 0
    notes = [e.note for e in report.entries() if e.note]
    assert len(notes) == 3 and all("agrees at step" in n for n in notes)


@pytest.mark.parametrize("offset", [3e-6, 3e-7, 3e-8, 3e-9, 1e-12, 0.0])
def test_wrong_relu_mask_is_caught_even_next_to_the_kink(offset: float) -> None:
    """A backward that lets the gradient through where x < 0 (mask x >= -1e-5, a 'leaky' bug).

    It is caught whenever x is off the kink by more than tol times the smallest step
    (1e-5 · 1e-8); exactly on the kink the value 1 is a valid subgradient of ReLU.
    """
    x = np.array([-offset, 0.7, -0.4, 1.2])

    def wrong(p):
        return relu_grad(p, at_zero=1.0, mask=(p >= -1e-5).astype(float))

    report = gc.check(relu_loss, wrong, x)
    if offset > 0:
        assert report.status == "fail", report
        assert [e.name for e in report.entries("FAIL")] == ["params[0]"]
    else:
        assert report.status == "pass" and report.counts["kinks"] == 1


def test_relu_mask_from_output_instead_of_input_fails() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    params = {"W": rng.normal(size=(3, 4)), "v": rng.normal(size=4)}

    def forward(p):
        return float(np.sum(np.maximum(X @ p["W"], 0) @ p["v"]))

    def forward_backward(p, bug=False):
        z = X @ p["W"]
        a = np.maximum(z, 0)
        mask = (a >= 0) if bug else (z > 0)   # bug: the output is never negative
        dz = np.outer(np.ones(6), p["v"]) * mask
        return {"W": X.T @ dz, "v": a.sum(axis=0)}

    assert gc.check(forward, forward_backward, params).status == "pass"
    bad = gc.check(forward, lambda p: forward_backward(p, bug=True), params)
    assert bad.status == "fail" and bad.failing_tensors == ["W"]


def test_leaky_relu_abs_hinge_and_max_at_their_kinks() -> None:
    x = np.array([0.0, 0.5, -0.25])

    def leaky(p):
        return float(np.sum(np.where(p > 0, p, 0.1 * p)))

    assert gc.check(leaky, lambda p: np.where(p > 0, 1.0, 0.1), x).counts["kinks"] == 1
    assert gc.check(leaky, lambda p: np.where(p >= 0, 1.0, 0.1), x).status == "pass"
    assert gc.check(leaky, lambda p: np.where(p > 0, 1.0, -0.1), x).status == "fail"

    def l1(p):
        return float(np.sum(np.abs(p)))

    sign = gc.check(l1, np.sign, x)            # sign(0) = 0: the midpoint, a subgradient
    # issue #10: the one-sided slopes (-1, 1) jump by more than the derivative, so agreement
    # at that step is no evidence; 0 is accepted as a subgradient at the kink instead
    assert sign.status == "pass" and sign.counts["kinks"] == 1
    right = gc.check(l1, lambda p: np.where(p >= 0, 1.0, -1.0), x)
    assert right.status == "pass" and right.counts["kinks"] == 1
    assert gc.check(l1, lambda p: np.sign(p) + (p == 0) * 1.5, x).status == "fail"

    def hinge(p):
        return float(np.sum(np.maximum(0.0, 1.0 - p)))

    m = np.array([1.0, 0.5, 2.0])                                    # margin exactly 1
    report = gc.check(hinge, lambda p: -(p < 1).astype(float), m)
    assert report.status == "pass" and report.counts["kinks"] == 1

    def max2(p):
        return float(np.max(p))

    tie = np.array([0.5, 0.5, 0.25])
    route_first = gc.check(max2, lambda p: np.array([1.0, 0.0, 0.0]), tie)
    assert route_first.status == "pass" and route_first.counts["kinks"] == 2
    assert gc.check(max2, lambda p: np.array([2.0, 0.0, 0.0]), tie).status == "fail"


def test_max_pool_with_ties_routes_to_one_winner() -> None:
    x = np.array([[1.0, 1.0, 0.5, 0.25], [0.0, -1.0, 0.5, 0.5]])

    def pool(p):   # 1x2 windows along rows
        return float(np.sum(np.array([1.0, -2.0, 0.5, 3.0]) * p.reshape(4, 2).max(axis=1)))

    def pool_grad(p):
        w = p.reshape(4, 2)
        g = np.zeros_like(w)
        g[np.arange(4), w.argmax(axis=1)] = np.array([1.0, -2.0, 0.5, 3.0])
        return g.reshape(2, 4)

    report = gc.check(pool, pool_grad, x)
    assert report.status == "pass" and report.counts["kinks"] == 4

    def split(p):   # 0.5/0.5 at ties: also a valid subgradient per coordinate
        w = p.reshape(4, 2)
        win = (w == w.max(axis=1, keepdims=True)).astype(float)
        win /= win.sum(axis=1, keepdims=True)
        return (win * np.array([1.0, -2.0, 0.5, 3.0])[:, None]).reshape(2, 4)

    assert gc.check(pool, split, x).status == "pass"


def test_noisy_loss_cannot_turn_a_bug_into_a_kink() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=8)
    w = rng.normal(size=3)

    def forward(p):
        r = X @ p - y
        return 1e8 + float(r @ r) + float(np.sum(np.abs(p - w + 0.0)))  # |·| kink at w

    def fb(p, bug=False):
        g = 2 * X.T @ (X @ p - y)
        return g * (1.01 if bug else 1.0)

    bad = gc.check(forward, lambda p: fb(p, True), w)
    assert bad.status == "fail" and bad.counts["kinks"] == 0


def test_zoo_kink_models() -> None:
    from gradcheck.examples import zoo

    for m in zoo.MODELS:
        if not {"kink", "ties", "relu", "l1", "hinge"} & set(m.tags) and "kink" not in m.name:
            continue
        report = gc.check(m.forward, m.forward_backward, m.params, seed=m.needs_seed)
        if m.buggy:
            assert report.status == "fail", m.name
            assert set(report.failing_tensors) == set(m.bad_tensors), m.name
        else:
            assert report.status == "pass", (m.name, str(report))
    assert PASS == 0
