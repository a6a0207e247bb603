"""Reference layers: embedding (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import Cache, Grads


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
