"""Batch-norm and layer-norm models with hand-written backward passes, and their bugs."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.examples.zoo._core import (
    Grads,
    Params,
    ZooModel,
    bug_of,
    cast,
    make_model,
    softmax_ce,
)

EPS = 1e-5
"""Variance epsilon of both normalisations."""


def _normalize(z: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xhat, inv_std)`` of ``z`` normalised along ``axis`` (biased variance, eps = EPS)."""
    mu = z.mean(axis=axis, keepdims=True)
    zc = z - mu
    inv = 1 / np.sqrt((zc * zc).mean(axis=axis, keepdims=True) + EPS)
    return zc * inv, inv


def _normalize_backward(dxhat: np.ndarray, xhat: np.ndarray, inv: np.ndarray, axis: int) -> Any:
    """Gradient with respect to ``z`` of a normalisation, given the gradient of ``xhat``."""
    m = xhat.shape[axis]
    return (inv / m) * (
        m * dxhat
        - dxhat.sum(axis=axis, keepdims=True)
        - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True)
    )


_BN_BUGS = {
    "no_stats_grad": bug_of(
        ("bn_in.W", "bn_in.b"),
        "the batch-norm backward treats the batch mean and variance as constants "
        "(dz = dxhat * inv_std); the bias before batch norm then gets a non-zero gradient.",
    ),
    "swap_gamma_beta": bug_of(
        ("bn.gamma", "bn.beta"), "the gradients of gamma and beta (both (4,)) are swapped."
    ),
}


def batchnorm_mlp(bug: str | None = None) -> ZooModel:
    """Linear (with bias) -> batch norm -> tanh -> linear -> MSE; 3 -> 4 -> 2, batch 8.

    The bias ``bn_in.b`` feeds the batch norm, which subtracts the batch mean: its true gradient
    is exactly 0, while the analytic (a sum of terms that cancel) is ~1e-17.
    """
    rng = np.random.default_rng(81)
    n, d, h, k = 8, 3, 4, 2
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, k))
    params: Params = {
        "bn_in": {"W": rng.standard_normal((d, h)) / np.sqrt(d), "b": rng.standard_normal(h)},
        "bn": {"gamma": 1 + 0.3 * rng.standard_normal(h), "beta": 0.3 * rng.standard_normal(h)},
        "head": {"W": rng.standard_normal((h, k)) / np.sqrt(h), "b": 0.1 * rng.standard_normal(k)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        dt = p["bn_in"]["W"].dtype
        x = cast(X, dt)
        z = x @ p["bn_in"]["W"] + p["bn_in"]["b"]
        xhat, inv = _normalize(z, 0)
        a = np.tanh(p["bn"]["gamma"] * xhat + p["bn"]["beta"])
        out = a @ p["head"]["W"] + p["head"]["b"]
        r = out - cast(Y, dt)
        loss = (r * r).mean()
        if not need_grad:
            return float(loss), None
        dout = 2 * r / r.size
        dy = (dout @ p["head"]["W"].T) * (1 - a * a)
        g_gamma, g_beta = (dy * xhat).sum(axis=0), dy.sum(axis=0)
        dxhat = dy * p["bn"]["gamma"]
        dz = dxhat * inv if bug == "no_stats_grad" else _normalize_backward(dxhat, xhat, inv, 0)
        if bug == "swap_gamma_beta":
            g_gamma, g_beta = g_beta, g_gamma
        return float(loss), {
            "bn_in": {"W": x.T @ dz, "b": dz.sum(axis=0)},
            "bn": {"gamma": g_gamma, "beta": g_beta},
            "head": {"W": a.T @ dout, "b": dout.sum(axis=0)},
        }

    return make_model(
        "batchnorm_mlp", params, evaluate, bug=bug, bugs=_BN_BUGS,
        tags=("batchnorm", "tanh", "mse", "zero_grad"),
        description="Linear layer with bias, batch norm (training mode), tanh, linear head, MSE; "
        "the bias feeding batch norm has a true gradient of exactly 0 (analytic ~1e-17).",
    )


_LN_BUGS = {
    "missing_var_term": bug_of(
        ("ln_in.W", "ln_in.b"),
        "the layer-norm backward drops the variance term: dz = inv_std * (dxhat - mean(dxhat)).",
    ),
}


def _layernorm(base: str, dtype: type, seed: int, bug: str | None) -> ZooModel:
    rng = np.random.default_rng(seed)
    n, d, h, k = 5, 4, 6, 3
    X = rng.standard_normal((n, d)).astype(dtype)
    y = np.arange(n) % k
    rng.shuffle(y)

    def arr(*shape: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
        return (shift + scale * rng.standard_normal(shape)).astype(dtype)

    params: Params = {
        "ln_in": {"W": arr(d, h, scale=0.5), "b": arr(h, scale=0.5)},
        "ln": {"gamma": arr(h, scale=0.3, shift=1.0), "beta": arr(h, scale=0.3)},
        "head": {"W": arr(h, k, scale=0.6), "b": arr(k, scale=0.1)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        dt = p["ln_in"]["W"].dtype
        x = cast(X, dt)
        z = x @ p["ln_in"]["W"] + p["ln_in"]["b"]
        xhat, inv = _normalize(z, 1)
        a = np.tanh(p["ln"]["gamma"] * xhat + p["ln"]["beta"])
        logits = a @ p["head"]["W"] + p["head"]["b"]
        loss, dlogits, _ = softmax_ce(logits, y, need_grad)
        if not need_grad:
            return float(loss), None
        assert dlogits is not None
        dy = (dlogits @ p["head"]["W"].T) * (1 - a * a)
        dxhat = dy * p["ln"]["gamma"]
        if bug == "missing_var_term":
            dz = inv * (dxhat - dxhat.mean(axis=1, keepdims=True))
        else:
            dz = _normalize_backward(dxhat, xhat, inv, 1)
        return float(loss), {
            "ln_in": {"W": x.T @ dz, "b": dz.sum(axis=0)},
            "ln": {"gamma": (dy * xhat).sum(axis=0), "beta": dy.sum(axis=0)},
            "head": {"W": a.T @ dlogits, "b": dlogits.sum(axis=0)},
        }

    tags = ("layernorm", "tanh", "softmax_ce") + (("float32",) if dtype == np.float32 else ())
    return make_model(
        base, params, evaluate, bug=bug, bugs=_LN_BUGS, tags=tags,
        description="Linear layer, layer norm over features, tanh, softmax head "
        f"({dtype.__name__}).",
    )


def layernorm_mlp(bug: str | None = None) -> ZooModel:
    """Linear -> layer norm -> tanh -> linear -> softmax cross-entropy; 4 -> 6 -> 3, batch 5."""
    return _layernorm("layernorm_mlp", np.float64, 91, bug)


def layernorm_mlp_float32(bug: str | None = None) -> ZooModel:
    """:func:`layernorm_mlp` with float32 params and data, computed in float32."""
    return _layernorm("layernorm_mlp_float32", np.float32, 92, bug)
