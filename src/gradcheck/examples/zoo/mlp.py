"""Fully connected models built on one small MLP engine, with their bugs.

The engine computes ``z_l = a_{l-1} @ W_l + b_l`` for every layer, a hidden activation after all
but the last layer (optionally followed by inverted dropout), then a data loss on the last
``z``, optionally scaled, offset and regularised with L2 / L1 terms.  Its backward pass knows a
catalogue of realistic bugs (see :data:`ENGINE_BUGS`); each builder below picks the ones that make
sense for its model and says which tensors they break.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from gradcheck.examples.bugs import Bug
from gradcheck.examples.zoo._core import (
    Grads,
    Params,
    ZooModel,
    bug_of,
    cast,
    make_model,
    sigmoid,
    sigmoid_prime,
    softmax_ce,
)

LEAK = 0.1
"""Negative-side slope of the leaky ReLU."""

ENGINE_BUGS = frozenset(
    {
        "act_deriv",  # activation derivative evaluated wrongly (at z instead of a, etc.)
        "mask_from_output",  # ReLU mask from the output: (relu(z) >= 0) is always true
        "mask_wrong_layer",  # second ReLU layer back-propagates through the first layer's mask
        "mse_factor",  # d mean(r^2) / dr written r / n instead of 2 r / n
        "no_batch_div",  # output delta not divided by the batch size
        "no_onehot",  # softmax delta without subtracting the one-hot target
        "sign_W_out",  # output weight gradient with the wrong sign
        "transpose_W_out",  # output weight gradient transposed (square matrix)
        "bias_one_example",  # output bias gradient from the first example only
        "swap_biases",  # gradients of the first two (same-shaped) biases swapped
        "one_row",  # last row of the first weight gradient never written (off-by-one)
        "missing_reg",  # L2 term missing from the weight gradients
        "missing_l1",  # L1 term missing from the weight gradients
        "factor2_W1",  # first weight gradient doubled
        "fresh_mask",  # backward draws a fresh dropout mask instead of reusing the forward's
        "no_rescale",  # backward applies the 0/1 dropout mask without the 1/keep factor
    }
)


@dataclass
class MLPSpec:
    """Fixed data and structure of an engine model.

    Attributes
    ----------
    X : inputs, shape (N, D).
    Y : integer labels (N,) for ``"softmax_ce"``; targets (N, K) otherwise
        (0/1 for ``"bce"``, -1/+1 for ``"hinge"``).
    acts : activation of each hidden layer: ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``.
    loss : ``"softmax_ce"``, ``"mse"``, ``"bce"`` (sigmoid + binary cross-entropy) or ``"hinge"``.
    names : names of the layers (one more than ``acts``).
    l2 : layer name -> lambda of a ``0.5 * lambda * ||W||^2`` term.
    l1 : layer name -> lambda of a ``lambda * sum |W|`` term.
    scale : factor on the data loss.
    offset : constant added to the loss.
    dropout_keep : keep probability of inverted dropout after every hidden activation, or None.
    """

    X: np.ndarray
    Y: np.ndarray
    acts: tuple[str, ...]
    loss: str
    names: tuple[str, ...] = ()
    l2: Mapping[str, float] = field(default_factory=dict)
    l1: Mapping[str, float] = field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0
    dropout_keep: float | None = None

    def __post_init__(self) -> None:
        if not self.names:
            self.names = tuple(f"layer{i + 1}" for i in range(len(self.acts) + 1))
        assert len(self.names) == len(self.acts) + 1


def _activate(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "sigmoid":
        return sigmoid(z)
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.maximum(z, 0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, LEAK * z)
    raise ValueError(f"unknown activation {kind!r}")


def _act_grad(kind: str, z: np.ndarray, a: np.ndarray, bug: str | None) -> np.ndarray:
    """Derivative of the activation at ``z`` (``a`` is its output); ReLU'(0) = 0."""
    dt = z.dtype
    if kind == "sigmoid":
        return z * (1 - z) if bug == "act_deriv" else sigmoid_prime(z)
    if kind == "tanh":
        return 1 - z * z if bug == "act_deriv" else 1 - a * a
    if kind == "relu":
        return cast(a >= 0, dt) if bug == "mask_from_output" else cast(z > 0, dt)
    if kind == "leaky_relu":
        if bug == "act_deriv":
            return cast(z > 0, dt)
        return np.where(z > 0, 1.0, LEAK).astype(dt)
    raise ValueError(f"unknown activation {kind!r}")


def _data_loss(
    spec: MLPSpec, out: np.ndarray, need_grad: bool, bug: str | None
) -> tuple[Any, np.ndarray | None]:
    """Data loss of the network output and its gradient (None unless ``need_grad``)."""
    dt = out.dtype
    n = out.shape[0]
    if spec.loss == "softmax_ce":
        loss, d, probs = softmax_ce(out, spec.Y, need_grad)
        if need_grad and bug == "no_onehot":
            assert probs is not None
            d = probs / n
        return loss, d
    Y = cast(spec.Y, dt)
    if spec.loss == "mse":
        r = out - Y
        loss = (r * r).mean()
        if not need_grad:
            return loss, None
        return loss, (r if bug == "mse_factor" else 2 * r) / r.size
    if spec.loss == "bce":
        loss = (np.logaddexp(0, out) - Y * out).mean()
        return loss, ((sigmoid(out) - Y) / out.size) if need_grad else None
    if spec.loss == "hinge":
        m = Y * out
        loss = np.maximum(0, 1 - m).mean()
        # subgradient: examples exactly at the hinge (m == 1) contribute 0
        return loss, (-Y * cast(m < 1, dt) / out.size) if need_grad else None
    raise ValueError(f"unknown loss {spec.loss!r}")


def mlp_evaluate(
    spec: MLPSpec, bug: str | None, p: Params, need_grad: bool
) -> tuple[float, Grads | None]:
    """Loss (and, if ``need_grad``, the hand-written gradient) of an engine model.

    Parameters
    ----------
    spec : the model's data and structure.
    bug : None, or one of :data:`ENGINE_BUGS` to inject into the backward pass.
    p : parameters ``{name: {"W": (in, out), "b": (out,)}}``; extra top-level keys are ignored.
    need_grad : whether to run the backward pass.

    Returns
    -------
    loss : the loss as a Python float.
    grads : gradients shaped like ``p``'s layers, or None.
    """
    names, acts = spec.names, spec.acts
    nl = len(names)
    dt = p[names[0]]["W"].dtype
    a = cast(spec.X, dt)
    inputs = [a]  # input of every layer
    zs: list[np.ndarray] = []  # hidden pre-activations
    outs: list[np.ndarray] = []  # hidden activations (before dropout)
    masks: list[np.ndarray] = []  # scaled dropout masks
    keep = spec.dropout_keep
    z = a
    for i, name in enumerate(names):
        z = a @ p[name]["W"] + p[name]["b"]
        if i == nl - 1:
            break
        zs.append(z)
        a = _activate(acts[i], z)
        outs.append(a)
        if keep is not None:
            m = cast(np.random.rand(*a.shape) < keep, dt) / keep
            masks.append(m)
            a = a * m
        inputs.append(a)
    data_loss, dout = _data_loss(spec, z, need_grad, bug)
    loss = data_loss * spec.scale + spec.offset
    for name, lam in spec.l2.items():
        W = p[name]["W"]
        loss = loss + 0.5 * lam * (W * W).sum()
    for name, lam in spec.l1.items():
        loss = loss + lam * np.abs(p[name]["W"]).sum()
    if not need_grad:
        return float(loss), None

    assert dout is not None
    dz = dout * spec.scale
    if bug == "no_batch_div":
        dz = dz * spec.X.shape[0]
    grads: Grads = {}
    for i in range(nl - 1, -1, -1):
        name = names[i]
        W = p[name]["W"]
        gW = inputs[i].T @ dz
        gb = dz.sum(axis=0)
        if name in spec.l2 and bug != "missing_reg":
            gW = gW + spec.l2[name] * W
        if name in spec.l1 and bug != "missing_l1":
            gW = gW + spec.l1[name] * np.sign(W)  # sign(0) = 0: a valid subgradient
        if i == nl - 1:
            if bug == "sign_W_out":
                gW = -gW
            elif bug == "transpose_W_out":
                gW = gW.T.copy()
            elif bug == "bias_one_example":
                gb = dz[0].copy()
        if i == 0 and bug == "factor2_W1":
            gW = 2 * gW
        if i == 0 and bug == "one_row":
            gW[-1] = 0
        grads[name] = {"W": gW, "b": gb}
        if i == 0:
            break
        da = dz @ W.T
        if keep is not None:
            if bug == "fresh_mask":
                da = da * (cast(np.random.rand(*da.shape) < keep, dt) / keep)
            elif bug == "no_rescale":
                da = da * (masks[i - 1] * keep)
            else:
                da = da * masks[i - 1]
        k = i - 1  # hidden layer whose activation we go back through
        if bug == "mask_wrong_layer" and k >= 1:
            dz = da * cast(zs[0] > 0, dt)
        else:
            dz = da * _act_grad(acts[k], zs[k], outs[k], bug)
    if bug == "swap_biases":
        g0, g1 = grads[names[0]], grads[names[1]]
        g0["b"], g1["b"] = g1["b"], g0["b"]
    return float(loss), {name: grads[name] for name in names}


def init_layers(
    rng: np.random.Generator,
    sizes: tuple[int, ...],
    names: tuple[str, ...] = (),
    dtype: type = np.float64,
    w_gain: float = 1.0,
) -> Params:
    """Random ``{name: {"W", "b"}}`` layers for layer sizes ``sizes`` (inputs first)."""
    names = names or tuple(f"layer{i + 1}" for i in range(len(sizes) - 1))
    params: Params = {}
    for name, m, n in zip(names, sizes[:-1], sizes[1:]):
        params[name] = {
            "W": (w_gain * rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype),
            "b": (0.1 * rng.standard_normal(n)).astype(dtype),
        }
    return params


def engine_model(
    base: str,
    params: Params,
    spec: MLPSpec,
    bug: str | None,
    bugs: Mapping[str, Bug],
    tags: tuple[str, ...],
    description: str,
    needs_seed: int | None = None,
) -> ZooModel:
    """A :class:`ZooModel` whose passes are :func:`mlp_evaluate` of ``spec``."""
    assert set(bugs) <= ENGINE_BUGS, set(bugs) - ENGINE_BUGS
    return make_model(
        base,
        params,
        partial(mlp_evaluate, spec, bug),
        bug=bug,
        bugs=bugs,
        tags=tags,
        needs_seed=needs_seed,
        description=description,
    )


def _labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` labels in ``range(k)`` in which every class occurs."""
    y = np.arange(n) % k
    rng.shuffle(y)
    return y


def hidden_preacts(spec: MLPSpec, params: Params) -> list[np.ndarray]:
    """The hidden pre-activations of an engine model (no dropout), for construction checks."""
    a = spec.X
    zs = []
    for i, name in enumerate(spec.names[:-1]):
        z = a @ params[name]["W"] + params[name]["b"]
        zs.append(z)
        a = _activate(spec.acts[i], z)
    return zs


# ----------------------------------------------------------------------------- builders

_ALL2 = ("layer1.W", "layer1.b", "layer2.W", "layer2.b")
_ALL3 = _ALL2 + ("layer3.W", "layer3.b")

_SIGMOID_MSE_BUGS = {
    "act_deriv": bug_of(
        ("layer1.W", "layer1.b"),
        "sigmoid derivative written z * (1 - z) with the pre-activation z instead of s(z).",
    ),
    "mse_factor": bug_of(_ALL2, "the derivative of mean(r^2) is written r / n (factor 2 missing)."),
}


def mlp_sigmoid_mse(bug: str | None = None) -> ZooModel:
    """Two-layer sigmoid MLP, mean squared error; 3 -> 5 -> 2, batch 6."""
    rng = np.random.default_rng(11)
    spec = MLPSpec(rng.standard_normal((6, 3)), rng.standard_normal((6, 2)), ("sigmoid",), "mse")
    params = init_layers(rng, (3, 5, 2), w_gain=1.5)
    return engine_model(
        "mlp_sigmoid_mse", params, spec, bug, _SIGMOID_MSE_BUGS,
        ("mlp", "sigmoid", "mse"), "Two-layer sigmoid MLP with a mean-squared-error loss.",
    )


_TANH_SOFTMAX_BUGS = {
    "sign_W_out": bug_of(("layer2.W",), "the output weight gradient has its sign flipped."),
    "transpose_W_out": bug_of(
        ("layer2.W",), "the (square 4x4) output weight gradient is returned transposed."
    ),
    "no_batch_div": bug_of(_ALL2, "the softmax delta is not divided by the batch size (6)."),
    "bias_one_example": bug_of(
        ("layer2.b",), "the output bias gradient is taken from the first example only."
    ),
    "one_row": bug_of(
        ("layer1.W",),
        "the loop over input features stops one short: the last row of the first weight "
        "gradient stays 0.",
        ("one_row",),
    ),
}


def mlp_tanh_softmax(bug: str | None = None) -> ZooModel:
    """Two-layer tanh MLP, softmax cross-entropy; 3 -> 4 -> 4 (square output weight), batch 6."""
    rng = np.random.default_rng(12)
    spec = MLPSpec(rng.standard_normal((6, 3)), _labels(rng, 6, 4), ("tanh",), "softmax_ce")
    params = init_layers(rng, (3, 4, 4), w_gain=1.5)
    return engine_model(
        "mlp_tanh_softmax", params, spec, bug, _TANH_SOFTMAX_BUGS,
        ("mlp", "tanh", "softmax_ce"),
        "Two-layer tanh MLP with softmax cross-entropy; the output weight is square.",
    )


_RELU2_BUGS = {
    "mask_from_output": bug_of(
        _ALL2, "the ReLU mask is computed from the output, (relu(z) >= 0), which is always true."
    ),
    "mask_wrong_layer": bug_of(
        _ALL2, "the second ReLU back-propagates through the first ReLU layer's mask."
    ),
    "swap_biases": bug_of(
        ("layer1.b", "layer2.b"), "the gradients of the two (5,)-shaped hidden biases are swapped."
    ),
}


def mlp_relu2_softmax(bug: str | None = None) -> ZooModel:
    """Three-layer ReLU MLP, softmax cross-entropy; 4 -> 5 -> 5 -> 3, batch 8, no kinks nearby."""
    for seed in range(13, 1000):
        rng = np.random.default_rng(seed)
        spec = MLPSpec(
            rng.standard_normal((8, 4)), _labels(rng, 8, 3), ("relu", "relu"), "softmax_ce"
        )
        params = init_layers(rng, (4, 5, 5, 3), w_gain=1.5)
        zs = hidden_preacts(spec, params)
        masks_differ = not np.array_equal(zs[0] > 0, zs[1] > 0)
        if min(np.abs(z).min() for z in zs) > 0.05 and masks_differ:
            break
    return engine_model(
        "mlp_relu2_softmax", params, spec, bug, _RELU2_BUGS,
        ("mlp", "relu", "softmax_ce"),
        "Three-layer ReLU MLP with softmax cross-entropy; every pre-activation is at least 0.05 "
        "away from the kink.",
    )


_TANH_L2_BUGS = {
    "missing_reg": bug_of(
        ("layer1.W", "layer2.W"), "the L2 term lambda * W is missing from the weight gradients."
    ),
}


def mlp_tanh_l2(bug: str | None = None) -> ZooModel:
    """Two-layer tanh MLP, MSE plus 0.5 * 0.05 * ||W||^2 on both weights; 3 -> 5 -> 2."""
    rng = np.random.default_rng(14)
    spec = MLPSpec(
        rng.standard_normal((6, 3)), rng.standard_normal((6, 2)), ("tanh",), "mse",
        l2={"layer1": 0.05, "layer2": 0.05},
    )
    params = init_layers(rng, (3, 5, 2), w_gain=1.5)
    return engine_model(
        "mlp_tanh_l2", params, spec, bug, _TANH_L2_BUGS, ("mlp", "tanh", "mse", "l2"),
        "Two-layer tanh MLP, mean squared error plus L2 weight decay (lambda = 0.05).",
    )


_TANH_L2TINY_BUGS = {
    "missing_reg": bug_of(
        ("layer1.W",),
        "the tiny L2 term lambda * W is missing from the first weight gradient; lambda is chosen "
        "so that ||lambda W|| = 1e-3 ||data gradient||, a relative error of about 1e-3.",
        ("subtle",),
    ),
}


def mlp_tanh_l2tiny(bug: str | None = None) -> ZooModel:
    """Tanh MLP with softmax loss and a tiny L2 term on the first weight; 4 -> 5 -> 3."""
    rng = np.random.default_rng(15)
    X, y = rng.standard_normal((8, 4)), _labels(rng, 8, 3)
    params = init_layers(rng, (4, 5, 3), w_gain=1.5)
    plain = MLPSpec(X, y, ("tanh",), "softmax_ce")
    g = mlp_evaluate(plain, None, params, True)[1]
    assert g is not None
    W = params["layer1"]["W"]
    lam = float(1e-3 * np.linalg.norm(g["layer1"]["W"]) / np.linalg.norm(W))
    spec = MLPSpec(X, y, ("tanh",), "softmax_ce", l2={"layer1": lam})
    return engine_model(
        "mlp_tanh_l2tiny", params, spec, bug, _TANH_L2TINY_BUGS,
        ("mlp", "tanh", "softmax_ce", "l2"),
        f"Tanh MLP with softmax cross-entropy and a tiny L2 term (lambda = {lam:.3g}) on the "
        "first weight.",
    )


def linear_regression_mse(bug: str | None = None) -> ZooModel:
    """Linear regression with mean squared error; 4 -> 2, batch 8 (the easiest model)."""
    rng = np.random.default_rng(16)
    spec = MLPSpec(rng.standard_normal((8, 4)), rng.standard_normal((8, 2)), (), "mse",
                   names=("linear",))
    params = init_layers(rng, (4, 2), names=("linear",))
    return engine_model(
        "linear_regression_mse", params, spec, bug, {}, ("linear", "mse"),
        "Linear regression with mean squared error.",
    )


_SOFTMAX_REG_BUGS = {
    "no_onehot": bug_of(
        ("linear.W", "linear.b"),
        "the softmax delta is probs / n: the one-hot target is never subtracted.",
    ),
}


def softmax_regression(bug: str | None = None) -> ZooModel:
    """Multinomial logistic regression; 5 -> 3, batch 9."""
    rng = np.random.default_rng(17)
    spec = MLPSpec(rng.standard_normal((9, 5)), _labels(rng, 9, 3), (), "softmax_ce",
                   names=("linear",))
    params = init_layers(rng, (5, 3), names=("linear",))
    return engine_model(
        "softmax_regression", params, spec, bug, _SOFTMAX_REG_BUGS, ("linear", "softmax_ce"),
        "Multinomial logistic (softmax) regression.",
    )


def logistic_regression(bug: str | None = None) -> ZooModel:
    """Binary logistic regression (sigmoid + binary cross-entropy); 4 -> 1, batch 10."""
    rng = np.random.default_rng(18)
    X = rng.standard_normal((10, 4))
    Y = (rng.random((10, 1)) < 0.5).astype(np.float64)
    spec = MLPSpec(X, Y, (), "bce", names=("linear",))
    params = init_layers(rng, (4, 1), names=("linear",))
    return engine_model(
        "logistic_regression", params, spec, bug, {}, ("linear", "sigmoid", "bce"),
        "Binary logistic regression with a numerically stable binary cross-entropy.",
    )


def saturated_sigmoid(bug: str | None = None) -> ZooModel:
    """Sigmoid MLP whose hidden units are deep in saturation (|z| ~ 10..30); 3 -> 4 -> 2."""
    rng = np.random.default_rng(19)
    spec = MLPSpec(rng.standard_normal((6, 3)), rng.standard_normal((6, 2)), ("sigmoid",), "mse")
    params = init_layers(rng, (3, 4, 2))
    params["layer1"]["W"] = np.sign(params["layer1"]["W"]) * rng.uniform(8, 16, (3, 4))
    return engine_model(
        "saturated_sigmoid", params, spec, bug, {}, ("mlp", "sigmoid", "mse", "saturated"),
        "Sigmoid MLP with large first-layer weights: hidden units saturate and the first-layer "
        "gradients are many orders of magnitude smaller than the second-layer ones.",
    )


_TINY_BUGS = {
    "factor2_W1": bug_of(("layer1.W",), "the first weight gradient is doubled."),
}


def tiny_scale(bug: str | None = None) -> ZooModel:
    """Tanh MLP with softmax loss multiplied by 1e-10; 3 -> 4 -> 3."""
    rng = np.random.default_rng(20)
    spec = MLPSpec(rng.standard_normal((6, 3)), _labels(rng, 6, 3), ("tanh",), "softmax_ce",
                   scale=1e-10)
    params = init_layers(rng, (3, 4, 3), w_gain=1.5)
    return engine_model(
        "tiny_scale", params, spec, bug, _TINY_BUGS, ("mlp", "tanh", "softmax_ce", "tiny_scale"),
        "Tanh MLP whose whole loss is multiplied by 1e-10: every gradient is ~1e-11, far below "
        "any absolute tolerance.",
    )


_HUGE_BUGS = {
    "act_deriv": bug_of(
        ("layer1.W", "layer1.b"),
        "tanh derivative written 1 - z^2 with the pre-activation z instead of tanh(z).",
    ),
}


def huge_params(bug: str | None = None) -> ZooModel:
    """Tanh MLP whose first weights are 1e4..1e6 in magnitude (inputs ~1e-6); 3 -> 4 -> 2."""
    rng = np.random.default_rng(21)
    X = 1e-6 * rng.standard_normal((6, 3))
    spec = MLPSpec(X, rng.standard_normal((6, 2)), ("tanh",), "mse")
    params = init_layers(rng, (3, 4, 2), w_gain=1.5)
    mag = 10.0 ** rng.uniform(4, 6, (3, 4))
    params["layer1"]["W"] = np.where(rng.random((3, 4)) < 0.5, -mag, mag)
    return engine_model(
        "huge_params", params, spec, bug, _HUGE_BUGS, ("mlp", "tanh", "mse", "huge"),
        "Tanh MLP with first-layer weights of magnitude 1e4..1e6 on inputs of ~1e-6; the loss is "
        "O(1), the first-layer weight gradients are ~1e-6 and an absolute step of 1e-6 is "
        "negligible next to the weights.",
    )


_FLOAT32_BUGS = {
    "act_deriv": bug_of(
        ("layer1.W", "layer1.b"),
        "sigmoid derivative written z * (1 - z) with the pre-activation z instead of s(z).",
    ),
}


def float32_mlp(bug: str | None = None) -> ZooModel:
    """Sigmoid MLP with softmax loss in float32 (params, data and both passes); 4 -> 6 -> 3."""
    rng = np.random.default_rng(22)
    X = rng.standard_normal((8, 4)).astype(np.float32)
    spec = MLPSpec(X, _labels(rng, 8, 3), ("sigmoid",), "softmax_ce")
    params = init_layers(rng, (4, 6, 3), dtype=np.float32, w_gain=1.5)
    return engine_model(
        "float32_mlp", params, spec, bug, _FLOAT32_BUGS,
        ("mlp", "sigmoid", "softmax_ce", "float32"),
        "Sigmoid MLP computed in float32; promoted float64 params are computed in float64.",
    )


_UNUSED_BUGS = {
    "decay_unused": bug_of(
        ("unused.W",),
        "the weight-decay gradient lambda * W is applied to every tensor, including unused.W "
        "which is not in the loss.",
    ),
}


def unused_param(bug: str | None = None) -> ZooModel:
    """Tanh MLP with L2 decay and an extra tensor ``unused.W`` the loss never reads."""
    rng = np.random.default_rng(23)
    lam = 0.01
    spec = MLPSpec(rng.standard_normal((6, 3)), rng.standard_normal((6, 2)), ("tanh",), "mse",
                   l2={"layer1": lam, "layer2": lam})
    params = init_layers(rng, (3, 4, 2), w_gain=1.5)
    params["unused"] = {"W": rng.standard_normal((3, 3))}

    def evaluate(p: Params, need_grad: bool) -> tuple[float, Grads | None]:
        loss, g = mlp_evaluate(spec, None, p, need_grad)
        if g is None:
            return loss, None
        U = p["unused"]["W"]
        g["unused"] = {"W": lam * U if bug == "decay_unused" else np.zeros_like(U)}
        return loss, g

    return make_model(
        "unused_param", params, evaluate, bug=bug, bugs=_UNUSED_BUGS,
        tags=("mlp", "tanh", "mse", "l2", "zero_grad"),
        description="Tanh MLP with L2 decay plus a tensor the loss does not use: its true "
        "gradient is exactly 0.",
    )


_LARGE_BUGS = {
    "bias_one_example": bug_of(
        ("linear.b",), "the bias gradient is taken from the first example only."
    ),
}


def large_loss(bug: str | None = None) -> ZooModel:
    """Linear regression whose loss is 1e6 + MSE; 4 -> 2, batch 8."""
    rng = np.random.default_rng(24)
    spec = MLPSpec(rng.standard_normal((8, 4)), rng.standard_normal((8, 2)), (), "mse",
                   names=("linear",), offset=1e6)
    params = init_layers(rng, (4, 2), names=("linear",))
    return engine_model(
        "large_loss", params, spec, bug, _LARGE_BUGS, ("linear", "mse", "large_loss"),
        "Linear regression whose loss is a constant 1e6 plus an O(1) MSE: the loss's rounding "
        "error (~1e-10) swamps differences taken with tiny steps.",
    )


_DROPOUT_BUGS = {
    "fresh_mask": bug_of(
        ("layer1.W", "layer1.b"),
        "the backward pass draws a fresh dropout mask instead of reusing the forward's.",
    ),
    "no_rescale": bug_of(
        ("layer1.W", "layer1.b"),
        "the backward pass applies the 0/1 dropout mask without the 1/keep factor.",
    ),
}

DROPOUT_SEED = 1234


def dropout_mlp(bug: str | None = None) -> ZooModel:
    """Tanh MLP with inverted dropout (keep 0.6, global RNG) and softmax loss; 4 -> 8 -> 3."""
    rng = np.random.default_rng(25)
    spec = MLPSpec(rng.standard_normal((6, 4)), _labels(rng, 6, 3), ("tanh",), "softmax_ce",
                   dropout_keep=0.6)
    params = init_layers(rng, (4, 8, 3), w_gain=1.5)
    return engine_model(
        "dropout_mlp", params, spec, bug, _DROPOUT_BUGS,
        ("mlp", "tanh", "softmax_ce", "dropout"),
        f"Tanh MLP with inverted dropout drawn from np.random.rand on every call; call "
        f"np.random.seed({DROPOUT_SEED}) before every evaluation.",
        needs_seed=DROPOUT_SEED,
    )
