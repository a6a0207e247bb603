r"""JAX adapter: check a function with a ``jax.custom_vjp`` / ``jax.custom_jvp`` rule.

The analytic side is ``jax.grad`` of the scalar ``L = Σ out ⊙ dout`` (random, fixed ``dout``;
or ``loss_fn(out)``), which runs the custom rule; it is computed in the inputs' own dtype.
The numeric side is gradcheck's: the inputs become numpy arrays that :func:`gradcheck.check`
perturbs in place, and the forward is evaluated on them with **x64 enabled** for the whole
check (``jax.enable_x64``), so float32 inputs get float64 numerics as in the core — without
x64 JAX would silently turn every float64 array into float32 and the differences would be
rounding noise. The global x64 flag is restored afterwards.

>>> from gradcheck.adapters.jax import check_function
>>> report = check_function(my_custom_vjp_fn, x, w)             # doctest: +SKIP

Arguments may be arrays or dicts / lists / tuples of arrays (named ``input0.W`` etc.).

Reference: ``jax.test_util.check_grads`` checks one random direction per order with
atol/rtol by dtype; here every entry is checked (or a ``sample=``) and named.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from gradcheck.adapters._common import as_list, input_names, random_cotangent
from gradcheck.check import check
from gradcheck.errors import InputError
from gradcheck.optional import optional_import
from gradcheck.params import tree as trees
from gradcheck.report.results import Report


def _jax() -> Any:
    return optional_import("jax", "the JAX adapter")


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """Enable JAX's 64-bit mode inside the block (restored afterwards)."""
    jax = _jax()
    state = getattr(jax, "enable_x64", None)      # a context-manager flag in recent JAX
    if state is not None:
        manager = state(True)
    else:  # pragma: no cover - older JAX
        from jax.experimental import enable_x64  # type: ignore[attr-defined]

        manager = enable_x64()
    with manager:
        yield


def check_function(fn: Callable[..., Any], *args: Any, argnums: Sequence[int] | None = None,
                   names: list[str] | None = None, loss_fn: Callable[[Any], Any] | None = None,
                   dout_seed: int | None = None, jit: bool = True, **options: Any) -> Report:
    """Check the derivatives of ``fn(*args)`` (custom VJP/JVP rules included) numerically.

    Parameters
    ----------
    fn : a JAX-traceable function of arrays (or pytrees of arrays) returning an array or a
        tuple of arrays.
    *args : its arguments (numpy or JAX arrays, or dicts / lists / tuples of them).
    argnums : positions of the arguments to check (default: every argument whose leaves are
        all floating-point arrays); the others are passed unchanged.
    names : names of the arguments in the report (default ``input0``, ``input1``, ...).
    loss_fn : reduce the output to a scalar (default ``Σ out ⊙ dout``, random ``dout``).
    jit : compile the forward with ``jax.jit`` (default True; False for functions that do
        not trace).
    **options : options of :func:`gradcheck.check`.

    Returns
    -------
    Report
    """
    jax = _jax()
    import jax.numpy as jnp

    labels = input_names(len(args), names)
    host = [jax.tree_util.tree_map(lambda a: np.array(a), a) for a in args]
    if argnums is None:
        argnums = [i for i, a in enumerate(host) if _all_float(a)]
    argnums = sorted(int(i) for i in argnums)
    if not argnums:
        raise InputError("no argument is made of floating-point arrays, so there is nothing "
                         "to check; pass float arrays or say which with argnums=[...].")
    for i in argnums:
        if not _all_float(host[i]):
            raise InputError(f"argument {labels[i]} (argnums {i}) is not made of floating-point "
                             "arrays; leave it out of argnums.")
    checked = [labels[i] for i in argnums]
    params = {labels[i]: host[i] for i in argnums}
    dout: list[np.ndarray] | None = None

    def scalar(out: Any) -> Any:
        nonlocal dout
        if loss_fn is not None:
            return jnp.reshape(loss_fn(out), ())
        outs = as_list(out)
        if dout is None:
            dout = random_cotangent([tuple(np.shape(o)) for o in outs], dout_seed)
        total = sum(jnp.sum(o.astype(jnp.promote_types(o.dtype, jnp.float64))
                            * jnp.asarray(d, jnp.float64)) for o, d in zip(outs, dout))
        return total.astype(outs[0].dtype) if jnp.issubdtype(outs[0].dtype, jnp.floating) \
            else total

    def full_args(values: dict[str, Any]) -> list[Any]:
        return [values[n] if n in values else args[i] for i, n in enumerate(labels)]

    def loss_of(values: dict[str, Any]) -> Any:
        return scalar(fn(*full_args(values)))

    compiled = jax.jit(loss_of) if jit else loss_of
    grad = jax.jit(jax.value_and_grad(loss_of)) if jit else jax.value_and_grad(loss_of)

    def forward(p: dict[str, Any]) -> Any:
        return np.asarray(compiled(jax.tree_util.tree_map(jnp.asarray, p)))

    def forward_backward(p: dict[str, Any]) -> tuple[Any, Any]:
        loss, g = grad(jax.tree_util.tree_map(jnp.asarray, p))
        g = jax.tree_util.tree_map(lambda a: np.array(a), g)
        return np.asarray(loss), {n: g[n] for n in checked}

    with x64():
        return check(forward, forward_backward, params, **options)


def _all_float(a: Any) -> bool:
    leaves = [leaf.array for leaf in trees.flatten(a)]
    return bool(leaves) and all(isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)
                                for x in leaves)
