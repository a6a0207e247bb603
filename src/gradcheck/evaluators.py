"""Evaluators: compute the loss at perturbed parameters.

The serial evaluator perturbs the working arrays in place, one entry at a time: it saves the
scalar, writes the new value, calls the forward and writes the saved value back in a
``finally`` — never a copy of a whole tensor per entry, and the arrays are bit-identical
afterwards even when the forward raises or the user presses Ctrl-C.

Every evaluator offers the same two calls, so the schemes never know how losses are computed:

* ``base()`` — the loss at the unperturbed point;
* ``entries(leaf, flat_index, values)`` — the loss with entry ``flat_index[i]`` of leaf
  ``leaf`` set to ``values[i, k]`` (all other entries at their base values), for every i, k.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError


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


class SerialEvaluator:
    """Evaluate the loss in this process, perturbing ``arrays`` in place.

    Parameters
    ----------
    forward : the user's ``forward(params) -> loss``.
    tree : the object passed to ``forward`` (the user's params, or a promoted copy).
    arrays : the leaves of ``tree`` in flatten order; these are perturbed in place.
    names : leaf names, for messages.
    reset : called before every evaluation (re-seeding RNGs), or ``None``.
    complex_mode : the arrays are complex and the forward must return a complex loss.
    """

    def __init__(self, forward: Callable[[Any], Any], tree: Any, arrays: list[np.ndarray],
                 names: list[str], reset: Callable[[], None] | None = None,
                 complex_mode: bool = False) -> None:
        self.forward = forward
        self.tree = tree
        self.arrays = arrays
        self.names = names
        self.reset = reset
        self.complex_mode = complex_mode
        self.count = 0
        self.loss_dtype: np.dtype | None = None  # set by the first evaluation

    def _call(self, context: tuple[int, tuple[int, ...], Any] | None = None
              ) -> float | complex:
        """One evaluation; ``context`` = (leaf, index, value) of the moved entry, if any."""
        if self.reset is not None:
            self.reset()
        self.count += 1
        try:
            value = self.forward(self.tree)
        except Exception as exc:
            raise ForwardError(
                f"forward raised {type(exc).__name__}: {exc} {self._where(context)}; fix the "
                "forward (or leave that parameter out of params) and check again."
            ) from exc
        if self.loss_dtype is None:
            self.loss_dtype = loss_dtype(value)
        if self.complex_mode:
            if not np.iscomplexobj(np.asarray(value)):
                raise ForwardError(
                    "forward returned a real number for complex params "
                    f"{self._where(context)}: somewhere it drops the imaginary part (abs, "
                    ".real, float(), comparisons, or assigning into a float array), so the "
                    "complex step cannot work; use method='central'."
                )
            return loss_value(value, self._where(context), allow_complex=True)
        if isinstance(value, float):  # fast path: Python and numpy float64 scalars
            return float(value)
        return loss_value(value, self._where(context))

    def _where(self, context: tuple[int, tuple[int, ...], Any] | None) -> str:
        if context is None:
            return "at the given params"
        from gradcheck.tree import element_name

        leaf, index, value = context
        return f"when {element_name(self.names[leaf], index)} was moved to {value.item()!r}"

    def base(self) -> float | complex:
        """The loss at the unperturbed point."""
        return self._call()

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Loss with entry ``flat_index[i]`` set to ``values[i, k]``, shape of ``values``."""
        arr = self.arrays[leaf]
        out = np.empty(values.shape, dtype=np.complex128 if self.complex_mode else np.float64)
        if arr.ndim:
            multi = list(zip(*(ix.tolist() for ix in np.unravel_index(flat_index, arr.shape))))
        else:
            multi = [()] * len(flat_index)
        call = self._call
        for i, index in enumerate(multi):
            saved = arr[index].copy()
            try:
                for k in range(values.shape[1]):
                    value = values[i, k]
                    arr[index] = value
                    out[i, k] = call((leaf, index, value))
            finally:
                arr[index] = saved
        return out
