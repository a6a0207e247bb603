"""check_vjp: vector-valued functions, failures named by input entry and output element."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.derivatives.vjp import check_vjp


def three_outputs(bug: bool = False, dtype=np.float64):
    """F(x) = (sin x, x², exp x); the bug writes x for 2x in output 1's backward."""
    x = np.random.default_rng(0).normal(size=6).astype(dtype)

    def function(p):
        return np.sin(p), p**2, np.exp(p)

    def vjp(p, c):
        c0, c1, c2 = c
        return c0 * np.cos(p) + c1 * (p if bug else 2 * p) + c2 * np.exp(p)

    return function, vjp, x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_three_outputs(dtype, mode):
    function, vjp, x = three_outputs(dtype=dtype)
    assert check_vjp(function, vjp, x, mode=mode, progress=False).status == "pass"
    function, vjp, x = three_outputs(bug=True, dtype=dtype)
    report = check_vjp(function, vjp, x, mode=mode, progress=False,
                       output_names=["sin", "square", "exp"])
    assert report.status == "fail"
    failing = report.entries("FAIL")
    assert failing
    for entry in failing[:5]:
        k = entry.index[0]
        assert f"output square[{k}]" in entry.note, entry.note


def test_one_vjp_call_for_the_whole_check():
    function, vjp, x = three_outputs()
    calls = {"n": 0}

    def counted(p, c):
        calls["n"] += 1
        return vjp(p, c)

    check_vjp(function, counted, x, progress=False)
    assert calls["n"] == 1


def test_dropped_output_element_is_named():
    """cumsum whose backward drops the last output's cotangent: every input is wrong, and the
    disagreement of each comes from output[7]."""
    x = np.random.default_rng(1).normal(size=8)

    def vjp(p, c):
        c = c.copy()
        c[-1] = 0
        return np.cumsum(c[::-1])[::-1]

    report = check_vjp(lambda p: np.cumsum(p), vjp, x, progress=False)
    assert report.status == "fail"
    assert all("output[7]" in e.note for e in report.entries("FAIL")[:5])


def complex_case(name: str, bug: bool):
    """PyTorch's convention: grad_in = c·conj(∂f/∂z) + conj(c)·∂f/∂z̄; the bugs conjugate."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=5) + 1j * rng.normal(size=5)
    if name == "z_conj_z":
        def vjp(p, c):
            zz = np.conj(p) if bug else p
            return c * zz + np.conj(c) * zz
        return (lambda p: p * np.conj(p)), vjp, z
    if name == "abs":
        def vjp(p, c):
            u = p / np.abs(p)
            return c * (np.conj(u) if bug else u)
        return np.abs, vjp, z
    if name == "exp_z_z":
        def vjp(p, c):
            d = np.exp(p) * (1 + p)
            return c * (d if bug else np.conj(d))
        return (lambda p: np.exp(p) * p), vjp, z
    a = rng.normal(size=(3, 4)) + 1j * rng.normal(size=(3, 4))
    b = rng.normal(size=(4, 2)) + 1j * rng.normal(size=(4, 2))

    def vjp(p, c):
        return {"a": c @ (p["b"].T if bug else p["b"].conj().T), "b": p["a"].conj().T @ c}

    return (lambda p: p["a"] @ p["b"]), vjp, {"a": a, "b": b}


@pytest.mark.parametrize("name", ["z_conj_z", "abs", "exp_z_z", "matmul"])
def test_complex_functions(name):
    function, vjp, z = complex_case(name, False)
    report = check_vjp(function, vjp, z, progress=False)
    assert report.status == "pass", report
    function, vjp, z = complex_case(name, True)
    report = check_vjp(function, vjp, z, progress=False)
    assert report.status == "fail"
    assert "output" in report.entries("FAIL")[0].note


def test_integer_output_is_refused():
    from gradcheck.errors import InputError

    with pytest.raises(InputError, match="Output 'output1'"):
        check_vjp(lambda p: (p, np.arange(3)), lambda p, c: c[0], np.ones(3), progress=False)
