"""check_layer: forward/backward(dout, cache) layers, their bug variants and in-place writes."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples.layers import LAYERS, check_reference_layer
from gradcheck.layer_check import LayerError, check_layer

BUG_CASES = [(name, bug) for name in sorted(LAYERS) for bug in sorted(LAYERS[name].bugs)]


def square_forward(x, w):
    """out = x² · w (elementwise); d/dx = 2xw·dout, d/dw = x²·dout."""
    return x * x * w, (x, w)


def square_backward(dout, cache):
    x, w = cache
    return 2 * x * w * dout, x * x * dout


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_reference_layer_passes(name: str) -> None:
    report = check_reference_layer(name)
    assert report.status == "pass", report
    assert {t.name for t in report.tensors} == set(LAYERS[name].differentiable)


@pytest.mark.parametrize(("name", "bug"), BUG_CASES)
def test_every_layer_bug_fails_and_names_exactly_its_inputs(name: str, bug: str) -> None:
    report = check_reference_layer(name, bug)
    assert report.status == "fail"
    assert set(report.failing_tensors) == set(LAYERS[name].bugs[bug].affects), report


def test_known_derivative_values_and_inputs_untouched() -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    x0, w0 = x.copy(), w.copy()
    dout = rng.normal(size=(3, 4))
    report = check_layer(square_forward, square_backward, {"x": x, "w": w}, dout=dout)
    assert report.status == "pass", report
    tx = report.tensor("x")
    np.testing.assert_allclose(tx.analytic, (2 * x * w * dout).ravel(), rtol=1e-12)
    np.testing.assert_allclose(tx.numeric, (2 * x * w * dout).ravel(), rtol=1e-7)
    assert np.array_equal(x, x0) and np.array_equal(w, w0)


def test_sequence_inputs_take_names_from_the_signature() -> None:
    x, w = np.linspace(0.1, 1.0, 6).reshape(2, 3), np.full((2, 3), 0.5)
    report = check_layer(square_forward, square_backward, [x, w])
    assert [t.name for t in report.tensors] == ["x", "w"]


def test_wrong_derivative_is_named() -> None:
    def backward(dout, cache):
        x, w = cache
        return x * w * dout, x * x * dout          # forgot the factor 2 in dx

    x, w = np.linspace(0.1, 1.0, 6).reshape(2, 3), np.full((2, 3), 0.5)
    report = check_layer(square_forward, backward, {"x": x, "w": w})
    assert report.failing_tensors == ["x"]
    assert "x[" in report.worst(1)[0].name


def test_backward_writing_into_dout_is_named() -> None:
    def relu_forward(x):
        return np.maximum(x, 0), x

    def relu_backward(dout, x):
        dout[x <= 0] = 0                            # correct values, but corrupts dout
        return dout

    x = np.array([[-1.0, 2.0], [0.5, -0.3]])
    with pytest.raises(LayerError, match="relu_backward wrote into its argument dout"):
        check_layer(relu_forward, relu_backward, {"x": x})


def test_forward_writing_into_its_input_is_named() -> None:
    def center_forward(x):
        x -= x.mean()
        return x.copy(), None

    def center_backward(dout, cache):
        return dout - dout.mean()

    x = np.arange(6.0)
    with pytest.raises(LayerError, match="center_forward wrote into its input 'x'"):
        check_layer(center_forward, center_backward, {"x": x})
    assert np.array_equal(x, np.arange(6.0))


def test_backward_writing_into_cached_input_is_named() -> None:
    def fwd(x, w):
        return x * w, (x, w)

    def bwd(dout, cache):
        x, w = cache
        x *= dout                                   # reuses the cached input as scratch
        return w * dout, x

    with pytest.raises(LayerError, match="bwd wrote into the input 'x'"):
        check_layer(fwd, bwd, {"x": np.ones(3), "w": np.arange(1.0, 4.0)})


def test_wrong_number_of_gradients_says_what_to_do() -> None:
    def bwd(dout, cache):
        x, w = cache
        return (2 * x * w * dout,)

    with pytest.raises(LayerError, match="returned 1 gradient.*differentiable="):
        check_layer(square_forward, bwd, {"x": np.ones(3), "w": np.ones(3)})


def test_integer_inputs_pass_through_and_differentiable_selects() -> None:
    def gather_forward(W, idx, scale):
        return W[idx] * scale, (W.shape, idx, scale)

    def gather_backward(dout, cache):
        shape, idx, scale = cache
        dW = np.zeros(shape)
        np.add.at(dW, idx, dout * scale)
        return dW, np.sum(dout * 0)                 # second grad ignored below

    W = np.random.default_rng(1).normal(size=(5, 3))
    idx = np.array([0, 2, 2, 4])
    with pytest.raises(gc.InputError, match="gradient of 'scale' has shape"):
        check_layer(gather_forward, gather_backward, {"W": W, "idx": idx, "scale": np.ones(1)})

    def backward_w_only(dout, cache):
        return gather_backward(dout, cache)[0]

    report = check_layer(gather_forward, backward_w_only,
                         {"W": W, "idx": idx, "scale": np.full(1, 2.0)}, differentiable=["W"])
    assert report.status == "pass", report
    assert [t.name for t in report.tensors] == ["W"]


def test_tuple_outputs_and_kwargs() -> None:
    def fwd(x, power=2):
        return (x**power, np.sin(x)), (x, power)

    def bwd(dout, cache):
        x, power = cache
        da, db = dout
        return power * x ** (power - 1) * da + np.cos(x) * db

    x = np.linspace(0.2, 2.0, 5)
    assert check_layer(fwd, bwd, {"x": x}, kwargs={"power": 3}).status == "pass"


def test_stochastic_layer_with_global_rng_needs_seed() -> None:
    def dropout_forward(x):
        mask = np.random.rand(*x.shape) < 0.5
        return x * mask / 0.5, mask

    def dropout_backward(dout, mask):
        return dout * mask / 0.5

    x = np.linspace(-1, 1, 8)
    assert check_layer(dropout_forward, dropout_backward, {"x": x}).status == "inconclusive"
    assert check_layer(dropout_forward, dropout_backward, {"x": x}, seed=0).status == "pass"


def test_float32_layer_checks_in_float64() -> None:
    x = np.linspace(0.1, 1.0, 6, dtype=np.float32)
    w = np.full(6, 0.5, dtype=np.float32)
    report = check_layer(square_forward, square_backward, {"x": x, "w": w})
    assert report.status == "pass", report
    assert any("float64" in n for n in report.notes)


def test_loss_convention() -> None:
    def mse(x, y):
        diff = x - y
        return float(np.mean(diff**2)), 2 * diff / diff.size

    x, y = np.linspace(0, 1, 4), np.zeros(4)
    assert check_layer(mse, None, {"x": x, "y": y}, is_loss=True,
                       differentiable=["x"]).status == "pass"


def test_check_layer_is_exported() -> None:
    assert gc.check_layer is check_layer


def test_complex_step_through_a_layer() -> None:
    x, w = np.linspace(0.1, 1.0, 6).reshape(2, 3), np.full((2, 3), 0.5)
    report = check_layer(square_forward, square_backward, {"x": x, "w": w}, method="complex")
    assert report.status == "pass", report
    assert report.tensor("x").max_error < 1e-12


def test_cli_demo_layer(capsys) -> None:
    from gradcheck.cli import main

    assert main(["demo", "layer", "affine"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["demo", "layer", "affine", "--bug", "dw_transposed"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "transpose" in out
    assert main(["demo", "layer", "--list"]) == 0
    assert "embedding" in capsys.readouterr().out
    assert main(["demo", "layer", "nope"]) == 3
    assert main(["demo", "layer", "affine", "--bug", "nope"]) == 3
    assert main(["demo", "layer"]) == 3
