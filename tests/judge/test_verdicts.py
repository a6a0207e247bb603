"""Verdicts with error bars: pass / FAIL / inconclusive, tiny and zero gradients, float32,
loss scale, the second look at larger and smaller steps, overall status and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from problems import tanh_model

import gradcheck as gc
from gradcheck.judge.verdict import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Criteria,
    judge,
    model_scale,
    nondeterminism_is_rounding,
    tensor_scale,
)

# ----------------------------------------------------------------------------- judge() rules


def _one(a: float, n: float, bar: float, scale: float, zero_scale: float = 1.0):
    j = judge(np.array([a]), np.array([n]), np.array([bar]),
              Criteria(tol=1e-5, zero_scale=zero_scale), scale)
    return int(j.status[0]), str(j.reason[0])


def test_judge_rules_one_by_one() -> None:
    assert _one(np.nan, 1.0, 0.0, 1.0) == (FAIL, "the analytic gradient is not finite")
    assert _one(1.0, np.inf, 0.0, 1.0)[0] == INCONCLUSIVE
    assert _one(1.0, 1.0 + 1e-7, 0.0, 1.0) == (PASS, "")
    assert _one(1.0, 1.1, 0.0, 1.0) == (FAIL, "")
    status, reason = _one(1e-3, 1e-3 + 1e-7, 0.0, 1.0)           # tiny against its tensor
    assert status == PASS and "negligible" in reason
    status, reason = _one(1e-17, 1e-10, 3e-10, 1e-10)            # zero within resolution
    assert status == PASS and "zero" in reason
    status, reason = _one(0.5, 0.5 + 1e-4, 1e-3, 0.5)            # the bar cannot decide
    assert status == INCONCLUSIVE and "error bar" in reason
    assert _one(1.0, 2.0, 1e-3, 1.0)[0] == FAIL


def test_nan_never_passes_the_textbook_way() -> None:
    # the textbook test `err > tol` is False for NaN, i.e. it passes silently
    err = np.abs(np.nan - 1.0) / max(1e-10, 1.0)
    assert not err > 1e-5
    j = judge(np.array([np.nan, np.inf, -np.inf]), np.ones(3), np.zeros(3), Criteria())
    assert (j.status == FAIL).all()


def test_fail_needs_more_than_tolerance_and_error_bar() -> None:
    a, n = np.array([1.0]), np.array([1.001])
    assert judge(a, n, np.array([1e-2]), Criteria(zero_scale=1.0), 1.0).status[0] == INCONCLUSIVE
    assert judge(a, n, np.array([1e-6]), Criteria(zero_scale=1.0), 1.0).status[0] == FAIL
    assert judge(a, n, np.array([1e-6]), Criteria(tol=1e-2), 1.0).status[0] == PASS


def test_zero_within_resolution_needs_a_small_bar_at_the_model_scale() -> None:
    a, n, bar = np.array([1e-17]), np.array([1e-10]), np.array([3e-10])
    assert judge(a, n, bar, Criteria(zero_scale=0.1), 1e-10).status[0] == PASS
    # a bar as large as the model's gradients decides nothing
    a, n, bar = np.array([0.5]), np.array([0.7]), np.array([1.0])
    assert judge(a, n, bar, Criteria(zero_scale=0.6), 0.6).status[0] == INCONCLUSIVE


def test_scales() -> None:
    assert tensor_scale(np.array([3.0, 4.0, np.nan])) == pytest.approx(np.sqrt(12.5))
    assert tensor_scale(np.array([np.nan])) == 0.0
    assert model_scale([np.array([3.0]), np.array([[4.0]])]) == pytest.approx(np.sqrt(12.5))


def test_rounding_jitter_is_not_randomness() -> None:
    assert nondeterminism_is_rounding(1.0, 1.0 + 4e-16, np.dtype(np.float64))
    assert not nondeterminism_is_rounding(1.0, 1.0, np.dtype(np.float64))
    assert not nondeterminism_is_rounding(1.0, 1.001, np.dtype(np.float64))


# ----------------------------------------------------------------------------- model-level


def bn_bias_model(bug: bool = False):
    """y = batchnorm(X w + b): the bias b is removed by the mean subtraction, grad b = 0."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3))
    t = rng.normal(size=(16, 2))
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}

    def forward(p):
        z = X @ p["w"] + p["b"]
        zc = z - z.mean(axis=0)
        s = np.sqrt((zc**2).mean(axis=0) + 1e-5)
        return float(0.5 * np.sum((zc / s - t) ** 2))

    def forward_backward(p):
        z = X @ p["w"] + p["b"]
        zc = z - z.mean(axis=0)
        s = np.sqrt((zc**2).mean(axis=0) + 1e-5)
        y = zc / s
        dy = y - t
        m = z.shape[0]
        dz = (dy - dy.mean(axis=0) - y * (dy * y).mean(axis=0)) / s
        db = dz.sum(axis=0)          # ~1e-16: mathematically zero
        if bug:
            db = dy.sum(axis=0) / s  # forgets the mean subtraction
        assert m == 16
        return float(0.5 * np.sum(dy**2)), {"w": X.T @ dz, "b": db}

    return forward, forward_backward, params


def test_bias_feeding_batch_norm_has_zero_gradient_and_passes() -> None:
    f, fb, p = bn_bias_model()
    _, g = fb(p)
    assert np.all(np.abs(g["b"]) < 1e-12)
    report = gc.check(f, fb, p)
    assert report.status == "pass", report
    bad = gc.check(f, bn_bias_model(bug=True)[1], p)
    assert bad.status == "fail" and bad.failing_tensors == ["b"]


def test_a_tensor_whose_whole_gradient_is_wrong_still_fails() -> None:
    f, fb, p = bn_bias_model()

    def fb_bad(q):
        loss, g = fb(q)
        return loss, {"w": g["w"], "b": np.full(2, 1e-3)}

    report = gc.check(f, fb_bad, p)
    assert report.status == "fail" and report.failing_tensors == ["b"]


def _doubled(fb, key):
    def wrong(p):
        loss, g = fb(p)
        return loss, {**g, key: 2 * g[key]}
    return wrong


@pytest.mark.parametrize("scale", [1e-10, 1.0, 1e10])
def test_loss_scaled_passes_when_right_and_fails_when_wrong(scale: float) -> None:
    f, fb, p = tanh_model(scale)
    assert gc.check(f, fb, p).status == "pass"
    bad = gc.check(f, _doubled(fb, "b"), p)
    assert bad.status == "fail" and bad.failing_tensors == ["b"]


def test_loss_scale_option() -> None:
    f, fb, p = tanh_model(1e-10)
    report = gc.check(f, fb, p, loss_scale=1e10)
    assert report.status == "pass" and report.options["loss_scale"] == 1e10
    assert gc.check(f, _doubled(fb, "w"), p, loss_scale=1e10).status == "fail"
    with pytest.raises(gc.InputError, match="loss_scale"):
        gc.check(f, fb, p, loss_scale=-1.0)


def test_float32_model_promoted_to_float64() -> None:
    f, fb, p = tanh_model(dtype=np.float32)
    report = gc.check(f, fb, p)
    assert report.status == "pass", report
    assert any("float64" in n for n in report.notes)
    assert gc.check(f, _doubled(fb, "w"), p).status == "fail"
    # the tolerance follows the analytic gradient's dtype (√ε32), not 1e-5
    wrong_1e3 = gc.check(f, lambda q: (fb(q)[0], {"w": fb(q)[1]["w"] * (1 + 1e-2),
                                                  "b": fb(q)[1]["b"]}), p)
    assert wrong_1e3.failing_tensors == ["w"]


def test_float32_forward_that_refuses_float64() -> None:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 3)).astype(np.float32)
    X = rng.normal(size=(6, 4)).astype(np.float32)

    def forward(p):
        t = np.tanh(X @ p["W"].astype(np.float32))
        return np.float32(np.sum(t**2))

    def forward_backward(p):
        t = np.tanh(X @ p["W"].astype(np.float32))
        return {"W": X.T @ (2 * t * (1 - t**2))}

    report = gc.check(forward, forward_backward, {"W": W})
    assert report.status in ("pass", "inconclusive")
    assert report.status != "fail"
    assert any("does not compute in float64" in n for n in report.notes)
    bad = gc.check(forward, lambda p: {"W": 2 * forward_backward(p)["W"]}, {"W": W})
    assert bad.status == "fail"
    off = gc.check(forward, forward_backward, {"W": W}, promote=False)
    assert any("promote=False" in n for n in off.notes)


def test_large_loss_offset_is_decided_at_a_larger_step() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 4)), rng.normal(size=8)
    w = rng.normal(size=4)

    def forward(p):
        r = X @ p - y
        return 1e6 + 0.5 * float(r @ r)

    def fb(p):
        return X.T @ (X @ p - y)

    report = gc.check(forward, fb, w)
    assert report.status == "pass", report
    notes = [e.note for e in report.entries()]
    assert all(("larger step" in n) or n == "" for n in notes)
    assert gc.check(forward, lambda p: 1.001 * fb(p), w).status == "fail"


def test_hopeless_rounding_is_inconclusive_and_says_what_would_decide() -> None:
    w = np.array([0.3, -0.2])

    def forward(p):
        return 1e14 + float(np.sum(np.sin(p)))   # the sin part is below the loss's resolution

    report = gc.check(forward, lambda p: np.cos(p), w)
    assert report.status == "inconclusive" and report.exit_code == 2
    note = report.entries("inconclusive")[0].note
    assert "complex" in note and "larger h" in note


def test_strong_curvature_is_decided_at_a_smaller_step() -> None:
    x = np.array([0.3, 1.1, -0.4])

    def forward(p):
        return float(np.sum(np.sin(2000 * p)) / 2000)

    report = gc.check(forward, lambda p: np.cos(2000 * p), x)
    assert report.status == "pass", report
    assert any("agrees at step" in e.note for e in report.entries())
    assert gc.check(forward, lambda p: np.cos(2000 * p) * 1.001, x).status == "fail"


def test_second_look_can_be_turned_off() -> None:
    x = np.array([0.3, 1.1, -0.4])

    def forward(p):
        return float(np.sum(np.sin(2000 * p)) / 2000)

    # correct, but the default step is far outside the smooth regime of sin(2000 x): one
    # unvalidated step disagrees, which is no evidence against the gradient
    report = gc.check(forward, lambda p: np.cos(2000 * p), x, second_look=False)
    assert report.status == "inconclusive", report
    assert all("second_look=True" in e.note for e in report.entries("inconclusive"))
    assert gc.check(forward, lambda p: np.full(3, np.nan), x, second_look=False).status == "fail"


def test_overall_status_and_exit_codes() -> None:
    f, fb, p = tanh_model()
    ok = gc.check(f, fb, p)
    bad = gc.check(f, _doubled(fb, "w"), p)
    assert (ok.status, ok.exit_code) == ("pass", 0)
    assert (bad.status, bad.exit_code) == ("fail", 1)
    # fail wins over inconclusive: u sits on the edge of its domain (u**1.5 at u = 0 is not
    # defined at u - h, at any step), v's gradient is wrong
    w = {"u": np.array([0.0]), "v": np.array([-0.2])}

    def forward(q):
        with np.errstate(invalid="ignore"):
            return float(q["u"][0] ** 1.5) + 1e6 * float(q["v"][0] ** 2)

    mixed = gc.check(forward, lambda q: {"u": np.zeros(1), "v": 4e6 * q["v"]}, w)
    assert mixed.counts["inconclusive"] == 1 and mixed.counts["failed"] == 1
    assert mixed.status == "fail" and mixed.exit_code == 1
    alone = gc.check(forward, lambda q: {"u": np.zeros(1), "v": 2e6 * q["v"]}, w)
    assert alone.status == "inconclusive" and alone.exit_code == 2


def test_cli_exit_codes() -> None:
    from gradcheck.cli import main

    assert main(["demo", "rnn", "--sample", "3", "--seed", "0", "--sample-seed", "2"]) == 0
    assert main(["demo", "rnn", "--bug", "transpose", "--sample", "3"]) == 1
    assert main(["demo", "rnn", "--sample", "2", "--no-second-look"]) == 0
