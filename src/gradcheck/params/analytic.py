"""Take in the analytic gradient: call ``forward_backward`` once and validate what it returned
against the parameter tree (structure, shapes, dtypes, real vs complex)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import loss_value
from gradcheck.params import tree as trees


@dataclass(frozen=True)
class Analytic:
    """What ``forward_backward`` gave: the loss (if returned) and gradients aligned to leaves."""

    loss: float | None
    grads: list[np.ndarray]


def analytic_gradients(forward_backward: Callable[[Any], Any], params: Any,
                       leaves: list[trees.Leaf], reset: Callable[[], None] | None) -> Analytic:
    """Call ``forward_backward`` once and validate its gradients against the leaves."""
    if reset is not None:
        reset()
    try:
        out = forward_backward(params)
    except Exception as exc:
        raise ForwardError(f"forward_backward raised {type(exc).__name__}: {exc}; fix it and "
                           "check again.") from exc
    trees.check_structure(params, leaves, "forward_backward")
    loss = None
    if _is_loss_and_grads(out, params):
        loss, out = loss_value(out[0], "as the loss of forward_backward"), out[1]
    grads = trees.align(params, out, "the gradients returned by forward_backward")
    arrays = []
    for leaf, g in zip(leaves, grads):
        if hasattr(g, "detach"):
            g = g.detach().cpu().numpy()
        if g is None or isinstance(g, (str, bytes, dict, list, tuple)):
            kind = "None" if g is None else f"a {type(g).__name__}"
            raise InputError(f"The gradient of '{leaf.name}' is {kind}, not an array; return a "
                             "float array shaped like the parameter (zeros if it does not "
                             "affect the loss).")
        # a copy: the forward may later overwrite a buffer the gradient shares
        g = np.array(g, copy=True)
        if g.shape != leaf.shape:
            raise InputError(f"The gradient of '{leaf.name}' has shape {g.shape} but the "
                             f"parameter has shape {leaf.shape}; return a gradient shaped like "
                             "its parameter.")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.complexfloating)):
            raise InputError(f"The gradient of '{leaf.name}' has dtype {g.dtype}; return a "
                             "floating-point array.")
        if (np.iscomplexobj(g) and not np.iscomplexobj(leaf.array)
                and np.any(g.imag != 0)):
            raise InputError(f"The gradient of '{leaf.name}' is complex (non-zero imaginary "
                             "part) but the parameter is real; return the real gradient — a "
                             "complex value usually means a complex intermediate leaked into "
                             "the backward pass.")
        arrays.append(g)
    return Analytic(loss, arrays)


def _is_loss_and_grads(out: Any, params: Any) -> bool:
    """``(loss, grads)`` rather than grads: a pair whose first item is a number — unless the
    params are themselves a pair starting with a 0-d array (then it is ambiguous; grads win)."""
    if not (isinstance(out, tuple) and len(out) == 2):
        return False
    if isinstance(out[0], (dict, list, tuple)) or np.ndim(out[0]) != 0:
        return False
    return not (isinstance(params, (list, tuple)) and len(params) == 2
                and np.ndim(params[0]) == 0)


def precision_notes(leaves: list[trees.Leaf], grads: list[np.ndarray]) -> list[str]:
    """A note per gradient returned in a lower precision than its parameter."""
    out = []
    for leaf, g in zip(leaves, grads):
        if g.dtype.itemsize < leaf.array.dtype.itemsize and not np.iscomplexobj(leaf.array):
            out.append(f"The gradient of '{leaf.name}' is {g.dtype} while the parameter is "
                       f"{leaf.array.dtype}: it is judged with the tolerance of {g.dtype}.")
    return out


def loss_mismatch(loss_a: float, f0: float, grads: list[np.ndarray]) -> str | None:
    """A warning when the loss ``forward_backward`` returned differs from ``forward``'s."""
    eps = max(float(np.finfo(g.dtype).eps) for g in grads if np.issubdtype(g.dtype, np.inexact))
    if abs(loss_a - f0) > 1e3 * eps * max(abs(f0), 1e-300) + 1e-300:
        return (f"forward_backward returned the loss {loss_a!r} but forward gives {f0!r} at "
                "the same params: do they compute the same function (same data, same mode)?")
    return None
