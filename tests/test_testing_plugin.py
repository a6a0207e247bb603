"""assert_gradients and the pytest plugin (fixture + command-line options, via pytester)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc

pytest_plugins = ["pytester"]


def quad(p):
    """f = Σ p³; ∂f/∂p = 3p²."""
    return float(np.sum(p**3))


def quad_grad(p):
    return 3 * p**2


def quad_grad_wrong(p):
    return 3 * p**2 + (np.arange(p.size).reshape(p.shape) == 2)


def test_assert_gradients_returns_the_passing_report() -> None:
    p = np.linspace(-1, 1, 5)
    report = gc.assert_gradients(quad, quad_grad, p)
    assert report.status == "pass"


def test_assert_gradients_message_is_the_report() -> None:
    p = np.linspace(-1, 1, 5)
    with pytest.raises(AssertionError) as info:
        gc.assert_gradients(quad, quad_grad_wrong, p)
    msg = str(info.value)
    assert msg.startswith("gradcheck: FAIL")
    assert "params[2]" in msg


def test_inconclusive_is_not_a_pass_unless_allowed() -> None:
    state = {"calls": 0}

    def noisy(p):
        state["calls"] += 1
        return quad(p) + 1e-3 * state["calls"]

    p = np.linspace(-1, 1, 5)
    with pytest.raises(AssertionError, match="allow_inconclusive"):
        gc.assert_gradients(noisy, quad_grad, p)
    assert gc.assert_gradients(noisy, quad_grad, p, allow_inconclusive=True).status == \
        "inconclusive"


def test_assert_layer_gradients() -> None:
    from gradcheck.examples.layers import LAYERS, buggy_backward

    spec = LAYERS["affine"]
    inputs = spec.make_inputs(np.random.default_rng(0))
    gc.assert_layer_gradients(spec.forward, spec.backward, inputs)
    with pytest.raises(AssertionError, match="w"):
        gc.assert_layer_gradients(spec.forward, buggy_backward("affine", "dw_divided_by_n"),
                                  inputs)


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

def test_defaults(gradcheck):
    print("DEFAULTS", sorted(gradcheck.defaults.items()))

def test_layer(gradcheck):
    def fwd(x):
        return x * x, x
    def bwd(dout, x):
        return 2 * x * dout
    gradcheck.layer(fwd, bwd, {"x": P.copy()})
'''


def test_plugin_fixture_reports_failures(pytester) -> None:
    # the plugin is loaded through the pytest11 entry point declared in pyproject.toml
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_bad*", "*gradcheck: FAIL*", "*params[[]*"])


def test_plugin_command_line_options(pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE)
    # 1.001 is a relative error of 1e-3: a loose tolerance lets it pass.
    result = pytester.runpytest("-s", "--gradcheck-tol",
                                "1e-2", "--gradcheck-method", "complex")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*DEFAULTS [[]('method', 'complex'), ('tol', 0.01)[]]*"])
