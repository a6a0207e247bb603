"""The arrays the numerics perturb, and the guard that gives the user's arrays back untouched.

The workspace is the user's own arrays when possible (perturbed in place, one entry at a time,
restored exactly) and float64 copies of low-precision leaves when promoting — one copy per
tensor per check, never per entry. :class:`ParamsGuard` snapshots the user's arrays before a
check (:mod:`gradcheck.params.snapshot`: copies while they are small, chunk fingerprints when
they are large) and, whatever happens (an exception, Ctrl-C), writes them back bit for bit
afterwards when it holds copies, naming any the forward changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import loss_dtype
from gradcheck.params import snapshot as snap
from gradcheck.params import tree as trees


@dataclass(frozen=True)
class Workspace:
    """The arrays the numeric pass perturbs and the tree handed to the forward."""

    tree: Any
    arrays: list[np.ndarray]
    promoted: bool = False
    #: the user's arrays, when ``arrays`` are exact promoted copies of them (an evaluator then
    #: restores moved entries from them instead of keeping copies of its own)
    originals: list[np.ndarray] | None = None
    #: names of read-only leaves checked on a writable copy
    copied: tuple[str, ...] = ()

    def leaves(self, leaves: list[trees.Leaf]) -> list[trees.Leaf]:
        """The user's leaves re-pointed at the workspace's arrays."""
        return [trees.Leaf(leaf.name, leaf.path, a) for leaf, a in zip(leaves, self.arrays)]


def user_workspace(params: Any, leaves: list[trees.Leaf]) -> Workspace:
    """The user's own arrays, perturbed in place — except read-only ones (``mmap_mode="r"``,
    ``writeable=False``, numpy views of JAX arrays), which get a writable copy."""
    ro = [not leaf.array.flags.writeable for leaf in leaves]
    if not any(ro):
        return Workspace(params, [leaf.array for leaf in leaves])
    arrays = [np.array(leaf.array) if r else leaf.array for leaf, r in zip(leaves, ro)]
    return Workspace(trees.replace_leaves(params, arrays), arrays,
                     copied=tuple(leaf.name for leaf, r in zip(leaves, ro) if r))


def readonly_note(work: Workspace) -> str | None:
    """Say which read-only params were checked on a copy."""
    if not work.copied:
        return None
    return (f"params {', '.join(work.copied)} are read-only: they were checked on a writable "
            "copy; your arrays are untouched (a forward that reads the arrays themselves, not "
            "its argument, would not see the moves).")


def promoted_workspace(params: Any, leaves: list[trees.Leaf], dtype: Any) -> Workspace:
    """Copies of every leaf in ``result_type(leaf dtype, dtype)`` (float64, complex128)."""
    arrays = [leaf.array.astype(np.result_type(leaf.array.dtype, dtype)) for leaf in leaves]
    return Workspace(trees.replace_leaves(params, arrays), arrays, promoted=True,
                     originals=[leaf.array for leaf in leaves])


def workspace_changed(work: Workspace, leaves: list[trees.Leaf]) -> list[str]:
    """Names of promoted copies that no longer equal their parameter (the forward wrote into
    them); always empty when the workspace is the user's own arrays."""
    if not work.promoted:
        return []
    return [leaf.name for leaf, a in zip(leaves, work.arrays)
            if not snap.equal_promoted(a, leaf.array)]


def choose_workspace(forward: Callable[[Any], Any], params: Any, leaves: list[trees.Leaf],
                     promote: bool, reset: Callable[[], None] | None
                     ) -> tuple[Workspace, str | None, int]:
    """Pick the arrays to perturb; promote float32/float16 to float64 when the forward allows.

    Returns the workspace, a note for the report, and how many probe evaluations were spent.
    """
    low = [leaf.name for leaf in leaves if leaf.array.dtype in (np.float32, np.float16)]
    user = user_workspace(params, leaves)
    if not low:
        return user, None, 0
    names = ", ".join(low)
    if not promote:
        return user, (f"params {names} are low precision and promote=False: the numerics ran "
                      "in their precision, so the tolerance is looser and some entries may be "
                      "inconclusive."), 0
    work = promoted_workspace(params, leaves, np.float64)
    try:
        value = _call(forward, work.tree, reset)
        dt, f_work = loss_dtype(value), float(np.real(np.asarray(value, dtype=np.complex128)))
    except Exception:
        return user, (f"params {names} are low precision and the forward does not accept "
                      "float64 copies, so the numerics ran in low precision; some entries "
                      "may be inconclusive."), 1
    reads, spent = _reads_argument(forward, work, leaves, f_work, reset)
    if reads is False:
        return user, (f"params {names} are low precision, but the forward does not read the "
                      "params it is given (moving a float64 copy left the loss unchanged, "
                      "moving your array changed it): the numerics perturbed your own arrays "
                      "in place, in their precision, and restored them bit for bit."), 1 + spent
    if dt == np.float64:
        return work, (f"params {names} are low precision: the numerical gradient was computed "
                      "in float64 (promote=False turns this off), and the tolerance follows "
                      "the analytic gradient's dtype."), 1 + spent
    return work, (f"params {names} are low precision and the forward does not compute in "
                  f"float64 (it returns {dt}): the numerics moved float64 copies, and the "
                  "loss's measured noise sets the steps and error bars."), 1 + spent


def _call(forward: Callable[[Any], Any], tree: Any, reset: Callable[[], None] | None) -> Any:
    if reset is not None:
        reset()
    return forward(tree)


def _raised(exc: Exception, leaf: trees.Leaf, k: int, value: float) -> ForwardError:
    return ForwardError(f"forward raised {type(exc).__name__}: {exc} when "
                        f"{leaf.element_name(k)} was moved to {float(value)!r}; fix the forward "
                        "(or leave that parameter out of params) and check again.")


def _largest(flat: np.ndarray) -> int:
    """Index of the largest finite ``|entry|``, chunk by chunk (no array-sized temporary)."""
    best, where, offset = -1.0, 0, 0
    for c in snap.flat_chunks(flat):
        a = np.where(np.isfinite(c), np.abs(c), -1.0)
        if a.size and a.max() > best:
            best, where = float(a.max()), offset + int(np.argmax(a))
        offset += c.size
    return where


def _reads_argument(forward: Callable[[Any], Any], work: Workspace, leaves: list[trees.Leaf],
                    f_work: float, reset: Callable[[], None] | None) -> tuple[bool | None, int]:
    """Does the forward read the (promoted) params it is given, or the user's own arrays?

    Moves one entry of the largest low-precision leaf in the copy: a loss that changes reads
    the argument (True). If it does not, the same move in the user's array (restored exactly)
    tells whether the forward reads the user's arrays instead (False) or ignores that entry
    (None). Returns the answer and the evaluations spent (1 or 2).
    """
    low = [i for i, leaf in enumerate(leaves) if leaf.array.dtype in (np.float32, np.float16)
           and leaf.size]
    if not low:
        return None, 0
    j = max(low, key=lambda i: leaves[i].size)
    copy, mine = work.arrays[j].reshape(-1), leaves[j].array.reshape(-1)
    k = _largest(copy)
    old = copy[k]
    new = old + max(abs(float(old)), 1.0) * 2.0**-6
    copy[k] = new
    try:
        moved = float(np.real(np.asarray(_call(forward, work.tree, reset), dtype=np.complex128)))
    except Exception as exc:
        raise _raised(exc, leaves[j], k, new) from exc
    finally:
        written = copy[k] != new
        copy[k] = old
    if written:
        raise InputError(f"forward modified the parameter '{leaves[j].name}' in place (a moved "
                         "entry came back changed); it must not change params (compute into "
                         "new arrays) — it has been restored.")
    if moved != f_work:
        return True, 1
    if not leaves[j].array.flags.writeable or not np.shares_memory(mine, leaves[j].array):
        return None, 1
    saved = mine[k].copy()
    mine[k] = new
    try:
        changed = float(np.real(np.asarray(_call(forward, work.tree, reset),
                                           dtype=np.complex128)))
    except Exception as exc:
        raise _raised(exc, leaves[j], k, new) from exc
    finally:
        written = mine[k] != np.asarray(new).astype(mine.dtype)
        mine[k] = saved
    if written:
        raise InputError(f"forward modified the parameter '{leaves[j].name}' in place (a moved "
                         "entry came back changed); it must not change params (compute into "
                         "new arrays) — it has been restored.")
    return (False if changed != f_work else None), 2


class ParamsGuard:
    """Snapshot the user's arrays on entry; on exit restore them bit for bit and, when the
    check itself did not raise, refuse a forward that modified them.

    ``moved()`` names the leaves whose values differ from the snapshot (NaN-safe, bit exact,
    compared chunk by chunk; for extended precision the value bits only). Params of at most
    ``copy_limit`` bytes are copied, so any write is undone; larger ones are fingerprinted —
    a write is detected and named, the entries the check moved are restored exactly by the
    evaluators, but the forward's own writes cannot be undone without a copy, and the message
    says so. Given ``params``, a container the forward edited before raising (an entry
    popped, replaced or added) is put back on exit.
    """

    def __init__(self, leaves: list[trees.Leaf], params: Any = None,
                 copy_limit: int = snap.COPY_LIMIT) -> None:
        self.leaves = leaves
        self.params = params
        self.copy_limit = copy_limit
        self.snapshot: snap.Snapshot | None = None

    def __enter__(self) -> ParamsGuard:
        self.snapshot = snap.take(self._arrays(), self.copy_limit)
        return self

    def _arrays(self) -> list[np.ndarray]:
        return [leaf.array for leaf in self.leaves]

    def moved(self) -> list[str]:
        assert self.snapshot is not None
        return [self.leaves[i].name for i in snap.changed(self._arrays(), self.snapshot)]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None and self.params is not None and \
                trees.structure_changed(self.params, self.leaves):
            trees.put_back(self.params, self.leaves)  # edited the container, then raised
        assert self.snapshot is not None
        arrays = self._arrays()
        which = snap.changed(arrays, self.snapshot)
        moved = [self.leaves[i].name for i in which]
        exact = snap.restore(arrays, self.snapshot, which)
        if moved and not exact and hasattr(exc, "add_note"):  # Python ≥ 3.11
            exc.add_note(f"gradcheck: the parameter(s) {', '.join(moved)} were modified in "
                         "place and are too large to keep a copy of, so the forward's own "
                         "writes could not be undone (the entries the check moved were "
                         "restored).")
        if moved and kind is None:
            undone = ("They have been restored." if exact else
                      "They are too large to keep a copy of, so the forward's own writes "
                      "could not be undone (the entries the check moved were restored).")
            raise InputError(f"the forward modified the parameter(s) {', '.join(moved)} in "
                             f"place during the check; it must not change params. {undone}")
