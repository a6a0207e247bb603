r"""Complex parameters as pairs of reals, with PyTorch's conjugate Wirtinger convention.

A complex entry :math:`z = x + iy` is two real unknowns. Its leaf is handed to the numerics as
a real *view* of the same memory with a trailing axis of length 2 (``[..., 0]`` the real part,
``[..., 1]`` the imaginary part), so moving ``z[3]``'s imaginary part by ``h`` in place is
writing ``view[3, 1]`` — the user's array changes and is restored exactly, as for any leaf.

The gradient of a real loss :math:`L` with respect to :math:`z` is expected in PyTorch's
convention,

.. math::

    \operatorname{grad}_z L = \frac{\partial L}{\partial x} + i\,\frac{\partial L}{\partial y}
      = 2\,\frac{\partial L}{\partial \bar z}
      \qquad\text{(the conjugate Wirtinger derivative)},

which is what ``z.grad`` holds after ``L.backward()``; its real view is exactly the pair of
real partial derivatives the finite differences estimate. JAX's ``jax.grad`` returns the
conjugate, :math:`\partial L/\partial x - i\,\partial L/\partial y`; the JAX adapter converts.
(Kreutz-Delgado, *The Complex Gradient Operator and the CR-Calculus*, arXiv:0906.4835, 2009;
PyTorch docs, "Autograd for Complex Numbers".)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.estimate.schemes import AUTO_REAL
from gradcheck.params import tree as trees
from gradcheck.params.analytic import _is_loss_and_grads

#: What a report says when complex parameters were checked.
CONVENTION = ("complex parameters {names} are checked as (real, imaginary) pairs — the last "
              "index is 0 for the real part, 1 for the imaginary part — against the gradient in "
              "PyTorch's convention, ∂L/∂Re z + i·∂L/∂Im z = 2·∂L/∂z̄ (conjugate Wirtinger).")


@dataclass(frozen=True)
class ComplexView:
    """Which leaves of a tree are complex, and their names (flatten order)."""

    complex_mask: tuple[bool, ...]
    names: tuple[str, ...]

    @property
    def any(self) -> bool:
        return any(self.complex_mask)

    def note(self) -> str:
        shown = ", ".join(f"'{n}'" for n, c in zip(self.names, self.complex_mask) if c)
        return CONVENTION.format(names=shown)


def inspect(params: Any) -> ComplexView:
    """Which leaves of ``params`` are complex arrays."""
    leaves = trees.flatten(params)
    return ComplexView(tuple(isinstance(leaf.array, np.ndarray) and np.iscomplexobj(leaf.array)
                             for leaf in leaves), tuple(leaf.name for leaf in leaves))


def as_real(a: np.ndarray, name: str) -> np.ndarray:
    """The real view of a complex array: shape ``a.shape + (2,)``, same memory."""
    if not a.flags.c_contiguous:
        raise InputError(f"Complex parameter '{name}' is not contiguous, so it cannot be viewed "
                         "as (real, imaginary) pairs; pass np.ascontiguousarray(...) instead.")
    return a.reshape(-1).view(a.real.dtype).reshape(a.shape + (2,))


def as_complex(r: Any) -> Any:
    """Inverse of :func:`as_real` (a view when ``r`` is a contiguous real array; other inputs,
    e.g. a stack of broadcast views, are copied)."""
    r = np.asarray(r)
    if r.shape[-1:] != (2,):
        raise InputError(f"expected (real, imaginary) pairs, got shape {r.shape}.")
    if not r.flags.c_contiguous:
        r = np.ascontiguousarray(r)
    cdtype = np.result_type(r.dtype, np.complex64)
    return r.reshape(-1).view(cdtype).reshape(r.shape[:-1])


def real_tree(params: Any, view: ComplexView) -> Any:
    """``params`` with every complex leaf replaced by its real view (memory shared)."""
    leaves = trees.flatten(params)
    return trees.replace_leaves(params, [as_real(leaf.array, leaf.name) if c else leaf.array
                                         for leaf, c in zip(leaves, view.complex_mask)])


def complex_tree(real: Any, view: ComplexView) -> Any:
    """Inverse of :func:`real_tree`: complex leaves rebuilt from their (real, imag) pairs."""
    leaves = trees.flatten(real)
    return trees.replace_leaves(real, [as_complex(leaf.array) if c else leaf.array
                                       for leaf, c in zip(leaves, view.complex_mask)])


def real_gradient(g: Any, is_complex: bool) -> Any:
    """A gradient of a complex leaf as real pairs ``(Re g, Im g)``; others unchanged.

    A real gradient returned for a complex leaf counts as ``g + 0i`` (its imaginary-part
    entries are then checked against the numerics like any other)."""
    if not is_complex or g is None:
        return g
    if hasattr(g, "detach"):
        g = g.detach().cpu().numpy()
    g = np.asarray(g)
    if not np.issubdtype(g.dtype, np.inexact):
        return g
    return np.stack([g.real, g.imag if np.iscomplexobj(g) else np.zeros_like(g)], axis=-1)


def real_gradients(grads: Any, params: Any, view: ComplexView) -> Any:
    """Every complex leaf's gradient of ``grads`` (shaped like ``params``) as real pairs."""
    aligned = trees.align(params, grads, "the gradients")
    return trees.replace_leaves(params, [real_gradient(g, c) for g, c in
                                         zip(aligned, view.complex_mask)])


def wrap_inputs(fn: Callable[..., Any], view: ComplexView) -> Callable[..., Any]:
    """``fn(real_tree, *rest)`` calling the user's ``fn(complex_tree, *rest)``."""

    def wrapped(real: Any, *rest: Any) -> Any:
        return fn(complex_tree(real, view), *rest)

    return wrapped


def wrap_tangent(fn: Callable[..., Any], view: ComplexView) -> Callable[..., Any]:
    """``fn(real_params, real_tangent)`` calling ``fn(complex_params, complex_tangent)``; a
    tangent pair ``(t_x, t_y)`` is the complex tangent ``t_x + i·t_y``."""

    def wrapped(real: Any, tangent: Any) -> Any:
        return fn(complex_tree(real, view), complex_tree(tangent, view))

    return wrapped


def refuse_complex_step(view: ComplexView, method: str) -> None:
    """The complex step needs real parameters; say so for complex ones."""
    if view.any and method == "complex":
        names = ", ".join(f"'{n}'" for n, c in zip(view.names, view.complex_mask) if c)
        raise InputError(f"method='complex' cannot be used with complex parameters ({names}): "
                         "the complex step needs real inputs; use method='central' or "
                         "'central4'.")


def real_options(view: ComplexView, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``options`` for the (real, imaginary) pairs: ``method='complex'`` refused,
    ``method='auto'`` settles on its real scheme (the complex step cannot run on complex
    parameters), with a note saying so."""
    method = options.get("method", "central")
    refuse_complex_step(view, method)
    if view.any and method == "auto":
        return {**options, "method": AUTO_REAL}, (f"method='auto' used {AUTO_REAL}: the "
                                                  "complex step cannot run on complex "
                                                  "parameters.")
    return options, ""


def check_pairs(check: Callable[..., Any], forward: Callable[[Any], Any],
                forward_backward: Callable[[Any], Any], params: Any, view: ComplexView,
                options: dict[str, Any]) -> Any:
    """``check(forward, forward_backward, params, **options)`` for complex ``params``, run on
    their (real, imaginary) pairs: the forward sees the complex arrays (same memory), the
    gradients are read in PyTorch's convention. ``check`` is passed in by the caller."""
    options, note = real_options(view, options)

    def forward_pairs(p: Any) -> Any:
        return forward(complex_tree(p, view))

    def forward_backward_pairs(p: Any) -> Any:
        cp = complex_tree(p, view)
        out = forward_backward(cp)
        if _is_loss_and_grads(out, cp):
            return out[0], real_gradients(out[1], cp, view)
        return real_gradients(out, cp, view)

    report = check(forward_pairs, forward_backward_pairs, real_tree(params, view), **options)
    return replace(report, notes=[*report.notes, *([note] if note else []), view.note()])
