"""h="auto": a step per entry from the measured truncation constant."""

from __future__ import annotations

import numpy as np
import pytest
from problems import exp_sin, exp_sin_grad

import gradcheck as gc
from gradcheck.estimate.schemes import get_scheme
from gradcheck.estimate.steps import auto_estimate

_f = exp_sin


def _run(method: str, x: np.ndarray, f=_f):
    scheme = get_scheme(method)
    f0 = float(f(x))
    noise = 16 * np.finfo(float).eps * abs(f0)

    def evaluate(mask, pts):
        out = np.empty(pts.shape)
        for r, i in enumerate(np.flatnonzero(mask)):
            for c in range(pts.shape[1]):
                y = x.copy()
                y[i] = pts[r, c]
                out[r, c] = f(y)
        return out

    return auto_estimate(scheme, evaluate, x, f0, noise, np.dtype(np.float64))


@pytest.mark.parametrize("method", ["forward", "central"])
def test_auto_is_close_to_the_best_step_in_hindsight(method: str) -> None:
    x = np.linspace(-2, 2, 9)
    est = _run(method, x)
    err_auto = np.median(np.abs(est.value - exp_sin_grad(x)) / np.abs(exp_sin_grad(x)))
    best = np.inf  # the best single step of a sweep, chosen with hindsight
    for h in np.logspace(-2, -9, 22):
        fixed = gc.numerical_gradient(lambda p: _f(p["x"]), {"x": x}, method=method, h=h)["x"]
        best = min(best, np.median(np.abs(fixed - exp_sin_grad(x)) / np.abs(exp_sin_grad(x))))
    assert err_auto < 5 * best
    assert np.all(np.abs(est.value - exp_sin_grad(x)) <= 10 * est.error_bar + 1e-15)


def test_step_follows_the_magnitude_of_x() -> None:
    x = np.array([0.3, 1.0, 1e4])
    est = _run("central", x, f=lambda v: np.sum(np.log1p(v**2)))
    assert est.step[2] > 100 * est.step[1] > 0
    np.testing.assert_allclose(est.value, 2 * x / (1 + x**2), rtol=1e-8)


def test_polynomial_keeps_the_pilot_step() -> None:
    # f''' = 0: no truncation to measure, the pilot estimate is kept (2e evaluations only).
    x = np.array([0.5, -1.5])
    calls = []
    scheme = get_scheme("central")
    f = lambda v: np.sum(v**2)  # noqa: E731

    def evaluate(mask, pts):
        calls.append(pts.shape)
        out = np.empty(pts.shape)
        for r, i in enumerate(np.flatnonzero(mask)):
            for c in range(pts.shape[1]):
                y = x.copy()
                y[i] = pts[r, c]
                out[r, c] = f(y)
        return out

    est = auto_estimate(scheme, evaluate, x, f(x), 1e-15, np.dtype(np.float64))
    np.testing.assert_allclose(est.value, 2 * x, rtol=1e-9)
    assert calls == [(2, 4)]


def test_check_accepts_h_auto() -> None:
    x = np.linspace(-1, 1, 6)
    r = gc.check(lambda p: _f(p["x"]), lambda p: {"x": exp_sin_grad(p["x"])}, {"x": x}, h="auto",
                 progress=False)
    assert r.status == "pass"
    bad = gc.check(lambda p: _f(p["x"]), lambda p: {"x": 1.001 * exp_sin_grad(p["x"])}, {"x": x},
                   h="auto", progress=False)
    assert bad.status == "fail"
