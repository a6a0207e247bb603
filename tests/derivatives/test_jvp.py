"""check_jvp: forward-mode derivatives of the loss against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.derivatives.jvp import check_jvp


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softmax_problem(dtype=np.float64, bug: bool = False):
    """L = Σ softmax(x)·w: the JVP is Σ w·y·(t − Σ y·t); the bug forgets the subtraction."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5)).astype(dtype)
    w = rng.normal(size=(3, 5)).astype(dtype)

    def forward(p):
        return np.sum(softmax(p) * w)

    def jvp(p, t):
        y = softmax(p)
        dy = y * t if bug else y * (t - np.sum(y * t, -1, keepdims=True))
        return forward(p), np.sum(dy * w)

    return forward, jvp, x


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_jvp(mode, dtype):
    forward, jvp, x = softmax_problem(dtype)
    report = check_jvp(forward, jvp, x, mode=mode, progress=False)
    assert report.status == "pass", report
    forward, jvp, x = softmax_problem(dtype, bug=True)
    report = check_jvp(forward, jvp, x, mode=mode, progress=False)
    assert report.status == "fail"


def test_one_jvp_per_entry_and_one_for_linearity():
    forward, jvp, x = softmax_problem()
    calls = {"n": 0}

    def counted(p, t):
        calls["n"] += 1
        return jvp(p, t)

    report = check_jvp(forward, counted, x, progress=False)
    assert calls["n"] == x.size + 1
    assert any("linear" in n for n in report.notes)


def test_sample_computes_only_the_sampled_jvps():
    forward, jvp, x = softmax_problem()
    calls = {"n": 0}

    def counted(p, t):
        calls["n"] += 1
        return jvp(p, t)

    report = check_jvp(forward, counted, x, sample=4, progress=False)
    assert report.status == "pass"
    assert report.counts["checked"] == calls["n"] - 1 == report.tensors[0].checked


def test_a_jvp_not_linear_in_its_tangent_fails():
    forward, jvp, x = softmax_problem()
    report = check_jvp(forward, lambda p, t: abs(jvp(p, t)[1]), x, progress=False)
    assert report.status == "fail"
    assert any("not linear" in w for w in report.warnings)


def test_wrong_entry_is_named():
    forward, jvp, x = softmax_problem()

    def bad(p, t):
        loss, d = jvp(p, t)
        return loss, d + 0.05 * t[1, 2]

    report = check_jvp(forward, bad, x, progress=False)
    assert [e.name for e in report.entries("FAIL")] == ["params[1,2]"]


@pytest.mark.parametrize("bug", [False, True])
def test_complex_parameters(bug):
    """L = Σ|z|²: dL[t] = 2·Re(z̄·t); the bug drops the conjugate."""
    z = np.random.default_rng(4).normal(size=4) + 1j * np.random.default_rng(5).normal(size=4)

    def forward(p):
        return float(np.sum(np.abs(p) ** 2))

    def jvp(p, t):
        return 2 * float(np.sum(np.real((p if bug else np.conj(p)) * t)))

    report = check_jvp(forward, jvp, z, progress=False)
    assert report.status == ("fail" if bug else "pass")
    assert report.counts["checked"] == 8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_valued_forward_mode_names_the_output(dtype):
    """F(x) = (sin x, x²); the bug writes x·t for 2x·t in the tangent of output 1."""
    from gradcheck.derivatives.jvp import check_output_jvp

    x = np.random.default_rng(6).normal(size=5).astype(dtype)

    def function(p):
        return np.sin(p), p**2

    def tangents(p, t, bug=False):
        return np.cos(p) * t, (p if bug else 2 * p) * t

    assert check_output_jvp(function, tangents, x, progress=False).status == "pass"
    report = check_output_jvp(function, lambda p, t: tangents(p, t, True), x,
                              output_names=["s", "sq"], progress=False)
    assert report.status == "fail"
    for entry in report.entries("FAIL")[:5]:
        assert f"output sq[{entry.index[0]}]" in entry.note


def test_directional_mode_spends_one_jvp_per_tensor_and_localises_a_bad_entry():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(12, 20)), "b": rng.normal(size=20)}
    x = rng.normal(size=(6, 12))
    calls = {"n": 0}

    def forward(p):
        return float(np.sum(np.tanh(x @ p["W"] + p["b"])))

    def jvp(p, t, bug=False):
        calls["n"] += 1
        d = 1 - np.tanh(x @ p["W"] + p["b"]) ** 2
        tb = t["b"] * np.where(np.arange(20) == 7, 1.01 if bug else 1.0, 1.0)
        return float(np.sum(d * (x @ t["W"] + tb)))

    report = check_jvp(forward, jvp, params, mode="directional", progress=False)
    assert report.status == "pass"
    assert calls["n"] == 3                     # the random tangent, then one per tensor
    assert report.evaluations < 20
    report = check_jvp(forward, lambda p, t: jvp(p, t, True), params, mode="directional",
                       progress=False)
    assert report.status == "fail"
    assert "b[7]" in [e.name for e in report.entries("FAIL")]
    assert report.tensor("W·u").failed == 0
