"""Reference layers: elementwise activations (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import KINK_DISTANCE, Cache, Grads


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
