"""``strict``: a small discrepancy far outside its error bar is reported by default and fails
under ``strict=True`` — in the library, on the command line (``--strict``) and in the pytest
plugin (``--gradcheck-strict``)."""

from __future__ import annotations

import pytest
from problems import tanh_model

import gradcheck as gc
from gradcheck.cli import main

pytest_plugins = ["pytester"]

MODULE = '''
import numpy as np

X = np.random.default_rng(3).normal(size=(8, 3))
y = np.random.default_rng(4).normal(size=8)


def forward(p):
    r = np.tanh(X @ p["w"] + p["b"]) - y
    return 0.5 * float(r @ r)


def forward_backward(p, factor={factor}):
    t = np.tanh(X @ p["w"] + p["b"])
    d = (t - y) * (1 - t**2)
    return 0.5 * float((t - y) @ (t - y)), {{"w": factor * (X.T @ d), "b": d.sum()}}


def problem():
    return forward, forward_backward, {{"w": np.array([0.3, -0.7, 1.1]), "b": np.array(0.1)}}


def test_model(gradcheck):
    gradcheck(*problem())
'''


def _scaled(fb, factor):
    def wrong(p):
        loss, g = fb(p)
        return loss, {**g, "w": factor * g["w"]}
    return wrong


@pytest.mark.parametrize("factor", [1 + 1e-6, 1 - 3e-6])
def test_library_reports_by_default_and_fails_under_strict(factor: float) -> None:
    f, fb, p = tanh_model()
    default = gc.check(f, _scaled(fb, factor), p, progress=False)
    assert default.status == "pass"
    assert [s.tensor for s in default.significant] == ["w"]
    assert "strict" in str(default)
    strict = gc.check(f, _scaled(fb, factor), p, progress=False, strict=True)
    assert strict.status == "fail" and strict.failing_tensors == ["w"]


def test_strict_passes_a_correct_model() -> None:
    f, fb, p = tanh_model()
    report = gc.check(f, fb, p, progress=False, strict=True)
    assert report.status == "pass" and not report.significant


@pytest.mark.parametrize("factor,default_code,strict_code", [(1.0, 0, 0), (1 + 1e-6, 0, 1)])
def test_cli_strict_flag(tmp_path, monkeypatch, capsys, factor, default_code,
                         strict_code) -> None:
    name = f"smallbug_{strict_code}"          # one module per case: imports are cached
    (tmp_path / f"{name}.py").write_text(MODULE.format(factor=repr(factor)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", f"{name}:problem", "--no-progress"]) == default_code
    assert main(["check", f"{name}:problem", "--no-progress", "--strict"]) == strict_code
    capsys.readouterr()


@pytest.mark.parametrize("factor,strict_outcome", [(1.0, "passed"), (1 + 1e-6, "failed")])
def test_pytest_plugin_strict_option(pytester, factor, strict_outcome) -> None:
    pytester.makepyfile(test_model=MODULE.format(factor=repr(factor)))
    pytester.runpytest().assert_outcomes(passed=1)
    result = pytester.runpytest("--gradcheck-strict")
    result.assert_outcomes(**{strict_outcome: 1})
