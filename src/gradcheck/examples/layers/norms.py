"""Reference layers: normalisation (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import Cache, Grads


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
