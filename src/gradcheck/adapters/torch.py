r"""PyTorch adapter: check a module, a function or a custom ``torch.autograd.Function``.

The analytic side is PyTorch's own backward (``torch.autograd.grad``), run once in the
tensors' own dtype. The numeric side is gradcheck's: the tensors become numpy arrays that
:func:`gradcheck.check` perturbs in place — for CPU tensors their own memory, not a copy, so a
model of 10⁸ parameters is never duplicated (every moved entry is restored bit for bit) —
and every evaluation runs the forward under ``torch.no_grad()`` on tensors that share those
arrays' memory. Float32 tensors are handled
as in the core: the numerics run in float64 (the module's parameters, buffers and inputs
are promoted for those evaluations) and the tolerance follows the analytic gradient's dtype.

A non-scalar output is checked through a random, fixed cotangent ``dout`` (what
``backward(dout)`` computes: a vector–Jacobian product, :func:`gradcheck.check_vjp`), so every
output entry takes part, and a failing input entry names the output element it comes from.

``order=2`` also checks double backward (what ``torch.autograd.gradgradcheck`` checks) through
:func:`gradcheck.check_hvp`; ``modes=("fwd",)`` checks forward-mode AD (a Function's ``jvp``,
through ``torch.autograd.forward_ad``) through :func:`gradcheck.check_jvp`, like
``gradcheck(..., check_forward_ad=True)``. Complex tensors are checked in PyTorch's own
convention (conjugate Wirtinger, see :mod:`gradcheck.params.complexview`).

>>> from gradcheck.adapters.torch import check_function, check_module
>>> report = check_function(MyFunction.apply, x, w)           # doctest: +SKIP
>>> report = check_module(model, x, loss_fn=lambda out: out.pow(2).mean())  # doctest: +SKIP

References: ``torch.autograd.gradcheck`` (the slow mode computes the same Jacobian entries
with eps=1e-6 and an atol/rtol test; here each entry gets an error bar and a name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.adapters._common import as_list, input_names, random_cotangent
from gradcheck.check import check
from gradcheck.derivatives.combine import combine, validate_modes
from gradcheck.derivatives.hvp import check_hvp
from gradcheck.derivatives.jvp import check_jvp, check_output_jvp
from gradcheck.derivatives.vjp import check_vjp
from gradcheck.errors import InputError
from gradcheck.layer_check import DOUT_SEED
from gradcheck.optional import optional_import
from gradcheck.report.results import Report


def _torch() -> Any:
    return optional_import("torch", "the PyTorch adapter")


def check_function(fn: Callable[..., Any], *inputs: Any, names: list[str] | None = None,
                   loss_fn: Callable[[Any], Any] | None = None, dout_seed: int | None = None,
                   order: int = 1, modes: Sequence[str] = ("rev",),
                   output_names: Sequence[str] | None = None, **options: Any) -> Report:
    """Check ``fn(*inputs)`` — e.g. ``MyFunction.apply`` — against numeric derivatives.

    Parameters
    ----------
    fn : a callable on torch tensors returning a tensor or a tuple of tensors.
    *inputs : its arguments. Floating and complex tensors with ``requires_grad=True`` are
        checked; when none requires grad, every floating or complex tensor is. Anything else
        is passed unchanged.
    names : names of the inputs in the report (default ``input0``, ``input1``, ...).
    loss_fn : reduce the output to the scalar to differentiate (default ``Σ out ⊙ dout``
        with a random ``dout`` drawn with ``dout_seed``; failures then name the output).
    order : 2 also checks double backward (``gradgradcheck``), see :func:`gradcheck.check_hvp`.
    modes : ``("rev",)`` (default: backward), ``("fwd",)`` (forward-mode AD, a Function's
        ``jvp``) or both.
    output_names : names of the outputs of a tuple-returning ``fn`` (default ``output0``...).
    **options : options of :func:`gradcheck.check` (``tol``, ``method``, ``seed``, ...).

    Returns
    -------
    Report
    """
    torch = _torch()
    labels = input_names(len(inputs), names)
    floating = [i for i, x in enumerate(inputs) if _differentiable(torch, x)]
    checked = [i for i in floating if inputs[i].requires_grad] or floating
    if not checked:
        raise InputError("no input is a floating-point or complex torch tensor, so there is "
                         "nothing to check; pass float tensors (set requires_grad=True on "
                         "those to check).")
    tensors = {labels[i]: inputs[i] for i in checked}
    fixed = {labels[i]: x for i, x in enumerate(inputs) if i not in checked}

    def call(values: dict[str, Any]) -> Any:
        args = [values[n] if n in values else _cast_like(fixed[n], values) for n in labels]
        return fn(*args)

    return _check(torch, call, tensors, loss_fn, dout_seed, options, order, modes, output_names)


def check_module(module: Any, *inputs: Any, loss_fn: Callable[[Any], Any] | None = None,
                 check_inputs: bool = True, names: list[str] | None = None,
                 dout_seed: int | None = None, order: int = 1, modes: Sequence[str] = ("rev",),
                 output_names: Sequence[str] | None = None, **options: Any) -> Report:
    """Check the gradients of a ``torch.nn.Module``'s parameters (and inputs) numerically.

    Parameters
    ----------
    module : the module; its parameters with ``requires_grad`` are checked, named as in
        ``module.named_parameters()`` (``"0.weight"``). Buffers are used as they are.
    *inputs : the module's arguments.
    loss_fn : ``loss_fn(output) -> scalar tensor`` (default ``Σ out ⊙ dout``, random dout).
    check_inputs : also check input tensors with ``requires_grad=True`` (named ``input0``...).
    order, modes, output_names : as for :func:`check_function` (``order=2``: double backward
        of every parameter; ``modes=("fwd",)``: forward-mode AD through the module).
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
                      and _differentiable(torch, x) and x.requires_grad}
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

    return _check(torch, call, tensors, loss_fn, dout_seed, options, order, modes, output_names)


def _differentiable(torch: Any, x: Any) -> bool:
    return bool(torch.is_tensor(x) and (x.is_floating_point() or x.is_complex()))


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


def _as_array(t: Any) -> np.ndarray:
    """The tensor's values as a numpy array: its own memory for a CPU tensor (no copy — a
    model of 10⁸ parameters is never duplicated; the check perturbs entries in place and
    restores them bit for bit, as for numpy params), a copy for any other device."""
    data = t.detach()
    if data.device.type == "cpu" and not (data.is_conj() or data.is_neg()):
        arr = data.numpy()
        if arr.flags.writeable:
            return arr
    return data.cpu().resolve_conj().resolve_neg().numpy().copy()


def _shareable(a: Any) -> np.ndarray:
    """``a`` itself when a tensor can share its memory (a writable array with non-negative
    strides: every evaluation then reads the working arrays without copying them), else a
    copy."""
    if isinstance(a, np.ndarray) and a.flags.writeable and all(st >= 0 for st in a.strides):
        return a
    return np.array(a, copy=True)


def _check(torch: Any, call: Callable[[dict[str, Any]], Any], tensors: dict[str, Any],
           loss_fn: Callable[[Any], Any] | None, dout_seed: int | None,
           options: dict[str, Any], order: int = 1, modes: Sequence[str] = ("rev",),
           output_names: Sequence[str] | None = None) -> Report:
    """Run the checks ``order`` and ``modes`` ask for and combine their reports."""
    modes = validate_modes(order, modes)
    arrays: dict[str, np.ndarray] = {}
    for n, t in tensors.items():
        a = _as_array(t)
        if any(np.may_share_memory(a, b) for b in arrays.values()):
            a = a.copy()   # the same tensor passed twice: two parameters, two arrays
        arrays[n] = a
    devices = {n: t.device for n, t in tensors.items()}
    dout: list[np.ndarray] | None = None

    def to_torch(p: dict[str, Any], grad: bool = False) -> dict[str, Any]:
        out = {n: torch.from_numpy(_shareable(a)).to(devices[n]) for n, a in p.items()}
        return {n: t.requires_grad_(True) for n, t in out.items()} if grad else out

    def scalar(out: Any) -> Any:
        nonlocal dout
        if loss_fn is not None:
            loss = loss_fn(out)
            if loss.numel() != 1:
                raise InputError(f"loss_fn returned a tensor of shape {tuple(loss.shape)}; "
                                 "return a scalar (e.g. out.sum()).")
            return loss.reshape(())
        outs = as_list(out)
        if dout is None:
            dout = random_cotangent([tuple(o.shape) for o in outs], dout_seed)
        total = sum(_pair(torch, o, torch.from_numpy(d).to(o.device)) for o, d in zip(outs, dout))
        low = min((o for o in outs), key=lambda o: o.real.element_size() if o.is_complex()
                  else o.element_size())
        return total.to(low.real.dtype if low.is_complex() else low.dtype) \
            if (low.is_floating_point() or low.is_complex()) else total

    def forward(p: dict[str, np.ndarray]) -> Any:
        with torch.no_grad():
            return scalar(call(to_torch(p))).detach().cpu().numpy()

    def forward_backward(p: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
        leaves = to_torch(p, grad=True)
        loss = scalar(call(leaves))
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        return loss.detach().cpu().numpy(), _host(torch, leaves, grads)

    reports: dict[str, Report] = {}
    if "rev" in modes and loss_fn is None:
        reports["vjp"] = _check_outputs(torch, call, arrays, to_torch, dout_seed, options,
                                        output_names)
    elif "rev" in modes:
        reports["rev"] = check(forward, forward_backward, arrays, **options)
    if "fwd" in modes and loss_fn is None:
        def jvp_outputs(p: dict[str, np.ndarray], t: dict[str, np.ndarray]) -> Any:
            fwad = optional_import("torch.autograd.forward_ad", "modes=('fwd',)")
            with fwad.dual_level():
                primal, tangent = to_torch(p), to_torch(t)
                out = _dual_call(call, {n: fwad.make_dual(primal[n],
                                                          tangent[n].to(primal[n].dtype))
                                        for n in primal})
                res = []
                for o in as_list(out):
                    u = fwad.unpack_dual(o)
                    res.append(np.zeros(tuple(o.shape), _numpy_dtype(o)) if u.tangent is None
                               else u.tangent.detach().cpu().numpy())
            return tuple(res) if isinstance(out, (tuple, list)) else res[0]

        seed = DOUT_SEED if dout_seed is None else dout_seed
        reports["jvp"] = check_output_jvp(_outputs_function(torch, call, to_torch), jvp_outputs,
                                          arrays, output_names=output_names,
                                          cotangent_seed=seed, **options)
    elif "fwd" in modes:
        def jvp(p: dict[str, np.ndarray], t: dict[str, np.ndarray]) -> tuple[Any, Any]:
            fwad = optional_import("torch.autograd.forward_ad", "modes=('fwd',)")
            with fwad.dual_level():
                primal, tangent = to_torch(p), to_torch(t)
                duals = {n: fwad.make_dual(primal[n], tangent[n].to(primal[n].dtype))
                         for n in primal}
                loss = fwad.unpack_dual(scalar(_dual_call(call, duals)))
                d = loss.tangent
                value = loss.primal.detach().cpu().numpy()
                return value, (np.zeros((), value.dtype) if d is None
                               else d.detach().cpu().numpy())

        reports["jvp"] = check_jvp(forward, jvp, arrays, **options)
    if order >= 2:
        def hvp(p: dict[str, np.ndarray], v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            leaves = to_torch(p, grad=True)
            vs = to_torch(v)
            loss = scalar(call(leaves))
            grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=True,
                                        allow_unused=True)
            dot = sum(_pair(torch, g, vs[n]) for n, g in zip(leaves, grads) if g is not None)
            if not (torch.is_tensor(dot) and dot.requires_grad):   # the gradient is constant
                return {n: np.zeros_like(a) for n, a in p.items()}
            hv = torch.autograd.grad(dot, list(leaves.values()), allow_unused=True)
            return _host(torch, leaves, hv)

        reports["hvp"] = check_hvp(forward_backward, hvp, arrays, **options)
    return combine(reports)


def _dual_call(call: Callable[[dict[str, Any]], Any], duals: dict[str, Any]) -> Any:
    """``call`` on dual tensors, with a plain sentence when a Function has no ``jvp``."""
    try:
        return call(duals)
    except NotImplementedError as exc:
        raise InputError(f"forward-mode AD is not available for this function ({exc}); a "
                         "custom torch.autograd.Function needs a jvp staticmethod for "
                         "modes=('fwd',) — or check modes=('rev',) only.") from exc


def _outputs_function(torch: Any, call: Callable[[dict[str, Any]], Any],
                      to_torch: Callable[..., dict[str, Any]]) -> Callable[[Any], Any]:
    """``function(arrays) -> outputs`` as numpy arrays (a tuple for several outputs)."""

    def function(p: dict[str, np.ndarray]) -> Any:
        with torch.no_grad():
            out = call(to_torch(p))
        if isinstance(out, (tuple, list)):
            return tuple(o.detach().cpu().numpy() for o in out)
        return out.detach().cpu().numpy()

    return function


def _numpy_dtype(t: Any) -> np.dtype:
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _pair(torch: Any, a: Any, b: Any) -> Any:
    """``Re Σ conj(b)·a`` in float64 (complex128): the real inner product of two tensors."""
    if a.is_complex() or b.is_complex():
        return (a.to(torch.complex128) * b.to(torch.complex128).conj()).real.sum()
    return (a.to(torch.float64) * b.to(torch.float64)).sum()


def _host(torch: Any, leaves: dict[str, Any], grads: Sequence[Any]) -> dict[str, np.ndarray]:
    """Gradients as numpy arrays (zeros for inputs the output does not depend on)."""
    out = {}
    for (n, leaf), g in zip(leaves.items(), grads):
        g = torch.zeros_like(leaf) if g is None else g
        out[n] = g.detach().cpu().numpy()
    return out


def _check_outputs(torch: Any, call: Callable[[dict[str, Any]], Any], arrays: dict[str, Any],
                   to_torch: Callable[..., dict[str, Any]], dout_seed: int | None,
                   options: dict[str, Any], output_names: Sequence[str] | None) -> Report:
    """Backward of every output through a random cotangent; failures name the output."""
    function = _outputs_function(torch, call, to_torch)

    def vjp(p: dict[str, np.ndarray], cot: Any) -> dict[str, np.ndarray]:
        leaves = to_torch(p, grad=True)
        outs = as_list(call(leaves))
        cots = as_list(cot)
        pairs = [(o, torch.from_numpy(np.array(c, copy=True)).to(o.device).to(o.dtype))
                 for o, c in zip(outs, cots) if torch.is_tensor(o) and o.requires_grad]
        if not pairs:
            return {n: np.zeros_like(a) for n, a in p.items()}
        grads = torch.autograd.grad([o for o, _ in pairs], list(leaves.values()),
                                    grad_outputs=[c for _, c in pairs], allow_unused=True)
        return _host(torch, leaves, grads)

    seed = DOUT_SEED if dout_seed is None else dout_seed
    return check_vjp(function, vjp, arrays, output_names=output_names, cotangent_seed=seed,
                     **options)
