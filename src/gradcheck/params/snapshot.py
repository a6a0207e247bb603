"""What the params were before the check: exact copies while they are small, chunk
fingerprints when they are large.

A check must notice a forward that writes into its params and leave the user's arrays
bit-identical. Copying every array costs one extra parameter-sized buffer per check; for a
large model that buffer is the whole memory budget. So:

* params of at most ``COPY_LIMIT`` bytes in total are copied (any write, even one the forward
  makes far from the entries being moved, is undone exactly);
* larger params are *fingerprinted*: a CRC-32 per chunk of ``FINGERPRINT_BYTES`` bytes of
  each array's raw bits (NaN-safe, bit exact; CRC-32 detects every change of up to 32
  consecutive bits and misses a random change with probability 2⁻³²). A change is then
  detected and named; the entries the check itself moved are restored exactly by the
  evaluators (they keep the originals of the entries being moved), but a write the forward
  made on its own cannot be undone without a copy, and the message says so.

The same chunked view serves :func:`equal_bits`, a comparison of two arrays without a
whole-array temporary.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

#: Params up to this many bytes (all arrays together) are copied rather than fingerprinted.
COPY_LIMIT = 16 * 2**20
#: Bytes per fingerprinted chunk.
FINGERPRINT_BYTES = 2**18


def flat_chunks(a: np.ndarray, nbytes: int = FINGERPRINT_BYTES) -> Iterator[np.ndarray]:
    """C-order pieces of ``a`` of about ``nbytes`` bytes each: views when ``a`` is
    C-contiguous, small copies otherwise (never a copy of the whole array)."""
    n = int(a.size)
    step = max(1, nbytes // max(1, a.itemsize))
    if a.flags.c_contiguous:
        flat = a.reshape(-1)
        for lo in range(0, n, step):
            yield flat[lo:lo + step]
        return
    for lo in range(0, n, step):
        yield np.asarray(a.flat[lo:lo + step])


def fingerprint(a: np.ndarray) -> tuple[int, ...]:
    """CRC-32 of the raw bytes of each chunk of ``a`` (shape and dtype not included)."""
    return tuple(zlib.crc32(np.ascontiguousarray(c).view(np.uint8)) for c in flat_chunks(a))


def is_extended(dtype: np.dtype) -> bool:
    """Extended precision (``np.longdouble``: 80 value bits in 12 or 16 bytes), whose
    padding bytes a copy or an assignment need not keep."""
    return dtype.kind in "fc" and np.finfo(dtype).nmant == 63


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical arrays (chunked) — for extended precision the value bits only."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if is_extended(a.dtype):
        return bool(np.array_equal(a, b, equal_nan=True)) and bool(
            np.array_equal(np.signbit(a.real), np.signbit(b.real)))
    return equal_bits(a, b)


def equal_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` hold the same bits (same shape and dtype), compared chunk by chunk."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return all(np.array_equal(x.view(np.uint8), y.view(np.uint8))
               for x, y in zip(flat_chunks(a), flat_chunks(b)))


def equal_promoted(work: np.ndarray, original: np.ndarray) -> bool:
    """``work`` still equals ``original`` cast to ``work``'s dtype, bit for bit (chunked)."""
    if work.shape != original.shape:
        return False
    return all(np.array_equal(np.ascontiguousarray(w).view(np.uint8),
                              np.ascontiguousarray(o.astype(work.dtype)).view(np.uint8))
               for w, o in zip(flat_chunks(work), flat_chunks(original,
                                                             _matching(work, original))))


def _matching(work: np.ndarray, original: np.ndarray) -> int:
    """Chunk bytes of ``original`` giving the same entries per chunk as ``work``'s chunks."""
    return FINGERPRINT_BYTES // max(1, work.itemsize) * max(1, original.itemsize)


@dataclass(frozen=True)
class Snapshot:
    """Per array: a full copy, or the fingerprints of its chunks (``None`` in the other)."""

    shapes: tuple[tuple[int, ...], ...]
    copies: tuple[np.ndarray | None, ...]
    prints: tuple[tuple[int, ...] | None, ...]

    @property
    def exact(self) -> bool:
        """True when the snapshot can undo any write (it holds a copy of every array)."""
        return all(c is not None for c in self.copies)


def take(arrays: Sequence[np.ndarray], copy_limit: int = COPY_LIMIT) -> Snapshot:
    """Copies of ``arrays`` if they total at most ``copy_limit`` bytes, else fingerprints
    (extended-precision arrays are always copied: their padding bytes are not data)."""
    shapes = tuple(tuple(a.shape) for a in arrays)
    small = sum(int(a.nbytes) for a in arrays) <= copy_limit
    keep = [small or is_extended(a.dtype) for a in arrays]
    return Snapshot(shapes, tuple(a.copy() if k else None for a, k in zip(arrays, keep)),
                    tuple(None if k else fingerprint(a) for a, k in zip(arrays, keep)))


def changed(arrays: Sequence[np.ndarray], snap: Snapshot) -> list[int]:
    """Positions of the arrays whose bits (values, for extended precision) differ from the
    snapshot."""
    out = []
    for i, a in enumerate(arrays):
        copy = snap.copies[i]
        if tuple(a.shape) != snap.shapes[i]:
            out.append(i)
        elif copy is not None:
            if not same_values(a, copy):
                out.append(i)
        elif fingerprint(a) != snap.prints[i]:
            out.append(i)
    return out


def restore(arrays: Sequence[np.ndarray], snap: Snapshot, which: Sequence[int]) -> bool:
    """Write the copies back into the arrays listed in ``which`` — and into any copied array
    whose raw bytes differ (an element assignment need not keep an extended-precision
    value's padding bytes; the user's bytes come back too). False when an array in ``which``
    is only fingerprinted (it cannot be written back)."""
    for i, copy in enumerate(snap.copies):
        if copy is not None and (i in which or not equal_bits(arrays[i], copy)):
            arrays[i][...] = copy
    return all(snap.copies[i] is not None for i in which)
