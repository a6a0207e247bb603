"""Reference layers: losses (forward, backward with named bugs, inputs)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradcheck.examples.layers._base import KINK_DISTANCE, Cache, Grads


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
