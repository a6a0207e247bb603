"""The batched evaluator: many perturbations per call of a vectorised ``batched_forward``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import Move, as_losses, loss_dtype
from gradcheck.params.directions import as_move, get_flat
from gradcheck.params.tree import replace_leaves

#: Default bytes of the stacked leaf per batched call: what stays in a core's L2 cache, so
#: the rows built for one call are still in cache when the forward reads them.
CACHE_BYTES = 256 * 2**10
#: Rows per batched call, at least and at most, before (or without) timing.
MIN_ROWS, MAX_ROWS = 8, 32
#: Batch sizes timed, two calls each (the faster counts), on a leaf with at least TUNE_FACTOR
#: times the rows of those calls to compute (they compute real rows: little work is lost).
CANDIDATES = (4, 8, 16, 32, 64, 128)
TUNE_FACTOR = 2


class BatchedEvaluator:
    """Evaluate many perturbations per call of a vectorised ``batched_forward``.

    ``batched_forward(stacked_tree) -> losses[K]`` takes a tree shaped like the params whose
    leaves carry a leading axis of length ``K`` (what ``jax.vmap(forward)`` or
    ``torch.func.vmap(forward)`` give, or a hand-vectorised numpy forward) and returns the
    ``K`` losses. Rows are built without per-element Python: one stack of ``K`` copies of the
    moved leaf per leaf is allocated once and kept at the base point — each call writes its
    entries with one fancy-index assignment and puts them back with another; the other
    leaves are read-only broadcast views (no copy), so ``batched_forward`` must not write
    into its inputs.

    Parameters
    ----------
    batched_forward : the vectorised forward.
    tree, arrays, names, reset, complex_mode : as for :class:`SerialEvaluator`.
    batch_size : rows per call. Default: automatic. A leaf with many rows to compute times one
        call at each of the ``CANDIDATES`` sizes and keeps the fastest per row (the best size
        depends on what of the forward's working set stays in cache, which only a
        measurement tells); until then, and for leaves with few rows, as many copies of the
        moved leaf as fit in ``cache`` bytes, at least ``MIN_ROWS`` and at most
        ``MAX_ROWS``; never more than ``memory`` bytes.
    memory : bytes allowed for one stacked copy of the moved leaf (default 64 MiB).
    cache : bytes of the stack aimed at by the untimed batch size (default 256 KiB).
    """

    def __init__(self, batched_forward: Callable[[Any], Any], tree: Any,
                 arrays: list[np.ndarray], names: list[str],
                 reset: Callable[[], None] | None = None, complex_mode: bool = False,
                 batch_size: int | None = None, memory: int = 64 * 2**20,
                 cache: int = CACHE_BYTES) -> None:
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
        self.cache = cache
        self.count = 0
        self.loss_dtype: np.dtype | None = None
        self.progress: Any = None
        self._stacks: dict[int, np.ndarray] = {}  # leaf -> (K, *shape), kept at the base point
        self.tuned: dict[int, int] = {}  # leaf -> the batch size its timed calls chose

    def close(self) -> None:
        """Release the stacks."""
        self._stacks.clear()

    def rows_per_call(self, leaf: int) -> int:
        """``K``: the configured batch size, else the size the leaf's timed calls chose,
        else ``cache // leaf bytes`` clipped to [``MIN_ROWS``, ``MAX_ROWS``]; at most
        ``memory // leaf bytes`` (at least 1)."""
        if self.batch_size is not None:
            return max(1, int(self.batch_size))
        nbytes = max(1, self.arrays[leaf].nbytes)
        k = self.tuned.get(leaf) or min(MAX_ROWS, max(MIN_ROWS, self.cache // nbytes))
        return int(max(1, min(k, self.memory // nbytes)))

    def _capacity(self, leaf: int) -> int:
        """Rows of the leaf's stack: the largest batch size it may be called with."""
        if self.batch_size is not None:
            return max(1, int(self.batch_size))
        nbytes = max(1, self.arrays[leaf].nbytes)
        most = max(MAX_ROWS, *CANDIDATES)
        return int(max(1, min(most, self.memory // nbytes)))

    def _stack(self, leaf: int) -> np.ndarray:
        """The leaf's stack of base copies (allocated once, kept at the base point)."""
        buf = self._stacks.get(leaf)
        if buf is None:
            arr = self.arrays[leaf]
            buf = np.empty((self._capacity(leaf),) + arr.shape, dtype=arr.dtype)
            buf[...] = arr
            self._stacks[leaf] = buf
        return buf

    def _sizes(self, leaf: int, total: int) -> list[int]:
        """Batch sizes to time on this leaf before settling (empty when configured, already
        tuned, or with too few rows for the timing to pay)."""
        if self.batch_size is not None or leaf in self.tuned:
            return []
        sizes = [k for k in CANDIDATES if k <= self._capacity(leaf)] * 2
        return sizes if total >= TUNE_FACTOR * sum(sizes) else []

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
        out = self._evaluate(0, self._stack(0)[:1], "at the given params")[0]
        return complex(out) if self.complex_mode else float(out)

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Loss with entry ``flat_index[i]`` set to ``values[i, k]``, shape of ``values``."""
        arr = self.arrays[leaf]
        n, p = values.shape
        cols = np.repeat(np.asarray(flat_index, dtype=np.int64), p)  # row r moves entry cols[r]
        vals = values.reshape(-1)
        total = cols.size
        buf = self._stack(leaf)
        flat = buf.reshape(buf.shape[0], -1)
        out = np.empty(total, dtype=np.complex128 if self.complex_mode else np.float64)
        trials = self._sizes(leaf, total)
        per_row: dict[int, float] = {}
        timed = 0
        start = 0
        while start < total:
            k = trials[timed] if timed < len(trials) else self.rows_per_call(leaf)
            stop = min(start + k, total)
            m = stop - start
            rows = np.arange(m)
            c = cols[start:stop]
            flat[rows, c] = vals[start:stop]
            t0 = time.process_time()
            try:
                out[start:stop] = self._evaluate(
                    leaf, buf[:m], f"on a stack of {m} points moving entries of "
                    f"'{self.names[leaf]}'")
            finally:
                flat[rows, c] = get_flat(arr, c)
            if timed < len(trials):  # CPU time: robust to other jobs on the machine
                cost = (time.process_time() - t0) / m
                per_row[k] = min(cost, per_row.get(k, np.inf))
                timed += 1
                if timed == len(trials):
                    self.tuned[leaf] = min(per_row, key=per_row.__getitem__)
            start = stop
        return out.reshape(n, p)

    def directions(self, moves: Sequence[Move]) -> np.ndarray:
        """Loss after each move; consecutive moves of the same leaf share one call."""
        moves = [as_move(m) for m in moves]
        out = np.empty(len(moves), dtype=np.complex128 if self.complex_mode else np.float64)
        j = 0
        while j < len(moves):
            leaf = moves[j].leaf
            buf = self._stack(leaf)
            k = self.rows_per_call(leaf)
            stop = j
            while stop < len(moves) and moves[stop].leaf == leaf and stop - j < k:
                stop += 1
            arr = self.arrays[leaf]
            flat = buf.reshape(buf.shape[0], -1)
            try:
                for r, move in enumerate(moves[j:stop]):
                    for pos, values in move.pieces():
                        flat[r, pos] = values(flat[r, pos])
                out[j:stop] = self._evaluate(leaf, buf[:stop - j], f"when entries of "
                                             f"'{self.names[leaf]}' were moved along a random "
                                             "direction")
            finally:
                for r, move in enumerate(moves[j:stop]):
                    for pos, _ in move.pieces():
                        flat[r, pos] = get_flat(arr, pos)
            j = stop
        return out
