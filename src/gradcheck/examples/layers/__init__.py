r"""Reference numpy layers in the CS231n style, each with realistic backward bugs.

This module is a self-contained zoo of small neural-network building blocks used
to exercise (and demonstrate) numerical gradient checking.  Every layer follows
the familiar two-function convention::

    out, cache = X_forward(*inputs, **kwargs)
    grads = X_backward(dout, cache)      # one gradient per differentiable input

``grads`` is always a tuple, ordered like :attr:`LayerSpec.differentiable`.
Forward and backward passes never modify their arguments (inputs, ``dout`` or
the arrays stored in ``cache``) in place.

Layers
------
========================  =========================================  =====================
name                      inputs (differentiable in **bold**)        kwargs
========================  =========================================  =====================
``affine``                **x**, **w**, **b**
``relu``                  **x**
``leaky_relu``            **x**                                      ``alpha``
``sigmoid``               **x**
``tanh``                  **x**
``batchnorm``             **x**, **gamma**, **beta**                 ``eps``
``layernorm``             **x**, **gamma**, **beta**                 ``eps``
``dropout``               **x**                                      ``p``, ``seed``
``conv_naive``            **x**, **w**, **b**                        ``stride``, ``pad``
``max_pool_naive``        **x**                                      ``pool_height``,
                                                                     ``pool_width``,
                                                                     ``stride``
``rnn_step``              **x**, **h_prev**, **Wx**, **Wh**, **b**
``lstm_step``             **x**, **h_prev**, **c_prev**, **Wx**,
                          **Wh**, **b**
``embedding``             x (int indices), **W**
``softmax_loss`` (loss)   **x**, y (int labels)
``svm_loss`` (loss)       **x**, y (int labels)
========================  =========================================  =====================

Tuple outputs (``lstm_step``)
-----------------------------
``lstm_step_forward`` returns ``((next_h, next_c), cache)``: the *output* is the
tuple ``(next_h, next_c)``.  Accordingly ``lstm_step_backward`` takes
``dout = (dnext_h, dnext_c)``, a tuple of the same structure.  The scalar whose
gradient the backward pass computes is
:math:`L = \sum(\text{next\_h} \odot \text{dnext\_h}) + \sum(\text{next\_c} \odot \text{dnext\_c})`.
The registry marks such layers with ``LayerSpec.tuple_output = True``.

Losses (``is_loss``)
--------------------
``softmax_loss`` and ``svm_loss`` follow the CS231n convention of returning the
loss *and* its gradient in one call: ``loss, dx = softmax_loss(x, y)``.  They are
registered with ``LayerSpec.is_loss = True``; for these specs ``forward`` and
``backward`` are both the loss function itself (signature ``(x, y) -> (loss, dx)``),
and :func:`buggy_backward` returns a function with that same signature whose
``loss`` value is correct but whose ``dx`` carries the bug.  The labels ``y`` are
not differentiable.  :func:`loss_as_layer` adapts a loss function to the
``forward``/``backward`` convention if that is more convenient.

Registry
--------
:data:`LAYERS` maps a layer name to a :class:`LayerSpec` describing its inputs,
a deterministic input factory (``make_inputs(rng)``), the default kwargs and the
catalogue of bugs (:class:`gradcheck.examples.bugs.Bug`).  :func:`buggy_backward` returns a backward
function with a named bug.  With the default ``make_inputs`` (seed 0) every bug
changes the gradients of exactly the inputs listed in ``Bug.affects`` and
leaves the other gradients bit-for-bit equal.

Kinks
-----
For the non-smooth layers (``relu``, ``leaky_relu``, ``max_pool_naive``,
``svm_loss``) ``make_inputs`` keeps all values at least :data:`KINK_DISTANCE`
away from the kinks (zero for the ReLUs, ties inside a pooling window, zero
hinge margins), so central finite differences with small steps are valid.

Shapes
------
Some ``make_inputs`` use square shapes on purpose: ``affine`` uses a square
weight (D == M) and ``layernorm`` uses N == D so that transpose / wrong-axis
bugs produce *wrong values* rather than shape errors.
"""

from gradcheck.examples.bugs import Bug
from gradcheck.examples.layers._base import KINK_DISTANCE, LayerSpec
from gradcheck.examples.layers.activations import (
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
    affine_backward,
    affine_forward,
)
from gradcheck.examples.layers.check import check_reference_layer
from gradcheck.examples.layers.conv import (
    conv_naive_backward,
    conv_naive_forward,
    max_pool_naive_backward,
    max_pool_naive_forward,
)
from gradcheck.examples.layers.dropout import (
    dropout_backward,
    dropout_forward,
)
from gradcheck.examples.layers.embedding import (
    embedding_backward,
    embedding_forward,
)
from gradcheck.examples.layers.losses import (
    loss_as_layer,
    softmax_loss,
    svm_loss,
)
from gradcheck.examples.layers.norms import (
    batchnorm_backward,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from gradcheck.examples.layers.recurrent import (
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)
from gradcheck.examples.layers.registry import LAYERS, buggy_backward

__all__ = [
    "KINK_DISTANCE",
    "LAYERS",
    "Bug",
    "LayerSpec",
    "affine_backward",
    "affine_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "buggy_backward",
    "check_reference_layer",
    "conv_naive_backward",
    "conv_naive_forward",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "layernorm_backward",
    "layernorm_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "loss_as_layer",
    "lstm_step_backward",
    "lstm_step_forward",
    "max_pool_naive_backward",
    "max_pool_naive_forward",
    "relu_backward",
    "relu_forward",
    "rnn_step_backward",
    "rnn_step_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_loss",
    "svm_loss",
    "tanh_backward",
    "tanh_forward",
]
