"""The batched evaluator: many perturbations per call of a vectorised ``batched_forward``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import Move, as_losses, loss_dtype
from gradcheck.params.tree import replace_leaves


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
