"""The command line: every path ends in the right exit code and, on error, one sentence.

Exit codes (README): 0 pass, 1 fail, 2 inconclusive, 3 usage error (the command line is
wrong), 4 the user's code raised or returned something unusable. An error is one line on
stderr that starts with ``gradcheck:`` and names the problem; never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck.cli import main

TOYMOD = '''
import numpy as np


def _f(p):
    return float(np.sum(np.sin(p["x"])) + np.sum(p["b"] ** 2))


def problem():
    return (_f, lambda p: {"x": np.cos(p["x"]), "b": 2 * p["b"]},
            {"x": np.linspace(-1, 1, 4), "b": np.array([0.5, -0.25])})


def bad():
    return (_f, lambda p: {"x": 1.25 * np.cos(p["x"]), "b": 2 * p["b"]},
            {"x": np.linspace(-1, 1, 4), "b": np.array([0.5, -0.25])})


def raising():
    raise RuntimeError("no data file here")


def wrongret():
    return 3


def fwdraise():
    def forward(p):
        raise ZeroDivisionError("forward divides by zero")
    return (forward, lambda p: {"x": np.cos(p["x"])}, {"x": np.linspace(-1, 1, 4)})


def nondet():
    calls = [0]

    def forward(p):
        calls[0] += 1
        return _f(p) + 1e-3 * calls[0]
    return forward, problem()[1], problem()[2]


noncallable = 5
'''

MODULES = {
    "toymod.py": TOYMOD,
    "importraise.py": "raise RuntimeError('boom at import')\n",
    "syntaxerr.py": "def problem(:\n    pass\n",
    "missingdep.py": "import nosuchpackage_xyz  # noqa\n\ndef problem():\n    pass\n",
}

SMALL_RNN = ["demo", "rnn", "--hidden", "3", "--seq-len", "3", "--batch", "2",
             "--train-steps", "0"]
COMMANDS = {
    "demo rnn": SMALL_RNN,
    "demo layer": ["demo", "layer", "affine"],
    "check": ["check", "toymod:problem"],
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the user's modules, as the working directory."""
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in MODULES:
        sys.modules.pop(name[:-3], None)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_sentence(err: str, *needles: str) -> None:
    """stderr is one line, starts with 'gradcheck:', names the problem, has no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("gradcheck: "), err
    assert "Traceback" not in err and "_step" not in err and "_sample" not in err, err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, err)


# ------------------------------------------------------------------ bad option values × commands

BAD_OPTIONS = [
    (["--method", "bogus"], "bogus"),
    (["--h", "0"], "h"),
    (["--h", "-1"], "h"),
    (["--h", "abc"], "abc"),
    (["--h", "nan"], "h"),
    (["--h", "inf"], "h"),
    (["--tol", "-1"], "tol"),
    (["--tol", "0"], "tol"),
    (["--tol", "abc"], "tol"),
    (["--tol", "nan"], "tol"),
    (["--tol", "inf"], "tol"),
    (["--sample", "nan"], "sample"),
    (["--sample", "inf"], "sample"),
    (["--sample", "1.5"], "sample"),
    (["--sample", "0"], "sample"),
    (["--sample", "-2"], "sample"),
    (["--sample", "abc"], "sample"),
    (["--sample-seed", "-1"], "sample-seed"),
    (["--sample-seed", "x"], "sample-seed"),
    (["--seed", "-1"], "seed"),
    (["--seed", "1.5"], "seed"),
    (["--mode", "bogus"], "mode"),
    (["--workers", "0"], "workers"),
    (["--workers", "two"], "workers"),
    (["--batch-size", "0"], "batch-size"),
    (["--json", "/nonexistent_dir_xyz/r.json"], "/nonexistent_dir_xyz/r.json"),
    (["--plot", "/nonexistent_dir_xyz/r.png"], "/nonexistent_dir_xyz/r.png"),
    (["--no-such-option"], "--no-such-option"),
    (["--method", "auto", "--h", "1e-3"], "auto"),
    (["--json", "/"], "--json"),
]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("option,needle", BAD_OPTIONS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_bad_option_is_a_usage_error(project, capsys, command, option, needle) -> None:
    code, out, err = run(COMMANDS[command] + option, capsys)
    assert code == 3, (code, err)
    assert_one_sentence(err, needle)
    assert "Checking" not in out or "PASS" not in out  # refused before running the check


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_good_command_passes_quietly(project, capsys, command) -> None:
    code, out, err = run(COMMANDS[command] + ["--no-progress"], capsys)
    assert code == 0, (out, err)
    assert "Traceback" not in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_plot_without_matplotlib_is_a_usage_error(project, capsys, monkeypatch, command) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = run(COMMANDS[command] + ["--plot", str(project / "r.png")], capsys)
    assert code == 3, (code, err)
    assert_one_sentence(err, "matplotlib")


# ------------------------------------------------------------------ targets of check and sweep

TARGETS = [
    # (target, exit code, words the sentence must contain)
    ("nosuchmod:problem", 3, ["nosuchmod"]),
    ("raiser", 3, ["raiser", "module:factory"]),
    (":problem", 3, ["module"]),
    ("toymod:", 3, ["factory"]),
    ("toymod:nosuch", 3, ["nosuch"]),
    ("toymod:noncallable", 3, ["noncallable", "callable"]),
    ("toymod:raising", 4, ["raising", "RuntimeError", "no data file here"]),
    ("toymod:wrongret", 4, ["wrongret", "(forward, forward_backward, params)"]),
    ("importraise:problem", 4, ["importraise", "RuntimeError", "boom at import"]),
    ("syntaxerr:problem", 4, ["syntaxerr.py", "SyntaxError", "line 1"]),
    ("missingdep:problem", 4, ["nosuchpackage_xyz"]),
]


@pytest.mark.parametrize("command", ["check", "sweep"])
@pytest.mark.parametrize("target,code,needles", TARGETS, ids=[t[0] for t in TARGETS])
def test_bad_target(project, capsys, command, target, code, needles) -> None:
    got, out, err = run([command, target], capsys)
    assert got == code, (got, err)
    assert_one_sentence(err, *needles)
    if code == 4:
        assert "run from the directory" not in err


@pytest.mark.parametrize("argv,needle", [
    (["sweep", "toymod:problem", "--entries", "x[99]"], "x[99]"),
    (["sweep", "toymod:problem", "--entries", "zz"], "zz"),
    (["sweep", "toymod:problem", "--methods", "central,bogus"], "bogus"),
    (["sweep", "toymod:problem", "--sample", "0"], "--sample"),
    (SMALL_RNN + ["--hidden", "-3"], "--hidden"),
    (SMALL_RNN + ["--train-steps", "-1"], "--train-steps"),
    (SMALL_RNN + ["--bug", "nosuch"], "nosuch"),
    (["demo", "layer", "nosuch"], "nosuch"),
    (["demo", "layer", "affine", "--bug", "nosuch"], "nosuch"),
    (["demo", "layer"], "layer"),
    (["check"], "target"),
    (["check", "toymod:problem", "--bug", "sign"], "--bug"),
    (["check", "toymod:problem", "--batched"], "--batched"),
])
def test_other_usage_errors(project, capsys, argv, needle) -> None:
    code, out, err = run(argv, capsys)
    assert code == 3, (code, err)
    assert_one_sentence(err, needle)


def test_forward_that_raises_is_exit_4_naming_where(project, capsys) -> None:
    code, out, err = run(["check", "toymod:fwdraise"], capsys)
    assert code == 4
    assert_one_sentence(err, "ZeroDivisionError", "forward")


def test_wrong_gradient_is_exit_1(project, capsys) -> None:
    code, out, err = run(["check", "toymod:bad", "--no-progress"], capsys)
    assert code == 1 and "FAIL" in out
    assert "Traceback" not in err


def test_inconclusive_is_exit_2(project, capsys) -> None:
    code, out, err = run(["check", "toymod:nondet", "--no-progress"], capsys)
    assert code == 2 and "inconclusive" in out.lower()
    assert "Traceback" not in err


# ------------------------------------------------------------------ check has the speed options

def test_check_has_the_speed_and_seed_options(project, capsys) -> None:
    for extra in (["--mode", "directional"], ["--workers", "2"], ["--seed", "0"],
                  ["--no-progress"], ["--batch-size", "4"]):
        code, out, err = run(["check", "toymod:problem", *extra], capsys)
        assert code == 0, (extra, out, err)
    code, out, err = run(["check", "toymod:bad", "--mode", "directional"], capsys)
    assert code == 1


# ------------------------------------------------------------------ JSON

def test_json_dash_writes_json_to_stdout(project, capsys) -> None:
    code, out, err = run(["check", "toymod:problem", "--json", "-"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "pass"
    assert not (project / "-").exists()


def test_json_keeps_every_failing_entry(tmp_path, capsys) -> None:
    path = tmp_path / "r.json"
    code = main(SMALL_RNN + ["--bug", "sign", "--json", str(path), "--no-progress"])
    capsys.readouterr()
    assert code == 1
    data = json.loads(path.read_text())
    problems = data["counts"]["failed"] + data["counts"]["inconclusive"]
    assert problems > 10
    assert len(data["entries"]) == problems
    assert {e["status"] for e in data["entries"]} <= {"FAIL", "inconclusive"}
    assert len(data["worst"]) == 10
    code = main(SMALL_RNN + ["--bug", "sign", "--json", str(path), "--json-all",
                             "--no-progress"])
    capsys.readouterr()
    data = json.loads(path.read_text())
    assert len(data["entries"]) == data["counts"]["checked"]


# ------------------------------------------------------------------ version, help, pipes

def test_version(capsys) -> None:
    import gradcheck

    code, out, err = run(["--version"], capsys)
    assert code == 0 and gradcheck.__version__ in out


def test_help_shows_an_example_and_the_exit_codes(capsys) -> None:
    code, out, err = run(["--help"], capsys)
    assert code == 0
    assert "gradcheck check" in out and "Exit codes" in out
    for n, word in ((0, "pass"), (1, "fail"), (2, "inconclusive"), (3, "usage"), (4, "raised")):
        assert f"{n}" in out and word in out
    code, out, err = run(["check", "--help"], capsys)
    assert code == 0 and "--workers" in out and "--mode" in out


def test_no_command_is_a_usage_error(capsys) -> None:
    code, out, err = run([], capsys)
    assert code == 3
    assert_one_sentence(err, "gradcheck demo rnn")


def test_broken_pipe_exits_quietly(tmp_path) -> None:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck.cli", "demo", "layer", "--list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    proc.stderr.close()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code in (0, 1, 2, 141), code


# ------------------------------------------------------------------ the plan before a long check

@pytest.mark.parametrize("seconds,suggest", [(0.5, False), (20.0, False), (200.0, True),
                                             (5000.0, True)])
def test_plan_line_suggests_faster_modes_above_a_minute(seconds, suggest) -> None:
    from gradcheck.cli.plan import plan_line

    line = plan_line(entries=1163, evaluations=2328, seconds=seconds)
    assert "1,163 entries" in line and "2,328 evaluations" in line
    assert ("--mode directional" in line and "--sample" in line) == suggest, line
    assert "\n" not in line


def test_the_plan_is_printed_before_a_long_check(project, capsys, monkeypatch) -> None:
    from gradcheck.cli import plan

    monkeypatch.setattr(plan, "SHOW_ABOVE", 0.0)  # every check counts as long here
    code, out, err = run(["check", "toymod:problem", "--no-progress"], capsys)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("Plan:"))
    assert "6 entries" in line and "14 evaluations" in line
    assert out.index("Plan:") < out.index("gradcheck: PASS")
