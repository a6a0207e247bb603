"""Reference layers: recurrent cells (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import Cache, Grads
from gradcheck.examples.layers.activations import (
    _sigmoid,
)


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
