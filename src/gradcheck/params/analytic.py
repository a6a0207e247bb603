"""Take in the analytic gradient: call ``forward_backward`` once and validate what it returned
against the parameter tree (structure, shapes, dtypes, real vs complex), and keep it safe from
a forward that writes into a buffer it shares (copies while small, fingerprints when large)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.base import loss_value
from gradcheck.params import snapshot as snap
from gradcheck.params import tree as trees

#: Two calls of ``forward_backward`` may differ by this many ulps of an entry (plus its
#: tensor's scale) — threaded sums — before the entry counts as changing between calls.
UNSTABLE_ULPS = 64.0


@dataclass(frozen=True)
class Analytic:
    """What ``forward_backward`` gave: the loss (if returned) and gradients aligned to leaves."""

    loss: float | None
    grads: list[np.ndarray]
    #: fingerprints of the gradients kept without a copy (large ones), by leaf position
    prints: dict[int, tuple[int, ...]] = field(default_factory=dict)


def analytic_gradients(forward_backward: Callable[[Any], Any], params: Any,
                       leaves: list[trees.Leaf], reset: Callable[[], None] | None) -> Analytic:
    """Call ``forward_backward`` once and validate its gradients against the leaves."""
    if reset is not None:
        reset()
    try:
        out = forward_backward(params)
    except Exception as exc:
        raise ForwardError(f"forward_backward raised {type(exc).__name__}: {exc}; fix it and "
                           "check again.") from exc
    trees.check_structure(params, leaves, "forward_backward")
    loss = None
    _refuse_swapped_or_reversed(out, params)
    if _is_loss_and_grads(out, params):
        loss, out = loss_value(out[0], "as the loss of forward_backward"), out[1]
    grads = trees.align(params, out, "the gradients returned by forward_backward")
    arrays = []
    for leaf, g in zip(leaves, grads):
        if hasattr(g, "detach"):
            g = g.detach().cpu().numpy()
        if g is None or isinstance(g, (str, bytes, dict, list, tuple)):
            kind = "None" if g is None else f"a {type(g).__name__}"
            raise InputError(f"The gradient of '{leaf.name}' is {kind}, not an array; return a "
                             "float array shaped like the parameter (zeros if it does not "
                             "affect the loss).")
        g = np.asarray(g)
        if g.shape != leaf.shape:
            raise InputError(f"The gradient of '{leaf.name}' has shape {g.shape} but the "
                             f"parameter has shape {leaf.shape}; return a gradient shaped like "
                             "its parameter.")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.complexfloating)):
            raise InputError(f"The gradient of '{leaf.name}' has dtype {g.dtype}; return a "
                             "floating-point array.")
        if (np.iscomplexobj(g) and not np.iscomplexobj(leaf.array)
                and np.any(g.imag != 0)):
            raise InputError(f"The gradient of '{leaf.name}' is complex (non-zero imaginary "
                             "part) but the parameter is real; return the real gradient — a "
                             "complex value usually means a complex intermediate leaked into "
                             "the backward pass.")
        arrays.append(g)
    return keep_gradients(Analytic(loss, arrays), leaves)


def keep_gradients(analytic: Analytic, leaves: list[trees.Leaf],
                   copy_limit: int = snap.COPY_LIMIT) -> Analytic:
    """Protect the gradients from a forward that overwrites a buffer they share.

    Small gradients (all together at most ``copy_limit`` bytes) are copied. Large ones are
    kept as they are — a copy would double the memory of a big check — and fingerprinted
    (:func:`gradients_changed` compares at the end), except those that may share memory with a
    parameter (the check moves those), which are copied.
    """
    grads = analytic.grads
    if sum(g.nbytes for g in grads) <= copy_limit:
        return Analytic(analytic.loss, [np.array(g, copy=True) for g in grads])
    kept, prints = [], {}
    for i, g in enumerate(grads):
        if any(np.may_share_memory(g, leaf.array) for leaf in leaves):
            kept.append(np.array(g, copy=True))
        else:
            kept.append(g)
            prints[i] = snap.fingerprint(g)
    return Analytic(analytic.loss, kept, prints)


def gradients_changed(analytic: Analytic, leaves: list[trees.Leaf]) -> None:
    """Raise if a gradient kept without a copy was overwritten during the check."""
    bad = [leaves[i].name for i, p in analytic.prints.items()
           if snap.fingerprint(analytic.grads[i]) != p]
    if bad:
        raise InputError(f"the gradient(s) of {', '.join(repr(n) for n in bad)} returned by "
                         "forward_backward changed during the check: they share a buffer the "
                         "forward writes into; return copies (e.g. grad.copy()).")


def _is_number(x: Any) -> bool:
    """A scalar or a one-element array of numbers (``np.array([loss])``, ``loss.reshape(1)``)."""
    if x is None or isinstance(x, (dict, list, tuple, str, bytes)):
        return False
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read is not a number
        return False
    return arr.size == 1 and arr.ndim <= 1 and np.issubdtype(arr.dtype, np.number)


def _is_loss_and_grads(out: Any, params: Any) -> bool:
    """``(loss, grads)`` rather than grads: a pair whose first item is a number (a scalar or a
    one-element array) — unless the params are themselves a pair whose first leaf is shaped
    like that item (then it is ambiguous; grads win)."""
    if not (isinstance(out, tuple) and len(out) == 2) or not _is_number(out[0]):
        return False
    return not (isinstance(params, (list, tuple)) and len(params) == 2
                and np.shape(params[0]) == np.shape(out[0]))


def _refuse_swapped_or_reversed(out: Any, params: Any) -> None:
    """Name the two usual mix-ups: forward and forward_backward passed in the wrong order (a
    number where gradients belong), and ``(grads, loss)`` instead of ``(loss, grads)``."""
    if _is_number(out) and not (isinstance(params, np.ndarray) and params.size == 1):
        raise InputError("forward_backward returned a single number, not gradients: forward "
                         "and forward_backward look swapped; call check(forward, "
                         "forward_backward, params).")
    if (isinstance(out, tuple) and len(out) == 2 and _is_number(out[1])
            and not _is_number(out[0])
            and not (isinstance(params, (list, tuple)) and len(params) == 2)):
        raise InputError("forward_backward returned (grads, loss); return (loss, grads) or "
                         "the gradients alone.")


def precision_notes(leaves: list[trees.Leaf], grads: list[np.ndarray], strict: bool = False
                    ) -> list[str]:
    """One sentence per pair of dtypes in which gradients were returned in a lower precision
    than their parameters (what ``torch.autograd.gradcheck(check_grad_dtypes=True)``
    refuses), naming the tensors: a note, or with ``strict=True`` the reason the check
    fails."""
    lower: dict[tuple[str, str], list[str]] = {}
    for leaf, g in zip(leaves, grads):
        if (np.dtype(g.dtype).itemsize < leaf.array.dtype.itemsize
                and not np.iscomplexobj(leaf.array) and not np.iscomplexobj(g)):
            lower.setdefault((str(g.dtype), str(leaf.array.dtype)), []).append(leaf.name)
    out = []
    for (g_dtype, p_dtype), names in lower.items():
        one = len(names) == 1
        which = (f"The gradient of '{names[0]}' is {g_dtype} while the parameter is" if one else
                 f"The gradients of {', '.join(repr(n) for n in names)} are {g_dtype} while the "
                 "parameters are")
        if strict:
            out.append(f"{which} {p_dtype}; strict=True makes that a failure — return "
                       f"{'the gradient' if one else 'gradients'} in the parameter's dtype.")
        else:
            out.append(f"{which} {p_dtype}: judged with the tolerance of {g_dtype} "
                       "(strict=True makes this a failure).")
    return out


def loss_mismatch(loss_a: float, f0: float, grads: list[np.ndarray]) -> str | None:
    """A warning when the loss ``forward_backward`` returned differs from ``forward``'s."""
    if not np.isfinite(loss_a):
        return None  # said by nan_loss_warning
    eps = max(float(np.finfo(g.dtype).eps) for g in grads if np.issubdtype(g.dtype, np.inexact))
    if abs(loss_a - f0) > 1e3 * eps * max(abs(f0), 1e-300) + 1e-300:
        return (f"forward_backward returned the loss {loss_a!r} but forward gives {f0!r} at "
                "the same params: do they compute the same function (same data, same mode)?")
    return None


def unstable_entries(first: list[np.ndarray], second: list[np.ndarray]
                     ) -> list[np.ndarray | None]:
    """Per leaf, a mask of analytic entries that differ between two calls of
    ``forward_backward`` at the same params by more than rounding,
    ``UNSTABLE_ULPS·ε(dtype)·(|g| + RMS(g))`` (a backward that leaves part of an ``np.empty``
    buffer unwritten, or accumulates into state, changes between calls) — ``None`` where
    nothing changed. Chunk by chunk: no gradient-sized temporaries unless something changed."""
    out: list[np.ndarray | None] = []
    for g1, g2 in zip(first, second):
        if g1 is g2:
            out.append(None)
            continue
        dt = g1.dtype if np.issubdtype(g1.dtype, np.inexact) else np.dtype(np.float64)
        scale = _chunked_rms(g1)
        eps = UNSTABLE_ULPS * float(np.finfo(dt).eps)
        pieces, changed = [], False
        for c1, c2 in zip(snap.flat_chunks(np.asarray(g1)), snap.flat_chunks(np.asarray(g2))):
            a1 = (c1.real if np.iscomplexobj(c1) else c1).astype(np.float64)
            a2 = (c2.real if np.iscomplexobj(c2) else c2).astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                same = ((np.abs(a1 - a2) <= eps * (np.abs(a1) + scale)) | (a1 == a2)
                        | (np.isnan(a1) & np.isnan(a2)))
            changed |= not bool(same.all())
            pieces.append(~same)
        out.append(np.concatenate(pieces).reshape(np.shape(g1)) if changed else None)
    return out


def _chunked_rms(g: np.ndarray) -> float:
    m, total, count = 0.0, 0.0, 0
    for c in snap.flat_chunks(np.asarray(g)):
        c = c.real if np.iscomplexobj(c) else c
        f = c[np.isfinite(c)]
        if f.size:
            m = max(m, float(np.max(np.abs(f))))
    if m == 0.0:
        return 0.0
    for c in snap.flat_chunks(np.asarray(g)):
        c = c.real if np.iscomplexobj(c) else c
        u = c[np.isfinite(c)].astype(np.float64) / m
        total, count = total + float(np.dot(u, u)), count + u.size
    return m * float(np.sqrt(total / count))


def unstable_warnings(leaves: list[trees.Leaf], unstable: list[np.ndarray],
                      first: list[np.ndarray], second: list[np.ndarray]) -> list[str]:
    """One sentence per tensor whose analytic gradient changed between two calls."""
    out = []
    for leaf, mask, g1, g2 in zip(leaves, unstable, first, second):
        if mask is None:
            continue
        pos = np.flatnonzero(mask)
        if pos.size == 0:
            continue
        shown = ", ".join(leaf.element_name(int(p)) for p in pos[:5])
        more = f" (and {pos.size - 5} more)" if pos.size > 5 else ""
        k = int(pos[0])
        out.append(f"The analytic gradient of '{leaf.name}' differs between two calls of "
                   f"forward_backward at the same params at {shown}{more} (e.g. "
                   f"{np.asarray(g1).reshape(-1)[k]!r} then {np.asarray(g2).reshape(-1)[k]!r}): "
                   "the backward leaves memory unwritten (np.empty) or accumulates into state; "
                   "those entries FAIL.")
    return out


def nan_loss_warning(loss: float | None) -> str | None:
    """A warning when ``forward_backward`` returned a non-finite loss with its gradients."""
    if loss is None or np.isfinite(loss):
        return None
    return (f"forward_backward returned the loss {loss!r} (not finite) with its gradients; "
            "they are still checked, but a non-finite loss usually means the backward ran on "
            "a broken forward — look at the loss it computes.")
