"""The core checker: schemes, error measures, trees, exact restore, the lecture's API."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import ForwardError, InputError
from gradcheck.judge import metrics


def quartic(p):
    x = p["x"]
    return float(np.sum(x**4 / 4 + np.exp(x) + np.sin(3 * x)))


def quartic_grad(p):
    x = p["x"]
    return {"x": x**3 + np.exp(x) + 3 * np.cos(3 * x)}


def max_error(method: str, h: float, x: np.ndarray) -> float:
    g = gc.numerical_gradient(quartic, {"x": x}, method=method, h=h)["x"]
    return float(np.max(np.abs(g - quartic_grad({"x": x})["x"])))


@pytest.mark.parametrize("method,order", [("central", 2), ("forward", 1), ("backward", 1)])
def test_order_of_accuracy_is_visible(method: str, order: int) -> None:
    x = np.array([0.3, -0.7, 1.1])
    e1, e2 = max_error(method, 1e-3, x), max_error(method, 5e-4, x)
    ratio = e1 / e2
    assert 2**order * 0.8 < ratio < 2**order * 1.25, ratio


def test_complex_step_is_machine_precise() -> None:
    def f(p):
        x = p["x"]
        return np.sum(np.exp(x) * np.tanh(x) + np.log(1 + x**2))

    x = np.linspace(-2, 2, 7)
    exact = np.exp(x) * np.tanh(x) + np.exp(x) / np.cosh(x) ** 2 + 2 * x / (1 + x**2)
    g = gc.numerical_gradient(f, {"x": x}, method="complex")["x"]
    assert np.max(np.abs(g - exact) / np.abs(exact)) < 1e-14


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_known_derivatives_pass(dtype) -> None:
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 3)).astype(dtype)
    X = rng.normal(size=(5, 4)).astype(dtype)
    y = np.array([0, 2, 1, 1, 0])

    def forward(p):
        o = X @ p["W"]
        o = o - o.max(axis=1, keepdims=True)
        logp = o - np.log(np.exp(o).sum(axis=1, keepdims=True))
        return -logp[np.arange(5), y].mean()

    def forward_backward(p):
        o = X @ p["W"]
        e = np.exp(o - o.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)
        s[np.arange(5), y] -= 1
        return {"W": X.T @ s / 5}

    report = gc.check(forward, forward_backward, {"W": W})
    assert report.status == "pass", report
    bad = gc.check(forward, lambda p: {"W": 2 * forward_backward(p)["W"]}, {"W": W})
    assert bad.status == "fail"


def test_relative_error_denominators() -> None:
    a, n = np.array([10.001, 1e-3, 0.0]), np.array([10.0001, 1e-4, 0.0])
    assert np.allclose(metrics.absolute_error(a, n)[:2], [9e-4, 9e-4])
    rel = metrics.relative_error(a, n)
    assert rel[0] < 1e-4 and rel[1] == pytest.approx(0.9) and rel[2] == 0
    assert metrics.relative_error(a, n, "sum")[1] == pytest.approx(9e-4 / 1.1e-3)
    assert metrics.relative_error(a, n, "abs_analytic")[1] == pytest.approx(0.9)


def test_tree_names_and_restore_identity() -> None:
    inner = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    strided = np.arange(20.0)[::2]
    scalar = np.array(1.5)
    params = {"enc": {"W": inner}, "layers": [strided, (scalar,)]}
    before = [inner.copy(), strided.copy(), scalar.copy()]

    def forward(p):
        return float(np.sum(p["enc"]["W"] ** 2) + np.sum(p["layers"][0] ** 3)
                     + p["layers"][1][0] ** 2)

    def forward_backward(p):
        return {"enc": {"W": 2 * p["enc"]["W"]},
                "layers": [3 * p["layers"][0] ** 2, (2 * p["layers"][1][0],)]}

    report = gc.check(forward, forward_backward, params)
    assert report.status == "pass", report
    assert [t.name for t in report.tensors] == ["enc.W", "layers[0]", "layers[1][0]"]
    assert report.tensor("enc.W").entry(5).name == "enc.W[1,2]"
    assert params["enc"]["W"] is inner and params["layers"][0] is strided
    for a, b in zip([inner, strided, scalar], before):
        assert a.tobytes() == b.tobytes()


def test_params_bit_identical_when_forward_raises_midway() -> None:
    x = np.array([0.1, 0.2, np.nan, 0.4])
    x[2] = 0.3
    snapshot = x.copy()
    calls = {"n": 0}

    def forward(p):
        calls["n"] += 1
        if p[2] > 0.3:   # raises when x[2] moves up (the noise measurement survives it)
            raise RuntimeError("boom")
        return float(np.sum(p**2))

    with pytest.raises(ForwardError, match=r"boom.*params\[\d\]"):
        gc.check(forward, lambda p: 2 * p, x)
    assert x.tobytes() == snapshot.tobytes()


def test_relative_step_divides_by_the_step_taken() -> None:
    x = np.array([1e6, 2e5, 0.0])
    g = gc.numerical_gradient(lambda p: float(np.sum(p**2)), x, relative_step=True, h=1e-6)
    assert np.allclose(g, 2 * x, rtol=1e-8, atol=1e-8)


def test_base_value_computed_once_per_check() -> None:
    calls = {"n": 0}

    def forward(p):
        calls["n"] += 1
        return float(np.sum(p**2))

    x = np.ones(5)
    report = gc.check(forward, lambda p: 2 * p, x)
    # two base evaluations (determinism), the noise measurement (issue #10: a few difference
    # tables, once per check), then 2 per entry for central differences
    noise = report.decisions["noise_evaluations"]
    assert calls["n"] == report.evaluations == 2 + noise + 2 * 5


def test_grad_check_prints_one_alert_per_mismatch(capsys) -> None:
    x = np.array([1.0, 2.0, 3.0])

    def fb(p):
        g = 2 * p.copy()
        g[1] = 0.0
        return float(np.sum(p**2)), g

    report = gc.grad_check(lambda p: float(np.sum(p**2)), fb, x, 1e-5, 1e-5)
    out = capsys.readouterr().out
    assert out.count("ALERT") == 1 and "params[1]" in out
    assert report.status == "fail"


def test_report_json_is_stable() -> None:
    import json

    x = np.array([1.0, 2.0])
    report = gc.check(lambda p: float(np.sum(p**2)), lambda p: 2 * p, x)
    d = json.loads(report.to_json())
    assert d["schema"] == 1 and d["status"] == "pass"
    assert set(d) >= {"counts", "tensors", "worst", "options", "evaluations", "wall_time"}
    assert d["tensors"][0]["checked"] == 2


def test_bad_options_and_inputs_say_what_to_do() -> None:
    x = np.ones(3)
    with pytest.raises(TypeError, match="valid options"):
        gc.check(lambda p: 0.0, lambda p: p, x, tolerance=1e-3)
    with pytest.raises(InputError, match="dtype int"):
        gc.check(lambda p: 0.0, lambda p: p, np.arange(3))
    with pytest.raises(InputError, match="shape"):
        gc.check(lambda p: float(p.sum()), lambda p: np.ones(2), x)
    with pytest.raises(InputError, match="scalar loss"):
        gc.check(lambda p: p * 2, lambda p: p, x)
