"""Reference layers: convolution and pooling (forward, backward with named bugs, inputs)."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.layers._base import KINK_DISTANCE, Cache, Grads


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
