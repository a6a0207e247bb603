"""Which entries of each tensor to check (seed §4: a subset is fine, but every kind of
parameter must be represented)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from gradcheck.errors import InputError


def corner_indices(shape: tuple[int, ...]) -> np.ndarray:
    """Flat (C-order) indices of the tensor's corners: first or last along every axis.

    Off-by-one bugs (a loop that stops one step early, a padding crop that is one too short)
    live at the edges, so a sample always includes them.
    """
    if len(shape) == 0:
        return np.zeros(1, dtype=np.int64)
    choices = [sorted({0, n - 1}) for n in shape]
    corners = [np.ravel_multi_index(c, shape) for c in itertools.product(*choices)]
    return np.unique(np.asarray(corners, dtype=np.int64))


def select(shape: tuple[int, ...], sample: Any, rng: np.random.Generator,
           name: str = "") -> np.ndarray:
    """Sorted flat indices to check in a tensor of ``shape``.

    ``sample=None``: every entry. ``sample=k`` (int ≥ 1): ``k`` entries per tensor.
    ``sample=p`` (float in (0, 1]): a fraction ``p`` of the entries, at least one. The corners
    are always included (so a tiny ``k`` may give a few more than ``k`` entries); the rest are
    drawn without replacement from ``rng``. ``sample={name: spec}``: a spec per tensor (any of
    the above, or an explicit list of indices — tuples or flat ints — checked exactly);
    tensors not named are checked in full.
    """
    size = int(np.prod(shape, dtype=np.int64))
    if isinstance(sample, dict):
        return _select_named(shape, sample, rng, name)
    if sample is None:
        return np.arange(size, dtype=np.int64)
    if isinstance(sample, bool) or not isinstance(sample, (int, float, np.integer, np.floating)):
        raise InputError(f"sample={sample!r} is not a number; pass an int (entries per tensor) "
                         "or a float in (0, 1] (a fraction of each tensor).")
    if isinstance(sample, (float, np.floating)):
        if not 0 < sample <= 1:
            raise InputError(f"sample={sample} is not a fraction in (0, 1]; pass e.g. 0.1 for "
                             "10% of each tensor, or an int for a count per tensor.")
        k = max(1, int(round(sample * size)))
    else:
        if sample < 1:
            raise InputError(f"sample={sample} must be at least 1 entry per tensor.")
        k = int(sample)
    if k >= size:
        return np.arange(size, dtype=np.int64)
    corners = corner_indices(shape)
    n_rest = size - corners.size
    extra = min(max(0, k - corners.size), n_rest)
    picks = rng.choice(n_rest, size=extra, replace=False) if extra else np.zeros(0, np.int64)
    return np.sort(np.concatenate([corners, skip_corners(picks, corners)]).astype(np.int64))


def skip_corners(j: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The ``j``-th entries of ``range(size)`` without the sorted ``corners``, computed in
    O(len(j) · log len(corners)) instead of building that range: with ``d_i = c_i − i``
    (non-decreasing), the ``j``-th remaining index is ``j + #{i : d_i ≤ j}``.

    ``rng.choice(n, k)`` followed by this map draws exactly what ``rng.choice(rest, k)`` does
    on the materialised ``rest`` (numpy draws positions, then indexes), in O(k) memory for
    ``k`` well below ``n`` (numpy then uses a set-based draw instead of a permutation)."""
    j = np.asarray(j, dtype=np.int64)
    d = corners - np.arange(corners.size, dtype=np.int64)
    return j + np.searchsorted(d, j, side="right")


def _select_named(shape: tuple[int, ...], sample: dict[str, Any], rng: np.random.Generator,
                  name: str) -> np.ndarray:
    spec = sample.get(name)
    if isinstance(spec, (list, tuple, np.ndarray)):
        return explicit_indices(shape, spec, name)
    if isinstance(spec, dict):
        raise InputError(f"sample[{name!r}] is a dict; give an int, a fraction or a list of "
                         "indices for each tensor.")
    return select(shape, spec, rng, name)


def explicit_indices(shape: tuple[int, ...], spec: Any, name: str) -> np.ndarray:
    """Flat indices of an explicit list: multi-indices (tuples) or flat ints, range-checked."""
    size = int(np.prod(shape, dtype=np.int64))
    out = []
    for item in spec:
        try:
            if isinstance(item, (tuple, list)):
                flat = int(np.ravel_multi_index(tuple(int(i) for i in item), shape))
            else:
                flat = int(item)
                if not 0 <= flat < size:
                    raise ValueError
        except (ValueError, TypeError):
            raise InputError(f"sample[{name!r}] lists {item!r}, which is not an index of a "
                             f"tensor of shape {shape}; use tuples like (0, 1) or flat ints "
                             f"below {size}.") from None
        out.append(flat)
    if not out:
        raise InputError(f"sample[{name!r}] is empty; list at least one index (or leave the "
                         "tensor out of the dict to check all of it).")
    return np.unique(np.asarray(out, dtype=np.int64))
