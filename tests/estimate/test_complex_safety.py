"""Complex step made safe: unsafe code is refused with a reason; method='auto' falls back."""

from __future__ import annotations

import numpy as np
import pytest
from problems import exp_sin, exp_sin_grad

import gradcheck as gc
from gradcheck.errors import InputError
from gradcheck.estimate.complex_safety import probe

X = np.array([0.7, -0.4, 1.3])


def _smooth(p):
    return exp_sin(p["x"])


def _smooth_grad(p):
    return {"x": exp_sin_grad(p["x"])}


def _abs_forward(p):  # x·|x|: real-differentiable, but abs is not complex-analytic
    return np.sum(p["x"] * np.abs(p["x"]))


def _abs_grad(p):
    return {"x": 2 * np.abs(p["x"])}


def _float_cast(p):  # float() discards the imaginary part (numpy ComplexWarning)
    return float(np.sum(p["x"] ** 2))


def _inplace(p):  # writes complex values into a float buffer
    buf = np.zeros(3)
    buf[:] = p["x"] ** 2
    return np.sum(buf) + 0 * p["x"][0]


def _square_grad(p):
    return {"x": 2 * p["x"]}


def test_analytic_forward_is_safe() -> None:
    s = probe(_smooth, {"x": X.copy()}, [_smooth_grad({"x": X})["x"]], 1e-15)
    assert s.safe and s.checked == ["x[2]"] and s.evaluations == 4
    assert s.complex_time > 0 and s.real_time > 0


@pytest.mark.parametrize("forward, grad, words", [
    (_abs_forward, _abs_grad, "not complex-analytic"),
    (_float_cast, _square_grad, "ComplexWarning|discards the imaginary part"),
    (_inplace, _square_grad, "discards the imaginary part"),
    (lambda p: np.sum(np.abs(p["x"]) ** 2), _square_grad, "real number"),
])
def test_unsafe_code_is_refused_with_a_reason(forward, grad, words) -> None:
    with pytest.raises(InputError, match=words):
        gc.check(forward, grad, {"x": X.copy()}, method="complex", progress=False)


def test_auto_uses_complex_when_safe() -> None:
    r = gc.check(_smooth, _smooth_grad, {"x": X.copy()}, method="auto", progress=False)
    assert r.status == "pass"
    assert any("used the complex step" in n for n in r.notes)
    assert np.max(np.abs(r.tensors[0].numeric - _smooth_grad({"x": X})["x"])) < 1e-14


def test_auto_falls_back_to_a_real_scheme() -> None:
    r = gc.check(_abs_forward, _abs_grad, {"x": X.copy()}, method="auto", progress=False)
    assert r.status == "pass"
    assert any("used central4" in n and "not complex-analytic" in n for n in r.notes)


def test_auto_still_finds_a_bug() -> None:
    r = gc.check(_smooth, lambda p: {"x": 1.01 * _smooth_grad(p)["x"]}, {"x": X.copy()},
                 method="auto", progress=False)
    assert r.status == "fail"


def test_auto_refuses_an_explicit_step() -> None:
    with pytest.raises(InputError, match="auto chooses"):
        gc.check(_smooth, _smooth_grad, {"x": X.copy()}, method="auto", h=1e-5)


def test_auto_rescues_inconclusive_entries_when_complex_is_slow(monkeypatch) -> None:
    from gradcheck.estimate import complex_safety

    monkeypatch.setattr(complex_safety, "RESCUE_RATIO", 0.0)  # pretend complex is slow

    def f(p):  # a gradient of 1e-9 under a loss of 1e8: finite differences drown in rounding
        return 1e8 + 1e-9 * np.sum(np.sin(p["x"]))

    r = gc.check(f, lambda p: {"x": 1e-9 * np.cos(p["x"])}, {"x": X.copy()}, method="auto",
                 progress=False)
    assert any("only for entries" in n for n in r.notes)
    assert r.status == "pass", str(r)
    assert np.allclose(r.tensors[0].numeric, 1e-9 * np.cos(X), rtol=1e-12)
    wrong = gc.check(f, lambda p: {"x": 1.1e-9 * np.cos(p["x"])}, {"x": X.copy()},
                     method="auto", progress=False)
    assert wrong.status == "fail"
