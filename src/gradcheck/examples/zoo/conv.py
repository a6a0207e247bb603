"""Naive convolution and 2x2 max-pooling models (including exact and near ties), and their bugs."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradcheck.examples.zoo._core import (
    Grads,
    Params,
    ZooModel,
    bug_of,
    cast,
    make_model,
    softmax_ce,
)


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valid, stride-1 cross-correlation of ``x`` (N, C, H, W) with ``W`` (F, C, kh, kw).

    Returns
    -------
    out : (N, F, H - kh + 1, W - kw + 1) with the bias added.
    patches : the (N, C, OH, OW, kh, kw) view of ``x`` that the backward pass needs.
    """
    patches = sliding_window_view(x, W.shape[2:], axis=(2, 3))
    out = np.einsum("ncijkl,fckl->nfij", patches, W) + b[:, None, None]
    return out, patches


def pool_windows(x: np.ndarray) -> np.ndarray:
    """2x2 / stride-2 windows of ``x`` (..., 2A, 2B) as (..., A, B, 4); index k = 2 * row + col."""
    *lead, hh, ww = x.shape
    w = x.reshape(*lead, hh // 2, 2, ww // 2, 2)
    return np.swapaxes(w, -3, -2).reshape(*lead, hh // 2, ww // 2, 4)


def unpool_windows(w: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pool_windows`."""
    *lead, a, b, _ = w.shape
    return np.swapaxes(w.reshape(*lead, a, b, 2, 2), -3, -2).reshape(*lead, 2 * a, 2 * b)


def maxpool_backward(
    win: np.ndarray, dpool: np.ndarray, bug: str | None
) -> np.ndarray:
    """Route ``dpool`` to the winner of each window (the first one on an exact tie)."""
    idx = win.argmax(axis=-1)
    if bug == "route_transposed":
        idx = (idx % 2) * 2 + idx // 2  # (row, col) of the winner read as (col, row)
    elif bug == "route_first":
        idx = np.zeros_like(idx)
    dwin = np.zeros_like(win)
    np.put_along_axis(dwin, idx[..., None], dpool[..., None], axis=-1)
    return unpool_windows(dwin)


_CONV_BUGS = {
    "flipped_kernel": bug_of(
        ("conv.W",),
        "the kernel gradient is returned flipped (convolution mixed up with cross-correlation).",
    ),
    "last_tap": bug_of(
        ("conv.W",),
        "the loop over kernel taps stops one short: the very last tap of the last filter gets "
        "gradient 0 (one wrong element).",
        ("one_element",),
    ),
}


def conv2d_tanh(bug: str | None = None) -> ZooModel:
    """Naive 3x3 convolution (2 filters) -> tanh -> linear -> softmax; input (2, 1, 6, 6)."""
    rng = np.random.default_rng(131)
    X = rng.standard_normal((2, 1, 6, 6))
    y = np.array([0, 2])
    params: Params = {
        "conv": {"W": 0.4 * rng.standard_normal((2, 1, 3, 3)), "b": 0.1 * rng.standard_normal(2)},
        "head": {"W": 0.3 * rng.standard_normal((32, 3)), "b": 0.1 * rng.standard_normal(3)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        W = p["conv"]["W"]
        out, patches = conv2d(cast(X, W.dtype), W, p["conv"]["b"])
        a = np.tanh(out)
        flat = a.reshape(len(X), -1)
        loss, dlogits, _ = softmax_ce(flat @ p["head"]["W"] + p["head"]["b"], y, need_grad)
        if not need_grad:
            return float(loss), None
        assert dlogits is not None
        dout = (dlogits @ p["head"]["W"].T).reshape(a.shape) * (1 - a * a)
        gW = np.einsum("ncijkl,nfij->fckl", patches, dout)
        if bug == "flipped_kernel":
            gW = gW[..., ::-1, ::-1].copy()
        elif bug == "last_tap":
            gW.reshape(-1)[-1] = 0
        return float(loss), {
            "conv": {"W": gW, "b": dout.sum(axis=(0, 2, 3))},
            "head": {"W": flat.T @ dlogits, "b": dlogits.sum(axis=0)},
        }

    return make_model(
        "conv2d_tanh", params, evaluate, bug=bug, bugs=_CONV_BUGS,
        tags=("conv", "tanh", "softmax_ce"),
        description="Naive valid 3x3 convolution with two filters, tanh, a linear softmax head.",
    )


_POOL_BUGS = {
    "route_transposed": bug_of(
        ("conv.W",),
        "max-pool backward reads the winner's (row, col) inside its window as (col, row) (the "
        "bias gradient, a sum over all positions, is unaffected).",
    ),
}


def conv_maxpool(bug: str | None = None) -> ZooModel:
    """3x3 convolution -> 2x2 max-pool -> tanh -> linear -> softmax; no near ties (gap > 0.02)."""
    for seed in range(141, 2000):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((2, 1, 6, 6))
        W = 0.5 * rng.standard_normal((2, 1, 3, 3))
        b = 0.1 * rng.standard_normal(2)
        win = pool_windows(conv2d(X, W, b)[0])
        top2 = np.sort(win, axis=-1)[..., -2:]
        idx = win.argmax(axis=-1)
        if np.min(top2[..., 1] - top2[..., 0]) > 0.02 and np.sum((idx == 1) | (idx == 2)) >= 3:
            break
    y = np.array([1, 2])
    params: Params = {
        "conv": {"W": W, "b": b},
        "head": {"W": 0.5 * rng.standard_normal((8, 3)), "b": 0.1 * rng.standard_normal(3)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        Wc = p["conv"]["W"]
        out, patches = conv2d(cast(X, Wc.dtype), Wc, p["conv"]["b"])
        win = pool_windows(out)
        a = np.tanh(win.max(axis=-1))
        flat = a.reshape(len(X), -1)
        loss, dlogits, _ = softmax_ce(flat @ p["head"]["W"] + p["head"]["b"], y, need_grad)
        if not need_grad:
            return float(loss), None
        assert dlogits is not None
        dpool = (dlogits @ p["head"]["W"].T).reshape(a.shape) * (1 - a * a)
        dout = maxpool_backward(win, dpool, bug)
        return float(loss), {
            "conv": {"W": np.einsum("ncijkl,nfij->fckl", patches, dout),
                     "b": dout.sum(axis=(0, 2, 3))},
            "head": {"W": flat.T @ dlogits, "b": dlogits.sum(axis=0)},
        }

    return make_model(
        "conv_maxpool", params, evaluate, bug=bug, bugs=_POOL_BUGS,
        tags=("conv", "maxpool", "tanh", "softmax_ce"),
        description="Naive 3x3 convolution, 2x2 max-pool, tanh, linear softmax head; every pool "
        "window's winner leads the runner-up by more than 0.02.",
    )


_TIE_BUGS = {
    "route_first": bug_of(
        ("feat",),
        "max-pool backward always routes to the top-left element of each window.",
    ),
}

_WINDOW_KINDS = (
    ("tie2", "tie3", "tie4", "near", "near_rev", "plain", "tie2", "near", "plain"),
    ("near_rev", "tie2", "plain", "tie3", "near", "tie2", "plain", "tie4", "near_rev"),
)


def maxpool_ties(bug: str | None = None) -> ZooModel:
    """2x2 max-pool of a parameter map with exact ties and 1e-8 near-ties -> tanh -> softmax.

    ``feat`` has shape (2, 6, 6): two examples of 3x3 pool windows each.  Window kinds: ``tieK``
    (K elements exactly equal to the maximum; the analytic routes to the first), ``near`` (the
    runner-up is 1e-8 below the winner, which comes first) and ``near_rev`` (same, but the
    runner-up comes first), ``plain`` (a clear winner).
    """
    rng = np.random.default_rng(151)
    win = np.empty((2, 3, 3, 4))
    for s in range(2):
        for w, kind in enumerate(_WINDOW_KINDS[s]):
            vals = rng.integers(-16, 8, 4) / 8  # below 1
            top = 1.25 + rng.integers(0, 8) / 8
            order = rng.permutation(4)
            if kind.startswith("tie"):
                vals[order[: int(kind[3])]] = top
            else:
                first, second = np.sort(order[:2])
                if kind == "near":
                    vals[first], vals[second] = top, top - 1e-8
                elif kind == "near_rev":
                    vals[first], vals[second] = top - 1e-8, top
                else:
                    vals[order[0]] = top
            win[s, w // 3, w % 3] = vals
    y = np.array([0, 2])
    params: Params = {
        "feat": unpool_windows(win),
        "head": {"W": 0.5 * rng.standard_normal((9, 3)), "b": 0.1 * rng.standard_normal(3)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        wins = pool_windows(p["feat"])
        a = np.tanh(wins.max(axis=-1) - 1.5)
        flat = a.reshape(2, 9)
        loss, dlogits, _ = softmax_ce(flat @ p["head"]["W"] + p["head"]["b"], y, need_grad)
        if not need_grad:
            return float(loss), None
        assert dlogits is not None
        dpool = (dlogits @ p["head"]["W"].T).reshape(a.shape) * (1 - a * a)
        return float(loss), {
            "feat": maxpool_backward(wins, dpool, bug),
            "head": {"W": flat.T @ dlogits, "b": dlogits.sum(axis=0)},
        }

    return make_model(
        "maxpool_ties", params, evaluate, bug=bug, bugs=_TIE_BUGS,
        tags=("maxpool", "maxpool_tie", "kink", "near_kink", "tanh", "softmax_ce"),
        description="2x2 max-pool applied directly to a parameter map with windows holding 2-, 3- "
        "and 4-way exact ties (the analytic routes to the first winner, a valid one-sided "
        "derivative) and near-ties 1e-8 apart (the analytic routes to the true winner).",
    )
