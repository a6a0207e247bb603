"""Directional mode's pass rule: a tensor passes only when its test resolves the target.

Over the regime grid (:mod:`gradcheck.examples.regimes`: scales × nonlinearities × precision
paths × loss scales), no correct model may FAIL and no model with a 1e-3 bug may pass; and the
rule itself (:func:`gradcheck.modes.directional.classify`) is tested on its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples import regimes as R
from gradcheck.judge.verdict import INCONCLUSIVE
from gradcheck.modes import directional as D

GRID = dict(scales=(1e-6, 1e-4, 1e-2, 1.0), nonlinearities=R.NONLINEARITIES,
            loss_scales=(1e-15, 1.0), seeds=(2,))


@pytest.mark.parametrize("precision", R.PRECISIONS)
def test_no_correct_model_fails_and_no_1e3_bug_passes(precision: str) -> None:
    wrong = []
    for regime in R.grid(**GRID, precisions=(precision,)):
        for bug, forbidden in ((0.0, "fail"), (1e-3, "pass")):
            model = R.build(regime, bug)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = gc.check(model.forward, model.forward_backward, model.params,
                                  mode="directional", progress=False)
            if report.status == forbidden:
                wrong.append(f"{regime.label} bug={bug:g}: {report.status}")
    assert not wrong, "\n".join(wrong)


# -- the pass rule --------------------------------------------------------------------------

def test_agreeing_and_resolving_passes() -> None:
    assert D.classify(1.0, 1.0 + 1e-9, 1e-8, 1e-6, 1e-5, 1.0) == D.PASS


@pytest.mark.parametrize("numeric", [1.0 + 1e-7, np.nan, np.inf])
def test_beyond_the_bar_or_not_finite_differs(numeric: float) -> None:
    assert D.classify(1.0, numeric, 1e-8, 1e-6, 1e-5, 1.0) == D.DIFFERS


def test_agreeing_within_a_bar_too_large_for_the_target_is_unresolved() -> None:
    """|N − A| within the bar, but an error of the target on one entry would hide in it."""
    assert D.classify(1.0, 1.0 + 1e-9, 1e-8, 2e-5, 1e-5, 1.0) == D.UNRESOLVED


def test_a_direction_nearly_orthogonal_to_the_gradient_is_unresolved() -> None:
    """A uniform relative error ``c`` shows as ``c·A``: with ``A`` tiny (``u ⊥ g`` by chance)
    a scale error of the target's size stays within the bar."""
    bar, target, s_g = 1e-8, 1e-5, 1.0
    tiny = D.SCALE_MARGIN * bar * s_g / target / 2
    assert D.classify(tiny, tiny, bar, 1e-6, target, s_g) == D.UNRESOLVED
    assert D.classify(100 * tiny, 100 * tiny, bar, 1e-6, target, s_g) == D.PASS
    # a zero gradient has no scale to resolve
    assert D.classify(0.0, 0.0, bar, 1e-6, target, 0.0) == D.PASS


def test_the_step_reaches_the_bar_the_target_needs() -> None:
    """``t = η/(AIM·b)`` when within reach; ``reach·‖v‖/max|v|`` at most."""
    rng = np.random.default_rng(0)
    n = 1000
    state = D.make_state(0, rng.normal(size=n), rng.normal(size=n), 0.0, seed=0)
    D.configure(state, h=1e-8, noise=1e-12, tol=1e-5, floor=0.0, scale=1.0)
    a = D.unit_analytic(state, 0, n)
    need = D.needed_bar(state, 0, n, a)
    assert D.step_length(state, 0, n) == pytest.approx(1e-12 / (D.AIM * need))
    D.configure(state, h=1e-8, noise=1.0, tol=1e-5, floor=0.0, scale=1.0)
    norm, _, vmax = state.stats.span(0, n)
    assert D.step_length(state, 0, n) == pytest.approx(D.validated.UP_CAP * norm / vmax)


def test_the_verified_scale_counts_only_tensors_that_passed() -> None:
    rng = np.random.default_rng(1)
    states = [D.make_state(i, rng.normal(size=10), np.full(10, 2.0), 0.0, seed=0)
              for i in range(2)]
    states[0].root = D.Outcome(D.PASS, 0, 0, 0, 0, 2)
    states[1].root = D.Outcome(D.DIFFERS, 0, 0, 0, 0, 2)
    assert D.verified_scale(states) == pytest.approx(np.sqrt(4.0 * 10 / 20))


# -- what the rule does to a check -----------------------------------------------------------

def noisy(n: int = 2000, bad: int | None = None):
    """``f = 10⁴ + Σ x²/2`` computed in float32 and returned as a Python float: the loss's
    noise (~10⁻³) is far above what resolves one entry of ``n``."""
    x0 = np.random.default_rng(2).normal(size=n)

    def forward(p):
        x = p["x"].astype(np.float32)
        return float(np.float32(1e4) + np.sum(x * x) / np.float32(2))

    def forward_backward(p):
        g = p["x"].copy()
        if bad is not None:
            g[bad] += 1e-2
        return {"x": g}

    return forward, forward_backward, {"x": x0}


def test_an_unresolved_tensor_is_inconclusive_not_pass() -> None:
    forward, forward_backward, p = noisy()
    report = gc.check(forward, forward_backward, p, mode="directional", progress=False)
    x = report.tensor("x")
    assert x.directional.result == D.UNRESOLVED
    assert x.directional.noise_measured
    assert x.verdict == report.status == "inconclusive"
    assert x.checked == D.FULL_CHECK < x.size
    assert "inconclusive" in x.directional.note and "loss_scale" in x.directional.note


def test_a_bug_hidden_by_the_noise_is_never_passed() -> None:
    forward, forward_backward, p = noisy(bad=7)
    report = gc.check(forward, forward_backward, p, mode="directional", progress=False)
    assert report.status != "pass"


def test_a_small_unresolved_tensor_is_checked_whole_and_decided_by_its_entries() -> None:
    forward, forward_backward, p = noisy(n=100)
    report = gc.check(forward, forward_backward, p, mode="directional", progress=False)
    x = report.tensor("x")
    assert x.directional.result == D.UNRESOLVED and not x.directional.inconclusive
    assert x.checked == 100
    assert x.verdict == ("pass" if not x.count(INCONCLUSIVE) else "inconclusive")


def test_a_correct_float64_model_costs_two_evaluations_per_tensor_and_no_noise_table() -> None:
    model = R.build(R.Regime(1.0, "tanh", "f64"), 0.0)
    report = gc.check(model.forward, model.forward_backward, model.params,
                      mode="directional", progress=False)
    assert report.status == "pass"
    assert report.evaluations == 2 * len(model.params) + 2
    assert not any(t.directional.noise_measured for t in report.tensors)


def test_located_entries_are_judged_by_the_validated_engine() -> None:
    """ReLU at init scale 1e-6: every step crosses kinks, the tests differ, and the located
    entries go through the validated ladder (kink test, group look), which does not FAIL a
    correct gradient (the old second look did)."""
    model = R.build(R.Regime(1e-6, "relu", "f64", seed=0), 0.0)
    report = gc.check(model.forward, model.forward_backward, model.params,
                      mode="directional", progress=False)
    assert report.status != "fail"
    assert any(t.directional.result == D.DIFFERS and t.checked for t in report.tensors)
