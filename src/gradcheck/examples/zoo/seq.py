"""Embedding, RNN and LSTM models with hand-written backward passes, and their bugs."""

from __future__ import annotations

import numpy as np

from gradcheck.examples.zoo._core import (
    Grads,
    Params,
    ZooModel,
    bug_of,
    cast,
    make_model,
    sigmoid,
    softmax_ce,
)

_EMB_BUGS = {
    "assign": bug_of(
        ("emb.E",),
        "the embedding gradient is scattered with gE[tokens] += d (buffered fancy-index "
        "assignment), so a token repeated in the batch keeps only one contribution; "
        "np.add.at is needed.",
    ),
}

TOKENS = np.array(
    [
        [1, 1, 3, 1, 5],
        [2, 0, 2, 6, 6],
        [4, 4, 4, 4, 1],
        [0, 3, 5, 3, 2],
    ]
)
"""Token ids of the embedding model: repeats inside and across rows; id 7 never occurs."""


def embedding_bag(bug: str | None = None) -> ZooModel:
    """Mean of token embeddings -> tanh -> linear -> softmax; vocabulary 8, width 4, batch 4."""
    rng = np.random.default_rng(101)
    vocab, width, k = 8, 4, 3
    n, t = TOKENS.shape
    y = np.arange(n) % k
    params: Params = {
        "emb": {"E": 0.8 * rng.standard_normal((vocab, width))},
        "head": {"W": rng.standard_normal((width, k)), "b": 0.1 * rng.standard_normal(k)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        E = p["emb"]["E"]
        a = np.tanh(E[TOKENS].mean(axis=1))
        logits = a @ p["head"]["W"] + p["head"]["b"]
        loss, dlogits, _ = softmax_ce(logits, y, need_grad)
        if not need_grad:
            return float(loss), None
        assert dlogits is not None
        dh = (dlogits @ p["head"]["W"].T) * (1 - a * a)
        de = np.broadcast_to(dh[:, None, :] / t, (n, t, width))
        gE = np.zeros_like(E)
        if bug == "assign":
            gE[TOKENS] += de
        else:
            np.add.at(gE, TOKENS, de)
        return float(loss), {
            "emb": {"E": gE},
            "head": {"W": a.T @ dlogits, "b": dlogits.sum(axis=0)},
        }

    return make_model(
        "embedding_bag", params, evaluate, bug=bug, bugs=_EMB_BUGS,
        tags=("embedding", "repeated_indices", "tanh", "softmax_ce", "zero_grad"),
        description="Bag-of-embeddings classifier; token ids repeat within and across examples "
        "(gradient accumulated with np.add.at) and row 7 of E is never used (exactly 0 gradient).",
    )


_RNN_BUGS = {
    "skip_last_step": bug_of(
        ("rnn.Wx", "rnn.Wh", "rnn.b"),
        "the BPTT loop runs over reversed(range(T - 1)): the last time step is skipped.",
    ),
    "transpose_gWh": bug_of(
        ("rnn.Wh",), "the gradient of the square (4x4) recurrent weight is returned transposed."
    ),
}


def rnn_tanh(bug: str | None = None) -> ZooModel:
    """Elman tanh RNN with a linear read-out and MSE at every step; N=3, T=4, D=3, H=4."""
    rng = np.random.default_rng(111)
    n, steps, d, h, o = 3, 4, 3, 4, 2
    X = rng.standard_normal((n, steps, d))
    Y = rng.standard_normal((n, steps, o))
    params: Params = {
        "rnn": {
            "Wx": rng.standard_normal((d, h)) / np.sqrt(d),
            "Wh": 0.9 * rng.standard_normal((h, h)) / np.sqrt(h),
            "b": 0.1 * rng.standard_normal(h),
        },
        "out": {"W": rng.standard_normal((h, o)) / np.sqrt(h), "b": 0.1 * rng.standard_normal(o)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        Wx, Wh, b = p["rnn"]["Wx"], p["rnn"]["Wh"], p["rnn"]["b"]
        Wo, bo = p["out"]["W"], p["out"]["b"]
        x = cast(X, Wx.dtype)
        hs = [np.zeros((n, h), dtype=Wx.dtype)]
        for s in range(steps):
            hs.append(np.tanh(x[:, s] @ Wx + hs[-1] @ Wh + b))
        H = np.stack(hs[1:], axis=1)
        r = H @ Wo + bo - cast(Y, Wx.dtype)
        loss = (r * r).mean()
        if not need_grad:
            return float(loss), None
        dout = 2 * r / r.size
        dH = dout @ Wo.T
        gWx, gWh, gb = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
        dh_next = np.zeros_like(hs[0])
        last = steps - 2 if bug == "skip_last_step" else steps - 1
        for s in range(last, -1, -1):
            dz = (dH[:, s] + dh_next) * (1 - hs[s + 1] * hs[s + 1])
            gWx += x[:, s].T @ dz
            gWh += hs[s].T @ dz
            gb += dz.sum(axis=0)
            dh_next = dz @ Wh.T
        if bug == "transpose_gWh":
            gWh = gWh.T.copy()
        return float(loss), {
            "rnn": {"Wx": gWx, "Wh": gWh, "b": gb},
            "out": {"W": np.einsum("nth,nto->ho", H, dout), "b": dout.sum(axis=(0, 1))},
        }

    return make_model(
        "rnn_tanh", params, evaluate, bug=bug, bugs=_RNN_BUGS, tags=("rnn", "tanh", "mse"),
        description="Elman RNN h_t = tanh(x_t Wx + h_{t-1} Wh + b) with a linear read-out and "
        "MSE at every time step, back-propagated through time.",
    )


_LSTM_BUGS = {
    "forget_deriv": bug_of(
        ("lstm.W", "lstm.b"),
        "the forget gate's derivative is written 1 - f^2 (tanh's) instead of f (1 - f).",
    ),
}


def lstm(bug: str | None = None) -> ZooModel:
    """One-layer LSTM, linear read-out of the last hidden state, MSE; N=2, T=3, D=3, H=3."""
    rng = np.random.default_rng(121)
    n, steps, d, h, o = 2, 3, 3, 3, 2
    X = rng.standard_normal((n, steps, d))
    Y = rng.standard_normal((n, o))
    b = 0.1 * rng.standard_normal(4 * h)
    b[h : 2 * h] += 1.0  # forget-gate bias
    params: Params = {
        "lstm": {"W": rng.standard_normal((d + h, 4 * h)) / np.sqrt(d + h), "b": b},
        "out": {"W": rng.standard_normal((h, o)) / np.sqrt(h), "b": 0.1 * rng.standard_normal(o)},
    }

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        W, bias = p["lstm"]["W"], p["lstm"]["b"]
        Wo, bo = p["out"]["W"], p["out"]["b"]
        dt = W.dtype
        x = cast(X, dt)
        hid = np.zeros((n, h), dtype=dt)
        c = np.zeros((n, h), dtype=dt)
        cache = []
        for s in range(steps):
            xh = np.concatenate([x[:, s], hid], axis=1)
            g = xh @ W + bias
            i, f, og = sigmoid(g[:, :h]), sigmoid(g[:, h : 2 * h]), sigmoid(g[:, 2 * h : 3 * h])
            u = np.tanh(g[:, 3 * h :])
            c_new = f * c + i * u
            tc = np.tanh(c_new)
            cache.append((xh, i, f, og, u, c, tc))
            hid, c = og * tc, c_new
        r = hid @ Wo + bo - cast(Y, dt)
        loss = (r * r).mean()
        if not need_grad:
            return float(loss), None
        dout = 2 * r / r.size
        dh = dout @ Wo.T
        dc = np.zeros_like(c)
        gW, gb = np.zeros_like(W), np.zeros_like(bias)
        for s in range(steps - 1, -1, -1):
            xh, i, f, og, u, c_prev, tc = cache[s]
            do = dh * tc
            dc = dc + dh * og * (1 - tc * tc)
            di, du, df = dc * u, dc * i, dc * c_prev
            dc = dc * f
            f_prime = 1 - f * f if bug == "forget_deriv" else f * (1 - f)
            dg = np.concatenate(
                [di * i * (1 - i), df * f_prime, do * og * (1 - og), du * (1 - u * u)], axis=1
            )
            gW += xh.T @ dg
            gb += dg.sum(axis=0)
            dh = (dg @ W.T)[:, d:]
        return float(loss), {
            "lstm": {"W": gW, "b": gb},
            "out": {"W": hid.T @ dout, "b": dout.sum(axis=0)},
        }

    return make_model(
        "lstm", params, evaluate, bug=bug, bugs=_LSTM_BUGS, tags=("lstm", "sigmoid", "tanh", "mse"),
        description="One-layer LSTM (gates i, f, o, g in one weight matrix over [x_t, h_{t-1}]) "
        "with a linear read-out of the last hidden state and MSE.",
    )
