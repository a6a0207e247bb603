"""Parameter trees: flatten nested containers of arrays into named leaves, and back.

A *tree* is a numpy array, or a ``dict`` / ``list`` / ``tuple`` whose values are trees.
Every array is a *leaf* with a readable dotted name (``"encoder.W"``, ``"[1]"``), and every
element of a leaf has a readable name too (``"encoder.W[2,3]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.params.snapshot import flat_chunks

ROOT_NAME = "params"
#: Deepest nesting of containers accepted in a params tree (Python's recursion limit is 1000).
MAX_DEPTH = 200


@dataclass
class Leaf:
    """One array of a parameter tree.

    Attributes
    ----------
    name : dotted name of the array inside the tree (``"encoder.W"``).
    path : the keys / indices leading from the root to the array.
    array : the user's array itself (not a copy).
    """

    name: str
    path: tuple[Any, ...]
    array: np.ndarray

    @property
    def size(self) -> int:
        return int(self.array.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def element_name(self, flat_index: int) -> str:
        """Readable name of the element with C-order flat index ``flat_index``."""
        return element_name(self.name, np.unravel_index(int(flat_index), self.shape))


def element_name(leaf_name: str, multi_index: tuple[int, ...]) -> str:
    """``element_name("W", (2, 3)) == "W[2,3]"``; a 0-d array's element is the leaf itself."""
    if len(multi_index) == 0:
        return leaf_name
    return f"{leaf_name}[{','.join(str(int(i)) for i in multi_index)}]"


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _walk(node: Any, prefix: str, path: tuple[Any, ...]) -> Iterator[Leaf]:
    if len(path) > MAX_DEPTH:
        raise InputError(f"params are nested more than {MAX_DEPTH} containers deep (at "
                         f"'{prefix[:60]}…'); pass a flatter dict or list of arrays.")
    if isinstance(node, (list, tuple)) and node and all(
            isinstance(v, (int, float, complex, np.number)) for v in node):
        yield Leaf(prefix or ROOT_NAME, path, node)  # a list of numbers: refused by name
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, _join(prefix, key), path + (key,))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, _join(prefix, i), path + (i,))
    else:
        yield Leaf(prefix or ROOT_NAME, path, node)


def flatten(params: Any) -> list[Leaf]:
    """List the arrays of ``params`` in a stable order (dict insertion order, list order)."""
    return list(_walk(params, "", ()))


def map_leaves(params: Any, fn: Callable[[Any], Any]) -> Any:
    """Rebuild the tree with ``fn`` applied to every leaf (containers are new objects)."""
    if isinstance(params, dict):
        items = [(k, map_leaves(v, fn)) for k, v in params.items()]
        return dict(items) if type(params) is dict else type(params)(items)
    if isinstance(params, tuple):
        items = [map_leaves(v, fn) for v in params]
        return type(params)(*items) if hasattr(params, "_fields") else tuple(items)
    if isinstance(params, list):
        return [map_leaves(v, fn) for v in params]
    return fn(params)


def replace_leaves(params: Any, arrays: list[Any]) -> Any:
    """A tree shaped like ``params`` whose leaves are ``arrays`` (in ``flatten`` order)."""
    it = iter(arrays)
    out = map_leaves(params, lambda _: next(it))
    return out


def align(params: Any, grads: Any, what: str = "the gradients") -> list[Any]:
    """Leaves of ``grads`` in the order of ``params``' leaves, with clear errors on mismatch.

    A dict may list its keys in another order; extra or missing keys are named.
    """
    return [g for _, g in _align(params, grads, "", what)]


def _align(p: Any, g: Any, prefix: str, what: str) -> Iterator[tuple[str, Any]]:
    here = prefix or ROOT_NAME
    if isinstance(p, dict):
        if not isinstance(g, dict):
            raise InputError(
                f"{what} for '{here}' should be a dict with keys {sorted(map(str, p))}, "
                f"got {type(g).__name__}; return one gradient per parameter, shaped like params."
            )
        missing = [k for k in p if k not in g]
        extra = [k for k in g if k not in p]
        if missing:
            names = ", ".join(repr(_join(prefix, k)) for k in missing)
            got = (f" (they have {', '.join(repr(_join(prefix, k)) for k in extra)} instead)"
                   if extra else "")
            raise InputError(
                f"{what} are missing the tensor(s) {names}{got}; return a gradient for every "
                "parameter under its name in params (zeros if it does not affect the loss)."
            )
        if extra:
            names = ", ".join(repr(_join(prefix, k)) for k in extra)
            raise InputError(
                f"{what} contain the tensor(s) {names}, which are not parameters; "
                "remove them or add them to params."
            )
        for k in p:
            yield from _align(p[k], g[k], _join(prefix, k), what)
    elif isinstance(p, (list, tuple)):
        if not isinstance(g, (list, tuple)) or len(g) != len(p):
            got = f"{type(g).__name__} of length {len(g)}" if isinstance(
                g, (list, tuple)) else type(g).__name__
            raise InputError(
                f"{what} for '{here}' should be a sequence of {len(p)} gradients, got {got}; "
                "return one gradient per parameter, in the same order."
            )
        for i, (pi, gi) in enumerate(zip(p, g)):
            yield from _align(pi, gi, _join(prefix, i), what)
    else:
        yield here, g


def validate_leaves(leaves: list[Leaf]) -> None:
    """Refuse leaves that cannot be perturbed, with a sentence that says what to do."""
    if not leaves:
        raise InputError("params holds no arrays; pass a numpy array or a dict/list of them.")
    for leaf in leaves:
        a = leaf.array
        if not isinstance(a, np.ndarray):
            kind = type(a).__name__
            if isinstance(a, (list, tuple)):
                kind = f"{kind} of numbers"
            hint = ("convert it with np.asarray(..., dtype=float)"
                    if np.isscalar(a) or isinstance(a, (list, tuple))
                    else "pass numpy arrays (use the torch or jax adapter for tensors)")
            raise InputError(f"Parameter '{leaf.name}' is a {kind}, not a numpy array; {hint}.")
        if isinstance(a, np.ma.MaskedArray):
            raise InputError(f"Parameter '{leaf.name}' is a masked array, whose mask an "
                             "in-place step would change; pass its .data (or .filled()) and "
                             "apply the mask inside the forward.")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
            raise InputError(
                f"Parameter '{leaf.name}' has dtype {a.dtype}, which cannot be perturbed by a "
                "small step; make it float64 (e.g. params['...'].astype(np.float64)) or leave "
                "integer data out of params."
            )
    seen: dict[int, str] = {}
    for leaf in leaves:
        key = id(leaf.array)
        if key in seen:
            raise InputError(
                f"Parameters '{seen[key]}' and '{leaf.name}' are the same array; list each "
                "tensor once (a shared weight is one parameter)."
            )
        seen[key] = leaf.name
    refuse_overlaps(leaves)


def refuse_overlaps(leaves: list[Leaf]) -> None:
    """Refuse two leaves that share memory (``{"a": buf[:4], "b": buf[2:]}``): moving an entry
    of one would move the other, and the check would compare the wrong things. Views of one
    buffer that do not overlap are fine."""
    for i, first in enumerate(leaves):
        for second in leaves[i + 1:]:
            if np.may_share_memory(first.array, second.array) and _overlap(first.array,
                                                                           second.array):
                raise InputError(
                    f"Parameters '{first.name}' and '{second.name}' share memory (overlapping "
                    "views of one buffer); pass separate arrays (np.copy) or the whole buffer "
                    "as one parameter."
                )


def check_structure(params: Any, leaves: list[Leaf], who: str) -> None:
    """Raise if ``who`` (the forward) replaced, added or removed arrays in the params tree.

    The original arrays are put back first (dicts and lists; tuples are immutable), so the
    user's params are as they were before the check.
    """
    now = flatten(params)
    before = [(leaf.name, id(leaf.array)) for leaf in leaves]
    after = [(leaf.name, id(leaf.array)) for leaf in now]
    if before == after:
        return
    names_before = [n for n, _ in before]
    names_after = [n for n, _ in after]
    added = [n for n in names_after if n not in names_before]
    removed = [n for n in names_before if n not in names_after]
    replaced = [n for (n, i) in before if (n, i) not in after and n in names_after]
    put_back(params, leaves)
    what = "; ".join(part for part in (
        f"replaced {', '.join(repr(n) for n in replaced)}" if replaced else "",
        f"added {', '.join(repr(n) for n in added)}" if added else "",
        f"removed {', '.join(repr(n) for n in removed)}" if removed else "") if part)
    raise InputError(
        f"{who} modified the params container ({what}); it must not add, remove or replace "
        "parameters — read params and compute into new arrays (the originals were put back)."
    )


def structure_changed(params: Any, leaves: list[Leaf]) -> bool:
    """Whether arrays of ``params`` were replaced, added or removed since ``leaves``."""
    try:
        now = flatten(params)
    except InputError:
        return True
    return [(leaf.name, id(leaf.array)) for leaf in now] != \
        [(leaf.name, id(leaf.array)) for leaf in leaves]


def put_back(params: Any, leaves: list[Leaf]) -> None:
    """Re-insert the original arrays at their paths (best effort; tuples cannot be edited)."""
    for leaf in leaves:
        node = params
        try:
            for key in leaf.path[:-1]:
                node = node[key]
            if leaf.path and isinstance(node, (dict, list)):
                node[leaf.path[-1]] = leaf.array
        except (KeyError, IndexError, TypeError):
            continue
    if isinstance(params, dict):
        names = {leaf.path[0] for leaf in leaves if leaf.path}
        for key in [k for k in params if k not in names]:
            del params[key]


def non_finite_entries(leaves: list[Leaf]) -> list[str]:
    """Names of the first few NaN / ±inf entries of each leaf (``W[1,2]``), in leaf order."""
    out = []
    for leaf in leaves:
        found: list[int] = []
        offset = 0
        for chunk in flat_chunks(leaf.array):  # chunked: no parameter-sized masks
            bad = np.flatnonzero(~np.isfinite(chunk))[:3 - len(found)]
            found += (bad + offset).tolist()
            offset += chunk.size
            if len(found) >= 3:
                break
        out += [leaf.element_name(i) for i in found]
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Exact overlap test, bounded in work; when it is too hard to decide, assume overlap."""
    try:
        return bool(np.shares_memory(a, b, max_work=10**6))
    except np.exceptions.TooHardError:
        return True
