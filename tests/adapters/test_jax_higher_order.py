"""JAX adapter: order=2 and modes=("fwd", "rev") like check_grads, complex, named outputs."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from gradcheck.adapters.jax import check_function  # noqa: E402


def swish(stop: bool = False):
    """custom_jvp Swish; ``stop`` stops the gradient of σ in the rule (second order wrong)."""

    @jax.custom_jvp
    def f(x):
        return x * jax.nn.sigmoid(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        s = jax.nn.sigmoid(x)
        if stop:
            s = jax.lax.stop_gradient(s)
        return f(x), (s + x * s * (1 - s)) * t

    return f


def three(bug: bool = False):
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x), x**2, jnp.exp(x)

    def fwd(x):
        return f(x), x

    def bwd(x, ct):
        g0, g1, g2 = ct
        return (g0 * jnp.cos(x) + g1 * (x if bug else 2 * x) + g2 * jnp.exp(x),)

    f.defvjp(fwd, bwd)
    return f


X = np.random.default_rng(0).normal(size=(3, 4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_order2_fwd_rev_like_check_grads(dtype):
    x = X.astype(dtype)
    good = check_function(swish(), x, order=2, modes=("fwd", "rev"), progress=False)
    assert good.status == "pass", good
    assert {t.name for t in good.tensors} == {"vjp/input0", "jvp/input0", "hvp/input0"}
    bad = check_function(swish(True), x, order=2, modes=("fwd", "rev"), progress=False)
    assert bad.status == "fail"
    assert bad.failing_tensors == ["hvp/input0"]


def test_order2_of_a_custom_vjp_rule():
    """custom_vjp rules cannot run forward; the HVP is reverse over reverse."""
    x = X[0]
    assert check_function(three(), x, order=2, progress=False).status == "pass"


def test_outputs_named():
    report = check_function(three(True), X[0], output_names=["s", "sq", "e"], progress=False)
    assert report.status == "fail"
    for entry in report.entries("FAIL")[:3]:
        assert f"output sq[{entry.index[0]}]" in entry.note


@pytest.mark.parametrize("bug", [False, True])
def test_complex_argument_in_torch_convention(bug):
    """|z|² through a custom_vjp whose backward (JAX convention) is conjugated by the bug."""

    @jax.custom_vjp
    def f(z):
        return jnp.abs(z) ** 2

    def fwd(z):
        return f(z), z

    def bwd(z, ct):
        g = 2 * ct * jnp.conj(z)        # JAX: cotangent times ∂f/∂z for real f → conj(torch)
        return (jnp.conj(g) if bug else g,)

    f.defvjp(fwd, bwd)
    z = np.array([1 + 2j, -0.5 + 0.3j, 0.7 - 1.1j])
    report = check_function(f, z, progress=False)
    assert report.status == ("fail" if bug else "pass"), report


def test_forward_mode_names_the_output():
    @jax.custom_jvp
    def polar(r, th):
        return r * jnp.cos(th), r * jnp.sin(th)

    @polar.defjvp
    def polar_jvp(primals, tangents):
        (r, th), (tr, tth) = primals, tangents
        c, s = jnp.cos(th), jnp.sin(th)
        return polar(r, th), (tr * c - r * s * tth, tr * s - r * c * tth)   # sign bug in y

    r, th = np.abs(X[0]) + 0.5, X[1]
    report = check_function(polar, r, th, names=["r", "theta"], output_names=["x", "y"],
                            modes=("fwd",), progress=False)
    assert report.status == "fail" and report.failing_tensors == ["theta"]
    assert all("output y[" in e.note for e in report.entries("FAIL"))
