"""Check a reference layer (optionally with a named bug) with :func:`gradcheck.check_layer`."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.examples.layers.registry import LAYERS, buggy_backward
from gradcheck.layer_check import check_layer
from gradcheck.report import Report


def check_reference_layer(name: str, bug: str | None = None, *, seed: int = 0,
                          **options: Any) -> Report:
    """Check a layer of :data:`LAYERS`, optionally with a bug.

    ``seed`` seeds the layer's input factory. Options go to :func:`check_layer`.
    """
    if name not in LAYERS:
        raise InputError(f"unknown layer {name!r}; known layers: {', '.join(sorted(LAYERS))}.")
    spec = LAYERS[name]
    if bug is not None and bug not in spec.bugs:
        raise InputError(f"unknown bug {bug!r} for layer {name!r}; its bugs are "
                         f"{', '.join(sorted(spec.bugs))}.")
    inputs = spec.make_inputs(np.random.default_rng(seed))
    ordered = {n: inputs[n] for n in spec.input_names}
    if name == "embedding" and "context" not in options:
        # rows of W looked up more than once: where assignment-instead-of-accumulation shows
        hits = np.bincount(inputs["x"].ravel(), minlength=inputs["W"].shape[0])
        options["context"] = {"repeated_rows": {"W": hits > 1}}
    backward = spec.backward if bug is None else buggy_backward(name, bug)
    if spec.is_loss:
        return check_layer(backward, None, ordered, kwargs=spec.kwargs,
                           differentiable=spec.differentiable, is_loss=True, **options)
    return check_layer(spec.forward, backward, ordered, kwargs=spec.kwargs,
                       differentiable=spec.differentiable, **options)
