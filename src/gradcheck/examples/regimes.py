"""Small MLPs in the regimes where verdicts go wrong (issue #10): a demo, not library code.

One model family, a grid of regimes:

* **initial scale** ``s``: ``W1, W2 = s·N(0, 1)``, zero biases (CS231n's ``std=1e-4``);
* **nonlinearity**: ``relu``, ``leaky_relu`` (slope 0.01), ``maxpool`` (max over pairs of
  hidden units), ``abs``, ``hinge`` (tanh hidden layer, multiclass SVM loss), ``tanh``,
  ``sigmoid``, ``softplus``; all but ``hinge`` end in softmax cross-entropy;
* **precision path**: ``f64`` (everything float64); ``f32`` (float32 params and data, the
  forward computes in the params' dtype and returns a numpy float32); ``f32in`` (float64
  params, the forward casts to float32 inside and returns a Python float, the gradient is
  float32, as ``loss.item()`` in torch); ``f16`` (float16 params, float32 arithmetic inside,
  float32 gradient: mixed precision with float32 gradients — a float16 gradient would
  underflow at a loss scale of 1e-15 and overflow at 1e6, and the model would be wrong);
* **loss scale**: the loss (and its gradient) multiplied by a constant such as 1e-15 or 1e6.

:func:`build` returns the model correct, or with a *bug of relative size* ``δ``: the gradient
of one tensor ``T`` gets an extra ``c·g_T`` with ``‖c·g_T‖ = δ·‖g‖`` (``g`` the whole correct
gradient), i.e. a uniform scale error of ``T`` whose size is ``δ`` relative to the model's
gradient. With ``δ = 1e-3`` a checker at ``tol = 1e-5`` must FAIL; ``δ = 1e-6`` is below the
tolerance but, in float64, far above the numerical error bars (issue #10, item 7). With
``pattern="scattered"`` the same size is spread as independent normal errors instead, nearly
orthogonal to ``g_T``.

The analytic gradients are exact (hand-written backward, tested against careful numerical
estimates in float64 in ``tests/examples/test_regimes_models.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SCALES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)
NONLINEARITIES = ("relu", "leaky_relu", "maxpool", "abs", "hinge", "tanh", "sigmoid",
                  "softplus")
KINKED = frozenset({"relu", "leaky_relu", "maxpool", "abs", "hinge"})
PRECISIONS = ("f64", "f32", "f32in", "f16")
LOSS_SCALES = (1e-15, 1.0, 1e6)
#: Tensors that carry the bug, chosen by ``seed % 4``.
BUG_TENSORS = ("W1", "b1", "W2", "b2")
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Sizes:
    """Batch ``n``, input ``d``, hidden ``h`` (even, for max-pooling pairs), classes ``c``."""

    n: int = 20
    d: int = 8
    h: int = 10
    c: int = 3


#: The grid's models (fast); :data:`ISSUE` is the issue's MLP (N=50, D=20, H=30, C=4).
SMALL = Sizes()
ISSUE = Sizes(50, 20, 30, 4)


@dataclass(frozen=True)
class Regime:
    """One cell of the grid."""

    scale: float = 1.0
    nonlinearity: str = "relu"
    precision: str = "f64"
    loss_scale: float = 1.0
    seed: int = 0

    @property
    def label(self) -> str:
        return (f"{self.nonlinearity}/{self.precision}/scale={self.scale:g}/"
                f"loss×{self.loss_scale:g}/seed={self.seed}")


@dataclass
class RegimeModel:
    """A built model: check it with ``gc.check(m.forward, m.forward_backward, m.params)``.

    ``bug_tensor`` is ``None`` for a correct model; ``bug_factor`` is the ``c`` of the module
    docstring (``0`` when correct).
    """

    regime: Regime
    params: dict[str, np.ndarray]
    forward: Callable[[Any], Any]
    forward_backward: Callable[[Any], tuple[Any, dict[str, np.ndarray]]]
    bug: float
    bug_tensor: str | None
    bug_factor: float


def _act(z: np.ndarray, kind: str) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Hidden activation and its backward ``dz = back(dh)``."""
    if kind in ("relu", "leaky_relu"):
        lo = 0.0 if kind == "relu" else LEAKY_SLOPE
        slope = np.where(z > 0, 1.0, lo).astype(z.dtype)
        return z * slope, lambda dh: dh * slope
    if kind == "abs":
        s = np.sign(z)
        return np.abs(z), lambda dh: dh * s
    if kind in ("tanh", "hinge"):
        t = np.tanh(z)
        return t, lambda dh: dh * (1 - t * t)
    if kind == "sigmoid":
        sg = 1.0 / (1.0 + np.exp(-z))
        return sg, lambda dh: dh * sg * (1 - sg)
    if kind == "softplus":
        sg = 1.0 / (1.0 + np.exp(-z))
        return np.logaddexp(0.0, z).astype(z.dtype), lambda dh: dh * sg
    if kind == "maxpool":
        n, h = z.shape
        pairs = z.reshape(n, h // 2, 2)
        win = np.argmax(pairs, axis=2)
        out = np.take_along_axis(pairs, win[..., None], axis=2)[..., 0]

        def back(dh: np.ndarray) -> np.ndarray:
            dz = np.zeros_like(pairs)
            np.put_along_axis(dz, win[..., None], dh[..., None], axis=2)
            return dz.reshape(n, h)
        return out, back
    raise ValueError(f"unknown nonlinearity {kind!r}; choose one of {NONLINEARITIES}")


def _loss_grad(s: np.ndarray, y: np.ndarray, kind: str) -> tuple[Any, np.ndarray]:
    """Mean loss over the batch and ``dL/ds``: softmax cross-entropy, or the multiclass SVM
    hinge ``Σ_{j≠y} max(0, s_j - s_y + 1)`` for ``kind == "hinge"``."""
    n = s.shape[0]
    rows = np.arange(n)
    if kind == "hinge":
        margins = s - s[rows, y][:, None] + 1
        margins[rows, y] = 0
        active = (margins > 0).astype(s.dtype)
        loss = np.sum(margins * active) / n
        ds = active.copy()
        ds[rows, y] = -active.sum(axis=1)
        return loss, ds / n
    m = s.max(axis=1, keepdims=True)
    e = np.exp(s - m)
    z = e.sum(axis=1, keepdims=True)
    loss = np.sum(np.log(z[:, 0]) + m[:, 0] - s[rows, y]) / n
    ds = e / z
    ds[rows, y] -= 1
    return loss, ds / n


def _evaluate(p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, kind: str,
              loss_scale: float, need_grad: bool) -> tuple[Any, dict[str, np.ndarray] | None]:
    """Loss (numpy scalar in the arithmetic's dtype) and gradients, computed in the dtype that
    ``x`` and the params promote to."""
    z = x @ p["W1"] + p["b1"]
    hid, back = _act(z, kind)
    s = hid @ p["W2"] + p["b2"]
    loss, ds = _loss_grad(s, y, kind)
    loss = loss * np.asarray(loss_scale, dtype=np.asarray(loss).dtype)
    if not need_grad:
        return loss, None
    ds = ds * np.asarray(loss_scale, dtype=ds.dtype)
    dz = back(ds @ p["W2"].T)
    return loss, {"W1": x.T @ dz, "b1": dz.sum(axis=0), "W2": hid.T @ ds, "b2": ds.sum(axis=0)}


def make_data(regime: Regime, sizes: Sizes = SMALL) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                              np.ndarray]:
    """float64 params and data of a regime (before any cast to its precision)."""
    rng = np.random.default_rng(regime.seed)
    n, d, h, c = sizes.n, sizes.d, sizes.h, sizes.c
    h_out = h // 2 if regime.nonlinearity == "maxpool" else h
    x = rng.normal(size=(n, d))
    y = rng.integers(c, size=n)
    params = {"W1": regime.scale * rng.normal(size=(d, h)), "b1": np.zeros(h),
              "W2": regime.scale * rng.normal(size=(h_out, c)), "b2": np.zeros(c)}
    return params, x, y


def exact_gradient(regime: Regime, sizes: Sizes = SMALL) -> dict[str, np.ndarray]:
    """The float64 gradient of the regime's loss at its (float64) params."""
    params, x, y = make_data(regime, sizes)
    if regime.precision == "f16":
        params = {k: v.astype(np.float16).astype(np.float64) for k, v in params.items()}
    elif regime.precision == "f32":
        params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
        x = x.astype(np.float32).astype(np.float64)
    return _evaluate(params, x, y, regime.nonlinearity, regime.loss_scale, True)[1]


def bug_factor(grads: dict[str, np.ndarray], tensor: str, size: float) -> float:
    """``c`` with ``‖c·g_T‖ = size·‖g‖`` (0 when ``g_T`` is zero: then no bug is possible)."""
    total = np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    own = float(np.linalg.norm(grads[tensor].astype(np.float64)))
    return size * total / own if own > 0 else 0.0


#: How a bug is spread over its tensor: a uniform scale error ``c·g_T``, or a scattered one
#: (independent normal errors, nearly orthogonal to ``g_T`` — as a wrong ReLU mask at a small
#: init, which agrees along the analytic gradient's own direction).
PATTERNS = ("uniform", "scattered")


def build(regime: Regime, bug: float = 0.0, sizes: Sizes = SMALL,
          pattern: str = "uniform") -> RegimeModel:
    """The regime's model, correct (``bug=0``) or with a bug of relative size ``bug`` spread
    over its tensor as ``pattern`` (:data:`PATTERNS`): ``uniform`` adds ``c·g_T``,
    ``scattered`` adds ``e_T`` with independent normal entries, ``‖e_T‖ = bug·‖g‖``."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown bug pattern {pattern!r}; choose one of {PATTERNS}")
    params64, x64, y = make_data(regime, sizes)
    kind, ls, prec = regime.nonlinearity, regime.loss_scale, regime.precision
    tensor = BUG_TENSORS[regime.seed % len(BUG_TENSORS)] if bug else None
    if tensor is not None:
        g = exact_gradient(regime, sizes)
        if not np.any(g[tensor]):  # e.g. a dead tensor: take the next one that has a gradient
            tensor = next(t for t in BUG_TENSORS if np.any(g[t]))
        factor = bug_factor(g, tensor, bug)
        noise = np.random.default_rng(regime.seed + 1).normal(size=g[tensor].shape)
        scattered = noise * (factor * float(np.linalg.norm(g[tensor])) / np.linalg.norm(noise))
    else:
        factor, scattered = 0.0, None

    def add_bug(grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if tensor is not None:
            g = grads[tensor].astype(np.float64)
            g = g + scattered if pattern == "scattered" else g * (1.0 + factor)
            grads[tensor] = g.astype(grads[tensor].dtype)
        return grads

    if prec == "f64":
        params = params64

        def forward(p: dict[str, np.ndarray]) -> Any:
            return float(_evaluate(p, x64, y, kind, ls, False)[0])

        def forward_backward(p: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
            loss, grads = _evaluate(p, x64, y, kind, ls, True)
            return float(loss), add_bug(grads)
    elif prec == "f32":
        params = {k: v.astype(np.float32) for k, v in params64.items()}
        x32 = x64.astype(np.float32)

        def forward(p: dict[str, np.ndarray]) -> Any:
            return _evaluate(p, x32, y, kind, ls, False)[0]

        def forward_backward(p: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
            loss, grads = _evaluate(p, x32, y, kind, ls, True)
            return loss, add_bug(grads)
    elif prec in ("f32in", "f16"):
        params = (params64 if prec == "f32in"
                  else {k: v.astype(np.float16) for k, v in params64.items()})
        x32 = x64.astype(np.float32)
        grad_dtype = np.float32

        def cast(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: np.asarray(v).astype(np.float32) for k, v in p.items()}

        def forward(p: dict[str, np.ndarray]) -> Any:
            loss = _evaluate(cast(p), x32, y, kind, ls, False)[0]
            return float(loss) if prec == "f32in" else loss

        def forward_backward(p: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
            loss, grads = _evaluate(cast(p), x32, y, kind, ls, True)
            grads = {k: g.astype(grad_dtype) for k, g in grads.items()}
            return (float(loss) if prec == "f32in" else loss), add_bug(grads)
    else:
        raise ValueError(f"unknown precision path {prec!r}; choose one of {PRECISIONS}")
    return RegimeModel(regime, params, forward, forward_backward, bug, tensor, factor)


def grid(scales=SCALES, nonlinearities=NONLINEARITIES, precisions=PRECISIONS,
         loss_scales=LOSS_SCALES, seeds=(0, 1, 2)) -> list[Regime]:
    """Every regime of the product of the given axes."""
    return [Regime(s, nl, pr, ls, sd) for nl in nonlinearities for pr in precisions
            for s in scales for ls in loss_scales for sd in seeds]
