"""The non-default options of an elementwise check give no wrong verdicts.

``method="central4"``, ``"richardson"``, ``"auto"``, ``h="auto"``, ``relative_step=True`` and
``sample=8`` all go through the validated engine (:mod:`gradcheck.modes.validated`): another
scheme's estimate may pass an entry, only the validated central ladder may FAIL one. Over a grid
of regimes (:mod:`gradcheck.examples.regimes`: init scales × nonlinearities × the four
precision paths) no correct model FAILs and no 1e-3 bug passes; ``benchmarks/
verdict_options.py`` measures the same on a larger grid.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples import regimes as R
from gradcheck.modes import validated

OPTIONS = {
    "central4": {"method": "central4"},
    "richardson": {"method": "richardson"},
    "auto": {"method": "auto"},
    "h=auto": {"h": "auto"},
    "relative_step": {"relative_step": True},
    "sample=8": {"sample": 8},
    "second_look=False": {"second_look": False},
}
#: Options whose checks must also FAIL a 1e-3 bug on a float64 or float32 loss (a sample may
#: miss the wrong entries' evidence, and one unvalidated step never FAILs).
DECISIVE = ("central4", "richardson", "auto", "h=auto", "relative_step")
#: scale × nonlinearity × precision × loss scale (seed 0): kinks crowding every step at 1e-6
#: and 1e-4, a smooth net at 1, max-pooling ties; every precision path; a loss of 1e-15.
GRID = [R.Regime(scale, nonlinearity, precision, loss, 0)
        for scale, nonlinearity, precision, loss in itertools.product(
            (1e-6, 1e-4, 1e-2, 1.0), ("relu", "maxpool", "tanh"), R.PRECISIONS, (1.0,))]
GRID += [R.Regime(scale, "relu", precision, 1e-15, 1)
         for scale, precision in itertools.product((1e-4, 1.0), R.PRECISIONS)]


def check(model: R.RegimeModel, **options) -> gc.Report:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gc.check(model.forward, model.forward_backward, model.params, progress=False,
                        **options)


@pytest.mark.parametrize("regime", GRID, ids=lambda r: r.label)
@pytest.mark.parametrize("option", OPTIONS)
def test_correct_models_never_fail(option: str, regime: R.Regime) -> None:
    report = check(R.build(regime), **OPTIONS[option])
    assert report.status != "fail", report


@pytest.mark.parametrize("regime", GRID, ids=lambda r: r.label)
@pytest.mark.parametrize("option", OPTIONS)
def test_a_1e3_bug_is_never_passed(option: str, regime: R.Regime) -> None:
    model = R.build(regime, bug=1e-3)
    report = check(model, **OPTIONS[option])
    assert report.status != "pass", report
    if regime.precision in ("f64", "f32") and option in DECISIVE:
        assert report.status == "fail" and model.bug_tensor in report.failing_tensors, report


@pytest.mark.parametrize("method", ["central4", "richardson"])
def test_a_scheme_passes_smooth_entries_and_the_report_says_so(method: str) -> None:
    report = check(R.build(R.Regime(1.0, "tanh", "f64", 1.0, 0)), method=method)
    assert report.status == "pass", report
    notes = [e.note for e in report.entries()]
    # the scheme may pass an entry at once only where its one-sided slopes leave no room for
    # a kink inside its (wide) stencil; the validated central ladder decides the others
    assert notes and all(n.startswith((method, "central")) for n in notes)
    assert any(f"method {method}" in n for n in report.notes)


def test_only_the_central_ladder_fails_an_entry() -> None:
    model = R.build(R.Regime(1.0, "tanh", "f64", 1.0, 1), bug=1e-3)
    report = check(model, method="richardson")
    assert report.status == "fail"
    assert all(e.note.startswith("central") for e in report.entries("FAIL"))


def test_relative_step_applies_to_an_explicit_h_and_says_so_otherwise() -> None:
    x = np.array([1e-3, 1.0, 50.0])
    assert np.allclose(validated.first_steps(x, 1e-6, True, 1e-15), 1e-6 * x)
    default = validated.first_steps(x, None, False, 1e-15)
    assert np.array_equal(validated.first_steps(x, None, True, 1e-15), default)
    report = check(R.build(R.Regime(1.0, "tanh", "f64", 1.0, 0)), relative_step=True)
    assert any("relative_step=True changes only an explicit h" in n for n in report.notes)


def test_a_sample_pays_no_averaged_look_for_the_whole_sample() -> None:
    model = R.build(R.Regime(1e-2, "tanh", "f16", 1.0, 0))
    report = check(model, sample=8)
    assert report.status != "fail"
    assert report.evaluations / max(report.counts["checked"], 1) < 60, report.evaluations


@pytest.mark.parametrize("method", ["central4", "richardson", "auto"])
def test_the_header_says_that_the_central_ladder_decides_the_rest(method: str) -> None:
    p = {"w": np.linspace(-1.0, 1.0, 5)}

    def forward(q):
        return float(np.sum(np.sin(q["w"])))

    report = gc.check(forward, lambda q: (forward(q), {"w": np.cos(q["w"])}), p,
                      method=method, progress=False)
    assert report.decisions["ladder"] == "central"
    assert report.to_dict()["decisions"]["ladder"] == "central"
    assert "then the validated central ladder for what it did not pass" in str(report)
    plain = gc.check(forward, lambda q: (forward(q), {"w": np.cos(q["w"])}), p,
                     progress=False)
    assert "ladder for what" not in str(plain)
