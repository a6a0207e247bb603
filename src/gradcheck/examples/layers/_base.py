"""What every reference layer shares: the cache and gradient types, the layer spec, and the
distance kept from kinks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.examples.bugs import Bug

#: Minimum distance of default inputs from a kink of a non-smooth layer.
KINK_DISTANCE = 0.05

Cache = tuple[Any, ...]
Grads = tuple[np.ndarray, ...]




@dataclass(frozen=True)
class LayerSpec:
    """Description of a reference layer.

    Attributes
    ----------
    name : str
        Registry key.
    forward : callable
        ``forward(*inputs, **kwargs) -> (out, cache)``; for losses
        ``loss_fn(x, y) -> (loss, dx)``.
    backward : callable
        ``backward(dout, cache) -> grads`` with one gradient per name in
        ``differentiable``; for losses the loss function itself.
    input_names : tuple of str
        All positional inputs of ``forward``, in order.
    differentiable : tuple of str
        The inputs that receive gradients, in the order ``backward`` returns them.
    make_inputs : callable
        ``make_inputs(rng) -> {name: array}`` giving small deterministic inputs
        (float64, except integer index/label arrays).
    kwargs : dict
        Default keyword arguments of ``forward``.
    bugs : dict of str to Bug
        Catalogue of backward bugs, see :func:`buggy_backward`.
    is_loss : bool
        True for CS231n-style losses returning ``(loss, dx)`` directly.
    tuple_output : bool
        True if the output (and hence ``dout``) is a tuple of arrays.
    """

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    input_names: tuple[str, ...]
    differentiable: tuple[str, ...]
    make_inputs: Callable[[np.random.Generator], dict[str, np.ndarray]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    bugs: dict[str, Bug] = field(default_factory=dict)
    is_loss: bool = False
    tuple_output: bool = False
