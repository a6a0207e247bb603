"""Monitor: spot checks inside a training loop, one log line each, a history, alerts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.monitor import GradientAlert, GradientCheckFailed, Monitor


class Regression:
    """Tanh regression trained by SGD; the backward goes wrong once the weights grow past 1.5
    (a branch taken only mid-training, like a clipping or saturation path)."""

    def __init__(self, late_bug: bool = False) -> None:
        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(16, 4))
        self.y = 2.0 * np.tanh(self.X @ np.array([1.0, -2.0, 0.5, 3.0]))
        self.params = {"w": 0.1 * rng.normal(size=4), "s": np.array(0.5)}
        self.late_bug = late_bug

    def forward(self, p):
        r = p["s"] * np.tanh(self.X @ p["w"]) - self.y
        return 0.5 * float(r @ r) / 16

    def forward_backward(self, p):
        t = np.tanh(self.X @ p["w"])
        r = (p["s"] * t - self.y) / 16
        gw = self.X.T @ (r * p["s"] * (1 - t**2))
        if self.late_bug and float(p["s"]) > 1.5:
            gw = gw * 1.1
        return 0.5 * float(r @ r) * 16, {"w": gw, "s": np.array(r @ t)}

    def train(self, monitor: Monitor, steps: int, lr: float = 0.5) -> None:
        for step in range(steps):
            _, g = self.forward_backward(self.params)
            monitor(self.params, step)
            for k in self.params:
                self.params[k] -= lr * g[k]


def test_checks_every_n_steps_and_logs_one_line_each() -> None:
    m = Regression()
    lines: list[str] = []
    mon = gc.Monitor(m.forward, m.forward_backward, every=10, sample=2, log=lines.append)
    m.train(mon, 35)
    assert [r.step for r in mon.history] == [0, 10, 20, 30]
    assert len(lines) == 4 and all(line.startswith("gradcheck step") for line in lines)
    assert "pass" in lines[0] and "entries" in lines[0]
    assert mon.ok and not mon.failures
    assert mon.summary() == "gradcheck monitor: 4 spot checks, 0 failed."
    assert all(r.status == "pass" and r.checked == 3 for r in mon.history)


def test_start_and_call_counting() -> None:
    m = Regression()
    mon = Monitor(m.forward, m.forward_backward, every=5, start=3, log=None)
    for _ in range(15):
        mon(m.params)                        # no step given: calls are counted
    assert [r.step for r in mon.history] == [3, 8, 13]
    assert mon.due(18) and not mon.due(2)


def test_late_bug_raises_an_alert_warning() -> None:
    m = Regression(late_bug=True)
    lines: list[str] = []
    mon = Monitor(m.forward, m.forward_backward, every=5, sample=4, log=lines.append)
    with pytest.warns(GradientAlert, match="ALERT at step"):
        m.train(mon, 200)
    first = mon.failures[0]
    assert first.step > 0 and first.failing_tensors == ["w"]
    assert all(r.status == "pass" for r in mon.history if r.step < first.step)
    alert = [line for line in lines if "ALERT" in line][0]
    assert "analytic" in alert and "numeric" in alert and "w[" in alert
    assert f"first at step {first.step}" in mon.summary()


def test_on_fail_raise_and_log() -> None:
    m = Regression(late_bug=True)
    mon = Monitor(m.forward, m.forward_backward, every=5, on_fail="raise", log=None,
                  keep_reports=True)
    with pytest.raises(GradientCheckFailed) as info:
        m.train(mon, 200)
    assert info.value.report.status == "fail"
    assert mon.history[-1].report is info.value.report
    quiet = Regression(late_bug=True)
    lines: list[str] = []
    mon2 = Monitor(quiet.forward, quiet.forward_backward, every=5, on_fail="log",
                   log=lines.append)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.train(mon2, 200)
    assert any("ALERT" in line for line in lines)


def test_samples_change_between_checks() -> None:
    rng = np.random.default_rng(1)
    p = {"W": rng.normal(size=(30, 30))}
    mon = Monitor(lambda q: float(np.sum(q["W"] ** 2)), lambda q: {"W": 2 * q["W"]},
                  every=1, sample=6, log=None, keep_reports=True)
    mon(p, 0)
    mon(p, 1)
    a, b = (r.report.tensor("W").flat_index.tolist() for r in mon.history)
    assert a != b and {0, 29, 870, 899} <= set(a) & set(b)      # corners in both


def test_per_call_forward_for_the_current_batch() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(size=3)
    mon = Monitor(None, None, every=1, log=None)  # type: ignore[arg-type]
    for step in range(3):
        X = rng.normal(size=(5, 3))     # this step's batch
        report = mon(w, step, forward=lambda p, X=X: float(np.sum((X @ p) ** 2)),
                     forward_backward=lambda p, X=X: 2 * X.T @ (X @ p))
        assert report is not None and report.status == "pass"


def test_bad_monitor_options() -> None:
    f, fb = (lambda p: 0.0), (lambda p: p)
    with pytest.raises(gc.InputError, match="every"):
        Monitor(f, fb, every=0)
    with pytest.raises(gc.InputError, match="on_fail"):
        Monitor(f, fb, on_fail="explode")
    with pytest.raises(gc.InputError, match="seed_base"):
        Monitor(f, fb, sample_seed=3)
    with pytest.raises(TypeError, match="unknown option"):
        Monitor(f, fb, tolerance=1e-3)
