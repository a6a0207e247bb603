"""A zoo of small numpy models with hand-written gradients, correct and deliberately buggy.

The zoo measures gradient checkers: how often they raise false alarms on correct gradients
(kinks, ties, tiny or huge scales, float32, dropout, exactly-zero gradients, large losses) and how
often they miss real bugs (sign, transpose, factor 2, missing batch division or regulariser,
wrong activation derivative or ReLU mask, swapped tensors, off-by-one, one wrong row or element,
a 1e-3 relative error ...).

Every buggy model is built from a correct *twin* that shares its parameters, data and forward
pass; only the backward pass differs, and only for the tensors in ``bad_tensors``.

Examples
--------
>>> from gradcheck.examples import zoo
>>> m = zoo.get("mlp_tanh_softmax_bug_sign_W_out")
>>> m.buggy, sorted(m.bad_tensors)
(True, ['layer2.W'])
>>> loss, grads = m.forward_backward(m.params)
>>> zoo.twin(m.name).name
'mlp_tanh_softmax'
"""

from __future__ import annotations

from gradcheck.examples.bugs import Bug
from gradcheck.examples.zoo import conv, kinks, mlp, norms, seq
from gradcheck.examples.zoo._core import Builder, ZooModel, bug_of

__all__ = ["MODELS", "ZooModel", "Bug", "bug_of", "SPECS", "build_all", "get", "names", "twin"]

SPECS: tuple[tuple[Builder, tuple[str | None, ...]], ...] = (
    # plain MLPs and losses
    (mlp.mlp_sigmoid_mse, (None, "act_deriv", "mse_factor")),
    (mlp.mlp_tanh_softmax,
     (None, "sign_W_out", "transpose_W_out", "no_batch_div", "bias_one_example", "one_row")),
    (mlp.mlp_relu2_softmax, (None, "mask_from_output", "mask_wrong_layer", "swap_biases")),
    (mlp.mlp_tanh_l2, (None, "missing_reg")),
    (mlp.mlp_tanh_l2tiny, (None, "missing_reg")),
    (mlp.linear_regression_mse, (None,)),
    (mlp.softmax_regression, (None, "no_onehot")),
    (mlp.logistic_regression, (None,)),
    (mlp.saturated_sigmoid, (None,)),
    # normalisation, dropout
    (norms.batchnorm_mlp, (None, "no_stats_grad", "swap_gamma_beta")),
    (norms.layernorm_mlp, (None, "missing_var_term")),
    (norms.layernorm_mlp_float32, (None,)),
    (mlp.dropout_mlp, (None, "fresh_mask", "no_rescale")),
    # embeddings, convolution, pooling, recurrent
    (seq.embedding_bag, (None, "assign")),
    (conv.conv2d_tanh, (None, "flipped_kernel", "last_tap")),
    (conv.conv_maxpool, (None, "route_transposed")),
    (seq.rnn_tanh, (None, "skip_last_step", "transpose_gWh")),
    (seq.lstm, (None, "forget_deriv")),
    # kinks and ties
    (kinks.relu_kinks, (None, "mask_from_output")),
    (kinks.leaky_relu_kinks, (None, "act_deriv")),
    (conv.maxpool_ties, (None, "route_first")),
    (kinks.l1_exact_zero, (None, "missing_l1")),
    (kinks.hinge_margin, (None, "no_batch_div")),
    # scales, dtypes, zero gradients
    (mlp.tiny_scale, (None, "factor2_W1")),
    (mlp.huge_params, (None, "act_deriv")),
    (mlp.float32_mlp, (None, "act_deriv")),
    (mlp.unused_param, (None, "decay_unused")),
    (mlp.large_loss, (None, "bias_one_example")),
)
"""Every builder of the zoo with the variants it contributes (None = the correct model)."""


def build_all() -> list[ZooModel]:
    """Build a fresh copy of every zoo model (new parameter arrays), correct twins first."""
    return [builder(bug) for builder, bugs in SPECS for bug in bugs]


MODELS: list[ZooModel] = build_all()
"""All models of the zoo, built once at import."""

_BY_NAME: dict[str, ZooModel] = {m.name: m for m in MODELS}
_TWIN: dict[str, str] = {}
_models = iter(MODELS)
for _builder, _bugs in SPECS:
    assert _bugs[0] is None, "every builder contributes its correct model first"
    _base = next(_models).name
    for _ in _bugs[1:]:
        _TWIN[next(_models).name] = _base
assert len(_BY_NAME) == len(MODELS), "zoo model names must be unique"
assert set(_TWIN) <= set(_BY_NAME)


def names() -> list[str]:
    """Names of all models, in :data:`MODELS` order."""
    return [m.name for m in MODELS]


def get(name: str) -> ZooModel:
    """The model called ``name`` (the shared instance in :data:`MODELS`).

    Raises
    ------
    KeyError
        If there is no such model; the message lists a few close names.
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _BY_NAME, n=5, cutoff=0.4)
        raise KeyError(f"no zoo model {name!r}; close names: {close}") from None


def twin(name: str) -> ZooModel | None:
    """The correct twin of buggy model ``name`` (same params, data and forward), else None."""
    get(name)
    base = _TWIN.get(name)
    return None if base is None else _BY_NAME[base]
