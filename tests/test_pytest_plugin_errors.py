"""The pytest plugin: bad --gradcheck-* values stop pytest once, at start-up, with one
sentence; the help lists all seven methods; a failing check shows the readable report, not
gradcheck's internal frames or a ``Report(...)`` repr."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = '''
import numpy as np

def f(p):
    return np.sum(np.sin(p))

def good(p):
    return np.cos(p)

def bad(p):
    return np.cos(p) * 1.001

P = np.linspace(0.1, 1.0, 4)

def test_good(gradcheck):
    gradcheck(f, good, P)

def test_bad(gradcheck):
    gradcheck(f, bad, P)

def test_bad_layer(gradcheck):
    def fwd(x):
        return x * x, x
    def bwd(dout, x):
        return 2.5 * x * dout
    gradcheck.layer(fwd, bwd, {"x": P.copy()})
'''

BAD = [
    (["--gradcheck-method", "bogus"], "bogus"),
    (["--gradcheck-tol", "-1"], "--gradcheck-tol"),
    (["--gradcheck-tol", "nan"], "--gradcheck-tol"),
    (["--gradcheck-tol", "abc"], "--gradcheck-tol"),
    (["--gradcheck-h", "0"], "--gradcheck-h"),
    (["--gradcheck-h", "inf"], "--gradcheck-h"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_stops_pytest_once_at_start_up(pytester, args, needle) -> None:
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = "\n".join(result.errlines)
    assert needle in err, err
    assert "Traceback" not in err
    assert [line for line in result.errlines if needle in line][:1], err
    assert not any("passed" in line or "failed" in line for line in result.outlines)  # none ran


def test_help_lists_the_seven_methods(pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(" ".join(result.outlines).split())
    for name in ("central", "forward", "backward", "central4", "richardson", "complex",
                 "auto"):
        assert name in text, name


def test_a_failing_check_shows_the_report_not_internal_frames(pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    out = "\n".join(result.outlines)
    assert "gradcheck: FAIL" in out and "params[" in out
    assert "Report(" not in out
    assert "TensorReport(" not in out
    for internal in ("testing.py:", "pytest_plugin.py:", "check.py:"):
        assert internal not in out, internal
