"""JAX adapter: custom_vjp / custom_jvp rules, same verdicts as jax.test_util.check_grads."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from gradcheck.adapters.jax import check_function  # noqa: E402


def make_mulsin(bug: str | None = None):
    """f(x, w) = x · sin(w) with a custom VJP: (g sin w, g x cos w); bugs flip/scale."""

    @jax.custom_vjp
    def f(x, w):
        return x * jnp.sin(w)

    def fwd(x, w):
        return f(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        gx, gw = g * jnp.sin(w), g * x * jnp.cos(w)
        if bug == "sign":
            gw = -gw
        if bug == "double_x":
            gx = 2 * gx
        return gx, gw

    f.defvjp(fwd, bwd)
    return f


def make_softplus(bug: str | None = None):
    """softplus with a custom JVP: d/dx log(1 + e^x) = sigmoid(x); bug uses tanh instead."""

    @jax.custom_jvp
    def softplus(x):
        return jnp.logaddexp(x, 0.0)

    @softplus.defjvp
    def jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        slope = jnp.tanh(x) if bug == "tanh" else jax.nn.sigmoid(x)
        return softplus(x), slope * t

    return softplus


CASES = [
    (make_mulsin, None, set()),
    (make_mulsin, "sign", {"w"}),
    (make_mulsin, "double_x", {"x"}),
    (make_softplus, None, set()),
    (make_softplus, "tanh", {"x"}),
]


def _args(factory, dtype=np.float64):
    rng = np.random.default_rng(1)
    if factory is make_softplus:
        return [rng.normal(size=(5,)).astype(dtype)], ["x"]
    return [rng.normal(size=(2, 3)).astype(dtype) for _ in range(2)], ["x", "w"]


def _jax_verdict(fn, args) -> bool:
    with jax.enable_x64(True):
        try:
            check_grads(fn, tuple(jnp.asarray(a) for a in args), order=1, modes=["rev"])
        except AssertionError:
            return False
    return True


@pytest.mark.parametrize(("factory", "bug", "bad"), CASES)
def test_same_verdict_as_check_grads(factory, bug, bad) -> None:
    fn = factory(bug)
    args, names = _args(factory)
    report = check_function(fn, *args, names=names)
    assert (report.status == "pass") == _jax_verdict(fn, args), report
    assert set(report.failing_tensors) == bad, report
    if bad:
        assert report.worst(1)[0].tensor in bad


def test_float32_inputs_get_float64_numerics_and_x64_is_restored() -> None:
    before = jax.config.jax_enable_x64
    args, names = _args(make_mulsin, np.float32)
    good = check_function(make_mulsin(), *args, names=names)
    assert good.status == "pass", good
    assert any("float64" in n for n in good.notes)
    assert check_function(make_mulsin("sign"), *args, names=names).failing_tensors == ["w"]
    assert jax.config.jax_enable_x64 == before


def test_pytree_argument_and_argnums() -> None:
    def model(params, x):
        return jnp.tanh(x @ params["W"] + params["b"])

    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}
    x = rng.normal(size=(4, 3))
    report = check_function(model, params, x, argnums=[0], names=["p", "x"])
    assert report.status == "pass", report
    assert [t.name for t in report.tensors] == ["p.W", "p.b"]


def test_loss_fn_and_no_jit() -> None:
    fn = make_mulsin("double_x")
    args, names = _args(make_mulsin)
    report = check_function(fn, *args, names=names, loss_fn=lambda out: jnp.mean(out**2),
                            jit=False)
    assert report.failing_tensors == ["x"]


def test_complex_step() -> None:
    args, names = _args(make_mulsin)
    report = check_function(make_mulsin(), *args, names=names, method="complex")
    assert report.status == "pass" and report.tensors[0].max_error < 1e-12
    assert check_function(make_mulsin("sign"), *args, names=names,
                          method="complex").failing_tensors == ["w"]
