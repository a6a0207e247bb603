"""Progress bar: only on a terminal, only for long checks, never with progress=False."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.evaluate.progress import Progress, make_progress, plain_line, wanted


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_only_on_a_terminal_and_when_asked() -> None:
    assert not wanted(True, io.StringIO())
    assert not wanted(False, Terminal())
    assert wanted(True, Terminal())
    assert make_progress(True, 100, io.StringIO()) is None


@pytest.mark.parametrize("backend", ["plain", "rich"])
def test_long_check_draws_evaluations_and_eta(backend, monkeypatch) -> None:
    if backend == "rich":
        pytest.importorskip("rich")
    clock = [0.0]
    monkeypatch.setattr("gradcheck.evaluate.progress.time.perf_counter", lambda: clock[0])
    stream = Terminal()
    bar = Progress(1000, stream, backend=backend)
    for _ in range(10):
        clock[0] += 0.3
        bar.advance(10)   # 100 evaluations in 3 s: 30 s predicted
    assert bar.shown
    text = stream.getvalue()
    assert "100/1000" in text and "ETA" in text
    bar.close()


def test_short_check_draws_nothing(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("gradcheck.evaluate.progress.time.perf_counter", lambda: clock[0])
    stream = Terminal()
    bar = Progress(1000, stream, backend="plain")
    for _ in range(100):
        clock[0] += 0.0001
        bar.advance(10)
    bar.close()
    assert not bar.shown and stream.getvalue() == ""


def test_plain_line() -> None:
    line = plain_line("gradcheck", 60, 200, 3.0, width=10)
    assert line == "gradcheck [###-------] 60/200 evaluations, ETA 7s"


def test_check_is_silent_when_stderr_is_not_a_terminal(capsys) -> None:
    x = {"x": np.linspace(-1, 1, 50)}
    report = gc.check(lambda p: float(np.sum(np.sin(p["x"]))),
                      lambda p: {"x": np.cos(p["x"])}, x, progress=True)
    assert report.passed
    assert capsys.readouterr().err == ""


def test_check_counts_every_evaluation(monkeypatch) -> None:
    seen = []

    class Spy:
        def __init__(self, total, stream=None):
            self.done, self.total = 0, total
            seen.append(self)

        def advance(self, n=1):
            self.done += n

        def add_total(self, n):
            self.total += n

        def begin(self, entries, per_entry):
            pass

        def end(self):
            pass

        def close(self):
            pass

    module = sys.modules["gradcheck.check"]  # gc.check is the function, not the module
    monkeypatch.setattr(module, "make_progress", lambda on, total: Spy(total))
    x = {"x": np.linspace(-1, 1, 20)}
    report = gc.check(lambda p: float(np.sum(np.sin(p["x"]))),
                      lambda p: {"x": np.cos(p["x"])}, x)
    assert seen[0].done == report.evaluations == seen[0].total


def test_predicted_total_converges_when_a_second_look_adds_evaluations() -> None:
    """Two tensors of 50 entries, 2 evaluations each, plus 50 second-look evaluations per
    tensor: 300 in all, where the plan said 202. After the first tensor the prediction is
    the real total, and it stays there."""
    bar = Progress(202, io.StringIO(), backend="plain")
    bar.advance(2)                       # the base loss, twice
    bar.begin(50, 2)
    bar.advance(100)
    assert bar.predicted_total() == 202  # half the entries stepped
    bar.advance(50)                      # second look of the first tensor
    bar.end()
    first = bar.predicted_total()
    assert first == 302, first
    bar.begin(50, 2)
    bar.advance(100)
    bar.advance(50)
    bar.end()
    assert bar.done == 302
    assert bar.predicted_total() == 302 == first   # converged after the first tensor
