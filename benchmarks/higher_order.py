"""Higher-order checks: a zoo of custom derivatives, each correct and with a bug, side by side.

Every case is a custom derivative rule a person writes by hand — a ``torch.autograd.Function``
(``backward``, ``jvp``) and, where JAX has the same notion, a ``jax.custom_jvp`` /
``jax.custom_vjp`` — in a correct version and in a version with a bug people really make:

* **order 2** (double backward): a backward that ``detach()``-es what it multiplies (first order
  right, second order wrong: Swish, GELU, softplus, softmax, logsumexp, LayerNorm, RMSNorm), an
  explicit double-backward rule with a sign error (cube);
* **forward mode**: a ``jvp`` rule with a missing term (softmax) or the wrong derivative (tanh),
  a two-output polar map whose second tangent is wrong;
* **vector-valued**: three outputs of which output 1's backward is wrong; a cumulative sum whose
  backward drops one output element;
* **complex** (PyTorch's conjugate Wirtinger convention): ``z·conj(z)``, ``|z|``,
  ``exp(z)·z``, a complex matrix product — the bug is the classic convention mix-up (the
  conjugate of the right gradient, or ``Bᵀ`` for ``Bᴴ``);
* **float32**: Swish and the softmax JVP in float32 (correct, and with their bugs).

Tools: ``torch.autograd.gradcheck`` (``check_forward_ad=True`` where the Function has a
``jvp``) and ``torch.autograd.gradgradcheck`` (order-2 cases); ``jax.test_util.check_grads``
(``order=2``, ``modes=("fwd", "rev")`` for ``custom_jvp``, ``("rev",)`` for ``custom_vjp``,
which JAX cannot run forward); and gradcheck's adapters (``order=2``, ``modes=("fwd",)``,
outputs named). Columns: detection (buggy version fails), false alarm (correct version fails),
what the failure names, evaluations (calls into the user's rules: forward, backward, jvp,
counted the same way for every tool) and wall time.

Run: PYTHONPATH=src .venv/bin/python benchmarks/higher_order.py [--no-write]
"""

from __future__ import annotations

import math
import re
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]

import torch
from torch.autograd.gradcheck import GradcheckError

#: Calls into user code (forward, backward, jvp rules), reset before each tool runs.
CALLS = {"n": 0}


def tick() -> None:
    CALLS["n"] += 1


# ---------------------------------------------------------------------------------------------
# PyTorch rules
# ---------------------------------------------------------------------------------------------

def _maybe_detach(t: torch.Tensor, bug: bool) -> torch.Tensor:
    return t.detach() if bug else t


def torch_swish(bug: bool) -> Callable[..., Any]:
    class Swish(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return x * torch.sigmoid(x)

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            s = _maybe_detach(torch.sigmoid(x), bug)
            return g * (s + x * s * (1 - s))

    return Swish.apply


def torch_swish_scaled(delta: float) -> Callable[..., Any]:
    """Swish whose double backward is off by the factor ``1 + delta`` (first order exact):
    ``s + δ·(s − s.detach())`` has the value of ``s`` and ``1 + δ`` times its derivative."""

    class SwishScaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return x * torch.sigmoid(x)

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            s = torch.sigmoid(x)
            s = s + delta * (s - s.detach())
            return g * (s + x * s * (1 - s))

    return SwishScaled.apply


def torch_gelu(bug: bool) -> Callable[..., Any]:
    k = math.sqrt(2 / math.pi)

    class Gelu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return 0.5 * x * (1 + torch.tanh(k * (x + 0.044715 * x**3)))

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            t = _maybe_detach(torch.tanh(k * (x + 0.044715 * x**3)), bug)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2))

    return Gelu.apply


def torch_softplus(bug: bool) -> Callable[..., Any]:
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return torch.log1p(torch.exp(x))

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            return g * torch.sigmoid(_maybe_detach(x, bug))

    return Softplus.apply


def torch_cube(bug: bool) -> Callable[..., Any]:
    class CubeGrad(torch.autograd.Function):
        """``(x, g) -> 3x²g`` with its own backward: the double-backward rule of Cube."""

        @staticmethod
        def forward(ctx, x, g):
            tick()
            ctx.save_for_backward(x, g)
            return 3 * x**2 * g

        @staticmethod
        def backward(ctx, gg):
            tick()
            x, g = ctx.saved_tensors
            dx = 6 * x * g * gg
            return (-dx if bug else dx), 3 * x**2 * gg

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            return CubeGrad.apply(x, g)

    return Cube.apply


def torch_softmax(bug: bool) -> Callable[..., Any]:
    class Softmax(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            y = torch.softmax(x, -1)
            ctx.save_for_backward(x)
            return y

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            y = _maybe_detach(torch.softmax(x, -1), bug)
            return y * (g - (g * y).sum(-1, keepdim=True))

    return Softmax.apply


def torch_logsumexp(bug: bool) -> Callable[..., Any]:
    class LogSumExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return torch.logsumexp(x, -1)

        @staticmethod
        def backward(ctx, g):
            tick()
            (x,) = ctx.saved_tensors
            return g[..., None] * _maybe_detach(torch.softmax(x, -1), bug)

    return LogSumExp.apply


def torch_layernorm(bug: bool) -> Callable[..., Any]:
    class LayerNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):
            tick()
            ctx.save_for_backward(x, w)
            mu = x.mean(-1, keepdim=True)
            rstd = ((x - mu) ** 2).mean(-1, keepdim=True).add(1e-5).rsqrt()
            return (x - mu) * rstd * w + b

        @staticmethod
        def backward(ctx, g):
            tick()
            x, w = ctx.saved_tensors
            mu = x.mean(-1, keepdim=True)
            rstd = _maybe_detach(((x - mu) ** 2).mean(-1, keepdim=True).add(1e-5).rsqrt(), bug)
            xhat = (x - mu) * rstd
            gh = g * w
            dx = rstd * (gh - gh.mean(-1, keepdim=True)
                         - xhat * (gh * xhat).mean(-1, keepdim=True))
            return dx, (g * xhat).sum(0), g.sum(0)

    return LayerNorm.apply


def torch_rmsnorm(bug: bool) -> Callable[..., Any]:
    class RMSNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            tick()
            ctx.save_for_backward(x, w)
            return x * (x**2).mean(-1, keepdim=True).add(1e-6).rsqrt() * w

        @staticmethod
        def backward(ctx, g):
            tick()
            x, w = ctx.saved_tensors
            r = _maybe_detach((x**2).mean(-1, keepdim=True).add(1e-6).rsqrt(), bug)
            gh = g * w
            dx = r * gh - x * r**3 * (gh * x).mean(-1, keepdim=True)
            return dx, (g * x * r).sum(0)

    return RMSNorm.apply


def torch_softmax_jvp(bug: bool) -> Callable[..., Any]:
    class SoftmaxJ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            y = torch.softmax(x, -1)
            ctx.save_for_backward(y)
            ctx.save_for_forward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            tick()
            (y,) = ctx.saved_tensors
            return y * (g - (g * y).sum(-1, keepdim=True))

        @staticmethod
        def jvp(ctx, t):
            tick()
            (y,) = ctx.saved_tensors
            return y * t if bug else y * (t - (y * t).sum(-1, keepdim=True))

    return SoftmaxJ.apply


def torch_tanh_jvp(bug: bool) -> Callable[..., Any]:
    class TanhJ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            y = torch.tanh(x)
            ctx.save_for_backward(y)
            ctx.save_for_forward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            tick()
            (y,) = ctx.saved_tensors
            return g * (1 - y**2)

        @staticmethod
        def jvp(ctx, t):
            tick()
            (y,) = ctx.saved_tensors
            return t * (1 - y) if bug else t * (1 - y**2)

    return TanhJ.apply


def torch_polar_jvp(bug: bool) -> Callable[..., Any]:
    class Polar(torch.autograd.Function):
        @staticmethod
        def forward(ctx, r, th):
            tick()
            ctx.save_for_backward(r, th)
            ctx.save_for_forward(r, th)
            return r * torch.cos(th), r * torch.sin(th)

        @staticmethod
        def backward(ctx, gx, gy):
            tick()
            r, th = ctx.saved_tensors
            c, s = torch.cos(th), torch.sin(th)
            return gx * c + gy * s, -gx * r * s + gy * r * c

        @staticmethod
        def jvp(ctx, tr, tth):
            tick()
            r, th = ctx.saved_tensors
            c, s = torch.cos(th), torch.sin(th)
            ty = tr * s + (r * c * tth if not bug else -r * c * tth)
            return tr * c - r * s * tth, ty

    return Polar.apply


def torch_three_outputs(bug: bool) -> Callable[..., Any]:
    class Three(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            ctx.save_for_backward(x)
            return torch.sin(x), x**2, torch.exp(x)

        @staticmethod
        def backward(ctx, g0, g1, g2):
            tick()
            (x,) = ctx.saved_tensors
            d1 = g1 * x if bug else g1 * 2 * x
            return g0 * torch.cos(x) + d1 + g2 * torch.exp(x)

    return Three.apply


def torch_cumsum(bug: bool) -> Callable[..., Any]:
    class Cumsum(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            tick()
            return torch.cumsum(x, 0)

        @staticmethod
        def backward(ctx, g):
            tick()
            if bug:  # the last output element's cotangent is dropped
                g = torch.cat([g[:-1], torch.zeros_like(g[-1:])])
            return torch.flip(torch.cumsum(torch.flip(g, (0,)), 0), (0,))

    return Cumsum.apply


def torch_zconjz(bug: bool) -> Callable[..., Any]:
    class ZConjZ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            tick()
            ctx.save_for_backward(z)
            return z * z.conj()

        @staticmethod
        def backward(ctx, g):
            tick()
            (z,) = ctx.saved_tensors
            zz = z.conj() if bug else z   # conj(∂f/∂z) = z and ∂f/∂z̄ = z
            return g * zz + g.conj() * zz

    return ZConjZ.apply


def torch_absz(bug: bool) -> Callable[..., Any]:
    class AbsZ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            tick()
            ctx.save_for_backward(z)
            return z.abs()

        @staticmethod
        def backward(ctx, g):
            tick()
            (z,) = ctx.saved_tensors
            u = z / z.abs()
            return g * (u.conj() if bug else u)

    return AbsZ.apply


def torch_expz(bug: bool) -> Callable[..., Any]:
    class ExpZ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            tick()
            ctx.save_for_backward(z)
            return torch.exp(z) * z

        @staticmethod
        def backward(ctx, g):
            tick()
            (z,) = ctx.saved_tensors
            d = torch.exp(z) * (1 + z)
            return g * (d if bug else d.conj())   # holomorphic: g·conj(f'(z))

    return ExpZ.apply


def torch_cmatmul(bug: bool) -> Callable[..., Any]:
    class CMatmul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            tick()
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        def backward(ctx, g):
            tick()
            a, b = ctx.saved_tensors
            return g @ (b.T if bug else b.mH), a.mH @ g

    return CMatmul.apply


# ---------------------------------------------------------------------------------------------
# JAX rules (custom_jvp where forward mode makes sense, custom_vjp otherwise)
# ---------------------------------------------------------------------------------------------

def _jax() -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def jax_elementwise(kind: str, bug: bool) -> Callable[..., Any]:
    """``custom_jvp`` activations whose rule stops the gradient of its coefficient when buggy."""
    jax = _jax()
    jnp = jax.numpy
    k = math.sqrt(2 / math.pi)
    sg = jax.lax.stop_gradient if bug else (lambda t: t)

    def value(x):
        if kind == "swish":
            return x * jax.nn.sigmoid(x)
        if kind == "gelu":
            return 0.5 * x * (1 + jnp.tanh(k * (x + 0.044715 * x**3)))
        return jnp.log1p(jnp.exp(x))

    def slope(x):
        if kind == "swish":
            s = sg(jax.nn.sigmoid(x))
            return s + x * s * (1 - s)
        if kind == "gelu":
            t = sg(jnp.tanh(k * (x + 0.044715 * x**3)))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2)
        return jax.nn.sigmoid(sg(x))

    @jax.custom_jvp
    def f(x):
        tick()
        return value(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        return f(x), slope(x) * t

    return f


def jax_swish_scaled(delta: float) -> Callable[..., Any]:
    """The JAX twin of :func:`torch_swish_scaled` (a ``custom_jvp`` whose rule's coefficient
    has ``1 + delta`` times its true derivative)."""
    jax = _jax()

    @jax.custom_jvp
    def f(x):
        tick()
        return x * jax.nn.sigmoid(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        s = jax.nn.sigmoid(x)
        s = s + delta * (s - jax.lax.stop_gradient(s))
        return f(x), (s + x * s * (1 - s)) * t

    return f


def jax_cube(bug: bool) -> Callable[..., Any]:
    jax = _jax()

    @jax.custom_jvp
    def cube_slope(x):
        tick()
        return 3 * x**2

    @cube_slope.defjvp
    def cube_slope_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        d = 6 * x * t
        return cube_slope(x), -d if bug else d

    @jax.custom_jvp
    def cube(x):
        tick()
        return x**3

    @cube.defjvp
    def cube_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        return cube(x), cube_slope(x) * t

    return cube


def jax_softmax(bug: bool, jvp_bug: bool = False) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy
    sg = jax.lax.stop_gradient if bug else (lambda t: t)

    @jax.custom_jvp
    def softmax(x):
        tick()
        return jax.nn.softmax(x, -1)

    @softmax.defjvp
    def softmax_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        y = softmax(x)
        ys = sg(y)
        if jvp_bug:
            return y, ys * t
        return y, ys * (t - jnp.sum(ys * t, -1, keepdims=True))

    return softmax


def jax_logsumexp(bug: bool) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy
    sg = jax.lax.stop_gradient if bug else (lambda t: t)

    @jax.custom_jvp
    def lse(x):
        tick()
        return jax.scipy.special.logsumexp(x, -1)

    @lse.defjvp
    def lse_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        return lse(x), jnp.sum(sg(jax.nn.softmax(x, -1)) * t, -1)

    return lse


def jax_layernorm(bug: bool) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy
    sg = jax.lax.stop_gradient if bug else (lambda t: t)

    @jax.custom_jvp
    def ln(x, w, b):
        tick()
        mu = jnp.mean(x, -1, keepdims=True)
        rstd = 1 / jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5)
        return (x - mu) * rstd * w + b

    @ln.defjvp
    def ln_jvp(primals, tangents):
        tick()
        (x, w, b), (tx, tw, tb) = primals, tangents
        mu = jnp.mean(x, -1, keepdims=True)
        rstd = sg(1 / jnp.sqrt(jnp.mean((x - mu) ** 2, -1, keepdims=True) + 1e-5))
        xhat = (x - mu) * rstd
        dxhat = rstd * (tx - jnp.mean(tx, -1, keepdims=True)
                        - xhat * jnp.mean(tx * xhat, -1, keepdims=True))
        return ln(x, w, b), dxhat * w + xhat * tw + tb

    return ln


def jax_rmsnorm(bug: bool) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy
    sg = jax.lax.stop_gradient if bug else (lambda t: t)

    @jax.custom_jvp
    def rms(x, w):
        tick()
        return x / jnp.sqrt(jnp.mean(x**2, -1, keepdims=True) + 1e-6) * w

    @rms.defjvp
    def rms_jvp(primals, tangents):
        tick()
        (x, w), (tx, tw) = primals, tangents
        r = sg(1 / jnp.sqrt(jnp.mean(x**2, -1, keepdims=True) + 1e-6))
        dx = r * tx - x * r**3 * jnp.mean(tx * x, -1, keepdims=True)
        return rms(x, w), dx * w + x * r * tw

    return rms


def jax_tanh_jvp(bug: bool) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy

    @jax.custom_jvp
    def tanh(x):
        tick()
        return jnp.tanh(x)

    @tanh.defjvp
    def tanh_jvp(primals, tangents):
        tick()
        (x,), (t,) = primals, tangents
        y = tanh(x)
        return y, t * (1 - y) if bug else t * (1 - y**2)

    return tanh


def jax_polar(bug: bool) -> Callable[..., Any]:
    jax = _jax()
    jnp = jax.numpy

    @jax.custom_jvp
    def polar(r, th):
        tick()
        return r * jnp.cos(th), r * jnp.sin(th)

    @polar.defjvp
    def polar_jvp(primals, tangents):
        tick()
        (r, th), (tr, tth) = primals, tangents
        c, s = jnp.cos(th), jnp.sin(th)
        ty = tr * s + (-r * c * tth if bug else r * c * tth)
        return polar(r, th), (tr * c - r * s * tth, ty)

    return polar


def jax_vjp_rule(kind: str, bug: bool) -> Callable[..., Any]:
    """``custom_vjp`` rules: three outputs, cumsum, and the complex functions (JAX's own
    convention: the bug is the conjugate of the right cotangent, or ``Bᵀ`` for ``Bᴴ``)."""
    jax = _jax()
    jnp = jax.numpy

    def plain(*args):
        if kind == "three":
            (x,) = args
            return jnp.sin(x), x**2, jnp.exp(x)
        if kind == "cumsum":
            return jnp.cumsum(args[0], 0)
        if kind == "zconjz":
            return args[0] * jnp.conj(args[0])
        if kind == "absz":
            return jnp.abs(args[0])
        if kind == "expz":
            return jnp.exp(args[0]) * args[0]
        return args[0] @ args[1]

    @jax.custom_vjp
    def f(*args):
        tick()
        return plain(*args)

    def fwd(*args):
        tick()
        return plain(*args), args

    def bwd(res, ct):
        tick()
        if kind == "three":
            (x,) = res
            g0, g1, g2 = ct
            return (g0 * jnp.cos(x) + (g1 * x if bug else g1 * 2 * x) + g2 * jnp.exp(x),)
        if kind == "cumsum":
            g = jnp.asarray(ct).at[-1].set(0.0) if bug else ct
            return (jnp.flip(jnp.cumsum(jnp.flip(g, 0), 0), 0),)
        if kind == "cmatmul":
            a, b = res
            return (ct @ (b.T.conj() if bug else b.T), a.T @ ct)
        _, vjp = jax.vjp(plain, *res)
        out = vjp(ct)
        return tuple(jnp.conj(o) for o in out) if bug else out

    f.defvjp(fwd, bwd)
    return f


# ---------------------------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One custom rule: how to build it, its inputs, what kind of derivative it defines.

    kind : ``"order2"`` (double backward), ``"fwd"`` (a jvp rule), ``"vjp"`` (several outputs
        or a Jacobian), ``"complex"``.
    torch_make, jax_make : ``make(bug) -> fn``; ``jax_make`` is None where JAX has no
        comparable rule.
    shapes : shapes of the inputs; dtype : their dtype (numpy name).
    jax_modes : check_grads modes JAX can run on the rule.
    expect : what the bug is, in words (for the table).
    """

    name: str
    kind: str
    torch_make: Callable[[bool], Callable[..., Any]]
    jax_make: Callable[[bool], Callable[..., Any]] | None
    shapes: tuple[tuple[int, ...], ...]
    dtype: str = "float64"
    jax_modes: tuple[str, ...] = ("fwd", "rev")
    expect: str = ""
    positive: tuple[int, ...] = ()   # inputs drawn positive (radii)


def zoo() -> list[Case]:
    x = ((3, 5),)
    return [
        Case("swish", "order2", torch_swish, lambda b: jax_elementwise("swish", b), x,
             expect="backward detaches σ(x)"),
        Case("gelu", "order2", torch_gelu, lambda b: jax_elementwise("gelu", b), x,
             expect="backward detaches tanh(·)"),
        Case("softplus", "order2", torch_softplus, lambda b: jax_elementwise("softplus", b), x,
             expect="backward uses σ(x.detach())"),
        Case("cube", "order2", torch_cube, jax_cube, x,
             expect="double-backward rule has the wrong sign"),
        Case("softmax", "order2", torch_softmax, lambda b: jax_softmax(b), x,
             expect="backward detaches the softmax"),
        Case("logsumexp", "order2", torch_logsumexp, jax_logsumexp, x,
             expect="backward detaches the softmax"),
        Case("layernorm", "order2", torch_layernorm, jax_layernorm, ((4, 6), (6,), (6,)),
             expect="backward detaches 1/σ"),
        Case("rmsnorm", "order2", torch_rmsnorm, jax_rmsnorm, ((4, 6), (6,)),
             expect="backward detaches 1/rms"),
        Case("softmax_jvp", "fwd", torch_softmax_jvp, lambda b: jax_softmax(False, b), x,
             expect="jvp forgets −y·Σ(y·t)"),
        Case("tanh_jvp", "fwd", torch_tanh_jvp, jax_tanh_jvp, x,
             expect="jvp uses 1−y for 1−y²"),
        Case("polar_jvp", "fwd", torch_polar_jvp, jax_polar, ((5,), (5,)),
             expect="tangent of output 1 has the wrong sign", positive=(0,)),
        Case("three_outputs", "vjp", torch_three_outputs,
             lambda b: jax_vjp_rule("three", b), ((6,),), jax_modes=("rev",),
             expect="backward of output 1 (x²) uses x for 2x"),
        Case("cumsum", "vjp", torch_cumsum, lambda b: jax_vjp_rule("cumsum", b), ((8,),),
             jax_modes=("rev",), expect="backward drops the last output element"),
        Case("z_conj_z", "complex", torch_zconjz, lambda b: jax_vjp_rule("zconjz", b), ((5,),),
             dtype="complex128", jax_modes=("rev",), expect="conjugated gradient"),
        Case("abs_z", "complex", torch_absz, lambda b: jax_vjp_rule("absz", b), ((5,),),
             dtype="complex128", jax_modes=("rev",), expect="conjugated gradient"),
        Case("exp_z_z", "complex", torch_expz, lambda b: jax_vjp_rule("expz", b), ((5,),),
             dtype="complex128", jax_modes=("rev",), expect="f'(z) for conj(f'(z))"),
        Case("complex_matmul", "complex", torch_cmatmul, lambda b: jax_vjp_rule("cmatmul", b),
             ((3, 4), (4, 2)), dtype="complex128", jax_modes=("rev",), expect="Bᵀ for Bᴴ"),
        Case("swish_f32", "order2", torch_swish, lambda b: jax_elementwise("swish", b), x,
             dtype="float32", expect="backward detaches σ(x), float32"),
        Case("softmax_jvp_f32", "fwd", torch_softmax_jvp, lambda b: jax_softmax(False, b), x,
             dtype="float32", expect="jvp forgets −y·Σ(y·t), float32"),
    ]


def inputs(case: Case, seed: int = 0) -> list[np.ndarray]:
    """The case's inputs as numpy arrays (same values for every tool)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(case.shapes):
        a = rng.normal(size=shape)
        if case.dtype.startswith("complex"):
            a = a + 1j * rng.normal(size=shape)
        if i in case.positive:
            a = np.abs(a) + 0.5
        out.append(a.astype(case.dtype))
    return out


# ---------------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What one tool said about one variant."""

    verdict: str          # "pass" | "FAIL" | "inconclusive" | "error" | "n/a"
    named: str            # what the failure names ("-" if nothing)
    evaluations: int
    seconds: float


def _run(fn: Callable[[], tuple[str, str]]) -> Outcome:
    CALLS["n"] = 0
    t0 = time.perf_counter()
    try:
        verdict, named = fn()
    except NotImplementedError as exc:
        verdict, named = "n/a", str(exc).split("\n")[0][:40]
    except Exception as exc:  # a tool that refuses the case (gradcheck's InputError, ...)
        verdict, named = "error", f"{type(exc).__name__}: {str(exc)[:60]}"
    return Outcome(verdict, named, CALLS["n"], time.perf_counter() - t0)


def _torch_named(message: str) -> str:
    m = re.search(r"mismatch for (output \d+ with respect to input \d+)", message)
    return m.group(1) if m else "-"


def _jax_named(message: str) -> str:
    """The check JAX names (``"JVP of VJP tangent"``) and the first mismatching output index,
    when it lists one (JVP checks compare output tangents; VJP checks compare one number)."""
    lines = [ln.strip() for ln in message.strip().split("\n")]
    label = next((ln for ln in lines if ln.startswith(("JVP", "VJP"))), "-")
    index = next((lines[i + 1].split(":")[0] for i, ln in enumerate(lines)
                  if ln.startswith("First") and i + 1 < len(lines)), "")
    return f"{label} {index}".strip()


def run_torch(case: Case, bug: bool) -> Outcome:
    """gradcheck (+ check_forward_ad for jvp rules) and, for order-2 cases, gradgradcheck."""

    def go() -> tuple[str, str]:
        fn = case.torch_make(bug)
        xs = tuple(torch.from_numpy(a.copy()).requires_grad_(True) for a in inputs(case))
        failed = []
        named = "-"
        checks: list[tuple[str, Callable[..., Any]]] = [(
            "gradcheck", lambda: torch.autograd.gradcheck(
                fn, xs, check_forward_ad=case.kind == "fwd"))]
        if case.kind == "order2":
            checks.append(("gradgradcheck", lambda: torch.autograd.gradgradcheck(fn, xs)))
        for label, run in checks:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run()
            except GradcheckError as exc:
                failed.append(label)
                if named == "-":
                    named = _torch_named(str(exc))
            except RuntimeError as exc:
                failed.append(label)
                if named == "-":
                    named = _torch_named(str(exc))
        return ("FAIL" if failed else "pass"), (f"{'+'.join(failed)}: {named}" if failed
                                                 else "-")

    return _run(go)


def run_jax(case: Case, bug: bool) -> Outcome:
    """``jax.test_util.check_grads(order=2, modes=case.jax_modes)``."""
    if case.jax_make is None:
        return Outcome("n/a", "-", 0, 0.0)
    try:
        jax = _jax()
        from jax.test_util import check_grads
    except ImportError:
        return Outcome("n/a", "jax not installed", 0, 0.0)

    def go() -> tuple[str, str]:
        fn = case.jax_make(bug)
        args = tuple(jax.numpy.asarray(a) for a in inputs(case))
        try:
            check_grads(fn, args, order=2, modes=case.jax_modes)
        except AssertionError as exc:
            return "FAIL", _jax_named(str(exc))
        return "pass", "-"

    return _run(go)


def run_gradcheck(case: Case, bug: bool, mode: str = "elementwise") -> Outcome:
    """gradcheck's torch adapter: ``order=2`` for order-2 cases, ``modes=("fwd",)`` for jvp
    rules, outputs named for vector-valued and complex functions."""
    from gradcheck.adapters.torch import check_function

    def go() -> tuple[str, str]:
        fn = case.torch_make(bug)
        xs = [torch.from_numpy(a.copy()).requires_grad_(True) for a in inputs(case)]
        extra: dict[str, Any] = {"mode": mode}
        if case.kind == "order2":
            extra["order"] = 2
        elif case.kind == "fwd":
            extra["modes"] = ("fwd",)
        try:
            report = check_function(fn, *xs, progress=False, **extra)
        except TypeError as exc:
            if "order" in str(exc) or "modes" in str(exc):
                raise NotImplementedError("not yet in gradcheck") from exc
            raise
        verdict = {"pass": "pass", "fail": "FAIL", "inconclusive": "inconclusive"}[
            report.status]
        if report.status != "fail":
            return verdict, "-"
        worst = report.worst(1)[0]
        where = [part.strip() for part in worst.note.split(";")
                 if part.strip().startswith(("output", "column"))]
        return verdict, worst.name + (f" ← {where[0]}" if where else "")

    return _run(go)


def run_gradcheck_directional(case: Case, bug: bool) -> Outcome:
    """The same with ``mode="directional"`` (one random direction per tensor, then
    localisation): the sensitivity-for-cost trade JAX makes, with names."""
    return run_gradcheck(case, bug, "directional")


TOOLS = {"torch": run_torch, "jax": run_jax, "gradcheck": run_gradcheck,
         "gradcheck directional": run_gradcheck_directional}


def names_entry(tool: str, named: str) -> bool:
    """Does the failure name the input entry (element)? torch names input *tensors*; JAX's
    JVP checks list indices of the output tangent, its VJP checks one number."""
    return tool.startswith("gradcheck") and "[" in named


def names_output(tool: str, named: str) -> bool:
    """Does the failure name the output (or, for second order, the Hessian column)?"""
    if tool == "torch":
        return "output" in named
    if tool == "jax":
        return "[" in named
    return "←" in named


def table(cases: list[Case]) -> tuple[str, str, dict[str, dict[str, Any]]]:
    rows, name_rows = [], []
    totals = {t: {"caught": 0, "bugs": 0, "false": 0, "evals": 0, "seconds": 0.0,
                  "entry": 0, "output": 0} for t in TOOLS}
    for case in cases:
        cells = [case.name, case.kind, case.dtype, case.expect]
        names = [case.name]
        for tool, run in TOOLS.items():
            ok = run(case, False)
            bad = run(case, True)
            tot = totals[tool]
            if ok.verdict != "n/a" and bad.verdict != "n/a":
                tot["bugs"] += 1
                tot["caught"] += bad.verdict == "FAIL"
                tot["false"] += ok.verdict == "FAIL"
                caught = bad.verdict == "FAIL"
                tot["entry"] += caught and names_entry(tool, bad.named)
                tot["output"] += caught and names_output(tool, bad.named)
                tot["evals"] += ok.evaluations + bad.evaluations
                tot["seconds"] += ok.seconds + bad.seconds
            cells.append(f"{ok.verdict} / {bad.verdict} · {ok.evaluations} / "
                         f"{bad.evaluations} · {1e3 * ok.seconds:.0f} / {1e3 * bad.seconds:.0f}")
            if tool != "gradcheck directional":
                names.append(bad.named.replace("|", "/"))
        rows.append("| " + " | ".join(cells) + " |")
        name_rows.append("| " + " | ".join(names) + " |")
        print(rows[-1], flush=True)
    head = ["case", "kind", "dtype", "bug", *TOOLS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows]
    nhead = ["case", *(t for t in TOOLS if t != "gradcheck directional")]
    nlines = ["| " + " | ".join(nhead) + " |", "|" + "---|" * len(nhead), *name_rows]
    return "\n".join(lines), "\n".join(nlines), totals


def summary(totals: dict[str, dict[str, Any]]) -> str:
    lines = ["| tool | bugs caught | false alarms (correct rules failed) | failures naming the "
             "input entry | failures naming the output / Hessian column | evaluations (all "
             "variants) | wall time (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for tool, t in totals.items():
        lines.append(f"| {tool} | {t['caught']}/{t['bugs']} | {t['false']}/{t['bugs']} | "
                     f"{t['entry']}/{t['caught']} | {t['output']}/{t['caught']} | "
                     f"{t['evals']} | {t['seconds']:.2f} |")
    return "\n".join(lines)


#: Relative errors of the double backward in the sensitivity sweep.
DELTAS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)


def sensitivity() -> str:
    """Which tool catches a double backward off by ``1 + δ``, and at what cost (Swish, 3×5,
    float64): detection is only comparable at equal sensitivity."""
    lines = ["| δ (relative error of the 2nd derivative) | " + " | ".join(TOOLS) + " |",
             "|---|" + "---|" * len(TOOLS)]
    for delta in (0.0, *DELTAS):
        case = Case(f"swish δ={delta:g}", "order2", lambda bug, d=delta: torch_swish_scaled(d),
                    lambda bug, d=delta: jax_swish_scaled(d), ((3, 5),))
        cells = []
        for run in TOOLS.values():
            out = run(case, True)
            cells.append(f"{out.verdict} · {out.evaluations}")
        lines.append(f"| {delta:g} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    cases = zoo()
    body, named, totals = table(cases)
    text = "\n".join([
        "## Higher-order checks (`benchmarks/higher_order.py`)", "",
        f"Machine: {machine()}, torch {torch.__version__}. {len(cases)} custom rules, each "
        "correct and with a bug. torch: `gradcheck` (`check_forward_ad=True` for jvp rules) and "
        "`gradgradcheck` for order-2 cases; jax: `check_grads(order=2)` with the modes the rule "
        "supports (`custom_vjp` rules cannot run forward); gradcheck: the torch adapter with "
        "`order=2` / `modes=(\"fwd\",)`, every entry (default) or `mode=\"directional\"`. "
        "Evaluations count every call into the user's rules (forward, backward, jvp) the same "
        "way for every tool; times include JAX tracing (no jit).", "",
        summary(totals), "",
        "Per case: verdict correct / buggy · evaluations correct / buggy · ms correct / buggy.",
        "", body, "", "What the failure of the buggy rule names:", "", named, "",
        "### Sensitivity: a double backward off by a factor 1 + δ (verdict · evaluations)", "",
        "δ = 0 is the correct rule. A tool that misses small δ spends fewer evaluations for "
        "less: compare costs where both detect.", "", sensitivity()])
    print()
    print(summary(totals))
    if "--no-write" not in argv:
        write_section("higher_order", text)


if __name__ == "__main__":
    main(sys.argv[1:])
