"""A ReLU backward that uses the wrong mask — ``sigmoid(z)``, softplus's derivative, in place
of ``1[z > 0]`` — on a net at small initial weights, where every ``z`` is near 0.

The error is about half of each first-layer gradient entry, but it is nearly orthogonal to the
analytic gradient itself (the true mask is a random 0/1 pattern, the wrong one ≈ 0.5
everywhere), so the derivative along the analytic direction agrees; and the model's larger
output-layer gradients keep every entry below the tolerance. The check must still fail it in
float64 (along the estimates' residual, at validated steps) and never pass it under a float32
loss. A look at steps beyond the parameter's scale would pass it: outside the cluster of
kinks the central difference is the mean of the outer slopes, ``0.5·(r + l)`` — exactly what
the wrong mask computes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck as gc

N, D, H, C = 20, 8, 10, 3


def model(scale: float, seed: int, low: bool, wrong: bool):
    """A 2-layer ReLU MLP with softmax cross-entropy; ``low``: the forward computes in
    float32 and returns a Python float; ``wrong``: the backward's mask is ``sigmoid(z)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    y = rng.integers(C, size=N)
    params = {"W1": scale * rng.normal(size=(D, H)), "b1": np.zeros(H),
              "W2": scale * rng.normal(size=(H, C)), "b2": np.zeros(C)}

    def run(p, dtype):
        w1, b1, w2, b2 = (p[k].astype(dtype) for k in ("W1", "b1", "W2", "b2"))
        z = x.astype(dtype) @ w1 + b1
        h = np.maximum(z, 0)
        s = h @ w2 + b2
        e = np.exp(s - s.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        return -np.log(prob[np.arange(N), y]).mean(), z, h, prob

    def forward(p):
        return float(run(p, np.float32 if low else np.float64)[0])

    def forward_backward(p):
        loss, z, h, prob = run(p, np.float64)
        ds = prob.copy()
        ds[np.arange(N), y] -= 1.0
        ds /= N
        mask = 1.0 / (1.0 + np.exp(-z)) if wrong else (z > 0)
        dz = (ds @ p["W2"].T) * mask
        return float(loss), {"W1": x.T @ dz, "b1": dz.sum(axis=0), "W2": h.T @ ds,
                             "b2": ds.sum(axis=0)}

    return forward, forward_backward, params


def check(scale, seed, low, wrong):
    forward, forward_backward, params = model(scale, seed, low, wrong)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gc.check(forward, forward_backward, params, progress=False)


@pytest.mark.parametrize("scale", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
@pytest.mark.parametrize("seed", range(3))
def test_the_wrong_mask_fails_in_float64(scale: float, seed: int) -> None:
    report = check(scale, seed, low=False, wrong=True)
    assert report.status == "fail", report
    assert "W1" in report.failing_tensors or "b1" in report.failing_tensors, report


@pytest.mark.parametrize("scale", [1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
@pytest.mark.parametrize("seed", range(3))
def test_the_wrong_mask_never_passes_under_a_float32_loss(scale: float, seed: int) -> None:
    report = check(scale, seed, low=True, wrong=True)
    assert report.status != "pass", report
    # an entry may pass only where the wrong mask's error is within the tolerance at the
    # model's gradient scale (at init ≤ 1e-4 the first layer's gradients are below it)
    forward, forward_backward, params = model(scale, seed, low=True, wrong=False)
    true = forward_backward(params)[1]
    wrong = model(scale, seed, low=True, wrong=True)[1](params)[1]
    scale_g = np.sqrt(np.mean(np.concatenate([g.ravel() for g in true.values()]) ** 2))
    tol = np.sqrt(np.finfo(np.float32).eps)
    for t in report.tensors:
        err = np.abs(wrong[t.name] - true[t.name]).ravel()[t.flat_index]
        beyond = err > 3 * tol * np.maximum(np.abs(true[t.name]).ravel()[t.flat_index], scale_g)
        assert not np.any(beyond & (np.asarray(t.status) == 0)), (t.name, report)   # 0: pass


@pytest.mark.parametrize("scale", [1e-6, 1e-4, 1e-2])
@pytest.mark.parametrize("low", [False, True])
def test_the_right_mask_is_never_failed_or_reported(scale: float, low: bool) -> None:
    report = check(scale, 0, low=low, wrong=False)
    assert report.status != "fail", report
    if not low:
        assert not report.significant, report
