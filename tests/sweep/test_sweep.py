"""The h sweep: a V-shaped error curve for central differences, a flat complex step."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.cli import main
from gradcheck.errors import InputError
from gradcheck.sweep.run import sweep


def _problem():
    x = np.array([0.4, -1.2, 2.0])

    def f(p):
        return np.sum(np.exp(p["x"]) * np.cos(p["x"]))

    def fb(p):
        v = p["x"]
        return {"x": np.exp(v) * (np.cos(v) - np.sin(v))}

    return f, fb, {"x": x}


def test_central_curve_is_a_v_and_complex_is_flat() -> None:
    f, fb, params = _problem()
    before = params["x"].copy()
    r = sweep(f, fb, params, entries=["x[0]", "x[2]"])
    med = r.median("central")
    j = int(np.argmin(med))
    assert 1e-7 < r.best_h("central") < 1e-3
    assert med[0] > 1e3 * med[j] and med[-1] > 1e3 * med[j]  # truncation and cancellation
    assert np.max(r.complex_errors) < 1e-14
    assert "best h for central" in r.table()
    assert np.array_equal(params["x"], before)


def test_non_analytic_forward_skips_complex_with_a_note() -> None:
    r = sweep(lambda p: float(np.sum(np.abs(p["x"]))), lambda p: {"x": np.sign(p["x"])},
              {"x": np.array([0.5, -0.3])}, methods=("central",))
    assert r.complex_errors is None and "complex step skipped" in r.notes[0]


def test_bad_entry_is_named() -> None:
    f, fb, params = _problem()
    with pytest.raises(InputError, match="NAME one of x"):
        sweep(f, fb, params, entries=["W[1]"])
    with pytest.raises(InputError, match="outside"):
        sweep(f, fb, params, entries=["x[7]"])


def test_plot_is_written(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    f, fb, params = _problem()
    path = sweep(f, fb, params, methods=("central", "central4")).plot(str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").stat().st_size > 10_000 and path.endswith("s.png")


def test_cli_sweep_and_check(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "toymod.py").write_text(
        "import numpy as np\n"
        "def problem():\n"
        "    return (lambda p: float(np.sum(np.sin(p['x']))), lambda p: {'x': np.cos(p['x'])},"
        " {'x': np.linspace(-1, 1, 4)})\n")
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "toymod:problem", "--entries", "x[1]"]) == 0
    assert "best h for central" in capsys.readouterr().out
    assert main(["check", "toymod:problem", "--method", "richardson"]) == 0
    assert main(["sweep", "rnn", "--entries", "W[2,3]", "--methods", "central"]) == 0
    assert main(["check", "nomodule_here:problem"]) == 3  # usage: names no module
