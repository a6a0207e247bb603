"""Plots of a report: heatmap grids put each error where its entry is; files are written."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.cli import main
from gradcheck.report.plot import FLOOR_LOG10, as_grid, log_errors

pytest.importorskip("matplotlib")


def _report(bad_row: int | None = None, **options):
    """f = Σ W ⊙ W / 2 so ∂f/∂W = W; a wrong row of the analytic gradient if asked."""
    W = np.arange(1.0, 13.0).reshape(3, 4)

    def grads(p):
        g = {"W": p["W"].copy(), "b": p["b"].copy()}
        if bad_row is not None:
            g["W"][bad_row] *= 2
        return g

    params = {"W": W, "b": np.linspace(1, 2, 5)}
    return gc.check(lambda p: 0.5 * (np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2)), grads, params,
                    **options)


def test_log_errors_floors_zero_and_keeps_nan() -> None:
    out = log_errors(np.array([0.0, 1e-3, np.nan]))
    assert out[0] == FLOOR_LOG10 and out[1] == pytest.approx(-3) and np.isnan(out[2])


def test_grid_places_a_wrong_row_where_it_is() -> None:
    report = _report(bad_row=1)
    values, status, label = as_grid(report.tensor("W"))
    assert values.shape == (3, 4) and label == "row"
    assert np.all(values[1] > np.log10(report.options["tol"]))
    assert np.all(values[[0, 2]] < np.log10(report.options["tol"]))
    assert report.tensor("W").failed == 4


def test_grid_of_sampled_and_high_rank_tensors() -> None:
    x = np.linspace(0.1, 2.0, 24).reshape(2, 3, 4)
    report = gc.check(lambda p: np.sum(np.sin(p)), np.cos, x, sample=5)
    values, _, label = as_grid(report.tensors[0])
    assert values.shape == (6, 4) and "flattened" in label
    assert np.count_nonzero(np.isfinite(values)) == report.tensors[0].checked
    scalar = gc.check(lambda p: float(p**2), lambda p: 2 * p, np.array(1.5))
    assert as_grid(scalar.tensors[0])[0].shape == (1, 1)


def test_plot_writes_a_png_and_returns_the_figure(tmp_path) -> None:
    path = tmp_path / "r.png"
    fig = _report(bad_row=2).plot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("W") and "FAIL" in t for t in titles)
    assert any(t.startswith("b") and "pass" in t for t in titles)


def test_cli_plot_option(tmp_path, capsys) -> None:
    path = tmp_path / "rnn.png"
    assert main(["demo", "rnn", "--bug", "transpose", "--plot", str(path)]) == 1
    assert path.stat().st_size > 10_000
    assert str(path) in capsys.readouterr().out


def test_plot_of_a_directional_report_says_how_tensors_passed(tmp_path) -> None:
    from gradcheck.examples import rnn

    problem = rnn.make_problem("transpose")
    report = gc.check(problem.forward, problem.forward_backward, problem.params,
                      mode="directional", progress=False)
    fig = report.plot(str(tmp_path / "d.png"))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("passed the directional test") == 4      # U, b, V, c; W failed
