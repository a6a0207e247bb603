"""Directional mode: one random direction per tensor, then group-testing localisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import InputError
from gradcheck.examples import rnn
from gradcheck.modes.directional import random_direction


def forward(p):
    """f = Σ x⁴/4 + sin(x) + Σ (A y)² / 2 — derivatives known in closed form."""
    x, y = p["x"], p["y"]
    return float(np.sum(x**4 / 4 + np.sin(x)) + 0.5 * np.sum((A @ y) ** 2))


def gradient(p):
    x, y = p["x"], p["y"]
    return {"x": x**3 + np.cos(x), "y": A.T @ (A @ y)}


A = np.random.default_rng(0).normal(size=(7, 5))


def params(n: int = 100_000, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=n), "y": rng.normal(size=5)}


def planted(bad: dict[int, float]):
    """forward_backward whose x-gradient is wrong by ``bad[i]`` at element i."""
    def forward_backward(p):
        g = gradient(p)
        for i, delta in bad.items():
            g["x"][i] += delta
        return g
    return forward_backward


def test_correct_tensors_pass_with_two_evaluations_each() -> None:
    p = params()
    report = gc.check(forward, gradient, p, mode="directional")
    assert report.status == "pass"
    assert report.evaluations == 2 * 2 + 2  # two tensors, base twice
    for t in report.tensors:
        assert t.directional.passed
        assert t.directional.abs_error <= t.directional.error_bar


def test_one_wrong_element_of_1e5_is_located_exactly() -> None:
    p = params()
    i = 31_415
    scale = float(np.sqrt(np.mean(gradient(p)["x"] ** 2)))
    report = gc.check(forward, planted({i: 1e-4 * scale}), p, mode="directional")
    assert report.status == "fail"
    x = report.tensor("x")
    failed = x.flat_index[x.status == 1]
    assert failed.tolist() == [i]
    assert report.tensor("y").verdict == "pass"
    # ~4 evaluations per halving instead of 2 per element
    assert report.evaluations < 2 * 100_000 / 1000
    # the located entry is listed exactly as the elementwise check lists it: check the five
    # entries around it elementwise, as a tensor of their own (same points, same losses)
    window = slice(i - 2, i + 3)

    def forward_window(q):
        full = p["x"].copy()
        full[window] = q["x"]
        return forward({"x": full, "y": q["y"]})

    def gradient_window(q):
        full = p["x"].copy()
        full[window] = q["x"]
        g = planted({i: 1e-4 * scale})({"x": full, "y": q["y"]})
        return {"x": g["x"][window], "y": g["y"]}

    elementwise = gc.check(forward_window, gradient_window, {"x": p["x"][window].copy(),
                                                             "y": p["y"].copy()})
    e = elementwise.tensor("x")
    assert e.flat_index[e.status == 1].tolist() == [2]
    k = int(np.flatnonzero(x.flat_index == i)[0])
    # the elementwise check's own engine (issue #10) takes its FAIL estimate from a validated
    # pair of steps, not from h = 1e-5 as localisation does: close, not bit for bit
    assert x.analytic[k] == e.analytic[2]
    assert x.numeric[k] == pytest.approx(e.numeric[2], rel=1e-2)
    assert x.error[k] == pytest.approx(e.error[2], rel=5e-2)   # an error of ~6e-5 from them


def test_five_wrong_elements_are_all_located() -> None:
    p = params(20_000)
    rng = np.random.default_rng(3)
    bad = {int(i): 1e-3 for i in rng.choice(20_000, 5, replace=False)}
    report = gc.check(forward, planted(bad), p, mode="directional")
    x = report.tensor("x")
    assert sorted(x.flat_index[x.status == 1].tolist()) == sorted(bad)
    assert report.evaluations < 2 * 20_000 / 50


def test_equal_errors_do_not_cancel() -> None:
    """With ±1 directions two equal errors cancel half of the time; not here."""
    p = params(4096)
    for seed in range(8):
        report = gc.check(forward, planted({10: 1e-3, 3000: 1e-3}), p, mode="directional",
                          sample_seed=seed)
        x = report.tensor("x")
        assert sorted(x.flat_index[x.status == 1].tolist()) == [10, 3000]


def test_dense_errors_stop_splitting_and_sample() -> None:
    p = params(10_000)

    def twice(q):
        g = gradient(q)
        g["x"] = 2 * g["x"]
        return g

    report = gc.check(forward, twice, p, mode="directional")
    x = report.tensor("x")
    assert report.status == "fail"
    assert x.directional.sampled
    assert x.failed == x.checked == 64
    assert "most of the tensor" in x.directional.note
    assert report.evaluations < 600


def test_nan_in_the_analytic_gradient_is_located() -> None:
    p = params(1000)
    report = gc.check(forward, planted({123: np.nan}), p, mode="directional")
    x = report.tensor("x")
    assert x.flat_index[x.status == 1].tolist() == [123]


def test_detectable_error_is_reported_and_honest() -> None:
    """An error 10× the reported detectable size is found, at any position."""
    p = params(5000)
    clean = gc.check(forward, gradient, p, mode="directional")
    detectable = clean.tensor("x").directional.detectable
    assert 0 < detectable < 1e-4
    for i in (0, 2500, 4999):
        report = gc.check(forward, planted({i: 10 * detectable}), p, mode="directional")
        assert report.tensor("x").flat_index[report.tensor("x").status == 1].tolist() == [i]


def test_random_direction_has_bounded_weights() -> None:
    v = random_direction(np.random.default_rng(0), 10_000)
    assert np.all((np.abs(v) >= 1) & (np.abs(v) < 2))
    assert abs(np.mean(np.sign(v))) < 0.05


def test_params_restored_and_json_has_the_directional_record() -> None:
    p = params(2000)
    before = {k: v.copy() for k, v in p.items()}
    report = gc.check(forward, planted({5: 1.0}), p, mode="directional")
    assert all(np.array_equal(before[k], p[k]) for k in p)
    d = json.loads(report.to_json())
    rec = d["tensors"][0]["directional"]
    assert rec["tensor"] == "x" and rec["passed"] is False and rec["located"] >= 1
    assert d["options"]["mode"] == "directional"


def test_unknown_mode_says_what_to_do() -> None:
    with pytest.raises(InputError, match="directional"):
        gc.check(forward, gradient, params(10), mode="fast")


@pytest.mark.parametrize("bug", [None, *rnn.BUGS])
def test_rnn_bugs_name_exactly_their_tensors(bug) -> None:
    problem = rnn.make_problem(bug, hidden=20)
    report = gc.check(problem.forward, problem.forward_backward, problem.params,
                      mode="directional")
    assert set(report.failing_tensors) == set(problem.expected_bad)
    if bug is None:
        assert report.evaluations == 2 * 5 + 2


def test_text_report_shows_the_directional_tests() -> None:
    problem = rnn.make_problem("bias_one_step", hidden=8)
    text = str(gc.check(problem.forward, problem.forward_backward, problem.params,
                        mode="directional"))
    assert "5 tensors tested along a random direction" in text
    assert "Directional tests" in text and "differs" in text and "x RMS" in text


def test_cli_directional_mode_names_the_bad_tensor(capsys) -> None:
    from gradcheck.cli import main

    code = main(["demo", "rnn", "--bug", "sign", "--hidden", "8", "--mode", "directional"])
    out = capsys.readouterr().out
    assert code == 1
    assert "tensors tested along a random direction" in out and "V[" in out
