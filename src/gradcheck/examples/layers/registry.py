"""The registry of reference layers: specs, bug catalogues, buggy backwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.examples.bugs import Bug, bug, with_expected
from gradcheck.examples.layers._base import Cache, Grads, LayerSpec
from gradcheck.examples.layers.activations import (
    _leaky_relu_backward,
    _relu_backward,
    _relu_inputs,
    _sigmoid_backward,
    _smooth_inputs,
    _tanh_backward,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from gradcheck.examples.layers.affine import (
    _affine_backward,
    _affine_inputs,
    affine_backward,
    affine_forward,
)
from gradcheck.examples.layers.conv import (
    _conv_inputs,
    _conv_naive_backward,
    _max_pool_inputs,
    _max_pool_naive_backward,
    conv_naive_backward,
    conv_naive_forward,
    max_pool_naive_backward,
    max_pool_naive_forward,
)
from gradcheck.examples.layers.dropout import (
    _dropout_backward,
    _dropout_inputs,
    dropout_backward,
    dropout_forward,
)
from gradcheck.examples.layers.embedding import (
    _embedding_backward,
    _embedding_inputs,
    embedding_backward,
    embedding_forward,
)
from gradcheck.examples.layers.losses import (
    _softmax_inputs,
    _softmax_loss,
    _svm_inputs,
    _svm_loss,
    softmax_loss,
    svm_loss,
)
from gradcheck.examples.layers.norms import (
    _batchnorm_backward,
    _batchnorm_inputs,
    _layernorm_backward,
    _layernorm_inputs,
    batchnorm_backward,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from gradcheck.examples.layers.recurrent import (
    _lstm_inputs,
    _lstm_step_backward,
    _rnn_inputs,
    _rnn_step_backward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)


def _bugs(*items: tuple[str, str, tuple[str, ...]]) -> dict[str, Bug]:
    return {name: bug(name, desc, affects) for name, desc, affects in items}


_RNN_ALL = ("x", "h_prev", "Wx", "Wh", "b")
_LSTM_GATES = ("x", "h_prev", "Wx", "Wh", "b")
_LSTM_ALL = ("x", "h_prev", "c_prev", "Wx", "Wh", "b")

LAYERS: dict[str, LayerSpec] = {
    "affine": LayerSpec(
        name="affine",
        forward=affine_forward,
        backward=affine_backward,
        input_names=("x", "w", "b"),
        differentiable=("x", "w", "b"),
        make_inputs=_affine_inputs,
        bugs=_bugs(
            ("dx_missing_transpose", "dx is computed as dout @ w instead of dout @ w.T.", ("x",)),
            ("dw_transposed", "dw is computed as (x.T @ dout).T, i.e. transposed.", ("w",)),
            ("dw_divided_by_n", "dw is divided by the batch size N.", ("w",)),
            ("db_first_row", "db takes row 0 of dout instead of summing over the batch.", ("b",)),
        ),
    ),
    "relu": LayerSpec(
        name="relu",
        forward=relu_forward,
        backward=relu_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_relu_inputs,
        bugs=_bugs(
            ("mask_wrong_sign", "The gradient is masked with x < 0 instead of x > 0.", ("x",)),
            ("pass_through", "The gradient passes through everywhere, unmasked.", ("x",)),
        ),
    ),
    "leaky_relu": LayerSpec(
        name="leaky_relu",
        forward=leaky_relu_forward,
        backward=leaky_relu_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_relu_inputs,
        kwargs={"alpha": 0.1},
        bugs=_bugs(
            (
                "negative_slope_zero",
                "The negative slope alpha is forgotten, giving the plain ReLU gradient.",
                ("x",),
            ),
            (
                "slopes_swapped",
                "The slope alpha is applied to positive inputs and 1 to negative inputs.",
                ("x",),
            ),
        ),
    ),
    "sigmoid": LayerSpec(
        name="sigmoid",
        forward=sigmoid_forward,
        backward=sigmoid_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_smooth_inputs,
        bugs=_bugs(
            (
                "derivative_of_input",
                "The derivative s(1 - s) is evaluated at the input x instead of the output s.",
                ("x",),
            ),
            ("missing_one_minus", "The derivative is taken as s instead of s(1 - s).", ("x",)),
        ),
    ),
    "tanh": LayerSpec(
        name="tanh",
        forward=tanh_forward,
        backward=tanh_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_smooth_inputs,
        bugs=_bugs(
            (
                "derivative_of_input",
                "The derivative 1 - t**2 is evaluated at the input x instead of the output t.",
                ("x",),
            ),
            ("missing_square", "The derivative is taken as 1 - t instead of 1 - t**2.", ("x",)),
        ),
    ),
    "batchnorm": LayerSpec(
        name="batchnorm",
        forward=batchnorm_forward,
        backward=batchnorm_backward,
        input_names=("x", "gamma", "beta"),
        differentiable=("x", "gamma", "beta"),
        make_inputs=_batchnorm_inputs,
        kwargs={"eps": 1e-5},
        bugs=_bugs(
            (
                "missing_mean_terms",
                "dx ignores the dependence of the batch mean and variance on x.",
                ("x",),
            ),
            (
                "unbiased_variance",
                "dx uses the unbiased (N - 1) variance while the forward pass used the biased one.",
                ("x",),
            ),
            (
                "dgamma_unnormalised",
                "dgamma multiplies dout by x - mean instead of the normalised xhat.",
                ("gamma",),
            ),
        ),
    ),
    "layernorm": LayerSpec(
        name="layernorm",
        forward=layernorm_forward,
        backward=layernorm_backward,
        input_names=("x", "gamma", "beta"),
        differentiable=("x", "gamma", "beta"),
        make_inputs=_layernorm_inputs,
        kwargs={"eps": 1e-5},
        bugs=_bugs(
            (
                "dgamma_wrong_axis",
                "dgamma sums dout * xhat over the feature axis instead of the batch axis.",
                ("gamma",),
            ),
            (
                "dx_reduced_over_batch",
                "dx reduces over the batch axis as in batchnorm instead of the feature axis.",
                ("x",),
            ),
            ("dbeta_mean", "dbeta averages dout over the batch instead of summing.", ("beta",)),
        ),
    ),
    "dropout": LayerSpec(
        name="dropout",
        forward=dropout_forward,
        backward=dropout_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_dropout_inputs,
        kwargs={"p": 0.6, "seed": 0},
        bugs=_bugs(
            ("missing_scale", "The backward pass forgets to scale the mask by 1 / p.", ("x",)),
            (
                "different_mask",
                "The backward pass draws a fresh mask instead of reusing the forward mask.",
                ("x",),
            ),
        ),
    ),
    "conv_naive": LayerSpec(
        name="conv_naive",
        forward=conv_naive_forward,
        backward=conv_naive_backward,
        input_names=("x", "w", "b"),
        differentiable=("x", "w", "b"),
        make_inputs=_conv_inputs,
        kwargs={"stride": 2, "pad": 1},
        bugs=_bugs(
            (
                "dx_crop_shifted",
                "The padding is cropped off dx one pixel too early (off by one).",
                ("x",),
            ),
            (
                "dx_flipped_kernel",
                "dx is accumulated with the spatially flipped kernel.",
                ("x",),
            ),
            (
                "dw_flipped_window",
                "dw is accumulated with spatially flipped input windows.",
                ("w",),
            ),
        ),
    ),
    "max_pool_naive": LayerSpec(
        name="max_pool_naive",
        forward=max_pool_naive_forward,
        backward=max_pool_naive_backward,
        input_names=("x",),
        differentiable=("x",),
        make_inputs=_max_pool_inputs,
        kwargs={"pool_height": 2, "pool_width": 2, "stride": 2},
        bugs=_bugs(
            (
                "route_to_all",
                "The gradient is routed to every element of the window, not just the max.",
                ("x",),
            ),
            (
                "route_to_first",
                "The gradient is routed to the first element of the window, not the max.",
                ("x",),
            ),
        ),
    ),
    "rnn_step": LayerSpec(
        name="rnn_step",
        forward=rnn_step_forward,
        backward=rnn_step_backward,
        input_names=_RNN_ALL,
        differentiable=_RNN_ALL,
        make_inputs=_rnn_inputs,
        bugs=_bugs(
            (
                "tanh_derivative_of_preactivation",
                "tanh' is computed as 1 - a**2 from the pre-activation a instead of 1 - h**2.",
                _RNN_ALL,
            ),
            (
                "missing_tanh_derivative",
                "The upstream gradient is not multiplied by tanh' at all.",
                _RNN_ALL,
            ),
            (
                "dWh_uses_next_h",
                "dWh is computed from the new hidden state instead of the previous one.",
                ("Wh",),
            ),
        ),
    ),
    "lstm_step": LayerSpec(
        name="lstm_step",
        forward=lstm_step_forward,
        backward=lstm_step_backward,
        input_names=_LSTM_ALL,
        differentiable=_LSTM_ALL,
        make_inputs=_lstm_inputs,
        tuple_output=True,
        bugs=_bugs(
            (
                "sigmoid_derivative_as_s",
                "The sigmoid gate derivative is taken as s instead of s(1 - s).",
                _LSTM_GATES,
            ),
            (
                "missing_dnext_c",
                "The upstream gradient of next_c is dropped, keeping only the path via next_h.",
                _LSTM_ALL,
            ),
            (
                "forget_gate_uses_next_c",
                "The forget gate gradient multiplies by next_c instead of c_prev.",
                _LSTM_GATES,
            ),
        ),
    ),
    "embedding": LayerSpec(
        name="embedding",
        forward=embedding_forward,
        backward=embedding_backward,
        input_names=("x", "W"),
        differentiable=("W",),
        make_inputs=_embedding_inputs,
        bugs=_bugs(
            (
                "assignment_instead_of_accumulation",
                "dW[x] = dout assigns, so repeated indices keep only one row of dout.",
                ("W",),
            ),
            (
                "fancy_index_iadd",
                "dW[x] += dout is buffered, so repeated indices are not summed.",
                ("W",),
            ),
        ),
    ),
    "softmax_loss": LayerSpec(
        name="softmax_loss",
        forward=softmax_loss,
        backward=softmax_loss,
        input_names=("x", "y"),
        differentiable=("x",),
        make_inputs=_softmax_inputs,
        is_loss=True,
        bugs=_bugs(
            ("no_divide_by_n", "dx is not divided by the batch size N.", ("x",)),
            ("missing_one_hot", "The one-hot of the correct class is not subtracted.", ("x",)),
            ("one_hot_added", "The one-hot of the correct class is added, not subtracted.", ("x",)),
        ),
    ),
    "svm_loss": LayerSpec(
        name="svm_loss",
        forward=svm_loss,
        backward=svm_loss,
        input_names=("x", "y"),
        differentiable=("x",),
        make_inputs=_svm_inputs,
        is_loss=True,
        bugs=_bugs(
            (
                "counts_correct_class_margin",
                "The correct class's own margin of 1 is counted among the positive margins.",
                ("x",),
            ),
            ("no_divide_by_n", "dx is not divided by the batch size N.", ("x",)),
        ),
    ),
}

#: The diagnosis kinds that name each bug rightly (``Bug.expected``); ``own_formula`` and
#: ``shared`` locate the bug from which of the layer's inputs fail (they share ``dout``):
#: ``own_formula`` is right for every bug in one input's own line, as when a sampled tensor
#: leaves no positional pattern to test; ``factor`` says which factor of ``Xᵀ·δ`` is wrong.
EXPECTED_DIAGNOSES: dict[str, dict[str, str]] = {
    "affine": {"dx_missing_transpose": "transpose own_formula",
               "dw_transposed": "transpose own_formula",
               "dw_divided_by_n": "scale own_formula", "db_first_row": "one_term own_formula"},
    "relu": {"mask_wrong_sign": "mask", "pass_through": "mask"},
    "leaky_relu": {"negative_slope_zero": "zero mask slopes", "slopes_swapped": "slopes"},
    "sigmoid": {"derivative_of_input": "activation", "missing_one_minus": "activation"},
    "tanh": {"derivative_of_input": "activation", "missing_square": "activation"},
    "batchnorm": {"missing_mean_terms": "mean_terms", "unbiased_variance": "scale own_formula",
                  "dgamma_unnormalised": "own_formula"},
    "layernorm": {"dgamma_wrong_axis": "own_formula", "dx_reduced_over_batch":
                  "mean_terms own_formula", "dbeta_mean": "scale own_formula"},
    "dropout": {"missing_scale": "scale", "different_mask": "mask"},
    "conv_naive": {"dx_crop_shifted": "shifted edges own_formula",
                   "dx_flipped_kernel": "own_formula", "dw_flipped_window": "flipped own_formula"},
    "max_pool_naive": {"route_to_all": "mask", "route_to_first": "mask"},
    "rnn_step": {"tanh_derivative_of_preactivation": "shared activation factor",
                 "missing_tanh_derivative": "shared activation factor",
                 "dWh_uses_next_h": "factor own_formula"},
    "lstm_step": {"sigmoid_derivative_as_s": "shared factor",
                  "missing_dnext_c": "shared factor",
                  "forget_gate_uses_next_c": "shared factor"},
    "embedding": {"assignment_instead_of_accumulation": "repeated_rows",
                  "fancy_index_iadd": "repeated_rows"},
    "softmax_loss": {"no_divide_by_n": "scale", "missing_one_hot": "one_hot",
                     "one_hot_added": "one_hot"},
    "svm_loss": {"counts_correct_class_margin": "one_hot", "no_divide_by_n": "scale"},
}
for _name, _expected in EXPECTED_DIAGNOSES.items():
    LAYERS[_name].bugs.update(with_expected(LAYERS[_name].bugs, _expected))

_IMPLS: dict[str, Callable[..., Any]] = {
    "affine": _affine_backward,
    "relu": _relu_backward,
    "leaky_relu": _leaky_relu_backward,
    "sigmoid": _sigmoid_backward,
    "tanh": _tanh_backward,
    "batchnorm": _batchnorm_backward,
    "layernorm": _layernorm_backward,
    "dropout": _dropout_backward,
    "conv_naive": _conv_naive_backward,
    "max_pool_naive": _max_pool_naive_backward,
    "rnn_step": _rnn_step_backward,
    "lstm_step": _lstm_step_backward,
    "embedding": _embedding_backward,
    "softmax_loss": _softmax_loss,
    "svm_loss": _svm_loss,
}


def buggy_backward(layer_name: str, bug_name: str) -> Callable[..., Any]:
    """Return a backward function of ``layer_name`` carrying the bug ``bug_name``.

    Parameters
    ----------
    layer_name : str
        Key of :data:`LAYERS`.
    bug_name : str
        Key of ``LAYERS[layer_name].bugs``.

    Returns
    -------
    callable
        Same signature as ``LAYERS[layer_name].backward``: ``(dout, cache) -> grads``
        for layers, ``(x, y) -> (loss, dx)`` for losses (correct loss, buggy ``dx``).

    Raises
    ------
    KeyError
        If the layer or the bug is unknown.
    """
    if layer_name not in LAYERS:
        raise KeyError(f"unknown layer {layer_name!r}; known: {sorted(LAYERS)}")
    spec = LAYERS[layer_name]
    if bug_name not in spec.bugs:
        raise KeyError(
            f"unknown bug {bug_name!r} for layer {layer_name!r}; known: {sorted(spec.bugs)}"
        )
    impl = _IMPLS[layer_name]
    backward: Callable[..., Any]
    if spec.is_loss:

        def backward(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
            return impl(x, y, bug_name)

    else:

        def backward(dout: Any, cache: Cache) -> Grads:
            return impl(dout, cache, bug_name)

    backward.__name__ = f"{layer_name}_backward__{bug_name}"
    backward.__qualname__ = backward.__name__
    backward.__doc__ = f"{layer_name} with bug {bug_name!r}: {spec.bugs[bug_name].description}"
    return backward
