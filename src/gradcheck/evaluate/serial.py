"""The serial evaluator: the loss in this process, one perturbed entry at a time, in place."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import Move, loss_dtype, loss_value
from gradcheck.params.directions import (
    DirectionMove,
    ExplicitMove,
    as_move,
    get_flat,
    write_flat,
)
from gradcheck.params.snapshot import is_extended
from gradcheck.params.tree import element_name


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
    originals : when ``arrays`` are promoted copies, the user's arrays they were cast from
        (exactly): the moved entries are then restored from them. Otherwise the originals of
        the entries a direction moves are kept in one buffer, sized for the largest leaf
        moved and reused by every move — the only parameter-sized memory an evaluation
        holds.
    """

    def __init__(self, forward: Callable[[Any], Any], tree: Any, arrays: list[np.ndarray],
                 names: list[str], reset: Callable[[], None] | None = None,
                 complex_mode: bool = False, originals: list[np.ndarray] | None = None
                 ) -> None:
        self.originals = originals
        self._saved: np.ndarray | None = None  # bytes of the moved entries' originals
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
                    if not (arr[index] == value or value != value):  # NaN: cannot tell
                        self._moved_in_place(leaf, index, value, arr[index])
            finally:
                arr[index] = saved
        return out

    def _moved_in_place(self, leaf: int, index: tuple[int, ...], value: Any, now: Any) -> None:
        name = element_name(self.names[leaf], index)
        raise InputError(f"forward modified the parameter {name} in place (moved to "
                         f"{value.item()!r}, it came back as {np.asarray(now).item()!r}); it must "
                         "not change params (compute into new arrays) — it has been restored.")

    def directions(self, moves: Sequence[Move]) -> np.ndarray:
        """Loss after each move, one evaluation per move.

        The moved entries are written chunk by chunk (their originals kept, see
        ``originals``), the forward is called, every moved entry is compared with the value
        written (a forward that writes into them would be masked by the restore), and the
        originals are written back in a ``finally`` (bit-identical restore), exactly as
        :meth:`entries` does for one entry.
        """
        out = np.empty(len(moves), dtype=np.complex128 if self.complex_mode else np.float64)
        for j, move in enumerate(moves):
            out[j] = self._direction(as_move(move))
        return out

    def _direction(self, move: DirectionMove | ExplicitMove) -> float | complex:
        leaf = move.leaf
        arr = self.arrays[leaf]
        pieces = list(move.pieces())
        original = self._keeper(leaf)
        sums: list[int | bytes] = []  # CRC-32 of what was written, per piece
        try:
            for pos, values in pieces:
                base = get_flat(arr, pos)
                original.save(pos, base)
                new = values(base)
                write_flat(arr, pos, new)
                sums.append(_crc(new))
            loss = self._call(f"when {move.size} entries of '{self.names[leaf]}' were moved "
                              "along a random direction")
            for (pos, _), crc in zip(pieces, sums):
                if _crc(get_flat(arr, pos)) != crc:
                    raise InputError(
                        f"forward modified the parameter '{self.names[leaf]}' in place while "
                        f"{move.size} of its entries were moved along a random direction; it "
                        "must not change params (compute into new arrays) — the moved "
                        "entries have been restored.")
            return loss
        finally:
            for pos, _ in pieces[:len(sums)]:
                write_flat(arr, pos, original.get(pos))

    def _keeper(self, leaf: int) -> _Originals:
        arr = self.arrays[leaf]
        if self.originals is not None:
            return _Originals(arr.dtype, source=self.originals[leaf])
        if self._saved is None or self._saved.nbytes < arr.nbytes:
            self._saved = np.empty(arr.nbytes, dtype=np.uint8)
        return _Originals(arr.dtype, buffer=self._saved[:arr.nbytes].view(arr.dtype))


class _Originals:
    """The original values of the entries being moved: read from the user's array when the
    working array is an exact promoted copy of it, else saved into a reusable buffer."""

    def __init__(self, dtype: np.dtype, source: np.ndarray | None = None,
                 buffer: np.ndarray | None = None) -> None:
        self.dtype, self.source, self.buffer = dtype, source, buffer

    def save(self, pos: slice | np.ndarray, base: np.ndarray) -> None:
        if self.buffer is not None:
            self.buffer[pos] = base

    def get(self, pos: slice | np.ndarray) -> np.ndarray:
        if self.buffer is not None:
            return self.buffer[pos]
        return get_flat(self.source, pos).astype(self.dtype)


def _crc(a: np.ndarray) -> int | bytes:
    """CRC-32 of the raw bits of ``a`` (NaN-safe; a changed entry changes it, see
    :mod:`gradcheck.params.snapshot`); for extended precision, whose padding bytes are not
    data, the values themselves (as float64 and the excess, exact)."""
    if is_extended(a.dtype):
        hi = np.asarray(a).astype(np.complex128 if a.dtype.kind == "c" else np.float64)
        return hi.tobytes() + (np.asarray(a) - hi).astype(hi.dtype).tobytes()
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8))
