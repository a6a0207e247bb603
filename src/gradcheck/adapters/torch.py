r"""PyTorch adapter: check a module, a function or a custom ``torch.autograd.Function``.

The analytic side is PyTorch's own backward (``torch.autograd.grad``), run once in the
tensors' own dtype. The numeric side is gradcheck's: the tensors become numpy arrays that
:func:`gradcheck.check` perturbs in place, and every evaluation runs the forward under
``torch.no_grad()`` on tensors that share those arrays' memory. Float32 tensors are handled
as in the core: the numerics run in float64 (the module's parameters, buffers and inputs
are promoted for those evaluations) and the tolerance follows the analytic gradient's dtype.

A non-scalar output is reduced to ``L = Σ out ⊙ dout`` with a random, fixed ``dout`` (what
``backward(dout)`` computes: a vector–Jacobian product), so every output entry takes part.

>>> from gradcheck.adapters.torch import check_function, check_module
>>> report = check_function(MyFunction.apply, x, w)           # doctest: +SKIP
>>> report = check_module(model, x, loss_fn=lambda out: out.pow(2).mean())  # doctest: +SKIP

References: ``torch.autograd.gradcheck`` (the slow mode computes the same Jacobian entries
with eps=1e-6 and an atol/rtol test; here each entry gets an error bar and a name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.adapters._common import as_list, input_names, random_cotangent
from gradcheck.check import check
from gradcheck.errors import InputError
from gradcheck.optional import optional_import
from gradcheck.report.results import Report


def _torch() -> Any:
    return optional_import("torch", "the PyTorch adapter")


def check_function(fn: Callable[..., Any], *inputs: Any, names: list[str] | None = None,
                   loss_fn: Callable[[Any], Any] | None = None, dout_seed: int | None = None,
                   **options: Any) -> Report:
    """Check ``fn(*inputs)`` — e.g. ``MyFunction.apply`` — against numeric derivatives.

    Parameters
    ----------
    fn : a callable on torch tensors returning a tensor or a tuple of tensors.
    *inputs : its arguments. Floating tensors with ``requires_grad=True`` are checked; when
        none requires grad, every floating tensor is. Anything else is passed unchanged.
    names : names of the inputs in the report (default ``input0``, ``input1``, ...).
    loss_fn : reduce the output to the scalar to differentiate (default ``Σ out ⊙ dout``
        with a random ``dout`` drawn with ``dout_seed``).
    **options : options of :func:`gradcheck.check` (``tol``, ``method``, ``seed``, ...).

    Returns
    -------
    Report
    """
    torch = _torch()
    labels = input_names(len(inputs), names)
    floating = [i for i, x in enumerate(inputs) if torch.is_tensor(x) and x.is_floating_point()]
    checked = [i for i in floating if inputs[i].requires_grad] or floating
    if not checked:
        raise InputError("no input is a floating-point torch tensor, so there is nothing to "
                         "check; pass float tensors (set requires_grad=True on those to check).")
    tensors = {labels[i]: inputs[i] for i in checked}
    fixed = {labels[i]: x for i, x in enumerate(inputs) if i not in checked}

    def call(values: dict[str, Any]) -> Any:
        args = [values[n] if n in values else _cast_like(fixed[n], values) for n in labels]
        return fn(*args)

    return _check(torch, call, tensors, loss_fn, dout_seed, options)


def check_module(module: Any, *inputs: Any, loss_fn: Callable[[Any], Any] | None = None,
                 check_inputs: bool = True, names: list[str] | None = None,
                 dout_seed: int | None = None, **options: Any) -> Report:
    """Check the gradients of a ``torch.nn.Module``'s parameters (and inputs) numerically.

    Parameters
    ----------
    module : the module; its parameters with ``requires_grad`` are checked, named as in
        ``module.named_parameters()`` (``"0.weight"``). Buffers are used as they are.
    *inputs : the module's arguments.
    loss_fn : ``loss_fn(output) -> scalar tensor`` (default ``Σ out ⊙ dout``, random dout).
    check_inputs : also check input tensors with ``requires_grad=True`` (named ``input0``...).
    **options : options of :func:`gradcheck.check`; pass ``seed=`` for dropout in train mode.

    Returns
    -------
    Report
    """
    torch = _torch()
    from torch.func import functional_call

    labels = input_names(len(inputs), names)
    params = {n: p for n, p in module.named_parameters() if p.requires_grad}
    checked_inputs = {labels[i]: x for i, x in enumerate(inputs) if check_inputs
                      and torch.is_tensor(x) and x.is_floating_point() and x.requires_grad}
    clash = sorted(set(params) & set(checked_inputs))
    if clash:
        raise InputError(f"input name(s) {clash} clash with parameter names; pass names=[...].")
    tensors = {**params, **checked_inputs}
    if not tensors:
        raise InputError("the module has no parameter that requires grad and no input "
                         "requires grad, so there is nothing to check.")
    buffers = dict(module.named_buffers())

    def call(values: dict[str, Any]) -> Any:
        state = {n: values[n] for n in params}
        # clones: a module in train mode updates its buffers (BatchNorm's running stats) on
        # every call, and a check must leave the user's module as it found it
        state.update({n: _cast_like(b, values).clone() for n, b in buffers.items()})
        args = [values[n] if n in values else _cast_like(x, values)
                for n, x in zip(labels, inputs)]
        return functional_call(module, state, tuple(args))

    return _check(torch, call, tensors, loss_fn, dout_seed, options)


def _cast_like(x: Any, values: dict[str, Any]) -> Any:
    """A floating tensor in the evaluation's dtype (float64 while promoted, complex128 for the
    complex step), else ``x``."""
    import torch

    if not (torch.is_tensor(x) and x.is_floating_point()) or not values:
        return x
    dtype = next(iter(values.values())).dtype
    promoted = dtype == torch.float64 and x.dtype in (torch.float32, torch.float16,
                                                      torch.bfloat16)
    return x.to(dtype) if promoted or dtype == torch.complex128 else x


def _check(torch: Any, call: Callable[[dict[str, Any]], Any], tensors: dict[str, Any],
           loss_fn: Callable[[Any], Any] | None, dout_seed: int | None,
           options: dict[str, Any]) -> Report:
    arrays = {n: t.detach().cpu().numpy().copy() for n, t in tensors.items()}
    devices = {n: t.device for n, t in tensors.items()}
    dout: list[np.ndarray] | None = None

    def scalar(out: Any) -> Any:
        nonlocal dout
        if loss_fn is not None:
            return loss_fn(out)
        outs = as_list(out)
        if dout is None:
            dout = random_cotangent([tuple(o.shape) for o in outs], dout_seed)
        total = sum((o.to(torch.float64 if not o.is_complex() else torch.complex128)
                     * torch.from_numpy(d).to(o.device)).sum() for o, d in zip(outs, dout))
        return total.to(outs[0].dtype) if outs[0].is_floating_point() else total

    def forward(p: dict[str, np.ndarray]) -> Any:
        with torch.no_grad():
            values = {n: torch.from_numpy(a).to(devices[n]) for n, a in p.items()}
            return scalar(call(values)).detach().cpu().numpy()

    def forward_backward(p: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        leaves = {n: torch.from_numpy(a.copy()).to(devices[n]).requires_grad_(True)
                  for n, a in p.items()}
        loss = scalar(call(leaves))
        if loss.numel() != 1:
            raise InputError(f"loss_fn returned a tensor of shape {tuple(loss.shape)}; return "
                             "a scalar (e.g. out.sum()).")
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        out = {}
        for (n, leaf), g in zip(leaves.items(), grads):
            g = torch.zeros_like(leaf) if g is None else g
            out[n] = g.detach().cpu().numpy()
        return loss.detach().cpu().numpy(), out

    return check(forward, forward_backward, arrays, **options)
