"""The lecture's RNN example through the checker and the CLI (issue: core checker)."""

from __future__ import annotations

import json

import pytest

import gradcheck as gc
from gradcheck.cli import main
from gradcheck.examples import rnn


def test_correct_rnn_passes_at_defaults_in_float64() -> None:
    problem = rnn.make_problem()
    report = gc.check(problem.forward, problem.forward_backward, problem.params)
    assert report.status == "pass", report
    assert report.counts["checked"] == problem.n_params
    # base twice, the loss's noise measured once (issue #10), two per entry — and two more for
    # the few entries whose one-sided slopes differ by more than twice the tolerance (a kink
    # inside the step could bias the estimate by half that gap: the ladder's next level decides)
    base = 2 + report.decisions["noise_evaluations"] + 2 * problem.n_params
    assert base <= report.evaluations <= base + 2 * (problem.n_params // 100)


@pytest.mark.parametrize("bug", sorted(rnn.BUGS))
def test_every_bug_fails_and_names_exactly_its_tensors(bug: str) -> None:
    problem = rnn.make_problem(bug)
    report = gc.check(problem.forward, problem.forward_backward, problem.params)
    assert report.status == "fail"
    assert set(report.failing_tensors) == set(rnn.BUGS[bug].affects), report


def test_cli_demo_exit_codes_and_json(tmp_path, capsys) -> None:
    assert main(["demo", "rnn"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "1163" in out
    path = tmp_path / "r.json"
    assert main(["demo", "rnn", "--bug", "sign", "--json", str(path)]) == 1
    data = json.loads(path.read_text())
    assert data["status"] == "fail"
    assert [t["name"] for t in data["tensors"] if t["failed"]] == ["V"]


def test_cli_usage_errors_are_one_line(capsys) -> None:
    assert main(["demo", "rnn", "--bug", "nope"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--list-bugs" in err
    assert main([]) == 3
    assert main(["demo", "rnn", "--tol", "abc"]) == 3
    assert main(["demo", "rnn", "--list-bugs"]) == 0
    assert "transpose" in capsys.readouterr().out


def test_the_float32_forward_computes_in_float32_and_returns_a_python_float() -> None:
    import numpy as np

    problem = rnn.make_problem()
    loss32 = problem.float32_forward(problem.params)
    loss64 = problem.forward(problem.params)
    assert type(loss32) is float and loss32 != loss64
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    loss, grads = problem.float32_forward_backward(problem.params)
    assert loss == loss64 and all(g.dtype == np.float32 for g in grads.values())
