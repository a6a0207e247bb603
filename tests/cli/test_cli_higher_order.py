"""``gradcheck check module:factory --order 2`` and ``--mode jvp``."""

from __future__ import annotations

from gradcheck.cli.app import main

MODULE = '''
import numpy as np

def problem(bug=None):
    f = lambda p: float(np.sum(np.sin(p["x"])))
    fb = lambda p: {"x": np.cos(p["x"])}
    hvp = lambda p, v: {"x": (np.sin(p["x"]) if bug == "hvp" else -np.sin(p["x"])) * v["x"]}
    jvp = lambda p, t: float(np.sum((np.sin(p["x"]) if bug == "jvp" else np.cos(p["x"]))
                                     * t["x"]))
    return {"forward": f, "forward_backward": fb, "params": {"x": np.linspace(-1, 1, 5)},
            "hvp": hvp, "jvp": jvp}

def hvp_bug():
    return problem("hvp")

def jvp_bug():
    return problem("jvp")

def plain():
    d = problem()
    return d["forward"], d["forward_backward"], d["params"]
'''


def test_order2_and_jvp_from_the_command_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "hotoy.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "hotoy:problem", "--order", "2"]) == 0
    out = capsys.readouterr().out
    assert "hvp/x" in out and "grad/x" in out
    assert main(["check", "hotoy:hvp_bug", "--order", "2"]) == 1
    assert main(["check", "hotoy:problem", "--mode", "jvp"]) == 0
    assert main(["check", "hotoy:jvp_bug", "--mode", "jvp"]) == 1
    assert main(["check", "hotoy:plain", "--mode", "directional"]) == 0
    assert main(["check", "hotoy:plain"]) == 0


def test_missing_hvp_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "hotoy2.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "hotoy2:plain", "--order", "2"]) == 4
    assert "'hvp'" in capsys.readouterr().err
