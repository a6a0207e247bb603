"""Backward-pass bugs people make, on a 2-layer MLP with softmax cross-entropy, over init
scales, activations and precisions: none may pass where it matters.

* ``mask``: a ReLU backward that uses ``sigmoid(z)`` — softplus's derivative — in place of
  ``1[z > 0]``. At a small init every ``z`` is near 0, so its error is about half of each
  first-layer entry, yet nearly orthogonal to the analytic gradient (the true mask is a random
  0/1 pattern, the wrong one ≈ 0.5 everywhere): the derivative along the analytic direction
  agrees. It must still fail in float64 (along the estimates' residual, at validated steps). A
  look at steps beyond the parameter's scale would pass it: outside the cluster of kinks the
  central difference is the mean of the outer slopes, ``0.5·(r + l)`` — exactly what the wrong
  mask computes.
* ``drop_sample``: one sample's error left out of the hidden layer's backward.
* ``row_off``: the first layer's gradient rows shifted by one (an indexing slip).
* ``b1_mean``: the hidden bias gradient averaged instead of summed over the batch.
* ``leaky_slope``: a leaky ReLU backward with slope 0.1 where the forward uses 0.01.

In float64 each FAILs at init ≥ 1e-4 (at 1e-6 the first layer's gradients are ~1e-7 of the
model's, within its tolerance and ~10 error bars at the steps below the nearest kink: passing
them there is what the tolerance says). Under a float32 loss none passes, and no entry passes
whose error exceeds the tolerance at the model's gradient scale.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck as gc

N, D, H, C = 20, 8, 10, 3
TOL32 = float(np.sqrt(np.finfo(np.float32).eps))
BUGS = ("mask", "drop_sample", "row_off", "b1_mean", "leaky_slope")


def model(scale: float, seed: int, low: bool, act: str = "relu", bug: str | None = None):
    """``(forward, forward_backward, params)``; ``low``: the forward computes in float32 and
    returns a Python float; ``bug``: one of :data:`BUGS` (``None``: correct)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    y = rng.integers(C, size=N)
    params = {"W1": scale * rng.normal(size=(D, H)), "b1": np.zeros(H),
              "W2": scale * rng.normal(size=(H, C)), "b2": np.zeros(C)}
    slope = 0.01 if act == "leaky" else 0.0

    def run(p, dtype):
        w1, b1, w2, b2 = (p[k].astype(dtype) for k in ("W1", "b1", "W2", "b2"))
        z = x.astype(dtype) @ w1 + b1
        h = np.tanh(z) if act == "tanh" else np.where(z > 0, z, dtype(slope) * z)
        s = h @ w2 + b2
        e = np.exp(s - s.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        return -np.log(prob[np.arange(N), y]).mean(), z, h, prob

    def derivative(z):
        if act == "tanh":
            return 1.0 - np.tanh(z) ** 2
        if bug == "mask":
            return 1.0 / (1.0 + np.exp(-z))
        return np.where(z > 0, 1.0, 0.1 if bug == "leaky_slope" else slope)

    def forward(p):
        return float(run(p, np.float32 if low else np.float64)[0])

    def forward_backward(p):
        loss, z, h, prob = run(p, np.float64)
        ds = prob.copy()
        ds[np.arange(N), y] -= 1.0
        ds /= N
        dsh = ds.copy()
        if bug == "drop_sample":
            dsh[0] = 0.0
        dz = (dsh @ p["W2"].T) * derivative(z)
        gw1 = x.T @ dz
        if bug == "row_off":
            gw1 = np.roll(gw1, 1, axis=0)
        gb1 = dz.mean(axis=0) if bug == "b1_mean" else dz.sum(axis=0)
        return float(loss), {"W1": gw1, "b1": gb1, "W2": h.T @ ds, "b2": ds.sum(axis=0)}

    return forward, forward_backward, params


def check(forward, forward_backward, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gc.check(forward, forward_backward, params, progress=False)


def activation(bug: str) -> list[str]:
    return ["leaky"] if bug == "leaky_slope" else ["relu", "leaky", "tanh"] if bug != "mask" \
        else ["relu"]


CASES = [(bug, act) for bug in BUGS for act in activation(bug)]


@pytest.mark.parametrize(("bug", "act"), CASES)
@pytest.mark.parametrize("scale", [1e-4, 1e-2, 1.0])
def test_a_backward_bug_fails_in_float64(bug: str, act: str, scale: float) -> None:
    report = check(*model(scale, 0, False, act, bug))
    assert report.status == "fail", report
    assert set(report.failing_tensors) <= {"W1", "b1"}, report


@pytest.mark.parametrize("scale", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
@pytest.mark.parametrize("seed", range(3))
def test_the_wrong_mask_fails_in_float64_down_to_init_1e6(scale: float, seed: int) -> None:
    report = check(*model(scale, seed, False, "relu", "mask"))
    assert report.status == "fail", report
    assert "W1" in report.failing_tensors or "b1" in report.failing_tensors, report


@pytest.mark.parametrize(("bug", "act"), CASES)
@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1e-2, 1.0])
def test_no_backward_bug_passes_under_a_float32_loss(bug: str, act: str, scale: float) -> None:
    forward, forward_backward, params = model(scale, 1, True, act, bug)
    report = check(forward, forward_backward, params)
    assert report.status != "pass", report
    # an entry may pass only where the bug's error is within the tolerance at the model's
    # gradient scale (at init ≤ 1e-4 the first layer's gradients are below it)
    true = model(scale, 1, True, act, None)[1](params)[1]
    wrong = forward_backward(params)[1]
    scale_g = np.sqrt(np.mean(np.concatenate([g.ravel() for g in true.values()]) ** 2))
    for t in report.tensors:
        g = true[t.name].ravel()[t.flat_index]
        err = np.abs(wrong[t.name].ravel()[t.flat_index] - g)
        beyond = err > 3 * TOL32 * np.maximum(np.abs(g), scale_g)
        assert not np.any(beyond & (np.asarray(t.status) == 0)), (t.name, report)   # 0: pass


@pytest.mark.parametrize("act", ["relu", "leaky", "tanh"])
@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1e-2])
@pytest.mark.parametrize("low", [False, True])
def test_the_correct_backward_is_never_failed_or_reported(act: str, scale: float,
                                                          low: bool) -> None:
    report = check(*model(scale, 0, low, act, None))
    assert report.status != "fail", report
    if not low:
        assert not report.significant, report
