r"""Checks for layers written as ``out, cache = forward(...)`` / ``grads = backward(dout, cache)``.

This is the CS231n convention (``affine_forward`` / ``affine_backward``): a layer's backward
pass receives an upstream gradient ``dout`` shaped like the output and returns one gradient
per differentiable input. Such a backward computes the gradient of the scalar

.. math::  L(x_1, \dots, x_k) = \sum \text{out}(x_1, \dots, x_k) \odot \text{dout}

(the vector–Jacobian product ``doutᵀ J``), so :func:`check_layer` draws a random ``dout``
once, defines that scalar and hands it to :func:`gradcheck.check`. With a random ``dout`` a
wrong Jacobian is caught for almost every draw (a bug hidden by ``dout = 1`` — say a wrong
sum over rows — is not hidden by a Gaussian one); see CS231n's ``eval_numerical_gradient_array``
for the same construction.

Every call receives fresh copies of the inputs and of ``dout``, and the copies are compared
with the originals afterwards: a layer that writes into its inputs (``x -= mean``) or its
upstream gradient (``dout[x < 0] = 0``) is named, because in a network that silently corrupts
another layer's activations or gradients even when the returned gradients are right.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradcheck.check import check
from gradcheck.errors import InputError
from gradcheck.evaluate.randomness import make_reset
from gradcheck.report.results import Report


class LayerError(InputError):
    """The layer broke the forward/backward contract (wrote into an argument, bad grads)."""


def check_layer(forward: Callable[..., Any], backward: Callable[..., Any] | None,
                inputs: Mapping[str, Any] | Sequence[Any], *,
                kwargs: Mapping[str, Any] | None = None,
                differentiable: Sequence[str] | None = None,
                is_loss: bool = False, dout: Any = None, dout_seed: int | None = None,
                **options: Any) -> Report:
    """Check a layer's ``backward(dout, cache)`` against numeric derivatives of its forward.

    The checked scalar is ``L = Σ out ⊙ dout`` (summed over every output array when ``out`` is
    a tuple), whose gradient with respect to each input is what ``backward(dout, cache)``
    returns (a vector–Jacobian product). Each differentiable input is one tensor of the report,
    named by its input name.

    Parameters
    ----------
    forward : ``forward(*inputs, **kwargs) -> (out, cache)``; ``out`` an array, a scalar or a
        tuple of arrays. With ``is_loss=True``: ``forward(*inputs, **kwargs) -> (loss, dx)``
        (the CS231n loss convention, e.g. ``softmax_loss(x, y)``).
    backward : ``backward(dout, cache) -> grads``: a tuple with one gradient per differentiable
        input in input order (a bare array when there is one). Ignored (pass ``None``) when
        ``is_loss``.
    inputs : a dict ``{name: value}`` in the order ``forward`` takes them, or a sequence (names
        then come from ``forward``'s signature). Integer arrays (indices, labels) and
        non-arrays are passed through unchanged and are not differentiated.
    kwargs : keyword arguments of ``forward`` (``stride``, ``eps``, a dropout ``seed``, ...).
    differentiable : names of the inputs ``backward`` returns gradients for (default: every
        floating-point array input).
    is_loss : the layer is a loss ``(loss, dx) = forward(*inputs)``; dx (or a tuple of grads)
        is checked against ``loss`` directly, no ``dout`` involved.
    dout : the upstream gradient to use (default: standard normal, drawn with ``dout_seed``).
    dout_seed : seed of that draw (default: a fixed seed unlike the ``0``/``42`` people seed
        their inputs with — with the same seed, ``dout`` would equal ``x`` and hide bugs such
        as a transposed ``x.T @ dout``, which is then symmetric).
    **options : any option of :func:`gradcheck.check` (``method``, ``h``, ``tol``, ``sample``,
        ``seed`` for layers that draw random numbers on every call, ``context`` for the
        diagnosis — ``batch_size`` defaults to the first input's leading dimension, the
        differentiable inputs form one group sharing ``dout`` (``groups``), and a bias-shaped
        input gets the slices of ``dout`` it must add up as its ``terms``).

    Returns
    -------
    Report

    Raises
    ------
    LayerError
        When ``forward`` or ``backward`` writes into one of its arguments, or ``backward``
        returns the wrong number of gradients — a sentence naming the argument.

    References
    ----------
    CS231n, ``gradient_check.eval_numerical_gradient_array`` and the assignment's
    ``layers.py`` convention (cs231n.github.io, assignment 2).
    """
    kwargs = dict(kwargs or {})
    names, values = _named_inputs(forward, inputs)
    diff = _differentiable(names, values, differentiable)
    fname = _name(forward, "forward")
    bname = fname if is_loss else _name(backward, "backward")
    if not is_loss and backward is None:
        raise InputError("backward is None; pass the layer's backward(dout, cache), or "
                         "is_loss=True for a function returning (loss, dx).")
    reset = make_reset(options.get("seed"), options.get("reset"))
    options["context"] = _context(values, options.get("context"))
    params = {n: np.array(values[names.index(n)], copy=True) for n in diff}
    fixed = {n: v for n, v in zip(names, values) if n not in diff}

    def args_from(p: Mapping[str, Any], copy: bool) -> list[Any]:
        out = []
        for n in names:
            v = p[n] if n in p else fixed[n]
            out.append(np.array(v, copy=True) if copy and isinstance(v, np.ndarray) else v)
        return out

    # A careful first call: copies in, then compare, so in-place writes are named.
    if reset is not None:
        reset()
    args = args_from(params, copy=True)
    first = forward(*args, **kwargs)
    _no_writes(fname, names, args, params, fixed, "its input")
    if is_loss:
        loss0, grads0 = _pair(first, fname, "(loss, dx)")
        upstream = None
    else:
        out0, cache = _pair(first, fname, "(out, cache)")
        upstream = _make_dout(out0, dout, dout_seed)
        dcopy = _copy_tree(upstream)
        grads0 = backward(dcopy, cache)
        _no_writes(bname, names, args, params, fixed, "the input")
        if not _same_tree(dcopy, upstream):
            raise LayerError(f"{bname} wrote into its argument dout in place; in a network that "
                             "corrupts the upstream gradient. Copy before modifying it, "
                             "e.g. dx = dout.copy().")
    _as_grads(grads0, diff, bname)
    options["context"] = _layer_context(options["context"], diff, params, upstream)

    def run(p: Mapping[str, Any]) -> tuple[float, Any]:
        result = forward(*args_from(p, copy=False), **kwargs)
        if is_loss:
            return result
        out, cache = result
        return _inner(out, upstream), backward(_copy_tree(upstream), cache)

    def loss_only(p: Mapping[str, Any]) -> Any:
        if is_loss:
            return run(p)[0]
        out, _ = forward(*args_from(p, copy=False), **kwargs)
        return _inner(out, upstream)

    def forward_backward(p: Mapping[str, Any]) -> tuple[Any, dict[str, np.ndarray]]:
        loss, grads = run(p)
        return loss, dict(zip(diff, _as_grads(grads, diff, bname)))

    return check(loss_only, forward_backward, params, **options)


def _context(values: list[Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The diagnosis context: ``batch_size`` from the first input's leading dimension (the
    CS231n layout ``(N, ...)``) unless given."""
    context = dict(given or {})
    first = values[0] if values else None
    if "batch_size" not in context and isinstance(first, np.ndarray) and first.ndim >= 2:
        context["batch_size"] = int(first.shape[0])
    return context


def _name(fn: Any, default: str) -> str:
    return getattr(fn, "__name__", default)


def _named_inputs(forward: Callable[..., Any], inputs: Any) -> tuple[list[str], list[Any]]:
    if isinstance(inputs, Mapping):
        return [str(k) for k in inputs], list(inputs.values())
    if not isinstance(inputs, (list, tuple)):
        raise InputError(f"inputs is a {type(inputs).__name__}; pass a dict {{name: array}} "
                         "or a list of the forward's positional arguments.")
    values = list(inputs)
    try:
        params = [p.name for p in inspect.signature(forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:len(values)] if len(params) >= len(values) else []
    if not names:
        names = [f"input{i}" for i in range(len(values))]
    return names, values


def _differentiable(names: list[str], values: list[Any], given: Sequence[str] | None
                    ) -> list[str]:
    if given is None:
        diff = [n for n, v in zip(names, values) if isinstance(v, np.ndarray)
                and np.issubdtype(v.dtype, np.floating)]
        if not diff:
            raise InputError("no input is a floating-point numpy array, so there is nothing "
                             "to differentiate; pass float arrays (ints are labels/indices).")
        return diff
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(f"differentiable names {unknown} are not inputs; inputs are {names}.")
    for n in given:
        v = values[names.index(n)]
        if not (isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)):
            raise InputError(f"input '{n}' is listed as differentiable but is not a "
                             "floating-point numpy array; convert it with np.asarray(..., "
                             "dtype=float) or leave it out of differentiable.")
    return [n for n in names if n in given]


def _pair(result: Any, fname: str, shape: str) -> tuple[Any, Any]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise LayerError(f"{fname} returned {type(result).__name__}, not a pair {shape}; "
                         f"return {shape} (or use gradcheck.check for other conventions).")
    return result


#: Default seed of the random upstream gradient: a sequence no one seeds their inputs with.
DOUT_SEED = (0x6AD, 0xC4EC)


def _make_dout(out: Any, dout: Any, seed: int | None) -> Any:
    if dout is not None:
        return _copy_tree(dout)
    rng = np.random.default_rng(DOUT_SEED if seed is None else seed)

    def draw(o: Any) -> Any:
        o = np.asarray(o)
        dtype = o.dtype if np.issubdtype(o.dtype, np.floating) else np.float64
        return rng.standard_normal(o.shape).astype(dtype)

    return tuple(draw(o) for o in out) if isinstance(out, (tuple, list)) else draw(out)


def _inner(out: Any, dout: Any) -> Any:
    """``Σ out ⊙ dout`` in float64, returned in the output's precision (for the noise model)."""
    if isinstance(out, (tuple, list)):
        if not isinstance(dout, tuple) or len(dout) != len(out):
            raise LayerError(f"the forward returned {len(out)} outputs but dout has a different "
                             "structure; pass dout shaped like the output.")
        parts = [_inner(o, d) for o, d in zip(out, dout)]
        return sum(parts[1:], parts[0])
    o = np.asarray(out)
    wide = np.complex128 if np.iscomplexobj(o) else np.float64   # complex step keeps Im
    total = np.sum(o.astype(wide) * np.asarray(dout, dtype=np.float64))
    if np.issubdtype(o.dtype, np.floating) and o.dtype != np.float64:
        return o.dtype.type(total)
    return total


def _copy_tree(x: Any) -> Any:
    if isinstance(x, (tuple, list)):
        return tuple(_copy_tree(v) for v in x)
    return np.array(x, copy=True)


def _same_tree(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return all(_same_tree(x, y) for x, y in zip(a, b))
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _no_writes(who: str, names: list[str], args: list[Any], params: Mapping[str, Any],
               fixed: Mapping[str, Any], what: str) -> None:
    for n, a in zip(names, args):
        orig = params[n] if n in params else fixed[n]
        if isinstance(a, np.ndarray) and a.tobytes() != np.asarray(orig).tobytes():
            raise LayerError(f"{who} wrote into {what} '{n}' in place; in a network that "
                             "corrupts another layer's data. Compute into a new array "
                             f"(e.g. {n} = {n} - mean, not {n} -= mean).")


def _as_grads(grads: Any, diff: list[str], who: str) -> list[Any]:
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(diff):
        raise LayerError(f"{who} returned {len(grads)} gradient(s) but the differentiable "
                         f"inputs are {diff}; return one gradient per input in that order, or "
                         "say which inputs are differentiable with differentiable=[...].")
    return list(grads)


def _layer_context(context: dict[str, Any], diff: list[str], params: Mapping[str, Any],
                   upstream: Any) -> dict[str, Any]:
    """Add what the layer's shape tells the diagnosis, unless given: the differentiable inputs
    as one group built from ``dout``, and for each bias-shaped input (shaped like ``dout``
    without its batch axis, or one entry per channel of an ``(N, C, ...)`` ``dout``) the
    slices of ``dout`` whose sum is its gradient."""
    context = dict(context)
    if "groups" not in context and len(diff) >= 2:
        context["groups"] = [list(diff)]
    if "terms" not in context and isinstance(upstream, np.ndarray) and upstream.ndim >= 2:
        terms = {}
        for n in diff:
            shape = np.shape(params[n])
            if shape == upstream.shape[1:]:
                terms[n] = upstream
            elif len(shape) == 1 and upstream.ndim >= 3 and shape[0] == upstream.shape[1]:
                terms[n] = np.moveaxis(upstream, 1, -1).reshape(-1, shape[0])
        if terms:
            context["terms"] = terms
    return context
