"""Reference layers: dropout (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import Cache, Grads


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
