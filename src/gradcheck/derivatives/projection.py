r"""Vector-valued derivatives checked through a scalar projection, and attribution.

The JVP, HVP and VJP checks all reduce to :func:`gradcheck.check` on a scalar function whose
gradient the user's code gives, so they share its numerics, verdicts, error bars, second look,
executors, progress bar, diagnosis and report:

* HVP: :math:`\varphi_v(\theta) = \langle \nabla f(\theta), v\rangle` has gradient
  :math:`\nabla\varphi_v = H v` (the Hessian is symmetric), so ``hvp(θ, v)`` is checked against
  central differences of the *gradient* projected on :math:`v`;
* VJP: :math:`L_c(x) = \langle c, F(x)\rangle` has gradient :math:`J^\top c = ` ``vjp(x, c)``.

A projection loses which component a disagreement came from, but it is linear in the
direction: for a partition :math:`c = \sum_S c_S` the residual of an entry splits as
:math:`\rho = \sum_S \rho_S`. :func:`attribute` follows the part carrying most of it down to a
single component (group testing on a linear residual: Du & Hwang, *Combinatorial Group
Testing*, 2000), at one analytic call per level — the other half's residual is the parent's
minus this one's.

The projection's rounding noise must reflect the sizes of the terms summed, not the (possibly
cancelled) sum: :func:`projection` adds the constant :math:`\sum_k |G_k(\theta_0)\,c_k|`,
which changes no derivative but makes the check's noise model, :math:`\varepsilon\,|f|`,
see the magnitude of the terms (Higham, *Accuracy and Stability of Numerical Algorithms*,
§4.2: the error of a sum is bounded by :math:`\varepsilon\sum|x_i|`, not :math:`\varepsilon
|\sum x_i|`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.judge.verdict import FAIL
from gradcheck.params import tree as trees
from gradcheck.report.results import Report


def random_direction_like(arrays: Sequence[np.ndarray], rng: np.random.Generator
                          ) -> list[np.ndarray]:
    """``v_i = s_i·m_i`` with Rademacher signs and magnitudes ``U[1, 2)`` per entry, in each
    array's dtype (the same draw as :func:`gradcheck.directional.random_direction`: every
    entry weighs at least 1, and equal errors cannot cancel exactly)."""
    out = []
    for a in arrays:
        signs = rng.integers(0, 2, size=a.shape).astype(np.float64) * 2.0 - 1.0
        v = signs * rng.uniform(1.0, 2.0, size=a.shape)
        out.append(v.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64))
    return out


def host(a: Any) -> np.ndarray:
    """A numpy array from a numpy, torch or JAX array."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def inner(a: Sequence[Any], b: Sequence[Any]) -> float:
    """``Σ_k Re⟨a_k, b_k⟩`` accumulated in float64 (complex leaves: ``Re Σ conj(a)·b``)."""
    total = 0.0
    for x, y in zip(a, b):
        x, y = host(x), host(y)
        total += float(np.real(np.vdot(x.astype(np.result_type(x.dtype, np.float64)),
                                       y.astype(np.result_type(y.dtype, np.float64)))))
    return total


def abs_inner(a: Sequence[Any], b: Sequence[Any]) -> float:
    """``Σ_k Σ_i |a_ki|·|b_ki|``: the size of the terms :func:`inner` adds."""
    return float(sum(np.sum(np.abs(host(x).astype(np.complex128))
                            * np.abs(host(y).astype(np.complex128)))
                     for x, y in zip(a, b)))


def precision_of(arrays: Sequence[Any]) -> np.dtype:
    """The lowest floating precision among ``arrays`` (float64 if none is floating)."""
    dts = [np.dtype(host(a).real.dtype) for a in arrays
           if np.issubdtype(host(a).dtype, np.inexact)]
    return min(dts, key=lambda d: d.itemsize) if dts else np.dtype(np.float64)


def projection(values: Callable[[Any], list[Any]], direction: Sequence[np.ndarray],
               base: Sequence[Any]) -> Callable[[Any], Any]:
    """``φ(p) = Σ_k ⟨values(p)_k, direction_k⟩ + Σ_k |values(θ₀)_k·direction_k|``.

    Returned as a 0-d array of the lowest precision among ``values(p)``, so the check's
    rounding model uses that precision's ε. ``base`` is ``values(θ₀)``.

    When every value is real at θ₀ the pairing is the bilinear ``Σ v·d`` (no conjugate), so a
    complex step ``θ + ih`` passes through it: ``Im φ(θ + ih)/h`` is then the derivative
    (Squire & Trapp 1998). Complex values use ``Re Σ conj(v)·d``.
    """
    offset = abs_inner(base, direction)
    bilinear = not any(np.iscomplexobj(host(b)) for b in base)

    def phi(p: Any) -> Any:
        vals = [host(v) for v in values(p)]
        dtype = precision_of(vals)
        if bilinear and any(np.iscomplexobj(v) for v in vals):
            total = sum(np.sum(v.astype(np.complex128) * d) for v, d in zip(vals, direction))
            return np.asarray(total + offset).astype(np.result_type(dtype, np.complex64))
        return np.asarray(inner(vals, direction) + offset).astype(dtype)

    return phi


@dataclass(frozen=True)
class Attribution:
    """Where the disagreement of one checked entry comes from.

    component : name of the single component (output element, Hessian column) carrying the
        largest part of the residual; share : that part over the whole residual.
    evaluations : analytic calls spent (shared between entries attributed together).
    """

    entry: str
    component: str
    share: float


def attribute(rows: Sequence[int], parts: Sequence[np.ndarray], names: Callable[[int], str],
              residuals: Callable[[np.ndarray], np.ndarray], total: np.ndarray,
              entry_names: Sequence[str]) -> list[Attribution]:
    """Bisect a linear residual down to the component carrying most of it, for each row.

    Parameters
    ----------
    rows : positions (into ``total`` and into the arrays ``residuals`` returns) of the entries
        to attribute.
    parts : the first partition of the components (e.g. one index array per output tensor;
        indices into one flat numbering of all components).
    names : ``names(component) -> str``.
    residuals : ``residuals(components) -> ρ`` for the direction restricted to
        ``components``: one value per row position (an array indexed like ``total``).
    total : the residual of every row for the whole direction.
    entry_names : names of the rows (aligned with ``rows``), for the result.

    Returns
    -------
    One :class:`Attribution` per row. Cost: one ``residuals`` call per part of the first
    partition (the last is the remainder) and one per level of each bisection.
    """
    out = []
    cache: dict[bytes, np.ndarray] = {}

    def rho(idx: np.ndarray) -> np.ndarray:
        key = idx.tobytes()
        if key not in cache:
            cache[key] = np.asarray(residuals(idx), dtype=np.float64)
        return cache[key]

    first = [np.asarray(p, dtype=np.int64) for p in parts if len(p)]
    level = [rho(p) for p in first[:-1]]
    level.append(total - sum(level) if level else total)
    for position, r in enumerate(rows):
        k = int(np.argmax([abs(lv[r]) for lv in level]))
        idx, value = first[k], level[k][r]
        while idx.size > 1:
            half = idx[: idx.size // 2]
            left = rho(half)[r]
            right = value - left
            if abs(left) >= abs(right):
                idx, value = half, left
            else:
                idx, value = idx[idx.size // 2:], right
        whole = total[r]
        share = float(value / whole) if whole != 0 else float("nan")
        out.append(Attribution(entry_names[position], names(int(idx[0])), share))
    return out


def flat_names(leaves: Sequence[trees.Leaf]) -> tuple[np.ndarray, Callable[[int], str]]:
    """Offsets of each leaf in one flat numbering of all entries, and ``name(flat) -> str``."""
    offsets = np.cumsum([0] + [leaf.size for leaf in leaves])

    def name(k: int) -> str:
        j = int(np.searchsorted(offsets, k, side="right") - 1)
        return leaves[j].element_name(k - int(offsets[j]))

    return offsets, name


def restricted(direction: Sequence[np.ndarray], offsets: np.ndarray, idx: np.ndarray
               ) -> list[np.ndarray]:
    """``direction`` with every entry outside the flat indices ``idx`` set to zero."""
    out = []
    for j, d in enumerate(direction):
        keep = idx[(idx >= offsets[j]) & (idx < offsets[j + 1])] - offsets[j]
        r = np.zeros_like(d)
        r.reshape(-1)[keep] = d.reshape(-1)[keep]
        out.append(r)
    return out


def worst_failing(report: Report, worst: int) -> list[tuple[float, int, int]]:
    """The ``worst`` failing entries of ``report`` as ``(error, tensor position, entry
    position)``, largest error first (NaN errors first of all), in the report's order."""
    failing = []
    for ti, t in enumerate(report.tensors):
        for pos in np.flatnonzero(t.status == FAIL):
            failing.append((float(np.nan_to_num(t.error[pos], nan=np.inf)), ti, int(pos)))
    failing.sort(key=lambda item: (-item[0], item[1], item[2]))
    return failing[:worst]
