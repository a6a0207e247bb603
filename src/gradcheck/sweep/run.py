"""The h sweep (seed §4): relative error of finite differences against the analytic gradient
as the step ``h`` runs from 1e-1 down to 1e-12, plus the complex step.

For a central difference the error is ``|f'''|h²/6`` (truncation, falls with ``h``) plus about
``ε|f|/h`` (cancellation, grows as ``h`` shrinks), so the log-log curve is a V with its bottom
near ``(3ε|f|/|f'''|)^(1/3)``; the complex step ``Im f(x+ih)/h`` has no subtraction and stays
flat at machine precision (Squire & Trapp, SIAM Review 40(1), 1998).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.estimate.schemes import get_scheme
from gradcheck.params import tree as trees
from gradcheck.sweep.plot import plot_sweep

#: Steps of the sweep: 1e-1 … 1e-12, two per decade.
DEFAULT_HS = tuple(float(h) for h in np.logspace(-1, -12, 23))


@dataclass
class SweepResult:
    """Relative errors ``errors[method][i, j]`` for entry ``entries[i]`` at step ``hs[j]``."""

    entries: list[str]
    analytic: np.ndarray
    hs: np.ndarray
    errors: dict[str, np.ndarray]
    complex_errors: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def median(self, method: str) -> np.ndarray:
        """Median relative error over the entries at each step."""
        return np.median(self.errors[method], axis=0)

    def best_h(self, method: str) -> float:
        """The step with the smallest median error."""
        return float(self.hs[int(np.argmin(self.median(method)))])

    def table(self) -> str:
        """Text table: median relative error per step and method, best step marked ``*``."""
        methods = list(self.errors)
        lines = [f"h sweep over {len(self.entries)} entries ({', '.join(self.entries[:6])}"
                 f"{', …' if len(self.entries) > 6 else ''}): median relative error",
                 "h".rjust(9) + "".join(m.rjust(13) for m in methods)]
        best = {m: int(np.argmin(self.median(m))) for m in methods}
        for j, h in enumerate(self.hs):
            row = f"{h:9.0e}"
            for m in methods:
                star = "*" if best[m] == j else " "
                row += f"{self.median(m)[j]:12.1e}{star}"
            lines.append(row)
        if self.complex_errors is not None:
            lines.append(f"complex step (h=1e-20): median {np.median(self.complex_errors):.1e}, "
                         f"max {np.max(self.complex_errors):.1e}")
        for m in methods:
            lines.append(f"best h for {m}: {self.best_h(m):.0e} "
                         f"(median error {np.min(self.median(m)):.1e})")
        lines += self.notes
        return "\n".join(lines)

    def plot(self, path: str) -> str:
        """Draw the sweep to ``path`` (PNG); see :func:`gradcheck.sweep.plot.plot_sweep`."""
        return plot_sweep(self, path)

    __str__ = table


_ENTRY = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[([0-9,\s]*)\])?\s*$")


def parse_entry(spec: str, leaves: list[trees.Leaf]) -> tuple[int, int]:
    """``"W[2,3]"`` → (leaf number, flat index); a clear error names the valid tensors."""
    m = _ENTRY.match(spec)
    names = [leaf.name for leaf in leaves]
    if not m or m.group(1) not in names:
        raise InputError(f"entry {spec!r} does not name a tensor; use NAME[i,j] with NAME one "
                         f"of {', '.join(names)}.")
    i = names.index(m.group(1))
    leaf = leaves[i]
    idx = tuple(int(s) for s in (m.group(2) or "").split(",") if s.strip())
    if len(idx) != leaf.array.ndim or any(not 0 <= k < n for k, n in zip(idx, leaf.shape)):
        raise InputError(f"entry {spec!r} is outside '{leaf.name}' of shape {leaf.shape}; give "
                         f"{leaf.array.ndim} indices within the shape.")
    return i, int(np.ravel_multi_index(idx, leaf.shape)) if idx else 0


def sweep(forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any], params: Any,
          entries: Sequence[str] | None = None, sample: int = 8, seed: int = 0,
          hs: Sequence[float] = DEFAULT_HS, methods: Sequence[str] = ("central", "forward"),
          complex_step: bool = True, floor: float = 1e-300) -> SweepResult:
    """Relative error ``|a - n(h)| / max(|a|, |n|)`` per entry, step and method.

    Parameters
    ----------
    entries : names such as ``"W[2,3]"``; default: ``sample`` entries drawn among those with
        the largest analytic gradients (at least one per tensor), so the curve is not
        dominated by gradients at round-off level.
    hs : the steps (default 1e-1 … 1e-12, two per decade).
    methods : finite-difference schemes to sweep (see :mod:`gradcheck.estimate.schemes`).
    complex_step : also evaluate ``Im f(x + 1e-20 i)/1e-20`` (skipped, with a note, when the
        forward is not complex-analytic).

    Params are perturbed in place and restored exactly.
    """
    leaves = trees.flatten(params)
    out = forward_backward(params)
    if isinstance(out, tuple) and len(out) == 2 and np.ndim(out[0]) == 0:
        out = out[1]
    grads = [np.asarray(g, dtype=np.float64) for g in trees.align(params, out)]
    picks = [parse_entry(s, leaves) for s in entries] if entries else \
        _sample_entries(grads, sample, seed)
    names = [leaves[i].element_name(k) for i, k in picks]
    a = np.array([grads[i].reshape(-1)[k] for i, k in picks])
    hs_arr = np.asarray(hs, dtype=np.float64)
    f0 = float(np.real(forward(params)))
    errors = {}
    for m in methods:
        scheme = get_scheme(m)
        err = np.empty((len(picks), len(hs_arr)))
        for r, (i, k) in enumerate(picks):
            arr = leaves[i].array.reshape(-1)
            x = arr[k:k + 1].astype(np.float64).repeat(len(hs_arr))
            pts = scheme.points(x, hs_arr, arr.dtype)
            f = np.empty(pts.shape)
            saved = arr[k].copy()
            try:
                for j in range(pts.shape[0]):
                    for c in range(pts.shape[1]):
                        arr[k] = pts[j, c]
                        f[j, c] = float(forward(params))
            finally:
                arr[k] = saved
            n = scheme.combine(x, pts, f, f0, 0.0).value
            err[r] = _relerr(a[r], n, floor)
        errors[m] = err
    result = SweepResult(names, a, hs_arr, errors)
    if complex_step:
        result.complex_errors = _complex_errors(forward, params, leaves, picks, a, floor, result)
    return result


def _relerr(a: float, n: np.ndarray, floor: float) -> np.ndarray:
    z = np.maximum(np.maximum(abs(a), np.abs(n)), floor)
    return np.where((a == 0) & (n == 0), 0.0, np.abs(a - n) / z)


def _complex_errors(forward, params, leaves, picks, a, floor, result) -> np.ndarray | None:
    carrays = [leaf.array.astype(np.complex128) for leaf in leaves]
    ctree = trees.replace_leaves(params, carrays)
    out = np.empty(len(picks))
    try:
        for r, (i, k) in enumerate(picks):
            flat = carrays[i].reshape(-1)
            saved = flat[k]
            flat[k] = saved + 1e-20j
            try:
                with warnings.catch_warnings():  # a real cast of the complex input: say so
                    warnings.simplefilter("error", np.exceptions.ComplexWarning)
                    value = forward(ctree)
            finally:
                flat[k] = saved
            if not np.iscomplexobj(np.asarray(value)):
                raise TypeError("the forward returned a real number for complex params")
            out[r] = _relerr(a[r], np.array([np.imag(value) / 1e-20]), floor)[0]
    except Exception as exc:  # not complex-analytic: say so, no complex curve
        result.notes.append(f"complex step skipped: {exc}")
        return None
    return out


def _sample_entries(grads: list[np.ndarray], sample: int, seed: int) -> list[tuple[int, int]]:
    """At least one entry per tensor, then the rest among the largest |gradient| entries."""
    rng = np.random.default_rng(seed)
    picks = []
    for i, g in enumerate(grads):
        flat = np.abs(g.reshape(-1))
        if flat.size:
            picks.append((i, int(np.argmax(flat))))
    pool = [(i, k) for i, g in enumerate(grads)
            for k in np.flatnonzero(np.abs(g.reshape(-1)) > 1e-3 * np.abs(g).max())]
    rng.shuffle(pool)
    for p in pool:
        if len(picks) >= max(sample, len(grads)):
            break
        if (p[0], int(p[1])) not in picks:
            picks.append((p[0], int(p[1])))
    return picks
