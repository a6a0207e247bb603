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

``order=2`` also checks second derivatives (reverse over reverse, so ``custom_vjp`` rules
work too) through :func:`gradcheck.check_hvp`; ``modes=("fwd", "rev")`` adds forward mode
(``jax.jvp``, a ``custom_jvp`` rule) through :func:`gradcheck.check_jvp`, as
``check_grads(f, args, order=2, modes=("fwd", "rev"))`` does. Without ``loss_fn`` the outputs
are checked through a random cotangent (:func:`gradcheck.check_vjp`) and failures name the
output element. Complex arguments are checked in PyTorch's convention; ``jax.grad`` returns the
conjugate, which the adapter converts (see :mod:`gradcheck.params.complexview`).

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
from gradcheck.derivatives.combine import combine, validate_modes
from gradcheck.derivatives.hvp import check_hvp
from gradcheck.derivatives.jvp import check_jvp, check_output_jvp
from gradcheck.derivatives.vjp import check_vjp
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
                   dout_seed: int | None = None, jit: bool = True, order: int = 1,
                   modes: Sequence[str] = ("rev",), output_names: Sequence[str] | None = None,
                   **options: Any) -> Report:
    """Check the derivatives of ``fn(*args)`` (custom VJP/JVP rules included) numerically.

    Parameters
    ----------
    fn : a JAX-traceable function of arrays (or pytrees of arrays) returning an array or a
        tuple of arrays.
    *args : its arguments (numpy or JAX arrays, or dicts / lists / tuples of them).
    argnums : positions of the arguments to check (default: every argument whose leaves are
        all floating-point or complex arrays); the others are passed unchanged.
    names : names of the arguments in the report (default ``input0``, ``input1``, ...).
    loss_fn : reduce the output to a scalar (default ``Σ out ⊙ dout``, random ``dout``).
    jit : compile the forward with ``jax.jit`` (default True; False for functions that do
        not trace).
    order : 2 also checks second derivatives (:func:`gradcheck.check_hvp`).
    modes : ``("rev",)`` (default), ``("fwd",)`` or both, as in ``check_grads``.
    output_names : names of the outputs of a tuple-returning ``fn`` (default ``output0``...).
    **options : options of :func:`gradcheck.check`.

    Returns
    -------
    Report
    """
    jax = _jax()
    import jax.numpy as jnp

    modes = validate_modes(order, modes)
    labels = input_names(len(args), names)
    host = [jax.tree_util.tree_map(lambda a: np.array(a), a) for a in args]
    if argnums is None:
        argnums = [i for i, a in enumerate(host) if _all_float(a)]
    argnums = sorted(int(i) for i in argnums)
    if not argnums:
        raise InputError("no argument is made of floating-point or complex arrays, so there "
                         "is nothing to check; pass float arrays or say which with "
                         "argnums=[...].")
    for i in argnums:
        if not _all_float(host[i]):
            raise InputError(f"argument {labels[i]} (argnums {i}) is not made of floating-point "
                             "or complex arrays; leave it out of argnums.")
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
        total = sum(jnp.sum(jnp.real(o.astype(jnp.promote_types(o.dtype, jnp.float64)))
                            * jnp.asarray(d, jnp.float64)) for o, d in zip(outs, dout))
        dtype = jnp.real(outs[0]).dtype
        return total.astype(dtype) if jnp.issubdtype(dtype, jnp.floating) else total

    def full_args(values: dict[str, Any]) -> list[Any]:
        return [values[n] if n in values else args[i] for i, n in enumerate(labels)]

    def loss_of(values: dict[str, Any]) -> Any:
        return scalar(fn(*full_args(values)))

    def maybe_jit(f: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(f) if jit else f

    def device(p: Any) -> Any:
        return jax.tree_util.tree_map(jnp.asarray, p)

    def host_conj(g: Any) -> dict[str, Any]:
        """``jax.grad``'s gradient in PyTorch's convention (its conjugate; real: itself)."""
        g = jax.tree_util.tree_map(lambda a: np.conj(np.array(a)) if np.iscomplexobj(a)
                                   else np.array(a), g)
        return {n: g[n] for n in checked}

    compiled = maybe_jit(loss_of)
    grad = maybe_jit(jax.value_and_grad(loss_of))

    def forward(p: dict[str, Any]) -> Any:
        return np.asarray(compiled(device(p)))

    def forward_backward(p: dict[str, Any]) -> tuple[Any, Any]:
        loss, g = grad(device(p))
        return np.asarray(loss), host_conj(g)

    reports: dict[str, Report] = {}
    with x64():
        outputs = maybe_jit(lambda values: fn(*full_args(values)))

        def function(p: dict[str, Any]) -> Any:
            out = outputs(device(p))
            return tuple(np.asarray(o) for o in out) if isinstance(out, (tuple, list)) \
                else np.asarray(out)

        if "rev" in modes and loss_fn is None:
            def vjp(p: dict[str, Any], cot: Any) -> dict[str, Any]:
                _, pull = jax.vjp(lambda values: fn(*full_args(values)), device(p))
                conj = jax.tree_util.tree_map(lambda c: jnp.conj(jnp.asarray(c)), cot)
                if isinstance(cot, tuple):
                    conj = tuple(conj)
                (g,) = pull(conj)
                return host_conj(g)

            seed = 0 if dout_seed is None else dout_seed
            reports["vjp"] = check_vjp(function, vjp, params, output_names=output_names,
                                       cotangent_seed=seed, **options)
        elif "rev" in modes:
            reports["rev"] = check(forward, forward_backward, params, **options)
        if "fwd" in modes and loss_fn is None:
            out_tangent = maybe_jit(lambda p, t: jax.jvp(lambda v: fn(*full_args(v)), (p,),
                                                         (t,))[1])

            def jvp_outputs(p: dict[str, Any], t: dict[str, Any]) -> Any:
                out = out_tangent(device(p), device(t))
                return tuple(np.asarray(o) for o in out) if isinstance(out, (tuple, list)) \
                    else np.asarray(out)

            seed = 0 if dout_seed is None else dout_seed
            reports["jvp"] = check_output_jvp(function, jvp_outputs, params,
                                              output_names=output_names, cotangent_seed=seed,
                                              **options)
        elif "fwd" in modes:
            tangent = maybe_jit(lambda p, t: jax.jvp(loss_of, (p,), (t,)))

            def jvp(p: dict[str, Any], t: dict[str, Any]) -> tuple[Any, Any]:
                loss, d = tangent(device(p), device(t))
                return np.asarray(loss), np.asarray(d)

            reports["jvp"] = check_jvp(forward, jvp, params, **options)
        if order >= 2:
            def phi(p: dict[str, Any], v: dict[str, Any]) -> Any:
                g = jax.grad(loss_of)(p)
                return sum(jnp.sum(jnp.real(g[n] * v[n])) for n in checked)

            second = maybe_jit(jax.grad(phi))

            def hvp(p: dict[str, Any], v: dict[str, Any]) -> dict[str, Any]:
                return host_conj(second(device(p), device(v)))

            reports["hvp"] = check_hvp(forward_backward, hvp, params, **options)
    return combine(reports)


def _all_float(a: Any) -> bool:
    leaves = [leaf.array for leaf in trees.flatten(a)]
    return bool(leaves) and all(isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.inexact)
                                for x in leaves)
