"""Shared pieces of the model zoo: the :class:`ZooModel` record, bug tables and numpy helpers.

Every model of the zoo is built by a *builder* ``builder(bug=None) -> ZooModel``.  The builder
owns one forward pass and one hand-written backward pass; a bug is a named deviation inside the
backward pass only, so a buggy model and its correct twin share parameters, data and forward
value, and differ exactly in the gradients of the tensors listed in ``bad_tensors``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.examples.bugs import Bug

Params = dict[str, Any]
"""A parameter tree: nested ``dict`` of ``str`` to numpy arrays."""

Grads = dict[str, Any]
"""A gradient tree, shaped like the parameter tree."""

Evaluate = Callable[[Params, bool], tuple[float, "Grads | None"]]
"""``evaluate(params, need_grad) -> (loss, grads or None)``; the single source of both passes."""


@dataclass
class ZooModel:
    """A small numpy model with a hand-written gradient, correct or deliberately wrong.

    Attributes
    ----------
    name : unique name, e.g. ``"mlp_tanh_softmax"`` or ``"mlp_tanh_softmax_bug_sign_W_out"``.
    params : parameter tree (nested dicts of numpy arrays) at which to check the gradient.
    forward : ``forward(params) -> float``, the scalar loss.
    forward_backward : ``forward_backward(params) -> (loss, grads)``, grads shaped like params.
    buggy : whether ``forward_backward`` returns a wrong gradient.
    bad_tensors : dotted names (``"layer1.W"``) of the tensors whose gradient is wrong.
    tags : features of the model that make checking it hard or interesting.
    needs_seed : if not None, the forward draws from numpy's *global* RNG, and a checker must
        call ``np.random.seed(needs_seed)`` before every evaluation.
    description : one or two sentences on the model (and on the bug).
    """

    name: str
    params: Params
    forward: Callable[[Params], float]
    forward_backward: Callable[[Params], tuple[float, Grads]]
    buggy: bool
    bad_tensors: frozenset[str]
    tags: frozenset[str]
    needs_seed: int | None = None
    description: str = ""


def bug_of(affects: tuple[str, ...], description: str, tags: tuple[str, ...] = ()) -> Bug:
    """A zoo bug: which tensors it breaks, what it is, extra tags (named when registered)."""
    return Bug("", description, frozenset(affects), frozenset(tags))


Builder = Callable[..., ZooModel]


def make_model(
    base: str,
    params: Params,
    evaluate: Evaluate,
    *,
    bug: str | None,
    bugs: Mapping[str, Bug],
    tags: tuple[str, ...] | frozenset[str] = (),
    needs_seed: int | None = None,
    description: str = "",
) -> ZooModel:
    """Wrap one ``evaluate`` closure into a :class:`ZooModel`.

    Parameters
    ----------
    base : name of the correct model; a buggy one is called ``f"{base}_bug_{bug}"``.
    params : the parameter tree.
    evaluate : ``evaluate(params, need_grad)``; the bug must already be bound into it.
    bug : None for the correct model, else a key of ``bugs``.
    bugs : the bugs this builder offers.
    tags : tags of the correct model (a bug may add more).
    needs_seed : seed to re-apply to the global RNG before every evaluation, if any.
    description : description of the correct model.

    Returns
    -------
    ZooModel
    """
    if bug is not None and bug not in bugs:
        raise ValueError(f"model {base!r} has no bug {bug!r}; choose one of {sorted(bugs)}")

    def forward(p: Params) -> float:
        return evaluate(p, False)[0]

    def forward_backward(p: Params) -> tuple[float, Grads]:
        loss, grads = evaluate(p, True)
        assert grads is not None
        return loss, grads

    forward.__doc__ = f"Loss of zoo model {base!r}."
    forward_backward.__doc__ = f"Loss and hand-written gradient of zoo model {base!r}."
    if bug is None:
        return ZooModel(
            name=base,
            params=params,
            forward=forward,
            forward_backward=forward_backward,
            buggy=False,
            bad_tensors=frozenset(),
            tags=frozenset(tags),
            needs_seed=needs_seed,
            description=description,
        )
    spec = bugs[bug]
    return ZooModel(
        name=f"{base}_bug_{bug}",
        params=params,
        forward=forward,
        forward_backward=forward_backward,
        buggy=True,
        bad_tensors=spec.affects,
        tags=frozenset(tags) | spec.tags,
        needs_seed=needs_seed,
        description=f"{description} BUG: {spec.description}",
    )


# ----------------------------------------------------------------------------- numpy helpers


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, accurate for large ``|z|`` on both sides, in ``z``'s dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    """Derivative ``s(z) (1 - s(z))`` of the logistic function without cancellation."""
    e = np.exp(-np.abs(z))
    return (e / ((1 + e) * (1 + e))).astype(z.dtype, copy=False)


def softmax_ce(
    logits: np.ndarray, labels: np.ndarray, need_grad: bool
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Mean softmax cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,).

    Returns
    -------
    loss : the mean loss, a numpy scalar in ``logits``' dtype.
    dlogits : its gradient with respect to ``logits`` (None unless ``need_grad``).
    probs : the softmax probabilities (None unless ``need_grad``).
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    logp = shifted - np.log(s)
    loss = -logp[np.arange(n), labels].mean()
    if not need_grad:
        return loss, None, None
    probs = e / s
    d = probs.copy()
    d[np.arange(n), labels] -= 1
    return loss, d / n, probs


def zeros_like_tree(tree: Params) -> Grads:
    """A tree of zero arrays shaped (and typed) like ``tree``."""
    return {
        k: zeros_like_tree(v) if isinstance(v, dict) else np.zeros_like(v) for k, v in tree.items()
    }


def dtype_of(tree: Params) -> np.dtype:
    """Dtype of the first array of ``tree`` (the dtype the model computes in)."""
    for v in tree.values():
        return dtype_of(v) if isinstance(v, dict) else v.dtype
    raise ValueError("empty parameter tree")


def cast(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """``x`` in dtype ``dt`` (no copy when it already is)."""
    return x.astype(dt, copy=False)
