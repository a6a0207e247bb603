"""Evaluators: compute the loss at perturbed parameters.

The serial evaluator perturbs the working arrays in place, one entry at a time: it saves the
scalar, writes the new value, calls the forward and writes the saved value back in a
``finally`` — never a copy of a whole tensor per entry, and the arrays are bit-identical
afterwards even when the forward raises or the user presses Ctrl-C.

Every evaluator offers the same two calls, so the schemes never know how losses are computed:

* ``base()`` — the loss at the unperturbed point;
* ``entries(leaf, flat_index, values)`` — the loss with entry ``flat_index[i]`` of leaf
  ``leaf`` set to ``values[i, k]`` (all other entries at their base values), for every i, k;
* ``directions(moves)`` — one loss per :data:`Move` ``(leaf, flat_index, values)``: the
  entries ``flat_index`` of that leaf set to ``values`` together (a displacement along a
  direction ``θ + t·v``), everything else at the base point;
* ``count`` — evaluations so far; ``progress`` — an object with ``advance(n)`` or ``None``;
  ``close()`` — release workers (no-op here).

:class:`BatchedEvaluator` answers the same calls with a user-supplied ``batched_forward``
that takes a stack of parameter trees; :class:`~gradcheck.evaluate.parallel.ExecutorEvaluator`
spreads
them over a ``concurrent.futures.Executor`` (a process pool, or Dask).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError

#: One displacement of a directional evaluation: ``(leaf, flat_index, values)`` — the entries
#: ``flat_index`` (C order) of leaf number ``leaf`` take ``values`` (same length).
Move = tuple[int, np.ndarray, np.ndarray]


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
        self.progress: Any = None  # gradcheck.evaluate.progress.Progress, or None

    def close(self) -> None:
        """Nothing to release in this process."""

    def _call(self, context: tuple[int, tuple[int, ...], Any] | str | None = None
              ) -> float | complex:
        """One evaluation; ``context`` = (leaf, index, value) of the moved entry, if any."""
        if self.reset is not None:
            self.reset()
        self.count += 1
        if self.progress is not None:
            self.progress.advance(1)
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

    def _where(self, context: tuple[int, tuple[int, ...], Any] | str | None) -> str:
        if context is None:
            return "at the given params"
        if isinstance(context, str):
            return context
        from gradcheck.params.tree import element_name

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
                    if not arr[index] == value:   # the restore below would hide the write
                        self._moved_in_place(leaf, index, value, arr[index])
            finally:
                arr[index] = saved
        return out

    def _moved_in_place(self, leaf: int, index: tuple[int, ...], value: Any, now: Any) -> None:
        from gradcheck.params.tree import element_name

        name = element_name(self.names[leaf], index)
        raise InputError(f"forward modified the parameter {name} in place (moved to "
                         f"{value.item()!r}, it came back as {np.asarray(now).item()!r}); it must "
                         "not change params (compute into new arrays) — it has been restored.")

    def directions(self, moves: Sequence[Move]) -> np.ndarray:
        """Loss after each move ``(leaf, flat_index, values)``, one evaluation per move.

        The moved entries are saved, overwritten together, and written back in a ``finally``
        (bit-identical restore), exactly as :meth:`entries` does for one entry.
        """
        out = np.empty(len(moves), dtype=np.complex128 if self.complex_mode else np.float64)
        for j, (leaf, flat_index, values) in enumerate(moves):
            arr = self.arrays[leaf]
            pos = np.unravel_index(np.asarray(flat_index), arr.shape) if arr.ndim else ...
            saved = arr[pos].copy()
            try:
                arr[pos] = values
                out[j] = self._call(f"when {len(flat_index)} entries of '{self.names[leaf]}' "
                                    "were moved along a random direction")
            finally:
                arr[pos] = saved
        return out


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


class BatchedEvaluator:
    """Evaluate many perturbations per call of a vectorised ``batched_forward``.

    ``batched_forward(stacked_tree) -> losses[K]`` takes a tree shaped like the params whose
    leaves carry a leading axis of length ``K`` (what ``jax.vmap(forward)`` or
    ``torch.func.vmap(forward)`` give, or a hand-vectorised numpy forward) and returns the
    ``K`` losses. Rows are built without per-element Python: a reusable buffer holding ``K``
    copies of the moved leaf gets its entries written with one fancy-index assignment and
    put back with another; the other leaves are read-only broadcast views (no copy), so
    ``batched_forward`` must not write into its inputs.

    Parameters
    ----------
    batched_forward : the vectorised forward.
    tree, arrays, names, reset, complex_mode : as for :class:`SerialEvaluator`.
    batch_size : rows per call (default: as many as fit in ``memory`` bytes, at most 256).
    memory : bytes allowed for one stacked copy of the moved leaf (default 64 MiB).
    """

    def __init__(self, batched_forward: Callable[[Any], Any], tree: Any,
                 arrays: list[np.ndarray], names: list[str],
                 reset: Callable[[], None] | None = None, complex_mode: bool = False,
                 batch_size: int | None = None, memory: int = 64 * 2**20) -> None:
        if not callable(batched_forward):
            raise InputError(f"batched_forward={batched_forward!r} is not callable; pass a "
                             "function of a stacked parameter tree that returns a vector of "
                             "losses.")
        self.batched_forward = batched_forward
        self.tree = tree
        self.arrays = arrays
        self.names = names
        self.reset = reset
        self.complex_mode = complex_mode
        self.batch_size = batch_size
        self.memory = memory
        self.count = 0
        self.loss_dtype: np.dtype | None = None
        self.progress: Any = None

    def close(self) -> None:
        """Nothing to release."""

    def rows_per_call(self, leaf: int) -> int:
        """``K``: the configured batch size, else what fits in ``memory`` (1 … 256)."""
        if self.batch_size is not None:
            return max(1, int(self.batch_size))
        nbytes = max(1, self.arrays[leaf].nbytes)
        return int(min(256, max(1, self.memory // nbytes)))

    def _evaluate(self, leaf: int, stack: np.ndarray, what: str) -> np.ndarray:
        """Losses of the rows of ``stack`` (leaf ``leaf`` replaced, others broadcast)."""
        rows = stack.shape[0]
        leaves = [stack if i == leaf else np.broadcast_to(a, (rows,) + a.shape)
                  for i, a in enumerate(self.arrays)]
        from gradcheck.params.tree import replace_leaves

        if self.reset is not None:
            self.reset()
        try:
            value = self.batched_forward(replace_leaves(self.tree, leaves))
        except Exception as exc:
            raise ForwardError(f"batched_forward raised {type(exc).__name__}: {exc} {what}; fix "
                               "it (or drop batched_forward=) and check again.") from exc
        if self.loss_dtype is None:
            self.loss_dtype = loss_dtype(value)
        out = as_losses(value, rows, self.complex_mode)
        self.count += rows
        if self.progress is not None:
            self.progress.advance(rows)
        return out

    def base(self) -> float | complex:
        """The loss at the unperturbed point (a stack of one)."""
        arr = self.arrays[0]
        out = self._evaluate(0, arr[None].copy(), "at the given params")[0]
        return complex(out) if self.complex_mode else float(out)

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Loss with entry ``flat_index[i]`` set to ``values[i, k]``, shape of ``values``."""
        arr = self.arrays[leaf]
        n, p = values.shape
        cols = np.repeat(np.asarray(flat_index, dtype=np.int64), p)  # row r moves entry cols[r]
        vals = values.reshape(-1)
        total = cols.size
        k = min(self.rows_per_call(leaf), max(total, 1))
        buf = np.empty((k,) + arr.shape, dtype=arr.dtype)
        buf[...] = arr
        flat = buf.reshape(k, -1)
        base_flat = arr.reshape(-1)
        out = np.empty(total, dtype=np.complex128 if self.complex_mode else np.float64)
        for start in range(0, total, k):
            stop = min(start + k, total)
            m = stop - start
            rows = np.arange(m)
            c = cols[start:stop]
            flat[rows, c] = vals[start:stop]
            try:
                out[start:stop] = self._evaluate(
                    leaf, buf[:m], f"on a stack of {m} points moving entries of "
                    f"'{self.names[leaf]}'")
            finally:
                flat[rows, c] = base_flat[c]
        return out.reshape(n, p)

    def directions(self, moves: Sequence[Move]) -> np.ndarray:
        """Loss after each move ``(leaf, flat_index, values)``; consecutive moves of the same
        leaf share one call."""
        out = np.empty(len(moves), dtype=np.complex128 if self.complex_mode else np.float64)
        j = 0
        while j < len(moves):
            leaf = moves[j][0]
            k = self.rows_per_call(leaf)
            stop = j
            while stop < len(moves) and moves[stop][0] == leaf and stop - j < k:
                stop += 1
            arr = self.arrays[leaf]
            buf = np.empty((stop - j,) + arr.shape, dtype=arr.dtype)
            buf[...] = arr
            flat = buf.reshape(stop - j, -1)
            for r, (_, idx, vals) in enumerate(moves[j:stop]):
                flat[r, np.asarray(idx)] = vals
            out[j:stop] = self._evaluate(leaf, buf, f"when entries of '{self.names[leaf]}' "
                                         "were moved along a random direction")
            j = stop
        return out
