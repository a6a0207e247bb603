r"""Reference numpy layers in the CS231n style, each with realistic backward bugs.

This module is a self-contained zoo of small neural-network building blocks used
to exercise (and demonstrate) numerical gradient checking.  Every layer follows
the familiar two-function convention::

    out, cache = X_forward(*inputs, **kwargs)
    grads = X_backward(dout, cache)      # one gradient per differentiable input

``grads`` is always a tuple, ordered like :attr:`LayerSpec.differentiable`.
Forward and backward passes never modify their arguments (inputs, ``dout`` or
the arrays stored in ``cache``) in place.

Layers
------
========================  =========================================  =====================
name                      inputs (differentiable in **bold**)        kwargs
========================  =========================================  =====================
``affine``                **x**, **w**, **b**
``relu``                  **x**
``leaky_relu``            **x**                                      ``alpha``
``sigmoid``               **x**
``tanh``                  **x**
``batchnorm``             **x**, **gamma**, **beta**                 ``eps``
``layernorm``             **x**, **gamma**, **beta**                 ``eps``
``dropout``               **x**                                      ``p``, ``seed``
``conv_naive``            **x**, **w**, **b**                        ``stride``, ``pad``
``max_pool_naive``        **x**                                      ``pool_height``,
                                                                     ``pool_width``,
                                                                     ``stride``
``rnn_step``              **x**, **h_prev**, **Wx**, **Wh**, **b**
``lstm_step``             **x**, **h_prev**, **c_prev**, **Wx**,
                          **Wh**, **b**
``embedding``             x (int indices), **W**
``softmax_loss`` (loss)   **x**, y (int labels)
``svm_loss`` (loss)       **x**, y (int labels)
========================  =========================================  =====================

Tuple outputs (``lstm_step``)
-----------------------------
``lstm_step_forward`` returns ``((next_h, next_c), cache)``: the *output* is the
tuple ``(next_h, next_c)``.  Accordingly ``lstm_step_backward`` takes
``dout = (dnext_h, dnext_c)``, a tuple of the same structure.  The scalar whose
gradient the backward pass computes is
:math:`L = \sum(\text{next\_h} \odot \text{dnext\_h}) + \sum(\text{next\_c} \odot \text{dnext\_c})`.
The registry marks such layers with ``LayerSpec.tuple_output = True``.

Losses (``is_loss``)
--------------------
``softmax_loss`` and ``svm_loss`` follow the CS231n convention of returning the
loss *and* its gradient in one call: ``loss, dx = softmax_loss(x, y)``.  They are
registered with ``LayerSpec.is_loss = True``; for these specs ``forward`` and
``backward`` are both the loss function itself (signature ``(x, y) -> (loss, dx)``),
and :func:`buggy_backward` returns a function with that same signature whose
``loss`` value is correct but whose ``dx`` carries the bug.  The labels ``y`` are
not differentiable.  :func:`loss_as_layer` adapts a loss function to the
``forward``/``backward`` convention if that is more convenient.

Registry
--------
:data:`LAYERS` maps a layer name to a :class:`LayerSpec` describing its inputs,
a deterministic input factory (``make_inputs(rng)``), the default kwargs and the
catalogue of bugs (:class:`LayerBug`).  :func:`buggy_backward` returns a backward
function with a named bug.  With the default ``make_inputs`` (seed 0) every bug
changes the gradients of exactly the inputs listed in ``LayerBug.affects`` and
leaves the other gradients bit-for-bit equal.

Kinks
-----
For the non-smooth layers (``relu``, ``leaky_relu``, ``max_pool_naive``,
``svm_loss``) ``make_inputs`` keeps all values at least :data:`KINK_DISTANCE`
away from the kinks (zero for the ReLUs, ties inside a pooling window, zero
hinge margins), so central finite differences with small steps are valid.

Shapes
------
Some ``make_inputs`` use square shapes on purpose: ``affine`` uses a square
weight (D == M) and ``layernorm`` uses N == D so that transpose / wrong-axis
bugs produce *wrong values* rather than shape errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "KINK_DISTANCE",
    "LAYERS",
    "LayerBug",
    "LayerSpec",
    "affine_backward",
    "affine_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "buggy_backward",
    "conv_naive_backward",
    "conv_naive_forward",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "layernorm_backward",
    "layernorm_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "loss_as_layer",
    "lstm_step_backward",
    "lstm_step_forward",
    "max_pool_naive_backward",
    "max_pool_naive_forward",
    "relu_backward",
    "relu_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "svm_loss",
    "tanh_backward",
    "tanh_forward",
]

#: Minimum distance of default inputs from a kink of a non-smooth layer.
KINK_DISTANCE = 0.05

Cache = tuple[Any, ...]
Grads = tuple[np.ndarray, ...]


# ---------------------------------------------------------------------------
# Registry types
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerBug:
    """A realistic mistake in a layer's backward pass.

    Attributes
    ----------
    name : str
        Short identifier, unique within the layer.
    description : str
        One plain sentence describing the mistake.
    affects : frozenset of str
        Names of the differentiable inputs whose gradients the bug changes.
        The gradients of all other differentiable inputs stay exactly equal.
    """

    name: str
    description: str
    affects: frozenset[str]


@dataclass(frozen=True)
class LayerSpec:
    """Description of a reference layer.

    Attributes
    ----------
    name : str
        Registry key.
    forward : callable
        ``forward(*inputs, **kwargs) -> (out, cache)``; for losses
        ``loss_fn(x, y) -> (loss, dx)``.
    backward : callable
        ``backward(dout, cache) -> grads`` with one gradient per name in
        ``differentiable``; for losses the loss function itself.
    input_names : tuple of str
        All positional inputs of ``forward``, in order.
    differentiable : tuple of str
        The inputs that receive gradients, in the order ``backward`` returns them.
    make_inputs : callable
        ``make_inputs(rng) -> {name: array}`` giving small deterministic inputs
        (float64, except integer index/label arrays).
    kwargs : dict
        Default keyword arguments of ``forward``.
    bugs : dict of str to LayerBug
        Catalogue of backward bugs, see :func:`buggy_backward`.
    is_loss : bool
        True for CS231n-style losses returning ``(loss, dx)`` directly.
    tuple_output : bool
        True if the output (and hence ``dout``) is a tuple of arrays.
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    input_names: tuple[str, ...]
    differentiable: tuple[str, ...]
    make_inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bugs: dict[str, LayerBug] = field(default_factory=dict)
    is_loss: bool = False
    tuple_output: bool = False


# ---------------------------------------------------------------------------
# Affine
# ---------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Fully connected layer.

    .. math:: \text{out} = \tilde x W + b, \qquad \tilde x = \operatorname{reshape}(x, (N, D))

    Parameters
    ----------
    x : ndarray, shape (N, d_1, ..., d_k)
        Input; each example is flattened to ``D = d_1 * ... * d_k`` values.
    w : ndarray, shape (D, M)
        Weights.
    b : ndarray, shape (M,)
        Biases.

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple
        ``(x, w)``.
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def _affine_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, w = cache
    n = x.shape[0]
    xf = x.reshape(n, -1)
    dx = (dout @ (w if bug == "dx_missing_transpose" else w.T)).reshape(x.shape)
    dw = xf.T @ dout
    if bug == "dw_transposed":
        dw = dw.T
    elif bug == "dw_divided_by_n":
        dw = dw / n
    db = dout[0].copy() if bug == "db_first_row" else dout.sum(axis=0)
    return dx, dw, db


def affine_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`affine_forward`.

    .. math::
        dx = \operatorname{reshape}(d_{out} W^\top), \quad
        dW = \tilde x^\top d_{out}, \quad
        db = \sum_n d_{out, n}

    Returns
    -------
    dx, dw, db : ndarray
        Gradients with the shapes of ``x``, ``w`` and ``b``.
    """
    return _affine_backward(dout, cache, None)


def _affine_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Square w (D == M == 6) so that transpose bugs give wrong values, not shape errors.
    return {
        "x": rng.normal(size=(4, 2, 3)),
        "w": rng.normal(size=(6, 6)),
        "b": rng.normal(size=(6,)),
    }


# ---------------------------------------------------------------------------
# Elementwise activations
# ---------------------------------------------------------------------------


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Rectified linear unit, :math:`\text{out} = \max(0, x)`.

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : tuple
        ``(x,)``.
    """
    return np.maximum(x, 0.0), (x,)


def _relu_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    (x,) = cache
    if bug == "mask_wrong_sign":
        dx = dout * (x < 0)
    elif bug == "pass_through":
        dx = dout.copy()
    else:
        dx = dout * (x > 0)
    return (dx,)


def relu_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`relu_forward`, :math:`dx = d_{out} \cdot [x > 0]`.

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _relu_backward(dout, cache, None)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random values of both signs with ``KINK_DISTANCE <= |v| <= 1.5``."""
    sign = rng.choice([-1.0, 1.0], size=shape)
    return sign * rng.uniform(2 * KINK_DISTANCE, 1.5, size=shape)


def _relu_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": _away_from_zero(rng, (4, 5))}


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, Cache]:
    r"""Leaky ReLU, :math:`\text{out} = x` for :math:`x > 0` and :math:`\alpha x` otherwise.

    Parameters
    ----------
    x : ndarray
    alpha : float
        Slope for negative inputs.

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : tuple
        ``(x, alpha)``.
    """
    return np.where(x > 0, x, alpha * x), (x, alpha)


def _leaky_relu_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, alpha = cache
    if bug == "slopes_swapped":
        dx = dout * np.where(x > 0, alpha, 1.0)
    elif bug == "negative_slope_zero":
        dx = dout * (x > 0)
    else:
        dx = dout * np.where(x > 0, 1.0, alpha)
    return (dx,)


def leaky_relu_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`leaky_relu_forward`.

    .. math:: dx = d_{out} \cdot (1 \text{ if } x > 0 \text{ else } \alpha)

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _leaky_relu_backward(dout, cache, None)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ez = np.exp(x[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Logistic sigmoid, :math:`\sigma(x) = 1 / (1 + e^{-x})` (computed stably).

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : tuple
        ``(x, out)``.
    """
    out = _sigmoid(x)
    return out, (x, out)


def _sigmoid_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, s = cache
    if bug == "derivative_of_input":
        dx = dout * x * (1.0 - x)
    elif bug == "missing_one_minus":
        dx = dout * s
    else:
        dx = dout * s * (1.0 - s)
    return (dx,)


def sigmoid_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`sigmoid_forward`, :math:`dx = d_{out}\,\sigma(x)(1 - \sigma(x))`.

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _sigmoid_backward(dout, cache, None)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Hyperbolic tangent, :math:`\text{out} = \tanh(x)`.

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : tuple
        ``(x, out)``.
    """
    out = np.tanh(x)
    return out, (x, out)


def _tanh_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, t = cache
    if bug == "derivative_of_input":
        dx = dout * (1.0 - x**2)
    elif bug == "missing_square":
        dx = dout * (1.0 - t)
    else:
        dx = dout * (1.0 - t**2)
    return (dx,)


def tanh_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`tanh_forward`, :math:`dx = d_{out}\,(1 - \tanh^2 x)`.

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _tanh_backward(dout, cache, None)


def _smooth_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(4, 5))}


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, Cache]:
    r"""Batch normalisation in training mode (statistics of the current batch).

    .. math::
        \mu = \frac1N \sum_n x_n, \quad
        \sigma^2 = \frac1N \sum_n (x_n - \mu)^2, \quad
        \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad
        \text{out} = \gamma \hat x + \beta

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        Scale and shift.
    eps : float
        Added to the (biased) variance for numerical stability.

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
        ``(x, xhat, gamma, mu, inv_std, eps)``.
    """
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    out = gamma * xhat + beta
    return out, (x, xhat, gamma, mu, inv_std, eps)


def _batchnorm_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, xhat, gamma, mu, inv_std, eps = cache
    n = x.shape[0]
    dbeta = dout.sum(axis=0)
    if bug == "dgamma_unnormalised":
        dgamma = (dout * (x - mu)).sum(axis=0)
    else:
        dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    if bug == "missing_mean_terms":
        dx = dxhat * inv_std
    else:
        scale = (
            1.0 / np.sqrt(x.var(axis=0, ddof=1) + eps) if bug == "unbiased_variance" else inv_std
        )
        dx = (scale / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def batchnorm_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`batchnorm_forward`.

    With :math:`g = d_{out}\,\gamma` and :math:`s = (\sigma^2 + \epsilon)^{-1/2}`:

    .. math::
        dx = \frac{s}{N}\Big(N g - \sum_n g_n - \hat x \sum_n g_n \hat x_n\Big), \quad
        d\gamma = \sum_n d_{out,n} \hat x_n, \quad
        d\beta = \sum_n d_{out,n}

    Returns
    -------
    dx, dgamma, dbeta : ndarray
    """
    return _batchnorm_backward(dout, cache, None)


def _batchnorm_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "x": 1.0 + 2.0 * rng.normal(size=(4, 3)),
        "gamma": 1.0 + 0.5 * rng.normal(size=(3,)),
        "beta": rng.normal(size=(3,)),
    }


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, Cache]:
    r"""Layer normalisation: normalise each example over its features.

    .. math::
        \mu_n = \frac1D \sum_d x_{nd}, \quad
        \sigma_n^2 = \frac1D \sum_d (x_{nd} - \mu_n)^2, \quad
        \hat x_{nd} = \frac{x_{nd} - \mu_n}{\sqrt{\sigma_n^2 + \epsilon}}, \quad
        \text{out} = \gamma \hat x + \beta

    Parameters
    ----------
    x : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    eps : float

    Returns
    -------
    out : ndarray, shape (N, D)
    cache : tuple
        ``(xhat, gamma, inv_std)`` with ``inv_std`` of shape (N, 1).
    """
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    out = gamma * xhat + beta
    return out, (xhat, gamma, inv_std)


def _layernorm_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    xhat, gamma, inv_std = cache
    dbeta = dout.mean(axis=0) if bug == "dbeta_mean" else dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=1 if bug == "dgamma_wrong_axis" else 0)
    dxhat = dout * gamma
    if bug == "dx_reduced_over_batch":
        n = xhat.shape[0]
        dx = (inv_std / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    else:
        d = xhat.shape[1]
        dx = (inv_std / d) * (
            d * dxhat
            - dxhat.sum(axis=1, keepdims=True)
            - xhat * (dxhat * xhat).sum(axis=1, keepdims=True)
        )
    return dx, dgamma, dbeta


def layernorm_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`layernorm_forward`.

    With :math:`g = d_{out}\,\gamma` and :math:`s_n = (\sigma_n^2 + \epsilon)^{-1/2}`:

    .. math::
        dx_{n} = \frac{s_n}{D}\Big(D g_n - \sum_d g_{nd} - \hat x_n \sum_d g_{nd} \hat x_{nd}\Big),
        \quad d\gamma = \sum_n d_{out,n} \hat x_n, \quad d\beta = \sum_n d_{out,n}

    Returns
    -------
    dx, dgamma, dbeta : ndarray
    """
    return _layernorm_backward(dout, cache, None)


def _layernorm_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # N == D so that reductions over the wrong axis give wrong values, not shape errors.
    return {
        "x": 1.0 + 2.0 * rng.normal(size=(5, 5)),
        "gamma": 1.0 + 0.5 * rng.normal(size=(5,)),
        "beta": rng.normal(size=(5,)),
    }


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


def _keep_mask(shape: tuple[int, ...], p: float, seed: int | None) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < p


def dropout_forward(
    x: np.ndarray, p: float = 0.5, seed: int | None = None
) -> tuple[np.ndarray, Cache]:
    r"""Inverted dropout (training mode).

    Each unit is *kept* with probability ``p`` (the CS231n convention) and kept
    units are scaled by :math:`1/p`:

    .. math:: m_i \sim \text{Bernoulli}(p), \qquad \text{out} = x \odot m / p

    The mask is drawn from ``np.random.default_rng(seed)``, so the same seed
    gives the same mask (which is what makes finite differences meaningful).

    Parameters
    ----------
    x : ndarray
    p : float
        Keep probability, ``0 < p <= 1``.
    seed : int or None
        Seed of the mask generator.

    Returns
    -------
    out : ndarray, same shape as ``x``
    cache : tuple
        ``(mask, p, seed)`` with the boolean keep mask.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"keep probability p must be in (0, 1], got {p}")
    mask = _keep_mask(x.shape, p, seed)
    return x * mask / p, (mask, p, seed)


def _dropout_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    mask, p, seed = cache
    if bug == "missing_scale":
        dx = dout * mask
    elif bug == "different_mask":
        other = _keep_mask(mask.shape, p, None if seed is None else seed + 1)
        dx = dout * other / p
    else:
        dx = dout * mask / p
    return (dx,)


def dropout_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`dropout_forward`, :math:`dx = d_{out} \odot m / p`.

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _dropout_backward(dout, cache, None)


def _dropout_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(4, 5))}


# ---------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------


def _conv_out_size(size: int, k: int, stride: int, pad: int) -> int:
    span = size + 2 * pad - k
    if span < 0 or span % stride != 0:
        raise ValueError(
            f"invalid conv geometry: size={size}, kernel={k}, stride={stride}, pad={pad}"
        )
    return 1 + span // stride


def conv_naive_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Cache]:
    r"""Naive 2-D convolution (cross-correlation, as in every DL framework).

    With :math:`x_p` the input zero-padded by ``pad`` on each spatial side:

    .. math::
        \text{out}[n, f, i, j] = b_f + \sum_{c, k, l}
            x_p[n, c, iS + k, jS + l] \, w[f, c, k, l]

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (F, C, HH, WW)
    b : ndarray, shape (F,)
    stride : int
    pad : int

    Returns
    -------
    out : ndarray, shape (N, F, H', W')
        ``H' = 1 + (H + 2 pad - HH) / stride`` and likewise for ``W'``.
    cache : tuple
        ``(x, w, stride, pad)``.
    """
    n, _, h, wd = x.shape
    f, _, hh, ww = w.shape
    ho = _conv_out_size(h, hh, stride, pad)
    wo = _conv_out_size(wd, ww, stride, pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, stride, pad)


def _conv_naive_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, w, stride, pad = cache
    _, _, h, wd = x.shape
    _, _, hh, ww = w.shape
    _, _, ho, wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    w_dx = w[:, :, ::-1, ::-1] if bug == "dx_flipped_kernel" else w
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * stride, i * stride + hh)
            cols = slice(j * stride, j * stride + ww)
            win = xp[:, :, rows, cols]
            if bug == "dw_flipped_window":
                win = win[:, :, ::-1, ::-1]
            d = dout[:, :, i, j]
            dw += np.tensordot(d, win, axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(d, w_dx, axes=([1], [0]))
    start = pad
    if bug == "dx_crop_shifted":
        if pad < 1:
            raise ValueError("the dx_crop_shifted bug needs pad >= 1")
        start = pad - 1
    dx = dxp[:, :, start : start + h, start : start + wd].copy()
    return dx, dw, db


def conv_naive_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`conv_naive_forward`.

    .. math::
        dx_p[n, c, iS + k, jS + l] \mathrel{+}= \sum_f d_{out}[n, f, i, j]\, w[f, c, k, l], \quad
        dw[f, c, k, l] = \sum_{n, i, j} d_{out}[n, f, i, j]\, x_p[n, c, iS + k, jS + l],

    :math:`db_f = \sum_{n,i,j} d_{out}[n, f, i, j]`, and ``dx`` is ``dx_p`` with the
    padding cropped off.

    Returns
    -------
    dx, dw, db : ndarray
    """
    return _conv_naive_backward(dout, cache, None)


def _conv_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(size=(2, 2, 5, 5)),
        "w": rng.normal(size=(3, 2, 3, 3)),
        "b": rng.normal(size=(3,)),
    }


def max_pool_naive_forward(
    x: np.ndarray, pool_height: int = 2, pool_width: int = 2, stride: int = 2
) -> tuple[np.ndarray, Cache]:
    r"""Naive max pooling.

    .. math:: \text{out}[n, c, i, j] = \max_{k < P_h,\, l < P_w} x[n, c, iS + k, jS + l]

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_height, pool_width : int
        Window size.
    stride : int

    Returns
    -------
    out : ndarray, shape (N, C, H', W')
        ``H' = 1 + (H - pool_height) / stride`` and likewise for ``W'``.
    cache : tuple
        ``(x, pool_height, pool_width, stride)``.
    """
    n, c, h, wd = x.shape
    ho = _conv_out_size(h, pool_height, stride, 0)
    wo = _conv_out_size(wd, pool_width, stride, 0)
    out = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = x[
                :, :, i * stride : i * stride + pool_height, j * stride : j * stride + pool_width
            ]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out, (x, pool_height, pool_width, stride)


def _max_pool_naive_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, ph, pw, stride = cache
    n, c, _, _ = x.shape
    _, _, ho, wo = dout.shape
    dx = np.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * stride, i * stride + ph)
            cols = slice(j * stride, j * stride + pw)
            flat = x[:, :, rows, cols].reshape(n, c, ph * pw)
            route = np.zeros_like(flat)
            if bug == "route_to_all":
                route[:] = 1.0
            elif bug == "route_to_first":
                route[:, :, 0] = 1.0
            else:
                np.put_along_axis(route, flat.argmax(axis=2)[:, :, None], 1.0, axis=2)
            dx[:, :, rows, cols] += (route * dout[:, :, i, j, None]).reshape(n, c, ph, pw)
    return (dx,)


def max_pool_naive_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`max_pool_naive_forward`.

    Each upstream gradient is routed to the (first) argmax of its window:

    .. math::
        dx[n, c, iS + k, jS + l] \mathrel{+}= d_{out}[n, c, i, j] \cdot
        [(k, l) = \operatorname{argmax} \text{ of the window}]

    Returns
    -------
    (dx,) : tuple of ndarray
    """
    return _max_pool_naive_backward(dout, cache, None)


def _max_pool_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Distinct values spaced by 2 * KINK_DISTANCE: no ties within any window.
    shape = (2, 2, 4, 4)
    size = int(np.prod(shape))
    vals = (rng.permutation(size) - size / 2) * (2 * KINK_DISTANCE)
    return {"x": vals.reshape(shape).astype(np.float64)}


# ---------------------------------------------------------------------------
# Recurrent cells
# ---------------------------------------------------------------------------


def rnn_step_forward(
    x: np.ndarray, h_prev: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, Cache]:
    r"""One step of a vanilla (tanh) RNN.

    .. math:: a = x W_x + h_{prev} W_h + b, \qquad h_{next} = \tanh(a)

    Parameters
    ----------
    x : ndarray, shape (N, D)
    h_prev : ndarray, shape (N, H)
    Wx : ndarray, shape (D, H)
    Wh : ndarray, shape (H, H)
    b : ndarray, shape (H,)

    Returns
    -------
    next_h : ndarray, shape (N, H)
    cache : tuple
        ``(x, h_prev, Wx, Wh, a, next_h)``.
    """
    a = x @ Wx + h_prev @ Wh + b
    next_h = np.tanh(a)
    return next_h, (x, h_prev, Wx, Wh, a, next_h)


def _rnn_step_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, h_prev, Wx, Wh, a, next_h = cache
    if bug == "tanh_derivative_of_preactivation":
        da = dout * (1.0 - a**2)
    elif bug == "missing_tanh_derivative":
        da = dout.copy()
    else:
        da = dout * (1.0 - next_h**2)
    dx = da @ Wx.T
    dh_prev = da @ Wh.T
    dWx = x.T @ da
    dWh = (next_h if bug == "dWh_uses_next_h" else h_prev).T @ da
    db = da.sum(axis=0)
    return dx, dh_prev, dWx, dWh, db


def rnn_step_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`rnn_step_forward`.

    .. math::
        da = d_{out} \odot (1 - h_{next}^2), \quad
        dx = da\, W_x^\top, \quad dh_{prev} = da\, W_h^\top, \quad
        dW_x = x^\top da, \quad dW_h = h_{prev}^\top da, \quad db = \textstyle\sum_n da_n

    Returns
    -------
    dx, dh_prev, dWx, dWh, db : ndarray
    """
    return _rnn_step_backward(dout, cache, None)


def _rnn_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, d, h = 3, 4, 5
    return {
        "x": rng.normal(size=(n, d)),
        "h_prev": rng.normal(size=(n, h)),
        "Wx": 0.5 * rng.normal(size=(d, h)),
        "Wh": 0.5 * rng.normal(size=(h, h)),
        "b": 0.5 * rng.normal(size=(h,)),
    }


def lstm_step_forward(
    x: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    b: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray], Cache]:
    r"""One step of an LSTM; the output is the tuple ``(next_h, next_c)``.

    Gates are stacked in the order input, forget, output, candidate:

    .. math::
        a = x W_x + h_{prev} W_h + b = [a_i, a_f, a_o, a_g], \quad
        i, f, o = \sigma(a_i), \sigma(a_f), \sigma(a_o), \quad g = \tanh(a_g)

    .. math::
        c_{next} = f \odot c_{prev} + i \odot g, \qquad
        h_{next} = o \odot \tanh(c_{next})

    Parameters
    ----------
    x : ndarray, shape (N, D)
    h_prev, c_prev : ndarray, shape (N, H)
    Wx : ndarray, shape (D, 4H)
    Wh : ndarray, shape (H, 4H)
    b : ndarray, shape (4H,)

    Returns
    -------
    (next_h, next_c) : tuple of ndarray, each of shape (N, H)
    cache : tuple
    """
    hd = h_prev.shape[1]
    a = x @ Wx + h_prev @ Wh + b
    i = _sigmoid(a[:, :hd])
    f = _sigmoid(a[:, hd : 2 * hd])
    o = _sigmoid(a[:, 2 * hd : 3 * hd])
    g = np.tanh(a[:, 3 * hd :])
    next_c = f * c_prev + i * g
    tc = np.tanh(next_c)
    next_h = o * tc
    cache = (x, h_prev, c_prev, Wx, Wh, i, f, o, g, next_c, tc)
    return (next_h, next_c), cache


def _lstm_step_backward(
    dout: tuple[np.ndarray, np.ndarray], cache: Cache, bug: str | None
) -> Grads:
    if not (isinstance(dout, tuple | list) and len(dout) == 2):
        raise TypeError("lstm_step_backward expects dout = (dnext_h, dnext_c)")
    dnext_h, dnext_c = dout
    x, h_prev, c_prev, Wx, Wh, i, f, o, g, next_c, tc = cache
    dc_from_h = dnext_h * o * (1.0 - tc**2)
    dc = dc_from_h if bug == "missing_dnext_c" else dnext_c + dc_from_h
    do = dnext_h * tc
    di = dc * g
    df = dc * (next_c if bug == "forget_gate_uses_next_c" else c_prev)
    dg = dc * i
    dc_prev = dc * f
    if bug == "sigmoid_derivative_as_s":
        dai, daf, dao = di * i, df * f, do * o
    else:
        dai, daf, dao = di * i * (1.0 - i), df * f * (1.0 - f), do * o * (1.0 - o)
    dag = dg * (1.0 - g**2)
    da = np.concatenate([dai, daf, dao, dag], axis=1)
    dx = da @ Wx.T
    dh_prev = da @ Wh.T
    dWx = x.T @ da
    dWh = h_prev.T @ da
    db = da.sum(axis=0)
    return dx, dh_prev, dc_prev, dWx, dWh, db


def lstm_step_backward(dout: tuple[np.ndarray, np.ndarray], cache: Cache) -> Grads:
    r"""Backward pass of :func:`lstm_step_forward`; ``dout = (dnext_h, dnext_c)``.

    .. math::
        dc = d c_{next} + d h_{next} \odot o \odot (1 - \tanh^2 c_{next}), \quad
        dc_{prev} = dc \odot f

    .. math::
        da_i = dc\, g\, i(1-i), \quad da_f = dc\, c_{prev}\, f(1-f), \quad
        da_o = dh_{next} \tanh(c_{next})\, o(1-o), \quad da_g = dc\, i\,(1-g^2)

    and then, with :math:`da = [da_i, da_f, da_o, da_g]`, the affine gradients
    :math:`dx = da W_x^\top`, :math:`dh_{prev} = da W_h^\top`, :math:`dW_x = x^\top da`,
    :math:`dW_h = h_{prev}^\top da`, :math:`db = \sum_n da_n`.

    Returns
    -------
    dx, dh_prev, dc_prev, dWx, dWh, db : ndarray
    """
    return _lstm_step_backward(dout, cache, None)


def _lstm_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, d, h = 3, 4, 3
    return {
        "x": rng.normal(size=(n, d)),
        "h_prev": rng.normal(size=(n, h)),
        "c_prev": rng.normal(size=(n, h)),
        "Wx": 0.5 * rng.normal(size=(d, 4 * h)),
        "Wh": 0.5 * rng.normal(size=(h, 4 * h)),
        "b": 0.5 * rng.normal(size=(4 * h,)),
    }


# ---------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------


def embedding_forward(x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, Cache]:
    r"""Word embedding lookup, :math:`\text{out}[n, t] = W[x_{nt}]`.

    Parameters
    ----------
    x : ndarray of int, shape (N, T)
        Indices into the vocabulary (not differentiable).
    W : ndarray, shape (V, D)
        Embedding matrix.

    Returns
    -------
    out : ndarray, shape (N, T, D)
    cache : tuple
        ``(x, W.shape)``.
    """
    return W[x], (x, W.shape)


def _embedding_backward(dout: np.ndarray, cache: Cache, bug: str | None) -> Grads:
    x, w_shape = cache
    dW = np.zeros(w_shape, dtype=dout.dtype)
    if bug == "assignment_instead_of_accumulation":
        dW[x] = dout
    elif bug == "fancy_index_iadd":
        dW[x] += dout  # buffered: repeated indices are written once, not summed
    else:
        np.add.at(dW, x, dout)
    return (dW,)


def embedding_backward(dout: np.ndarray, cache: Cache) -> Grads:
    r"""Backward pass of :func:`embedding_forward`.

    .. math:: dW[v] = \sum_{(n, t):\, x_{nt} = v} d_{out}[n, t]

    (accumulated with ``np.add.at`` so that repeated indices sum).

    Returns
    -------
    (dW,) : tuple of ndarray
    """
    return _embedding_backward(dout, cache, None)


def _embedding_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # 12 indices drawn from a vocabulary of 5: repeated indices are guaranteed.
    return {
        "x": rng.integers(0, 5, size=(3, 4)),
        "W": rng.normal(size=(5, 3)),
    }


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _softmax_loss(x: np.ndarray, y: np.ndarray, bug: str | None) -> tuple[float, np.ndarray]:
    n = x.shape[0]
    rows = np.arange(n)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[rows, y].mean())
    dx = np.exp(log_probs)
    if bug == "one_hot_added":
        dx[rows, y] += 1.0
    elif bug != "missing_one_hot":
        dx[rows, y] -= 1.0
    if bug != "no_divide_by_n":
        dx /= n
    return loss, dx


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Softmax cross-entropy loss averaged over the batch (CS231n style).

    .. math::
        p_{nc} = \frac{e^{x_{nc}}}{\sum_k e^{x_{nk}}}, \quad
        L = -\frac1N \sum_n \log p_{n y_n}, \quad
        \frac{\partial L}{\partial x_{nc}} = \frac{p_{nc} - [c = y_n]}{N}

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Class scores.
    y : ndarray of int, shape (N,)
        Labels in ``[0, C)`` (not differentiable).

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C)
    """
    return _softmax_loss(x, y, None)


def _svm_loss(x: np.ndarray, y: np.ndarray, bug: str | None) -> tuple[float, np.ndarray]:
    n = x.shape[0]
    rows = np.arange(n)
    raw = x - x[rows, y][:, None] + 1.0
    margins = np.maximum(raw, 0.0)
    margins[rows, y] = 0.0
    loss = float(margins.sum() / n)
    dx = (margins > 0).astype(np.float64)
    if bug == "counts_correct_class_margin":
        counts = (raw > 0).sum(axis=1)  # the correct class has margin 1 > 0 and is counted
    else:
        counts = dx.sum(axis=1)
    dx[rows, y] = -counts
    if bug != "no_divide_by_n":
        dx /= n
    return loss, dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Multiclass SVM (hinge) loss averaged over the batch (CS231n style).

    .. math::
        m_{nc} = \max(0,\, x_{nc} - x_{n y_n} + 1) \;(c \ne y_n), \quad
        L = \frac1N \sum_n \sum_{c \ne y_n} m_{nc}

    .. math::
        \frac{\partial L}{\partial x_{nc}} = \frac{[m_{nc} > 0]}{N} \;(c \ne y_n), \qquad
        \frac{\partial L}{\partial x_{n y_n}} = -\frac1N \sum_{c \ne y_n} [m_{nc} > 0]

    Parameters
    ----------
    x : ndarray, shape (N, C)
        Class scores.
    y : ndarray of int, shape (N,)
        Labels in ``[0, C)`` (not differentiable).

    Returns
    -------
    loss : float
    dx : ndarray, shape (N, C)
    """
    return _svm_loss(x, y, None)


def _softmax_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, c = 5, 4
    return {"x": rng.normal(size=(n, c)), "y": rng.integers(0, c, size=n)}


def _svm_inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Resample until every hinge margin is at least KINK_DISTANCE away from zero.
    n, c = 5, 4
    rows = np.arange(n)
    y = rng.integers(0, c, size=n)
    while True:
        x = rng.normal(size=(n, c))
        raw = x - x[rows, y][:, None] + 1.0
        raw[rows, y] = np.inf
        if np.all(np.abs(raw) >= KINK_DISTANCE):
            return {"x": x, "y": y}


def loss_as_layer(
    loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
) -> tuple[Callable[..., tuple[float, Cache]], Callable[..., Grads]]:
    r"""Adapt a CS231n loss ``(x, y) -> (loss, dx)`` to the forward/backward convention.

    Returns
    -------
    forward : callable
        ``forward(x, y) -> (loss, cache)``.
    backward : callable
        ``backward(dout, cache) -> (dout * dx,)`` for a scalar upstream ``dout``.
    """

    def forward(x: np.ndarray, y: np.ndarray) -> tuple[float, Cache]:
        loss, dx = loss_fn(x, y)
        return loss, (dx,)

    def backward(dout: float, cache: Cache) -> Grads:
        (dx,) = cache
        return (dout * dx,)

    forward.__name__ = f"{getattr(loss_fn, '__name__', 'loss')}_forward"
    backward.__name__ = f"{getattr(loss_fn, '__name__', 'loss')}_backward"
    return forward, backward


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def _bugs(*items: tuple[str, str, tuple[str, ...]]) -> dict[str, LayerBug]:
    return {name: LayerBug(name, desc, frozenset(affects)) for name, desc, affects in items}


_RNN_ALL = ("x", "h_prev", "Wx", "Wh", "b")
_LSTM_GATES = ("x", "h_prev", "Wx", "Wh", "b")
_LSTM_ALL = ("x", "h_prev", "c_prev", "Wx", "Wh", "b")

LAYERS: dict[str, LayerSpec] = {
    "affine": LayerSpec(
        name="affine",
        forward=affine_forward,
        backward=affine_backward,
        input_names=("x", "w", "b"),
        differentiable=("x", "w", "b"),
        make_inputs=_affine_inputs,
        bugs=_bugs(
            ("dx_missing_transpose", "dx is computed as dout @ w instead of dout @ w.T.", ("x",)),
            ("dw_transposed", "dw is computed as (x.T @ dout).T, i.e. transposed.", ("w",)),
            ("dw_divided_by_n", "dw is divided by the batch size N.", ("w",)),
            ("db_first_row", "db takes row 0 of dout instead of summing over the batch.", ("b",)),
        ),
    ),
    "relu": LayerSpec(
        name="relu",
        forward=relu_forward,
        backward=relu_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_relu_inputs,
        bugs=_bugs(
            ("mask_wrong_sign", "The gradient is masked with x < 0 instead of x > 0.", ("x",)),
            ("pass_through", "The gradient passes through everywhere, unmasked.", ("x",)),
        ),
    ),
    "leaky_relu": LayerSpec(
        name="leaky_relu",
        forward=leaky_relu_forward,
        backward=leaky_relu_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_relu_inputs,
        kwargs={"alpha": 0.1},
        bugs=_bugs(
            (
                "negative_slope_zero",
                "The negative slope alpha is forgotten, giving the plain ReLU gradient.",
                ("x",),
            ),
            (
                "slopes_swapped",
                "The slope alpha is applied to positive inputs and 1 to negative inputs.",
                ("x",),
            ),
        ),
    ),
    "sigmoid": LayerSpec(
        name="sigmoid",
        forward=sigmoid_forward,
        backward=sigmoid_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_smooth_inputs,
        bugs=_bugs(
            (
                "derivative_of_input",
                "The derivative s(1 - s) is evaluated at the input x instead of the output s.",
                ("x",),
            ),
            ("missing_one_minus", "The derivative is taken as s instead of s(1 - s).", ("x",)),
        ),
    ),
    "tanh": LayerSpec(
        name="tanh",
        forward=tanh_forward,
        backward=tanh_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_smooth_inputs,
        bugs=_bugs(
            (
                "derivative_of_input",
                "The derivative 1 - t**2 is evaluated at the input x instead of the output t.",
                ("x",),
            ),
            ("missing_square", "The derivative is taken as 1 - t instead of 1 - t**2.", ("x",)),
        ),
    ),
    "batchnorm": LayerSpec(
        name="batchnorm",
        forward=batchnorm_forward,
        backward=batchnorm_backward,
        input_names=("x", "gamma", "beta"),
        differentiable=("x", "gamma", "beta"),
        make_inputs=_batchnorm_inputs,
        kwargs={"eps": 1e-5},
        bugs=_bugs(
            (
                "missing_mean_terms",
                "dx ignores the dependence of the batch mean and variance on x.",
                ("x",),
            ),
            (
                "unbiased_variance",
                "dx uses the unbiased (N - 1) variance while the forward pass used the biased one.",
                ("x",),
            ),
            (
                "dgamma_unnormalised",
                "dgamma multiplies dout by x - mean instead of the normalised xhat.",
                ("gamma",),
            ),
        ),
    ),
    "layernorm": LayerSpec(
        name="layernorm",
        forward=layernorm_forward,
        backward=layernorm_backward,
        input_names=("x", "gamma", "beta"),
        differentiable=("x", "gamma", "beta"),
        make_inputs=_layernorm_inputs,
        kwargs={"eps": 1e-5},
        bugs=_bugs(
            (
                "dgamma_wrong_axis",
                "dgamma sums dout * xhat over the feature axis instead of the batch axis.",
                ("gamma",),
            ),
            (
                "dx_reduced_over_batch",
                "dx reduces over the batch axis as in batchnorm instead of the feature axis.",
                ("x",),
            ),
            ("dbeta_mean", "dbeta averages dout over the batch instead of summing.", ("beta",)),
        ),
    ),
    "dropout": LayerSpec(
        name="dropout",
        forward=dropout_forward,
        backward=dropout_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_dropout_inputs,
        kwargs={"p": 0.6, "seed": 0},
        bugs=_bugs(
            ("missing_scale", "The backward pass forgets to scale the mask by 1 / p.", ("x",)),
            (
                "different_mask",
                "The backward pass draws a fresh mask instead of reusing the forward mask.",
                ("x",),
            ),
        ),
    ),
    "conv_naive": LayerSpec(
        name="conv_naive",
        forward=conv_naive_forward,
        backward=conv_naive_backward,
        input_names=("x", "w", "b"),
        differentiable=("x", "w", "b"),
        make_inputs=_conv_inputs,
        kwargs={"stride": 2, "pad": 1},
        bugs=_bugs(
            (
                "dx_crop_shifted",
                "The padding is cropped off dx one pixel too early (off by one).",
                ("x",),
            ),
            (
                "dx_flipped_kernel",
                "dx is accumulated with the spatially flipped kernel.",
                ("x",),
            ),
            (
                "dw_flipped_window",
                "dw is accumulated with spatially flipped input windows.",
                ("w",),
            ),
        ),
    ),
    "max_pool_naive": LayerSpec(
        name="max_pool_naive",
        forward=max_pool_naive_forward,
        backward=max_pool_naive_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_max_pool_inputs,
        kwargs={"pool_height": 2, "pool_width": 2, "stride": 2},
        bugs=_bugs(
            (
                "route_to_all",
                "The gradient is routed to every element of the window, not just the max.",
                ("x",),
            ),
            (
                "route_to_first",
                "The gradient is routed to the first element of the window, not the max.",
                ("x",),
            ),
        ),
    ),
    "rnn_step": LayerSpec(
        name="rnn_step",
        forward=rnn_step_forward,
        backward=rnn_step_backward,
        input_names=_RNN_ALL,
        differentiable=_RNN_ALL,
        make_inputs=_rnn_inputs,
        bugs=_bugs(
            (
                "tanh_derivative_of_preactivation",
                "tanh' is computed as 1 - a**2 from the pre-activation a instead of 1 - h**2.",
                _RNN_ALL,
            ),
            (
                "missing_tanh_derivative",
                "The upstream gradient is not multiplied by tanh' at all.",
                _RNN_ALL,
            ),
            (
                "dWh_uses_next_h",
                "dWh is computed from the new hidden state instead of the previous one.",
                ("Wh",),
            ),
        ),
    ),
    "lstm_step": LayerSpec(
        name="lstm_step",
        forward=lstm_step_forward,
        backward=lstm_step_backward,
        input_names=_LSTM_ALL,
        differentiable=_LSTM_ALL,
        make_inputs=_lstm_inputs,
        tuple_output=True,
        bugs=_bugs(
            (
                "sigmoid_derivative_as_s",
                "The sigmoid gate derivative is taken as s instead of s(1 - s).",
                _LSTM_GATES,
            ),
            (
                "missing_dnext_c",
                "The upstream gradient of next_c is dropped, keeping only the path via next_h.",
                _LSTM_ALL,
            ),
            (
                "forget_gate_uses_next_c",
                "The forget gate gradient multiplies by next_c instead of c_prev.",
                _LSTM_GATES,
            ),
        ),
    ),
    "embedding": LayerSpec(
        name="embedding",
        forward=embedding_forward,
        backward=embedding_backward,
        input_names=("x", "W"),
        differentiable=("W",),
        make_inputs=_embedding_inputs,
        bugs=_bugs(
            (
                "assignment_instead_of_accumulation",
                "dW[x] = dout assigns, so repeated indices keep only one row of dout.",
                ("W",),
            ),
            (
                "fancy_index_iadd",
                "dW[x] += dout is buffered, so repeated indices are not summed.",
                ("W",),
            ),
        ),
    ),
    "softmax_loss": LayerSpec(
        name="softmax_loss",
        forward=softmax_loss,
        backward=softmax_loss,
        input_names=("x", "y"),
        differentiable=("x",),
        make_inputs=_softmax_inputs,
        is_loss=True,
        bugs=_bugs(
            ("no_divide_by_n", "dx is not divided by the batch size N.", ("x",)),
            ("missing_one_hot", "The one-hot of the correct class is not subtracted.", ("x",)),
            ("one_hot_added", "The one-hot of the correct class is added, not subtracted.", ("x",)),
        ),
    ),
    "svm_loss": LayerSpec(
        name="svm_loss",
        forward=svm_loss,
        backward=svm_loss,
        input_names=("x", "y"),
        differentiable=("x",),
        make_inputs=_svm_inputs,
        is_loss=True,
        bugs=_bugs(
            (
                "counts_correct_class_margin",
                "The correct class's own margin of 1 is counted among the positive margins.",
                ("x",),
            ),
            ("no_divide_by_n", "dx is not divided by the batch size N.", ("x",)),
        ),
    ),
}

_IMPLS: dict[str, Callable[..., Any]] = {
    "affine": _affine_backward,
    "relu": _relu_backward,
    "leaky_relu": _leaky_relu_backward,
    "sigmoid": _sigmoid_backward,
    "tanh": _tanh_backward,
    "batchnorm": _batchnorm_backward,
    "layernorm": _layernorm_backward,
    "dropout": _dropout_backward,
    "conv_naive": _conv_naive_backward,
    "max_pool_naive": _max_pool_naive_backward,
    "rnn_step": _rnn_step_backward,
    "lstm_step": _lstm_step_backward,
    "embedding": _embedding_backward,
    "softmax_loss": _softmax_loss,
    "svm_loss": _svm_loss,
}


def buggy_backward(layer_name: str, bug_name: str) -> Callable[..., Any]:
    """Return a backward function of ``layer_name`` carrying the bug ``bug_name``.

    Parameters
    ----------
    layer_name : str
        Key of :data:`LAYERS`.
    bug_name : str
        Key of ``LAYERS[layer_name].bugs``.

    Returns
    -------
    callable
        Same signature as ``LAYERS[layer_name].backward``: ``(dout, cache) -> grads``
        for layers, ``(x, y) -> (loss, dx)`` for losses (correct loss, buggy ``dx``).

    Raises
    ------
    KeyError
        If the layer or the bug is unknown.
    """
    if layer_name not in LAYERS:
        raise KeyError(f"unknown layer {layer_name!r}; known: {sorted(LAYERS)}")
    spec = LAYERS[layer_name]
    if bug_name not in spec.bugs:
        raise KeyError(
            f"unknown bug {bug_name!r} for layer {layer_name!r}; known: {sorted(spec.bugs)}"
        )
    impl = _IMPLS[layer_name]
    backward: Callable[..., Any]
    if spec.is_loss:

        def backward(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
            return impl(x, y, bug_name)

    else:

        def backward(dout: Any, cache: Cache) -> Grads:
            return impl(dout, cache, bug_name)

    backward.__name__ = f"{layer_name}_backward__{bug_name}"
    backward.__qualname__ = backward.__name__
    backward.__doc__ = f"{layer_name} with bug {bug_name!r}: {spec.bugs[bug_name].description}"
    return backward
