"""Tests of the reference layers in ``gradcheck.examples.layers``.

These tests are self-contained: they use a small central finite-difference helper
written here and do not depend on the gradcheck checker core.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from gradcheck.examples import layers as L
from gradcheck.examples.layers import KINK_DISTANCE, LAYERS, LayerSpec, buggy_backward

H_STEP = 1e-6
FD_TOL = 1e-6
BUG_MIN_DIFF = 1e-3

LAYER_NAMES = sorted(LAYERS)
BUG_CASES = [(name, bug) for name in LAYER_NAMES for bug in sorted(LAYERS[name].bugs)]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _args(spec: LayerSpec, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [inputs[n] for n in spec.input_names]


def _random_like(out: Any, rng: np.random.Generator) -> Any:
    if isinstance(out, tuple):
        return tuple(rng.normal(size=np.shape(o)) for o in out)
    return rng.normal(size=np.shape(out))


def _dot(out: Any, dout: Any) -> float:
    if isinstance(out, tuple):
        return float(sum(np.sum(o * d) for o, d in zip(out, dout)))
    return float(np.sum(out * dout))


def _scalar(spec: LayerSpec, inputs: dict[str, np.ndarray], dout: Any) -> float:
    """The scalar whose gradient the backward pass computes."""
    if spec.is_loss:
        loss, _ = spec.forward(*_args(spec, inputs))
        return float(loss)
    out, _ = spec.forward(*_args(spec, inputs), **spec.kwargs)
    return _dot(out, dout)


def numeric_grad(f, x: np.ndarray, h: float = H_STEP) -> np.ndarray:
    """Central finite difference of the scalar function ``f()`` w.r.t. ``x`` (modified in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
    return grad


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(max |a|, max |b|), with a floor of 1e-8 on the denominator."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-8)
    return float(np.max(np.abs(a - b)) / denom)


def analytic(spec: LayerSpec, inputs: dict[str, np.ndarray], dout: Any, backward=None):
    """Return (gradients dict, value) using ``backward`` (default: the correct one)."""
    backward = spec.backward if backward is None else backward
    if spec.is_loss:
        loss, dx = backward(*_args(spec, inputs))
        return {"x": dx}, loss
    _, cache = spec.forward(*_args(spec, inputs), **spec.kwargs)
    grads = backward(dout, cache)
    assert isinstance(grads, tuple)
    assert len(grads) == len(spec.differentiable)
    return dict(zip(spec.differentiable, grads)), None


def setup(name: str, seed: int = 0):
    spec = LAYERS[name]
    inputs = spec.make_inputs(np.random.default_rng(seed))
    dout = None
    if not spec.is_loss:
        out, _ = spec.forward(*_args(spec, inputs), **spec.kwargs)
        dout = _random_like(out, np.random.default_rng(1000 + seed))
    return spec, inputs, dout


# ---------------------------------------------------------------------------
# Registry structure
# ---------------------------------------------------------------------------


def test_expected_layers_present():
    expected = {
        "affine",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "batchnorm",
        "layernorm",
        "dropout",
        "conv_naive",
        "max_pool_naive",
        "rnn_step",
        "lstm_step",
        "embedding",
        "softmax_loss",
        "svm_loss",
    }
    assert expected <= set(LAYERS)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_spec_structure(name):
    spec = LAYERS[name]
    assert spec.name == name
    assert set(spec.differentiable) <= set(spec.input_names)
    # differentiable inputs appear in input order
    order = [spec.input_names.index(d) for d in spec.differentiable]
    assert order == sorted(order)
    assert spec.bugs, "every layer needs at least one bug"
    for bug_name, bug in spec.bugs.items():
        assert bug.name == bug_name
        assert isinstance(bug.affects, frozenset)
        assert bug.affects and bug.affects <= set(spec.differentiable)
        # one plain sentence: ends with a period, no inner ". X" sentence break
        assert bug.description.endswith(".")
        assert not re.search(r"[.!?] [A-Z]", bug.description), bug.description


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_make_inputs_deterministic_and_typed(name):
    spec = LAYERS[name]
    a = spec.make_inputs(np.random.default_rng(0))
    b = spec.make_inputs(np.random.default_rng(0))
    assert set(a) == set(spec.input_names)
    for key in spec.input_names:
        np.testing.assert_array_equal(a[key], b[key])
        if key in spec.differentiable:
            assert a[key].dtype == np.float64
        else:
            assert np.issubdtype(a[key].dtype, np.integer)
        assert a[key].size <= 200  # small shapes


def test_buggy_backward_unknown_names():
    with pytest.raises(KeyError):
        buggy_backward("nope", "x")
    with pytest.raises(KeyError):
        buggy_backward("affine", "nope")


@pytest.mark.parametrize("name, bug", BUG_CASES)
def test_buggy_backward_has_name(name, bug):
    fn = buggy_backward(name, bug)
    assert callable(fn)
    assert name in fn.__name__ and bug in fn.__name__


# ---------------------------------------------------------------------------
# Correct backward passes match finite differences
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", LAYER_NAMES)
def test_backward_matches_finite_differences(name, seed):
    spec, inputs, dout = setup(name, seed)
    grads, _ = analytic(spec, inputs, dout)
    work = {k: v.copy() for k, v in inputs.items()}
    for key in spec.differentiable:
        num = numeric_grad(lambda: _scalar(spec, work, dout), work[key])
        assert grads[key].shape == inputs[key].shape
        err = rel_err(grads[key], num)
        assert err < FD_TOL, f"{name}.{key}: rel err {err:.2e}"
        assert np.max(np.abs(num)) > 0, f"{name}.{key}: gradient is identically zero"


@pytest.mark.parametrize("name", ["softmax_loss", "svm_loss"])
def test_loss_as_layer_matches(name):
    spec, inputs, _ = setup(name)
    fwd, bwd = L.loss_as_layer(spec.forward)
    loss, cache = fwd(inputs["x"], inputs["y"])
    loss_ref, dx_ref = spec.forward(inputs["x"], inputs["y"])
    assert loss == loss_ref
    (dx,) = bwd(2.5, cache)
    np.testing.assert_allclose(dx, 2.5 * dx_ref)


# ---------------------------------------------------------------------------
# Bugs change exactly the gradients they claim to affect
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, bug", BUG_CASES)
def test_bug_changes_exactly_affected_grads(name, bug):
    spec, inputs, dout = setup(name, 0)
    good, good_loss = analytic(spec, inputs, dout)
    bad, bad_loss = analytic(spec, inputs, dout, buggy_backward(name, bug))
    if spec.is_loss:
        assert bad_loss == good_loss, "a buggy loss must still report the correct loss value"
    affects = spec.bugs[bug].affects
    for key in spec.differentiable:
        assert bad[key].shape == good[key].shape, f"{bug}: shape of d{key} changed"
        if key in affects:
            diff = rel_err(bad[key], good[key])
            assert diff > BUG_MIN_DIFF, f"{name}.{bug} barely changes d{key}: {diff:.2e}"
        else:
            np.testing.assert_allclose(bad[key], good[key], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# No in-place modification
# ---------------------------------------------------------------------------


def _copy(obj: Any) -> Any:
    if isinstance(obj, tuple):
        return tuple(_copy(o) for o in obj)
    if isinstance(obj, np.ndarray):
        return obj.copy()
    return obj


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_no_in_place_modification(name):
    spec, inputs, dout = setup(name, 0)
    saved = {k: v.copy() for k, v in inputs.items()}
    backwards = [spec.backward] + [buggy_backward(name, b) for b in spec.bugs]
    for backward in backwards:
        if spec.is_loss:
            backward(*_args(spec, inputs))
        else:
            out, cache = spec.forward(*_args(spec, inputs), **spec.kwargs)
            out_saved, cache_saved, dout_saved = _copy(out), _copy(cache), _copy(dout)
            grads = backward(dout, cache)
            _assert_same(dout, dout_saved)
            _assert_same(cache, cache_saved)
            _assert_same(out, out_saved)
            # gradients must not alias inputs or dout
            for g in grads:
                for arr in [*inputs.values(), *(dout if isinstance(dout, tuple) else (dout,))]:
                    assert not np.shares_memory(g, arr)
        for k in inputs:
            np.testing.assert_array_equal(inputs[k], saved[k])


# ---------------------------------------------------------------------------
# Forward correctness and kink distance
# ---------------------------------------------------------------------------


def test_affine_forward_values():
    spec, inputs, _ = setup("affine")
    out, _ = L.affine_forward(inputs["x"], inputs["w"], inputs["b"])
    x2 = inputs["x"].reshape(inputs["x"].shape[0], -1)
    expected = np.array([[x2[n] @ inputs["w"][:, m] for m in range(6)] for n in range(4)])
    np.testing.assert_allclose(out, expected + inputs["b"])
    assert inputs["w"].shape[0] == inputs["w"].shape[1]


def test_conv_forward_matches_sliding_window():
    spec, inputs, _ = setup("conv_naive")
    x, w, b = inputs["x"], inputs["w"], inputs["b"]
    stride, pad = spec.kwargs["stride"], spec.kwargs["pad"]
    out, _ = L.conv_naive_forward(x, w, b, stride=stride, pad=pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    expected = np.einsum("nchwkl,fckl->nfhw", win, w) + b[None, :, None, None]
    np.testing.assert_allclose(out, expected)
    with pytest.raises(ValueError):
        L.conv_naive_forward(x, w, b, stride=3, pad=1)  # (5 + 2 - 3) % 3 != 0


def test_conv_pad_zero_stride_one():
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(1, 2, 4, 4)), rng.normal(size=(2, 2, 3, 3)), rng.normal(size=2)
    out, cache = L.conv_naive_forward(x, w, b)
    assert out.shape == (1, 2, 2, 2)
    dout = rng.normal(size=out.shape)
    dx, dw, db = L.conv_naive_backward(dout, cache)
    num = numeric_grad(lambda: float(np.sum(L.conv_naive_forward(x, w, b)[0] * dout)), x)
    assert rel_err(dx, num) < FD_TOL


def test_max_pool_forward_and_no_ties():
    spec, inputs, _ = setup("max_pool_naive")
    x = inputs["x"]
    out, _ = L.max_pool_naive_forward(x, **spec.kwargs)
    n, c, h, w = x.shape
    expected = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, expected)
    vals = np.sort(x.ravel())
    assert np.min(np.diff(vals)) >= KINK_DISTANCE


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_relu_inputs_away_from_kink_with_both_signs(name):
    spec, inputs, _ = setup(name)
    x = inputs["x"]
    assert np.min(np.abs(x)) >= KINK_DISTANCE
    assert np.any(x > 0) and np.any(x < 0)


def test_leaky_relu_forward():
    x = np.array([-2.0, 3.0])
    out, _ = L.leaky_relu_forward(x, alpha=0.1)
    np.testing.assert_allclose(out, [-0.2, 3.0])


def test_sigmoid_stable_and_tanh():
    x = np.array([-800.0, -1.0, 0.0, 1.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out, _ = L.sigmoid_forward(x)
    np.testing.assert_allclose(out, [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1.0)), 1.0])
    np.testing.assert_allclose(L.tanh_forward(x)[0], np.tanh(x))


def test_batchnorm_normalises_over_batch():
    spec, inputs, _ = setup("batchnorm")
    d = inputs["x"].shape[1]
    out, _ = L.batchnorm_forward(inputs["x"], np.ones(d), np.zeros(d))
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), 1.0, rtol=1e-4)


def test_layernorm_normalises_over_features():
    spec, inputs, _ = setup("layernorm")
    d = inputs["x"].shape[1]
    out, _ = L.layernorm_forward(inputs["x"], np.ones(d), np.zeros(d))
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=1), 1.0, rtol=1e-4)
    assert inputs["x"].shape[0] == inputs["x"].shape[1]


def test_dropout_mask_from_seed():
    x = np.ones((50, 40))
    a, _ = L.dropout_forward(x, p=0.6, seed=7)
    b, _ = L.dropout_forward(x, p=0.6, seed=7)
    c, _ = L.dropout_forward(x, p=0.6, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) <= {0.0, 1 / 0.6}
    assert abs(np.mean(a != 0) - 0.6) < 0.05
    expected = np.random.default_rng(7).random(x.shape) < 0.6
    np.testing.assert_array_equal(a != 0, expected)
    with pytest.raises(ValueError):
        L.dropout_forward(x, p=0.0)


def test_rnn_and_lstm_forward():
    spec, inputs, _ = setup("lstm_step")
    (h, c), _ = L.lstm_step_forward(*_args(spec, inputs))
    hd = inputs["h_prev"].shape[1]
    a = inputs["x"] @ inputs["Wx"] + inputs["h_prev"] @ inputs["Wh"] + inputs["b"]

    def sig(z):
        return 1 / (1 + np.exp(-z))

    i, f, o = sig(a[:, :hd]), sig(a[:, hd : 2 * hd]), sig(a[:, 2 * hd : 3 * hd])
    g = np.tanh(a[:, 3 * hd :])
    c_ref = f * inputs["c_prev"] + i * g
    np.testing.assert_allclose(c, c_ref)
    np.testing.assert_allclose(h, o * np.tanh(c_ref))
    assert LAYERS["lstm_step"].tuple_output
    with pytest.raises(TypeError):
        _, cache = L.lstm_step_forward(*_args(spec, inputs))
        L.lstm_step_backward(np.ones_like(h), cache)

    spec, inputs, _ = setup("rnn_step")
    h, _ = L.rnn_step_forward(*_args(spec, inputs))
    np.testing.assert_allclose(
        h, np.tanh(inputs["x"] @ inputs["Wx"] + inputs["h_prev"] @ inputs["Wh"] + inputs["b"])
    )


def test_embedding_has_repeated_indices_and_forward():
    spec, inputs, _ = setup("embedding")
    x, W = inputs["x"], inputs["W"]
    assert len(np.unique(x)) < x.size
    out, _ = L.embedding_forward(x, W)
    assert out.shape == (*x.shape, W.shape[1])
    np.testing.assert_array_equal(out[1, 2], W[x[1, 2]])


def test_softmax_loss_values():
    spec, inputs, _ = setup("softmax_loss")
    x, y = inputs["x"], inputs["y"]
    loss, dx = L.softmax_loss(x, y)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])))
    np.testing.assert_allclose(dx.sum(axis=1), 0.0, atol=1e-15)
    # numerically stable for huge scores
    big_loss, big_dx = L.softmax_loss(x + 1e4, y)
    assert big_loss == pytest.approx(loss)


def test_svm_loss_values_and_margins():
    spec, inputs, _ = setup("svm_loss")
    x, y = inputs["x"], inputs["y"]
    loss, _ = L.svm_loss(x, y)
    total = 0.0
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            if c != y[n]:
                m = x[n, c] - x[n, y[n]] + 1
                assert abs(m) >= KINK_DISTANCE
                total += max(0.0, m)
    assert loss == pytest.approx(total / x.shape[0])
