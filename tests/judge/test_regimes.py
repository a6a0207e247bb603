"""Verdicts you can trust in every regime (issue #10): the eleven wrong verdicts, and grids.

Each ``test_item_N_*`` reproduces one wrong verdict of the issue; the grid tests run the
regimes of :mod:`gradcheck.examples.regimes` (the models ``benchmarks/verdict_stress.py``
measures) and assert the goals: no false FAIL, no silent pass of a 1e-3 bug, every float64
1e-6 bug reported, few inconclusive entries.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples import regimes as R


def check(forward, forward_backward, params, **kw):
    kw.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return gc.check(forward, forward_backward, params, **kw)


def inconclusive_fraction(report) -> float:
    c = report.counts
    return c["inconclusive"] / max(c["checked"], 1)


def significant_tensors(report) -> list[str]:
    return [s.tensor for s in report.significant]


# ---------------------------------------------------------------- 1. ReLU at small init


@pytest.mark.parametrize("scale", [1e-4, 1e-3])
@pytest.mark.parametrize("seed", range(5))
def test_item_1_relu_mlp_at_small_init_is_not_failed(scale: float, seed: int) -> None:
    m = R.build(R.Regime(scale, "relu", "f64", 1.0, seed), sizes=R.ISSUE)
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status != "fail", report
    assert inconclusive_fraction(report) <= 0.01, report
    assert not any("larger step" in e.note for e in report.entries("FAIL"))


@pytest.mark.parametrize("scale", [1e-4, 1e-3])
def test_item_1_relu_mlp_at_small_init_still_catches_a_bug(scale: float) -> None:
    m = R.build(R.Regime(scale, "relu", "f64", 1.0, 0), bug=1e-3, sizes=R.ISSUE)
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status == "fail" and m.bug_tensor in report.failing_tensors, report


# ---------------------------------------------------------------- 2. "kink" on smooth functions


def _smooth_models():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    y = rng.integers(3, size=6)

    def softmax_ce(p):
        s = X @ p
        m = s.max(axis=1, keepdims=True)
        lse = np.log(np.exp(s - m).sum(axis=1)) + m[:, 0]
        return float(np.mean(lse - s[np.arange(6), y]))

    def softmax_ce_grad(p):
        s = X @ p
        e = np.exp(s - s.max(axis=1, keepdims=True))
        d = e / e.sum(axis=1, keepdims=True)
        d[np.arange(6), y] -= 1
        return X.T @ d / 6

    def layernorm(p):
        z = X * p
        mu = z.mean(axis=1, keepdims=True)
        sd = np.sqrt(z.var(axis=1, keepdims=True) + 1e-5)
        return float(np.sum(((z - mu) / sd) * X[:, ::-1]))

    def layernorm_grad(p):
        z = X * p
        mu = z.mean(axis=1, keepdims=True)
        sd = np.sqrt(z.var(axis=1, keepdims=True) + 1e-5)
        zh = (z - mu) / sd
        g = X[:, ::-1]
        dz = (g - g.mean(axis=1, keepdims=True) - zh * (g * zh).mean(axis=1, keepdims=True)) / sd
        return (dz * X).sum(axis=0)

    def softplus(p):
        return float(np.sum(np.logaddexp(0, X @ p)))

    def softplus_grad(p):
        return X.T @ (1 / (1 + np.exp(-(X @ p))))

    def sinx(p):
        return float(np.sum(np.sin(p) * p))

    def sinx_grad(p):
        return np.cos(p) * p + np.sin(p)

    w3 = rng.normal(size=(4, 3))
    w4 = rng.normal(size=4)
    return [("softmax_ce", softmax_ce, softmax_ce_grad, w3),
            ("layernorm", layernorm, layernorm_grad, w4),
            ("softplus", softplus, softplus_grad, w4),
            ("sin(x)·x", sinx, sinx_grad, w4)]


@pytest.mark.parametrize("name,f,g,p", _smooth_models(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_item_2_smooth_functions_are_never_called_kinks(name, f, g, p) -> None:
    assert check(f, g, p.copy()).status == "pass"
    bad = check(f, lambda q: 1.5 * g(q), p.copy())
    assert bad.status == "fail"
    assert not any("kink" in e.note for e in bad.entries())
    assert bad.counts["kinks"] == 0


# ---------------------------------------------------------------- 3. tiny and huge losses


def test_item_3_tiny_loss_does_not_pass_a_wrong_gradient() -> None:
    p = {"w": np.array([0.3, -1.2, 0.7])}
    right = check(lambda q: 1e-15 * float(q["w"] @ q["w"]), lambda q: {"w": 2e-15 * q["w"]}, p)
    wrong = check(lambda q: 1e-15 * float(q["w"] @ q["w"]), lambda q: {"w": 4e-15 * q["w"]}, p)
    assert right.status == "pass", right
    assert wrong.status == "fail", wrong


@pytest.mark.parametrize("loss_scale", [1e-300, 1e-15, 1e15, 1e300])
def test_item_3_loss_scale_extremes(loss_scale: float) -> None:
    p = np.array([0.3, -1.2, 0.7])
    f = lambda q: float(np.sum(np.tanh(q)))  # noqa: E731
    g = lambda q: 1 - np.tanh(q) ** 2  # noqa: E731
    assert check(f, g, p, loss_scale=loss_scale).status == "pass"
    assert check(f, lambda q: 2 * g(q), p, loss_scale=loss_scale).status == "fail"


# ---------------------------------------------------------------- 4. float32 inside


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "softplus"])
@pytest.mark.parametrize("scale", [1e-2, 1.0])
def test_item_4_float32_inside_a_float_returning_forward(nonlinearity: str, scale: float
                                                        ) -> None:
    m = R.build(R.Regime(scale, nonlinearity, "f32in", 1.0, 0))
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status != "fail", report
    assert any("measured noise" in n for n in report.notes)
    if scale == 1.0:  # at small scales the float32 loss cannot resolve W1 at the tolerance
        assert inconclusive_fraction(report) <= 0.25, report
    bad = R.build(R.Regime(scale, nonlinearity, "f32in", 1.0, 0), bug=1e-1)
    assert check(bad.forward, bad.forward_backward, bad.params).status == "fail"


# ---------------------------------------------------------------- 5. forward reads the model


class TinyNet:
    """The CS231n idiom: the model owns float32 arrays, the loss reads them, not its argument."""

    def __init__(self, bug: bool = False) -> None:
        rng = np.random.default_rng(5)
        self.params = {"W": rng.normal(size=(4, 3)).astype(np.float32),
                       "b": np.zeros(3, np.float32)}
        self.X = rng.normal(size=(7, 4)).astype(np.float32)
        self.bug = bug

    def loss(self) -> float:
        t = np.tanh(self.X @ self.params["W"] + self.params["b"])
        return float(np.sum(t**2))

    def grads(self) -> dict[str, np.ndarray]:
        t = np.tanh(self.X @ self.params["W"] + self.params["b"])
        d = 2 * t * (1 - t**2)
        return {"W": self.X.T @ d * (1.1 if self.bug else 1.0), "b": d.sum(axis=0)}


@pytest.mark.parametrize("bug", [False, True])
def test_item_5_forward_that_reads_the_model_not_its_argument(bug: bool) -> None:
    net = TinyNet(bug)
    before = {k: v.copy() for k, v in net.params.items()}
    report = check(lambda _: net.loss(), lambda _: net.grads(), net.params)
    assert report.status == ("fail" if bug else "pass"), report
    assert any("your own arrays" in n for n in report.notes), report.notes
    for k in before:
        assert net.params[k].tobytes() == before[k].tobytes()


# ---------------------------------------------------------------- 6. overlapping params


def test_item_6_params_that_share_memory_are_refused() -> None:
    buf = np.arange(6.0)
    with pytest.raises(gc.InputError, match=r"'a'.*'b'|'b'.*'a'"):
        check(lambda q: float(q["a"].sum() + q["b"].sum()),
              lambda q: {"a": np.ones(4), "b": np.ones(4)}, {"a": buf[:4], "b": buf[2:]})
    # views that do not overlap are fine
    report = check(lambda q: float(q["a"] @ q["a"] + q["b"] @ q["b"]),
                   lambda q: {"a": 2 * q["a"], "b": 2 * q["b"]}, {"a": buf[:3], "b": buf[3:]})
    assert report.status == "pass"


# ---------------------------------------------------------------- 7. small but significant


def _tanh_regression(bug: float = 0.0, decay: float = 0.0):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 5)), rng.normal(size=20)
    p = {"w": rng.normal(size=5), "b": np.array(0.2)}

    def f(q):
        r = np.tanh(X @ q["w"] + q["b"]) - y
        return 0.5 * float(r @ r) + 0.5 * decay * float(q["w"] @ q["w"])

    def fb(q):
        t = np.tanh(X @ q["w"] + q["b"])
        d = (t - y) * (1 - t**2)
        return f(q), {"w": (X.T @ d) * (1 + bug) + decay * q["w"], "b": d.sum()}

    return f, fb, p


def test_item_7_a_uniform_1e6_error_is_reported_and_fails_under_strict() -> None:
    f, fb, p = _tanh_regression(bug=1e-6)
    report = check(f, fb, p)
    assert report.status == "pass"
    assert significant_tensors(report) == ["w"]
    assert "w" in str(report) and "significant" in str(report).lower()
    strict = check(f, fb, p, strict=True)
    assert strict.status == "fail" and strict.failing_tensors == ["w"]


def test_item_7_a_data_term_wrong_under_a_dominating_decay_is_reported() -> None:
    f, fb, p = _tanh_regression(bug=1.0, decay=1e6)   # data term counted twice
    report = check(f, fb, p)
    assert "w" in significant_tensors(report) or report.status == "fail"


@pytest.mark.parametrize("decay", [0.0, 1e6])
def test_item_7_correct_models_are_never_reported(decay: float) -> None:
    f, fb, p = _tanh_regression(decay=decay)
    report = check(f, fb, p)
    assert report.status == "pass" and significant_tensors(report) == []
    assert check(f, fb, p, strict=True).status == "pass"


# ---------------------------------------------------------------- 8. gradient changes per call


def test_item_8_a_backward_that_leaves_memory_unwritten_gets_no_pass() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=6)
    calls = {"n": 0}

    def fb(q):
        calls["n"] += 1
        g = 2 * q
        g[4:] += 1e-3 * calls["n"]           # stale state: differs on every call
        return g

    report = check(lambda q: float(q @ q), fb, w)
    assert report.status != "pass"
    t = report.tensors[0]
    assert all(t.entry(i).status != "pass" for i in (4, 5))
    assert any("differ" in s and "params[4]" in s for s in report.warnings), report.warnings


def test_item_8_a_deterministic_backward_costs_one_extra_call_and_passes() -> None:
    calls = {"n": 0}

    def fb(q):
        calls["n"] += 1
        return 2 * q

    report = check(lambda q: float(q @ q), fb, np.array([0.5, -1.0, 2.0]))
    assert report.status == "pass" and calls["n"] == 2


# ---------------------------------------------------------------- 9. read-only params


def test_item_9_read_only_params_are_checked_on_a_copy(tmp_path) -> None:
    w = np.array([0.3, -0.8, 1.5])
    path = tmp_path / "w.npy"
    np.save(path, w)
    mm = np.load(path, mmap_mode="r")
    ro = w.copy()
    ro.flags.writeable = False
    for params in (mm, {"w": ro}):
        f = ((lambda q: float(np.sum(np.sin(q)))) if isinstance(params, np.ndarray)
             else (lambda q: float(np.sum(np.sin(q["w"])))))
        g = ((lambda q: np.cos(q)) if isinstance(params, np.ndarray)
             else (lambda q: {"w": np.cos(q["w"])}))
        report = check(f, g, params)
        assert report.status == "pass", report
        assert any("read-only" in n for n in report.notes)
    assert np.array_equal(np.load(path), w)


# -------------------------------------------------------- 10. huge and tiny magnitudes


@pytest.mark.parametrize("magnitude", [1e15, 1e30, 1e-30, 1e-200])
def test_item_10_huge_and_tiny_params_use_a_relative_step(magnitude: float) -> None:
    x = magnitude * np.array([1.0, 2.5, 4.0])
    report = check(lambda q: float(np.sum(np.log(q))), lambda q: 1 / q, x)
    assert report.status == "pass", report
    assert any("relative" in n for n in report.notes)
    bad = check(lambda q: float(np.sum(np.log(q))), lambda q: 1.01 / q, x)
    assert bad.status == "fail"


# ---------------------------------------------------------------- 11. NaN loss, forward_backward


def test_item_11_nan_loss_from_forward_backward_is_named() -> None:
    report = check(lambda q: float(q @ q), lambda q: (float("nan"), 2 * q), np.array([1.0, 2.0]))
    assert any("nan" in w.lower() and "forward_backward" in w for w in report.warnings)


# ---------------------------------------------------------------- grids

QUICK_GRID = R.grid(scales=(1e-6, 1e-4, 1e-2, 1.0), nonlinearities=R.NONLINEARITIES,
                    precisions=("f64", "f32in"), loss_scales=(1e-15, 1.0, 1e6), seeds=(0,))


@pytest.mark.parametrize("regime", QUICK_GRID, ids=lambda r: r.label)
def test_grid_correct_models_never_fail(regime: R.Regime) -> None:
    m = R.build(regime)
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status != "fail", report
    if regime.precision == "f64":
        assert significant_tensors(report) == [], report


@pytest.mark.parametrize("regime", QUICK_GRID, ids=lambda r: r.label)
def test_grid_a_1e3_bug_is_never_passed(regime: R.Regime) -> None:
    m = R.build(regime, bug=1e-3)
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status != "pass", report
    if regime.precision == "f64":
        assert report.status == "fail" and m.bug_tensor in report.failing_tensors, report


@pytest.mark.parametrize("regime", QUICK_GRID, ids=lambda r: r.label)
def test_grid_a_scattered_1e3_bug_is_never_passed(regime: R.Regime) -> None:
    # independent errors over the tensor, nearly orthogonal to its gradient: no agreement
    # along the analytic direction may pass them
    m = R.build(regime, bug=1e-3, pattern="scattered")
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status != "pass", report
    if regime.precision == "f64":
        assert report.status == "fail" and m.bug_tensor in report.failing_tensors, report


@pytest.mark.parametrize("regime", [r for r in QUICK_GRID if r.precision == "f64"],
                         ids=lambda r: r.label)
def test_grid_a_1e6_bug_in_float64_is_reported(regime: R.Regime) -> None:
    m = R.build(regime, bug=1e-6)
    report = check(m.forward, m.forward_backward, m.params)
    assert set(report.failing_tensors) <= {m.bug_tensor}
    # kinked nets at tiny init: no entry has three kink-free steps, the tensor's own direction
    # does (gradcheck.judge.group.significance_look)
    assert m.bug_tensor in significant_tensors(report) + report.failing_tensors, report


@pytest.mark.parametrize("nonlinearity", R.NONLINEARITIES)
@pytest.mark.parametrize("loss_scale", [1e-15, 1.0, 1e6])
def test_grid_a_1e3_bug_under_a_float32_loss_fails_as_a_group(nonlinearity: str,
                                                               loss_scale: float) -> None:
    # no entry can be resolved alone (the float32 loss's noise), the tensor as a whole can
    m = R.build(R.Regime(1.0, nonlinearity, "f32in", loss_scale, 0), bug=1e-3)
    report = check(m.forward, m.forward_backward, m.params)
    assert report.status == "fail" and report.failing_tensors == [m.bug_tensor], report
