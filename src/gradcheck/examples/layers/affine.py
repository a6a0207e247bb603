"""Reference layers: affine (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import Cache, Grads


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
