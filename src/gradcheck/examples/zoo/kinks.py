"""Correct models evaluated exactly at (or within 1e-7 of) a kink, and bugs hidden among kinks.

Data and weights are dyadic rationals (multiples of 1/4 and 1/8), so pre-activations and margins
that should be exactly 0 (or exactly 1) are exact in floating point.  At a kink the analytic
gradient is a valid one-sided derivative (ReLU'(0) = 0, leaky ReLU'(0) = slope, sign(0) = 0,
hinge'(at the margin) = 0), and along every single parameter there is at most one kink through
the current point, so the analytic value lies between the left and right slopes.
"""

from __future__ import annotations

import numpy as np

from gradcheck.examples.zoo._core import ZooModel, bug_of
from gradcheck.examples.zoo.mlp import LEAK, MLPSpec, engine_model, init_layers

NEAR_OFFSETS = (3e-8, -7e-8, 9e-8)
"""Offsets from the kink of the 'near-kink' pre-activations."""


def _kink_mlp(seed: int, act: str) -> tuple[dict, MLPSpec]:
    """Dyadic one-hidden-layer MLP with exact-zero and near-zero hidden pre-activations.

    Hidden units 0..2 have one example whose pre-activation is exactly 0, units 3..5 one example
    within 1e-7 of 0 (see :data:`NEAR_OFFSETS`), units 6..7 no pre-activation closer than 1/64.
    All other pre-activations of units 0..5 are at least 1/32 away from 0.
    """
    n, d, k = 8, 4, 3
    n_zero, n_plain = 3, 2
    n_special = n_zero + len(NEAR_OFFSETS)
    h = n_special + n_plain
    for attempt in range(1000):
        rng = np.random.default_rng(seed + attempt)
        X = rng.integers(1, 5, (n, d)) * rng.choice([-1, 1], (n, d)) / 4  # no zero inputs
        W1 = rng.integers(-8, 9, (d, h)) / 8
        Z = X @ W1  # multiples of 1/32, exact
        b1 = rng.integers(-8, 9, h) / 8 + 1 / 64  # plain units: |z| >= 1/64
        rows = rng.choice(n, n_special, replace=False)
        ok = True
        for u in range(n_special):
            r = rows[u]
            offset = NEAR_OFFSETS[u - n_zero] if u >= n_zero else 0.0
            b1[u] = -Z[r, u] + offset
            others = np.delete(Z[:, u], r) - Z[r, u]
            ok = ok and bool(np.all(others != 0))  # so |others| >= 1/32
        if ok:
            break
    else:  # pragma: no cover - construction is deterministic
        raise RuntimeError("could not build kink data")
    params = {
        "layer1": {"W": W1, "b": b1},
        "layer2": {
            "W": rng.standard_normal((h, k)) / np.sqrt(h),
            "b": 0.1 * rng.standard_normal(k),
        },
    }
    y = np.arange(n) % k
    rng.shuffle(y)
    return params, MLPSpec(X, y, (act,), "softmax_ce")


_RELU_KINK_BUGS = {
    "mask_from_output": bug_of(
        ("layer1.W", "layer1.b"),
        "the ReLU mask is computed from the output, (relu(z) >= 0), which is always true.",
    ),
}


def relu_kinks(bug: str | None = None) -> ZooModel:
    """ReLU MLP with hidden pre-activations exactly 0 and within 1e-7 of 0; 4 -> 8 -> 3."""
    params, spec = _kink_mlp(41, "relu")
    return engine_model(
        "relu_kinks", params, spec, bug, _RELU_KINK_BUGS,
        ("mlp", "relu", "softmax_ce", "kink", "near_kink"),
        "ReLU MLP on dyadic data: three hidden pre-activations are exactly 0 (analytic uses "
        "ReLU'(0) = 0) and three are 3e-8, -7e-8 and 9e-8, so a finite-difference step of 1e-6 "
        "straddles the kink.",
    )


_LEAKY_BUGS = {
    "act_deriv": bug_of(
        ("layer1.W", "layer1.b"),
        f"the leaky ReLU derivative uses 0 instead of {LEAK} on the negative side.",
    ),
}


def leaky_relu_kinks(bug: str | None = None) -> ZooModel:
    """Leaky-ReLU MLP with hidden pre-activations exactly 0 and within 1e-7 of 0; 4 -> 8 -> 3."""
    params, spec = _kink_mlp(51, "leaky_relu")
    return engine_model(
        "leaky_relu_kinks", params, spec, bug, _LEAKY_BUGS,
        ("mlp", "leaky_relu", "softmax_ce", "kink", "near_kink"),
        f"Leaky-ReLU (slope {LEAK}) MLP on dyadic data with pre-activations exactly at 0 "
        f"(analytic uses the slope {LEAK} there) and within 1e-7 of 0.",
    )


_L1_BUGS = {
    "missing_l1": bug_of(
        ("linear.W",), "the L1 term lambda * sign(W) is missing from the weight gradient."
    ),
}


def l1_exact_zero(bug: str | None = None) -> ZooModel:
    """Lasso-style linear regression, MSE + 0.05 * sum|W| with 5 of 15 weights exactly 0."""
    rng = np.random.default_rng(61)
    spec = MLPSpec(rng.standard_normal((10, 5)), rng.standard_normal((10, 3)), (), "mse",
                   names=("linear",), l1={"linear": 0.05})
    params = init_layers(rng, (5, 3), names=("linear",))
    W = params["linear"]["W"]
    W.flat[rng.choice(W.size, 5, replace=False)] = 0.0
    return engine_model(
        "l1_exact_zero", params, spec, bug, _L1_BUGS, ("linear", "mse", "l1", "kink"),
        "Linear regression with an L1 penalty; five weights are exactly 0 where |W| has a kink "
        "and the analytic uses sign(0) = 0, a valid subgradient.",
    )


_HINGE_BUGS = {
    "no_batch_div": bug_of(
        ("linear.W", "linear.b"), "the hinge delta is not divided by the batch size (12).",
    ),
}


def hinge_margin(bug: str | None = None) -> ZooModel:
    """Linear SVM (mean hinge loss + L2) with two examples exactly at the margin; 4 -> 1."""
    n, d = 12, 4
    for seed in range(71, 2000):
        rng = np.random.default_rng(seed)
        X = rng.integers(-4, 5, (n, d)) / 4
        y = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
        W = rng.integers(-8, 9, (d, 1)) / 8
        W[1] = W[0]
        X[1] = X[0, [1, 0, 2, 3]]
        y[1] = y[0]
        b = y[0] - X[0] @ W  # y0 * (x0 @ W + b) == 1 exactly, and the same for example 1
        m = y * (X @ W + b)
        at = int(np.sum(m == 1))
        if (X[0, 0] != X[0, 1] and W[0, 0] != 0 and at == 2 and np.sum(m < 1) >= 3
                and np.sum(m > 1) >= 3):
            break
    spec = MLPSpec(X, y, (), "hinge", names=("linear",), l2={"linear": 0.01})
    params = {"linear": {"W": W, "b": b}}
    return engine_model(
        "hinge_margin", params, spec, bug, _HINGE_BUGS, ("linear", "hinge", "kink"),
        "Linear SVM with mean hinge loss and L2; two examples sit exactly on the margin "
        "(y f(x) == 1) where the analytic uses the subgradient 0.",
    )
