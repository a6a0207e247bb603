"""Tests of the model zoo, independent of the gradient checker.

Correct models are checked against a careful numerical gradient of our own (float64 promotion,
Richardson-extrapolated central differences; at kinks, one-sided slopes with steps far below the
nearest near-kink, accepting any analytic value between the left and right slopes).  Buggy models
are checked against their correct twin and against the same numerical gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from gradcheck.examples import zoo
from gradcheck.examples.zoo import MODELS, ZooModel

EPS = float(np.finfo(np.float64).eps)
CORRECT = [m for m in MODELS if not m.buggy]
BUGGY = [m for m in MODELS if m.buggy]


def ids(models: list[ZooModel]) -> list[str]:
    """Test ids: the model names."""
    return [m.name for m in models]


def leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted name, leaf)`` pairs of a nested-dict tree, in insertion order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, tree


def promote(tree: Any) -> Any:
    """A float64 deep copy of ``tree``."""
    if isinstance(tree, dict):
        return {k: promote(v) for k, v in tree.items()}
    return np.array(tree, dtype=np.float64)


def call(model: ZooModel, fn: Callable[[Any], Any], params: Any) -> Any:
    """``fn(params)``, re-seeding numpy's global RNG first when the model needs it."""
    if model.needs_seed is not None:
        np.random.seed(model.needs_seed)
    return fn(params)


@dataclass
class Slopes:
    """Numerical derivative bounds of one tensor: the analytic must lie in [lo - tol, hi + tol]."""

    lo: np.ndarray
    hi: np.ndarray
    noise: np.ndarray


def numeric_slopes(model: ZooModel) -> dict[str, Slopes]:
    """Numerical derivative of ``model.forward`` at its params, in float64, element by element.

    Smooth models: Richardson extrapolation of central differences with h = 1e-4 max(1, |x|)
    (lo == hi).  Models tagged ``kink``: the left and right one-sided slopes with
    h = 1e-9 max(1, |x|), far below the 3e-8 distance of the nearest near-kink.
    """
    p = promote(model.params)
    kinked = "kink" in model.tags

    def f() -> float:
        return float(call(model, model.forward, p))

    f0 = f()
    out: dict[str, Slopes] = {}
    for name, arr in leaves(p):
        lo, hi, noise = (np.empty(arr.shape) for _ in range(3))
        for i in range(arr.size):
            x = arr.flat[i]
            rel = 1e-9 if kinked else 1e-4
            h = rel * max(1.0, abs(x))

            def at(step: float, x: float = x, i: int = i, arr: np.ndarray = arr) -> float:
                arr.flat[i] = x + step
                try:
                    return f()
                finally:
                    arr.flat[i] = x

            if kinked:
                fp, fm = at(h), at(-h)
                hp, hm = (x + h) - x, x - (x - h)
                slopes = ((fp - f0) / hp, (f0 - fm) / hm)
                lo.flat[i], hi.flat[i] = min(slopes), max(slopes)
                size = max(abs(f0), abs(fp), abs(fm))
            else:
                vals = [at(s) for s in (h, -h, h / 2, -h / 2)]
                d1 = (vals[0] - vals[1]) / ((x + h) - (x - h))
                d2 = (vals[2] - vals[3]) / ((x + h / 2) - (x - h / 2))
                lo.flat[i] = hi.flat[i] = (4 * d2 - d1) / 3
                size = max(abs(f0), *map(abs, vals))
            noise.flat[i] = 8 * EPS * size / h
        out[name] = Slopes(lo, hi, noise)
    return out


def within(model: ZooModel, grads: Any, slopes: dict[str, Slopes]) -> dict[str, np.ndarray]:
    """Per tensor, a boolean array: does the analytic element lie between the numerical bounds?"""
    float32 = any(np.asarray(a).dtype == np.float32 for _, a in leaves(model.params))
    rtol, atol_rel = (1e-4, 1e-5) if float32 else (1e-6, 1e-8)
    gscale = max(float(np.max(np.abs(np.r_[s.lo.ravel(), s.hi.ravel()]))) for s in slopes.values())
    ok = {}
    for name, g in leaves(grads):
        s = slopes[name]
        a = np.asarray(g, dtype=np.float64)
        tol = rtol * np.maximum(np.abs(a), np.maximum(np.abs(s.lo), np.abs(s.hi)))
        tol = tol + atol_rel * gscale + s.noise
        ok[name] = (a >= s.lo - tol) & (a <= s.hi + tol)
    return ok


def fb(model: ZooModel, params: Any = None) -> tuple[float, Any]:
    """``forward_backward`` at ``params`` (default: the model's), re-seeded if needed."""
    return call(model, model.forward_backward, model.params if params is None else params)


# ----------------------------------------------------------------------------- catalogue


def test_catalogue() -> None:
    names = [m.name for m in MODELS]
    assert len(MODELS) >= 45
    assert len(set(names)) == len(names)
    assert zoo.names() == names
    assert 0.35 <= len(BUGGY) / len(MODELS) <= 0.65
    for m in MODELS:
        assert zoo.get(m.name) is m
        assert m.buggy == bool(m.bad_tensors)
        assert m.tags and m.description
        assert (m.needs_seed is not None) == ("dropout" in m.tags)
        leaf_names = {n for n, _ in leaves(m.params)}
        assert m.bad_tensors <= leaf_names, m.bad_tensors - leaf_names
        assert sum(np.asarray(a).size for _, a in leaves(m.params)) <= 300
    with pytest.raises(KeyError, match="close names"):
        zoo.get("mlp_tanh_sofmax")


def test_required_coverage() -> None:
    tags = set().union(*(m.tags for m in CORRECT))
    for tag in ("kink", "near_kink", "maxpool_tie", "tiny_scale", "huge", "float32", "dropout",
                "zero_grad", "large_loss", "batchnorm", "layernorm", "embedding", "conv",
                "maxpool", "rnn", "lstm", "l1", "hinge", "sigmoid", "tanh", "relu", "mse",
                "softmax_ce"):
        assert tag in tags, tag
    buggy_tags = set().union(*(m.tags for m in BUGGY))
    for tag in ("subtle", "one_row", "one_element", "tiny_scale", "float32", "dropout", "kink"):
        assert tag in buggy_tags, tag


def test_twins_and_determinism() -> None:
    fresh = {m.name: m for m in zoo.build_all()}
    for m in MODELS:
        for (n1, a1), (n2, a2) in zip(leaves(m.params), leaves(fresh[m.name].params)):
            assert n1 == n2 and a1 is not a2 and np.array_equal(a1, a2)
        t = zoo.twin(m.name)
        assert (t is not None) == m.buggy
        if t is not None:
            assert not t.buggy and m.name.startswith(t.name + "_bug_")


# ----------------------------------------------------------------------------- every model


@pytest.mark.parametrize("model", MODELS, ids=ids(MODELS))
def test_contract(model: ZooModel) -> None:
    before = promote(model.params)
    loss = call(model, model.forward, model.params)
    assert isinstance(loss, (float, np.floating)) and np.isfinite(loss)
    loss2, grads = fb(model)
    assert loss2 == loss
    p_leaves, g_leaves = list(leaves(model.params)), list(leaves(grads))
    assert [n for n, _ in p_leaves] == [n for n, _ in g_leaves]
    for (name, p), (_, g) in zip(p_leaves, g_leaves):
        assert isinstance(g, np.ndarray), name
        assert g.shape == p.shape and g.dtype == p.dtype, name
        assert np.all(np.isfinite(g)), name
    for (_, p), (_, q) in zip(p_leaves, leaves(before)):
        assert np.array_equal(p, q), "the model must not modify its params"


@pytest.mark.parametrize("model", MODELS, ids=ids(MODELS))
def test_promoted_float64(model: ZooModel) -> None:
    """Forwards also accept float64 params (a checker may promote float32 ones)."""
    p64 = promote(model.params)
    loss32 = call(model, model.forward, model.params)
    loss64, grads64 = fb(model, p64)
    assert all(g.dtype == np.float64 for _, g in leaves(grads64))
    rtol = 1e-5 if "float32" in model.tags else 1e-13
    assert loss64 == pytest.approx(loss32, rel=rtol)


@pytest.mark.parametrize("model", [m for m in MODELS if m.needs_seed is not None],
                         ids=ids([m for m in MODELS if m.needs_seed is not None]))
def test_dropout_uses_global_rng(model: ZooModel) -> None:
    np.random.seed(0)
    a = model.forward(model.params)
    b = model.forward(model.params)
    assert a != b
    assert call(model, model.forward, model.params) == call(model, model.forward, model.params)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("model", CORRECT, ids=ids(CORRECT))
def test_correct_model_matches_numerical_gradient(model: ZooModel) -> None:
    slopes = numeric_slopes(model)
    _, grads = fb(model)
    for name, ok in within(model, grads, slopes).items():
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, (name, bad, np.asarray(dict(leaves(grads))[name]).flat[bad],
                               slopes[name].lo.flat[bad], slopes[name].hi.flat[bad])


@pytest.mark.parametrize("model", BUGGY, ids=ids(BUGGY))
def test_buggy_model_against_twin(model: ZooModel) -> None:
    twin = zoo.twin(model.name)
    assert twin is not None
    for (n1, a1), (n2, a2) in zip(leaves(model.params), leaves(twin.params)):
        assert n1 == n2 and np.array_equal(a1, a2)
    loss_bug, g_bug = fb(model)
    loss_true, g_true = fb(twin)
    assert loss_bug == loss_true
    true = dict(leaves(g_true))
    gscale = max(float(np.max(np.abs(g))) for g in true.values())
    for name, gb in leaves(g_bug):
        gt = true[name]
        if name in model.bad_tensors:
            diff = float(np.max(np.abs(gb - gt)))
            scale = max(float(np.max(np.abs(gt))), float(np.max(np.abs(gb))))
            assert diff > 1e-4 * scale, name
        else:  # same computation, up to the order of a summation
            np.testing.assert_allclose(gb, gt, rtol=1e-12, atol=1e-15 * gscale, err_msg=name)


@pytest.mark.parametrize("model", BUGGY, ids=ids(BUGGY))
def test_buggy_model_against_numerical_gradient(model: ZooModel) -> None:
    """The numerical gradient flags exactly the bad tensors (at least one element each)."""
    slopes = numeric_slopes(model)
    _, grads = fb(model)
    for name, ok in within(model, grads, slopes).items():
        if name in model.bad_tensors:
            assert not ok.all(), name
        else:
            assert ok.all(), (name, np.flatnonzero(~ok))


def test_subtle_bug_is_about_1e_3() -> None:
    m = zoo.get("mlp_tanh_l2tiny_bug_missing_reg")
    twin = zoo.twin(m.name)
    assert twin is not None
    gb = fb(m)[1]["layer1"]["W"]
    gt = fb(twin)[1]["layer1"]["W"]
    assert np.linalg.norm(gb - gt) / np.linalg.norm(gt) == pytest.approx(1e-3, rel=0.01)


@pytest.mark.parametrize("model", [m for m in CORRECT if "kink" in m.tags],
                         ids=ids([m for m in CORRECT if "kink" in m.tags]))
def test_kinked_models_really_sit_on_kinks(model: ZooModel) -> None:
    """Some element has left and right slopes that differ: a central difference is not enough."""
    slopes = numeric_slopes(model)
    gscale = max(float(np.max(np.abs(s.hi))) for s in slopes.values())
    assert any(np.any(s.hi - s.lo > 1e-3 * gscale) for s in slopes.values())


def test_near_kinks_fool_a_naive_step() -> None:
    """A central difference with h = 1e-6 crosses the near-kinks and disagrees with the truth."""
    for name in ("relu_kinks", "maxpool_ties"):
        m = zoo.get(name)
        p = promote(m.params)
        _, g = m.forward_backward(m.params)
        worst = 0.0
        for leaf, arr in leaves(p):
            ga = np.asarray(dict(leaves(g))[leaf])
            for i in range(arr.size):
                x = arr.flat[i]
                arr.flat[i] = x + 1e-6
                fp = m.forward(p)
                arr.flat[i] = x - 1e-6
                fm = m.forward(p)
                arr.flat[i] = x
                worst = max(worst, abs((fp - fm) / 2e-6 - ga.flat[i]))
        assert worst > 1e-3, name


def test_zero_gradients() -> None:
    _, g = fb(zoo.get("unused_param"))
    assert not np.any(g["unused"]["W"])
    _, g = fb(zoo.get("batchnorm_mlp"))
    assert 0 < np.max(np.abs(g["bn_in"]["b"])) < 1e-14  # true gradient exactly 0
    _, g = fb(zoo.get("embedding_bag"))
    assert not np.any(g["emb"]["E"][7])
