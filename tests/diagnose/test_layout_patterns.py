"""The patterns of issue 12 (masks, one-hot terms, flips, shifts, one time step, one factor,
activation slips, slopes, batch-statistics terms, one term of a sum, groups): each is
recognised on planted errors over grids of shapes and seeds, and none is claimed on correct
tensors whatever context is given."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck.diagnose.groups import describe_error, diagnose_groups
from gradcheck.diagnose.patterns import diagnose_tensor

NOISE = 1e-9          # error bar of the synthetic numerical gradients
SEEDS = range(4)


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _num(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """``n`` plus numerical-gradient-like noise of size NOISE."""
    return n + NOISE * rng.normal(size=n.shape)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _away(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of both signs, at least 0.1 from zero."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.5, size=shape)


def _confident(d, kind: str) -> None:
    assert d is not None and d.kind == kind and d.confidence >= 0.7, d
    assert d.sentence[0].isupper() and d.sentence.endswith(".") and "\n" not in d.sentence


# ---------------------------------------------------------------------------------------------
# masks


def _relu(rng, shape, bug):
    x = _away(rng, shape)
    dout = rng.normal(size=shape)
    n = dout * (x > 0)
    a = {"missing": dout.copy(), "inverted": dout * (x < 0),
         "other": dout * (rng.random(shape) < 0.5)}[bug]
    return a, n, x


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 5), (30,)], ids=str)
@pytest.mark.parametrize("bug", ["missing", "inverted", "other"])
def test_masks(bug, shape, seed):
    rng = _rng("mask", bug, shape, seed)
    a, n, x = _relu(rng, shape, bug)
    d = diagnose_tensor("x", a, _num(rng, n), noise=NOISE, value=x)
    _confident(d, "mask")
    assert "x" in d.sentence
    assert ("missing" in d.sentence) == (bug == "missing")
    assert ("inverted" in d.sentence) == (bug == "inverted")


def _maxpool(rng, shape, first: bool):
    """The input gradient of a 2x2 max pool: to the max of each window, or wrongly routed."""
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(float)
    n, a = np.zeros(shape), np.zeros(shape)
    lead = shape[:-2]
    for i in range(0, shape[-2] - 1, 2):
        for j in range(0, shape[-1] - 1, 2):
            win = x[..., i:i + 2, j:j + 2].reshape(*lead, 4)
            g = rng.normal(size=lead)
            right = np.zeros(win.shape)
            np.put_along_axis(right, win.argmax(axis=-1)[..., None], g[..., None], axis=-1)
            wrong = np.zeros(win.shape)
            if first:
                wrong[..., 0] = g
            else:
                wrong[:] = g[..., None]
            n[..., i:i + 2, j:j + 2] = right.reshape(*lead, 2, 2)
            a[..., i:i + 2, j:j + 2] = wrong.reshape(*lead, 2, 2)
    return a, n


@pytest.mark.parametrize("first", [True, False], ids=["route-first", "route-all"])
@pytest.mark.parametrize("shape", [(2, 2, 4, 4), (1, 3, 6, 6)], ids=str)
def test_pooling_routes_are_masks(shape, first):
    rng = _rng("pool", shape, first)
    a, n = _maxpool(rng, shape, first)
    _confident(diagnose_tensor("x", a, _num(rng, n), noise=NOISE), "mask")


def test_all_zero_numerical_gradient_is_not_a_mask():
    rng = np.random.default_rng(1)
    d = diagnose_tensor("b", rng.normal(size=4), NOISE * rng.normal(size=4), noise=NOISE)
    assert d is None or d.kind != "mask"


# ---------------------------------------------------------------------------------------------
# one-hot terms


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n_rows", "classes"), [(5, 4), (16, 10), (3, 3)])
@pytest.mark.parametrize("k", [1, 2, -1])
def test_one_hot_rows(k, n_rows, classes, seed):
    rng = _rng("onehot", k, n_rows, classes, seed)
    x = rng.normal(size=(n_rows, classes))
    y = rng.integers(0, classes, size=n_rows)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    onehot = np.eye(classes)[y]
    n = (p - onehot) / n_rows
    d = diagnose_tensor("x", n + k * onehot / n_rows, _num(rng, n), noise=NOISE,
                        batch_size=n_rows)
    _confident(d, "one_hot")
    assert "one entry in each" in d.sentence


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("batch", [2, 4, 8])
def test_one_hot_counts_on_a_bias(batch, seed):
    rng = _rng("counts", batch, seed)
    vocab, steps = 12, 6
    counts = np.bincount(rng.integers(0, vocab, size=batch * steps), minlength=vocab)
    n = 0.3 * rng.normal(size=vocab)
    d = diagnose_tensor("c", n + counts / batch, _num(rng, n), noise=NOISE, batch_size=batch,
                        seq_len=steps)
    _confident(d, "one_hot")
    assert f"1/{batch}" in d.sentence


# ---------------------------------------------------------------------------------------------
# flips and shifts


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(3, 2, 3, 3), (4, 5), (2, 5, 5)], ids=str)
def test_flipped(shape, seed):
    rng = _rng("flip", shape, seed)
    n = rng.normal(size=shape)
    a = np.flip(n, axis=(len(shape) - 2, len(shape) - 1)).copy()
    d = diagnose_tensor("w", a, _num(rng, n), noise=NOISE)
    _confident(d, "flipped")
    assert "reversed along axes" in d.sentence


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(2, 2, 5, 5), (6, 7), (12,)], ids=str)
@pytest.mark.parametrize("s", [1, -1])
def test_shifted(shape, s, seed):
    rng = _rng("shift", shape, s, seed)
    n = rng.normal(size=shape)
    axes = tuple(range(max(len(shape) - 2, 0), len(shape)))
    a = np.roll(n, s, axis=axes)          # what wraps around stands for a padding's values
    d = diagnose_tensor("x", a, _num(rng, n), noise=NOISE)
    _confident(d, "shifted")
    assert "shifted by one" in d.sentence


# ---------------------------------------------------------------------------------------------
# low rank: one time step; one factor of X^T delta


def _bptt(rng, h, v, b, t):
    """A weight gradient as a sum over t steps of b per-example outer products."""
    dz = rng.normal(size=(t, b, h))
    x = rng.normal(size=(t, b, v))
    return np.einsum("tbh,tbv->hv", dz, x), dz


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("h", "v", "b", "t"), [(16, 16, 4, 10), (8, 12, 2, 5), (10, 6, 3, 4)])
def test_one_step(h, v, b, t, seed):
    rng = _rng("step", h, v, b, t, seed)
    n, dz = _bptt(rng, h, v, b, t)
    a = n + dz[0].T @ rng.normal(size=(b, v))      # step 0 multiplied with the wrong state
    d = diagnose_tensor("W", a, _num(rng, n), noise=NOISE, batch_size=b, seq_len=t)
    _confident(d, "one_step")
    assert f"rank {b}" in d.sentence


def test_one_step_needs_a_sequence():
    rng = np.random.default_rng(2)
    n, dz = _bptt(rng, 12, 12, 2, 6)
    a = n + dz[0].T @ rng.normal(size=(2, 12))
    d = diagnose_tensor("W", a, _num(rng, n), noise=NOISE, batch_size=2)
    assert d is None or d.kind != "one_step"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("rows", "cols", "batch"), [(5, 5, 3), (6, 4, 2), (8, 8, 3)])
@pytest.mark.parametrize("side", ["left", "right"])
def test_factor(rows, cols, batch, side, seed):
    rng = _rng("factor", rows, cols, batch, side, seed)
    x = rng.normal(size=(batch, rows))
    delta = rng.normal(size=(batch, cols))
    n = x.T @ delta
    if side == "left":
        a = (x + rng.normal(size=x.shape)).T @ delta
    else:
        a = x.T @ (delta * rng.uniform(0.2, 2.0, size=delta.shape))
    d = diagnose_tensor("Wh", a, _num(rng, n), noise=NOISE)
    _confident(d, "factor")
    assert ("row space" if side == "left" else "column space") in d.sentence


def test_a_scale_of_a_low_rank_gradient_is_a_scale():
    rng = np.random.default_rng(3)
    n = rng.normal(size=(3, 6)).T @ rng.normal(size=(3, 5))
    d = diagnose_tensor("W", 3.3 * n, _num(rng, n), noise=NOISE)
    assert d.kind == "scale"


# ---------------------------------------------------------------------------------------------
# the tensor's value: activation slips, slopes, normalisation terms


SLIPS = {
    "sigmoid at input": (lambda x: _sigmoid(x) * (1 - _sigmoid(x)), lambda x: x * (1 - x)),
    "sigmoid s": (lambda x: _sigmoid(x) * (1 - _sigmoid(x)), _sigmoid),
    "tanh at input": (lambda x: 1 - np.tanh(x) ** 2, lambda x: 1 - x ** 2),
    "tanh 1-t": (lambda x: 1 - np.tanh(x) ** 2, lambda x: 1 - np.tanh(x)),
    "tanh missing": (lambda x: 1 - np.tanh(x) ** 2, np.ones_like),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(4, 5), (20,), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("slip", list(SLIPS))
def test_activation_slips(slip, shape, seed):
    rng = _rng("act", slip, shape, seed)
    right, wrong = SLIPS[slip]
    x = 1.5 * rng.normal(size=shape)
    dout = rng.normal(size=shape)
    d = diagnose_tensor("x", dout * wrong(x), _num(rng, dout * right(x)), noise=NOISE, value=x)
    _confident(d, "activation")
    assert ("at the input" in d.sentence) == ("input" in slip)
    assert slip.split()[0] in d.sentence


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(4, 5), (30,)], ids=str)
@pytest.mark.parametrize(("right", "wrong"), [((1.0, 0.1), (0.1, 1.0)), ((1.0, 0.1), (1.0, 0.3)),
                                              ((1.0, 0.2), (2.0, 0.2 * 0.1))])
def test_slopes(right, wrong, shape, seed):
    rng = _rng("slopes", right, wrong, shape, seed)
    x = _away(rng, shape)
    dout = rng.normal(size=shape)
    n = dout * np.where(x > 0, *right)
    a = dout * np.where(x > 0, *wrong)
    d = diagnose_tensor("x", a, _num(rng, n), noise=NOISE, value=x)
    _confident(d, "slopes")
    assert ("swapped" in d.sentence) == (wrong == right[::-1])


def _normalisation(x, dout, axis):
    mu = x.mean(axis=axis, keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=axis, keepdims=True) + 1e-5)
    xhat = (x - mu) * inv
    m = x.shape[axis]
    full = inv / m * (m * dout - dout.sum(axis=axis, keepdims=True)
                      - xhat * (dout * xhat).sum(axis=axis, keepdims=True))
    return full, dout * inv


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("shape", "axis"), [((4, 3), 0), ((8, 5), 0), ((5, 6), 1)])
def test_mean_terms(shape, axis, seed):
    rng = _rng("bn", shape, axis, seed)
    x = 1 + 2 * rng.normal(size=shape)
    n, a = _normalisation(x, rng.normal(size=shape), axis)
    d = diagnose_tensor("x", a, _num(rng, n), noise=NOISE, value=x)
    _confident(d, "mean_terms")
    assert f"axis {axis}" in d.sentence


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("k", "shape"), [(4, (6,)), (10, (3,)), (3, (2, 4))])
def test_one_term(k, shape, seed):
    rng = _rng("term", k, shape, seed)
    terms = rng.normal(size=(k, *shape))
    which = int(rng.integers(k))
    d = diagnose_tensor("b", terms[which].copy(), _num(rng, terms.sum(axis=0)), noise=NOISE,
                        terms=terms)
    _confident(d, "one_term")
    assert f"term {which}" in d.sentence


# ---------------------------------------------------------------------------------------------
# no sentence on correct tensors, whatever context is given


def _all_context(rng, shape):
    return {"value": rng.normal(size=shape), "batch_size": int(rng.integers(2, 9)),
            "seq_len": int(rng.integers(2, 12)), "terms": rng.normal(size=(3, *shape))}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(4, 5), (6, 6), (3, 2, 3, 3), (16, 16), (12,), (5, 4)],
                         ids=str)
@pytest.mark.parametrize("regime", ["exact", "noise", "relu", "bptt", "onehot", "lowrank"])
def test_correct_tensors_get_no_sentence(regime, shape, seed):
    rng = _rng("correct", regime, shape, seed)
    kw = _all_context(rng, shape)
    if regime == "relu":                 # many exact zeros, as below a ReLU
        x = _away(rng, shape)
        n = rng.normal(size=shape) * (x > 0)
        kw["value"] = x
    elif regime == "bptt" and len(shape) == 2:
        n = _bptt(rng, shape[0], shape[1], kw["batch_size"], kw["seq_len"])[0]
    elif regime == "onehot" and len(shape) == 2:
        y = rng.integers(0, shape[1], size=shape[0])
        n = (np.full(shape, 1 / shape[1]) - np.eye(shape[1])[y]) / shape[0]
        kw["batch_size"] = shape[0]
    elif regime == "lowrank" and len(shape) == 2:
        n = rng.normal(size=(2, shape[0])).T @ rng.normal(size=(2, shape[1]))
    else:
        n = rng.normal(size=shape)
    sigma = 1e-6 * float(np.sqrt(np.mean(n ** 2)))
    a = n + (0.0 if regime == "exact" else sigma * rng.normal(size=shape))
    assert diagnose_tensor("W", a, n, noise=sigma, **kw) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from([(5,), (4, 4), (6, 5), (3, 4, 5), (2, 2, 4, 4)]),
       seed=st.integers(0, 2**32 - 1), log_eps=st.floats(-4, 0), zeros=st.floats(0, 0.6),
       pass_noise=st.booleans())
def test_noise_with_every_context_gets_no_confident_sentence(shape, seed, log_eps, zeros,
                                                             pass_noise):
    rng = np.random.default_rng(seed)
    n = rng.normal(size=shape) * (rng.random(shape) >= zeros)
    scale = float(np.sqrt(np.mean(n ** 2))) or 1.0
    sigma = 10.0 ** log_eps * scale
    a = n + sigma * rng.normal(size=shape)
    d = diagnose_tensor("W", a, n, noise=sigma if pass_noise else None,
                        **_all_context(rng, shape))
    assert d is None or d.kind == "unknown" or d.confidence < 0.7, d


# ---------------------------------------------------------------------------------------------
# which tensors fail: a shared upstream gradient or one tensor's own line


def test_groups_shared_and_own_formula():
    groups = [["U", "W", "b"], ["V", "c"]]
    every = ["U", "W", "b", "V", "c"]

    def run(bad):
        return diagnose_groups(groups, {n: n in bad for n in every},
                               {n: n not in bad for n in every})

    out = run({"U", "W", "b"})
    assert set(out) == {"U", "W", "b"} and all(d.kind == "shared" for d in out.values())
    assert "V and c are right" in out["U"].sentence
    out = run({"b"})
    assert set(out) == {"b"} and out["b"].kind == "own_formula"
    assert "U and W" in out["b"].sentence
    out = run({"U", "W", "b", "V", "c"})
    assert "nearer the loss" in out["U"].sentence and out["V"].kind == "shared"
    assert "loss itself" in out["V"].sentence
    out = run({"U", "W"})
    assert out["U"].kind == "shared" and "b's is right" in out["U"].sentence
    assert run(set()) == {}
    assert all(d.confidence >= 0.7 for d in run({"V"}).values())
    assert diagnose_groups([["x"]], {"x": True}, {"x": False}) == {}
    assert diagnose_groups([["x", "nosuch"]], {"x": True}, {"x": False}) == {}


def test_groups_need_the_others_decided():
    out = diagnose_groups([["x", "w", "b"]], {"x": True, "w": False, "b": False},
                          {"x": False, "w": True, "b": False})    # b inconclusive
    assert out == {}


def test_describe_error_shows_where_sign_and_size():
    rng = np.random.default_rng(3)
    n = rng.normal(size=(6, 5))
    a = n.copy()
    a[[1, 4]] *= 0.5
    bad = np.abs(a - n) > 1e-9
    d = describe_error("W", a, n, bad)
    assert d.kind == "unknown" and d.confidence == 0.0
    assert "No known bug pattern" in d.sentence and "rows 1 and 4" in d.sentence
    assert "too small" in d.sentence and "same sign everywhere" in d.sentence
    d = describe_error("W", -2 * n, n, np.ones(n.shape, bool))
    assert "every row and column" in d.sentence and "opposite sign" in d.sentence
    d = describe_error("b", a.ravel(), n.ravel(), bad.ravel(), layout=False)
    assert "10 of 30 entries" in d.sentence
    d = describe_error("b", np.ones(3), np.zeros(3), np.ones(3, bool))
    assert "numerical gradient is zero" in d.sentence


@pytest.mark.parametrize("c", [3.0, 0.3, 4.0, -2.5])
@pytest.mark.parametrize("regime", ["column_constant", "quantised", "low_rank"])
def test_a_plain_scale_stays_a_scale(regime, c):
    """A ≈ c·N with an N that is constant down columns, quantised or low rank: the shape
    patterns must leave it to the constant test."""
    rng = _rng("scale", regime, c)
    if regime == "column_constant":
        n = np.tile(rng.normal(size=3), (4, 1))
    elif regime == "quantised":
        n = rng.integers(-3, 4, size=(5, 4)) / 5.0
    else:
        n = rng.normal(size=(2, 6)).T @ rng.normal(size=(2, 5))
    d = diagnose_tensor("x", c * n, _num(rng, n), noise=NOISE, batch_size=5, seq_len=4,
                        value=rng.normal(size=n.shape))
    assert d is not None and d.kind in ("scale", "sign") and d.confidence >= 0.7, d


def _classic(rng, kind, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    if kind == "sign":
        a = -n
    elif kind == "scale":
        a = 2.0 * n
    elif kind == "transpose":
        a = n.T.copy()
    elif kind == "first_step":
        a[0] += rng.normal(size=a[0].shape)
    elif kind == "edges":
        a[:, 0] += rng.normal(size=a[:, 0].shape)
        a[:, -1] += rng.normal(size=a[:, -1].shape)
    elif kind == "zero":
        a[[1, 3]] = 0.0
    return a, n


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(6, 6), (8, 5), (16, 16)], ids=str)
@pytest.mark.parametrize("kind", ["sign", "scale", "transpose", "first_step", "edges", "zero"])
def test_classic_patterns_keep_their_kind_with_every_context(kind, shape, seed):
    if kind == "transpose" and shape[0] != shape[1]:
        pytest.skip("a transpose needs a square matrix")
    rng = _rng("classic", kind, shape, seed)
    a, n = _classic(rng, kind, shape)
    kw = _all_context(rng, shape)
    d = diagnose_tensor("W", a, _num(rng, n), noise=NOISE, **kw)
    assert d is not None and d.kind == kind and d.confidence >= 0.7, d


def test_a_poor_fit_on_a_special_value_is_not_that_factor():
    """The hinge loss counting the correct class's own margin: A = N except -1/B at the
    targets, which a constant fits poorly (c = 1.25 = 5/4 by coincidence here)."""
    n = np.full((5, 4), 0.2)
    y = np.array([3, 0, 0, 0, 0])
    n[np.arange(5), y] = -0.6
    a = n.copy()
    a[np.arange(5), y] -= 0.2
    d = diagnose_tensor("x", a, n + NOISE * np.random.default_rng(0).normal(size=n.shape),
                        noise=NOISE, batch_size=5)
    _confident(d, "one_hot")


@pytest.mark.parametrize("context", [{}, {"seq_len": 6}, {"time_axis": 0}])
def test_first_slice_is_a_row_unless_there_is_a_sequence(context):
    rng = np.random.default_rng(9)
    n = rng.normal(size=(6, 5))
    a = n.copy()
    a[0] += 1.0
    d = diagnose_tensor("W", a, _num(rng, n), noise=NOISE, **context)
    _confident(d, "first_step")
    assert ("first row" in d.sentence) == (not context)
    assert ("backward loop" in d.sentence)
