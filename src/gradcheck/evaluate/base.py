"""Evaluators: compute the loss at perturbed parameters.

The serial evaluator perturbs the working arrays in place, one entry at a time: it saves the
scalar, writes the new value, calls the forward and writes the saved value back in a
``finally`` — never a copy of a whole tensor per entry, and the arrays are bit-identical
afterwards even when the forward raises or the user presses Ctrl-C.

Every evaluator offers the same two calls, so the schemes never know how losses are computed:

* ``base()`` — the loss at the unperturbed point;
* ``entries(leaf, flat_index, values)`` — the loss with entry ``flat_index[i]`` of leaf
  ``leaf`` set to ``values[i, k]`` (all other entries at their base values), for every i, k;
* ``directions(moves)`` — one loss per :data:`Move`: a
  :class:`~gradcheck.params.directions.DirectionMove` (a span of a leaf displaced along a
  random direction, ``θ + c·v``, its values computed chunk by chunk from the base values the
  evaluator holds — nothing parameter-sized is built or shipped) or a tuple
  ``(leaf, flat_index, values)`` (those entries set to ``values`` together), everything else
  at the base point;
* ``count`` — evaluations so far; ``progress`` — an object with ``advance(n)`` or ``None``;
  ``close()`` — release workers (no-op here).

:class:`~gradcheck.evaluate.batched.BatchedEvaluator` answers the same calls with a
user-supplied ``batched_forward`` that takes a stack of parameter trees;
:class:`~gradcheck.evaluate.parallel.ExecutorEvaluator` spreads them over a
``concurrent.futures.Executor`` (a process pool, or Dask).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.params.directions import DirectionMove, ExplicitMove

#: One displacement of a directional evaluation: a :class:`DirectionMove`, an
#: :class:`ExplicitMove`, or a tuple ``(leaf, flat_index, values)`` — the entries
#: ``flat_index`` (C order) of leaf number ``leaf`` take ``values`` (same length).
Move = DirectionMove | ExplicitMove | tuple[int, np.ndarray, np.ndarray]


def loss_value(value: Any, where: str, allow_complex: bool = False) -> float | complex:
    """Turn what the forward returned into a Python scalar, or say clearly why it can't be.

    ``where`` completes the sentence "the forward returned ... {where}".
    """
    if type(value) is float:
        return value
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)):
        raise InputError(
            f"forward returned {type(value).__name__} {where}; it must return the loss as a "
            "single number (a float or a 0-d array)."
        )
    if arr.size != 1:
        raise InputError(
            f"forward returned an array of shape {arr.shape} {where}; it must return a scalar "
            "loss — reduce it with .sum() or .mean() first."
        )
    arr = arr.reshape(())
    if np.iscomplexobj(arr):
        if not allow_complex:
            raise InputError(
                f"forward returned a complex number {where} for real params; return a real loss."
            )
        return complex(arr)
    return float(arr)


def loss_dtype(value: Any) -> np.dtype:
    """Precision in which the forward computed its loss (float64 for Python floats)."""
    if hasattr(value, "dtype"):
        dt = np.dtype(str(value.dtype).replace("torch.", ""))
        if np.issubdtype(dt, np.complexfloating):
            return np.dtype(np.float64) if dt == np.complex128 else np.dtype(np.float32)
        if np.issubdtype(dt, np.floating):
            return dt
    return np.dtype(np.float64)


class Evaluator(Protocol):
    """What every evaluator offers (serial, batched, executor); see the module docstring."""

    count: int
    loss_dtype: np.dtype | None
    progress: Any

    def base(self) -> float | complex: ...

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray: ...

    def directions(self, moves: Sequence[Move]) -> np.ndarray: ...

    def close(self) -> None: ...


def as_losses(value: Any, rows: int, complex_mode: bool) -> np.ndarray:
    """The vector of losses a ``batched_forward`` returned, checked to have ``rows`` entries."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"batched_forward returned {type(value).__name__}; it must return one "
                         f"loss per stacked parameter set, an array of shape ({rows},).")
    if arr.shape != (rows,):
        raise InputError(f"batched_forward returned shape {arr.shape} for a stack of {rows} "
                         f"parameter sets; it must return one loss per set, shape ({rows},).")
    if complex_mode:
        if not np.iscomplexobj(arr):
            raise ForwardError("batched_forward returned real losses for complex params: it "
                               "drops the imaginary part, so the complex step cannot work; use "
                               "method='central'.")
        return arr.astype(np.complex128)
    if np.iscomplexobj(arr):
        raise InputError("batched_forward returned complex losses for real params; return "
                         "real losses.")
    return arr.astype(np.float64)
