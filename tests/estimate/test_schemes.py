"""Higher-order schemes: exactness on polynomials, convergence order, error estimates."""

from __future__ import annotations

import numpy as np
import pytest
from problems import exp_sin, exp_sin_grad

import gradcheck as gc
from gradcheck.estimate.schemes import SCHEMES, stencil_weights


def _f(p):
    return exp_sin(p["x"])


def test_stencil_weights_are_the_five_point_formula() -> None:
    d = np.array([[1.0, -1.0, 2.0, -2.0]])
    w = stencil_weights(d)
    np.testing.assert_allclose(w[0], [8 / 12, -8 / 12, -1 / 12, 1 / 12], atol=1e-15)


@pytest.mark.parametrize("method, order", [("central4", 4), ("richardson", 6)])
def test_convergence_order(method: str, order: int) -> None:
    x = np.array([0.3, -0.7, 1.1])

    def err(h):
        g = gc.numerical_gradient(_f, {"x": x}, method=method, h=h)["x"]
        return np.max(np.abs(g - exp_sin_grad(x)))

    ratio = err(0.2) / err(0.1)
    assert 2**order * 0.6 < ratio < 2**order * 1.6, ratio


@pytest.mark.parametrize("method", ["central4", "richardson"])
def test_default_step_is_near_machine_precision(method: str) -> None:
    x = np.linspace(-1.5, 1.5, 9)
    g = gc.numerical_gradient(_f, {"x": x}, method=method)["x"]
    assert np.max(np.abs(g - exp_sin_grad(x)) / np.abs(exp_sin_grad(x))) < 1e-10


def test_cubic_is_exact_for_central4() -> None:
    x = np.array([0.5, 2.0])
    g = gc.numerical_gradient(lambda p: np.sum(p["x"] ** 3 - 2 * p["x"] ** 2), {"x": x},
                              method="central4", h=0.1)["x"]
    np.testing.assert_allclose(g, 3 * x**2 - 4 * x, rtol=1e-12)


def test_richardson_error_estimate_bounds_the_error() -> None:
    s = SCHEMES["richardson"]
    x = np.array([0.2, 0.9])
    h = np.full(2, 0.2)
    pts = s.points(x, h, np.dtype(np.float64))
    f = np.exp(pts) * np.sin(pts)
    est = s.combine(x, pts, f, 0.0, 0.0)
    err = np.abs(est.value - exp_sin_grad(x))
    assert np.all(err <= est.truncation)
    assert np.all(est.truncation < 1e-4)


def test_unused_entry_gives_exact_zero() -> None:
    g = gc.numerical_gradient(lambda p: float(np.sum(p["x"][:1] ** 2)), {"x": np.ones(3)},
                              method="central4")["x"]
    assert g[1] == 0.0 and g[2] == 0.0


def test_checks_pass_with_new_schemes() -> None:
    x = np.linspace(-1, 1, 5)
    for method in ("central4", "richardson"):
        r = gc.check(_f, lambda p: {"x": exp_sin_grad(p["x"])}, {"x": x}, method=method,
                     progress=False)
        assert r.status == "pass", (method, str(r))
