"""Patterns of *where* a gradient is wrong: masks, one-hot terms, flips, shifts, low rank.

Each test takes the context of one failing tensor (:class:`~gradcheck.diagnose.evidence._Ctx`)
and returns a :class:`~gradcheck.diagnose.evidence.Diagnosis` (any confidence) or ``None``;
the evidence is ``-log10`` of the chance that random disagreement fits the pattern as well,
as in :mod:`gradcheck.diagnose.patterns`.

* **mask**: every error sits where exactly one of ``A`` and ``N`` is zero (a missing mask, a
  mask from the wrong tensor, an inverted mask, routing to the wrong element);
* **one_hot**: ``A - N`` is a whole multiple of ``1/batch_size`` at every error (a one-hot
  target term forgotten, doubled or miscounted);
* **flipped**: ``A ≈ N`` reversed along an axis or the last two (a flipped kernel/window);
* **shifted**: ``A[i] ≈ N[i ∓ 1]`` along an axis or the last two (an index or crop off by one);
* **one_step**: the error of a weight matrix has rank ``<= batch_size``, below the
  gradient's rank (one time step's outer products are wrong);
* **factor**: the error of ``Xᵀ·δ`` lies in the row (or column) space of the true gradient
  (one factor of the product is wrong, the other right).
"""

from __future__ import annotations

import math

import numpy as np

from gradcheck.diagnose.evidence import (
    _CLEAN_CAP,
    _GAP_MIN,
    _LOG_CAP,
    Diagnosis,
    _confidence,
    _Ctx,
    _fmt,
    _join,
    _neglog,
    _norm,
    _pr,
)

_QUANTUM_CAP = 3.0       # most evidence one entry landing on a multiple of q can give
_SVD_MAX_SIZE = 250_000  # the rank tests run an SVD: only on matrices up to this size


def _axes_text(axes: tuple[int, ...]) -> str:
    return f"axis {axes[0]}" if len(axes) == 1 else f"axes {_join([str(a) for a in axes])}"


def _entries(k: int) -> str:
    return f"{k} {'entry' if k == 1 else 'entries'}"


# --------------------------------------------------------------------------------------------
# masks: where the analytic gradient is zero and the numerical one is not, or vice versa


def test_mask(ctx: _Ctx) -> Diagnosis | None:
    """Errors only where exactly one of ``A`` and ``N`` is zero: a missing or wrong mask.

    ``N`` is zero (within the tolerance) where the forward pass blocks the gradient (a ReLU
    with ``x < 0``, the non-maximal entries of a pooling window, a dropped unit). When every
    error sits where ``N`` is zero and ``A`` is not, the mask is *missing*; when errors also
    sit where ``A`` is zero and ``N`` is not, while ``A = N`` wherever both are nonzero, the
    mask is *wrong* (taken from the wrong tensor, place or draw); with no entry nonzero on
    both sides it is *inverted*. Every error must stand :data:`_GAP_MIN` error bars above
    zero (a "zero" is an exact zero, not a small entry next to a large error bar).
    Evidence: each error contributes half of ``-log10`` of the ratio of its small side to its
    large side (an exact zero on one side is what noise does not produce; at most 3 per
    entry, 12 in all), and each entry where both agree 0.5 (at most :data:`_CLEAN_CAP`).
    """
    tol = ctx.tol
    zero_n = np.abs(ctx.n) <= tol
    zero_a = np.abs(ctx.a) <= tol
    bad = ctx.bad
    a_only = bad & zero_n & ~zero_a       # gradient where the forward passes none
    n_only = bad & zero_a & ~zero_n       # no gradient where the forward passes some
    if not a_only.any() or np.any(bad & ~(a_only | n_only)):
        return None
    if np.any(np.abs(ctx.d[bad]) < _GAP_MIN * ctx.tol_abs[bad]):
        return None                       # errors must stand far above the error bar
    both = ~zero_n & ~zero_a
    if np.any(both & (np.abs(ctx.d) > tol)):     # where both are nonzero they must agree
        return None
    inverted = (not np.any(both) and n_only.any()
                and bool(np.all(bad | (zero_a & zero_n))))
    if not np.any(both) and not inverted:
        return None                       # nothing agrees and no mask shows
    small = np.minimum(np.abs(ctx.a), np.abs(ctx.n))
    large = np.maximum(np.abs(ctx.a), np.abs(ctx.n))
    ratio = np.maximum(small[bad] / large[bad], 1e-6)
    evidence = min(0.5 * float(np.sum(-np.log10(ratio))), 3.0 * int(bad.sum()), _LOG_CAP)
    evidence += min(0.5 * int(both.sum()), _CLEAN_CAP)
    k1, k2 = int(a_only.sum()), int(n_only.sum())
    name = ctx.name
    if k2 == 0:
        sentence = (f"The gradient of {name} is nonzero at {_entries(k1)} where the numerical "
                    f"gradient is zero, and right everywhere else: a mask is missing, so the "
                    f"gradient flows where the forward pass blocks it (e.g. a ReLU's x > 0, a "
                    f"max-pool's argmax, a dropout mask); apply the forward pass's mask to the "
                    f"gradient of {name}.")
    else:
        what = ("inverted, exactly the complement of the right one (e.g. x < 0 instead of "
                "x > 0)" if inverted else "taken from the wrong tensor or place (e.g. a ReLU "
                "mask from the wrong array, a dropout mask drawn again, max-pool routing to "
                "the wrong element of the window)")
        sentence = (f"The gradient of {name} is zero at {_entries(k2)} where the numerical "
                    f"gradient is not and nonzero at {k1} where it is zero"
                    f"{'' if inverted else ', and agrees wherever both are nonzero'}: the "
                    f"mask applied to the gradient is {what}.")
    return Diagnosis(name, "mask", sentence, _confidence(evidence, cap=0.9))


# --------------------------------------------------------------------------------------------
# a discrepancy in whole multiples of 1/batch: a one-hot (target) term


def test_one_hot(ctx: _Ctx) -> Diagnosis | None:
    """``A - N`` is a whole multiple of ``q = 1/batch_size`` at every error, zero elsewhere.

    The gradient of a softmax cross-entropy (or hinge) loss averaged over ``B`` examples is
    ``(p - Y) / B`` with ``Y`` one-hot: forgetting, doubling or miscounting the one-hot term
    changes entries by ``k / B`` for whole ``k`` (the counts of each target class, for a bias
    summed over examples and steps). Evidence: an entry lands within its tolerance ``t`` of a
    nonzero multiple of ``q`` by chance with probability about ``2t / q``, worth
    ``-log10(2t/q)`` (at most 3 per entry, 12 in all); needs at least two errors, and
    ``A ≈ c·N`` (a quantised ``N`` scaled) is left to the constant test.
    """
    b = ctx.batch_size
    if b is None or b < 2 or ctx.proportional():
        return None
    q = 1.0 / b
    bad = ctx.bad
    e = int(bad.sum())
    if e < 2:
        return None
    kr = np.round(ctx.d / q)
    near = np.abs(ctx.d - kr * q) <= ctx.tol
    if not np.all(near[bad]) or np.any(kr[bad] == 0) or np.any((kr != 0) & ~bad):
        return None
    per = -np.log10(np.maximum(2.0 * ctx.tol[bad] / q, 1e-300))
    evidence = min(float(np.sum(np.clip(per, 0.0, _QUANTUM_CAP))), _LOG_CAP)
    name = ctx.name
    ks = kr[bad].astype(int)
    sign = "too large" if np.all(ks > 0) else "too small" if np.all(ks < 0) else "off"
    rows = None
    if ctx.a.ndim == 2 and ctx.layout and int(bad.sum(axis=1).max()) == 1:
        rows = int(bad.any(axis=1).sum())
    if rows is not None and len(set(ks.tolist())) == 1:
        k = int(ks[0])
        amount = (f"{_fmt(abs(k) * q)} (1/batch size {b})" if abs(k) == 1 else
                  f"{_fmt(abs(k) * q)} ({abs(k)}/{b}, batch size {b})")
        sentence = (f"The gradient of {name} is {sign} by exactly {amount} at one entry in "
                    f"each of {rows} rows and right elsewhere: a one-hot term (e.g. the "
                    f"target's -1 in softmax minus one-hot, or the correct class's count in a "
                    f"hinge loss) is missing, doubled or miscounted in the gradient of {name}.")
    else:
        mult = sorted(set(np.abs(ks).tolist()))
        shown = ", ".join(f"{m}/{b}" for m in mult[:4]) + (", ..." if len(mult) > 4 else "")
        sentence = (f"The gradient of {name} is {sign} by whole multiples of 1/{b} (1/batch "
                    f"size: {shown}) at {e} entries, like counts of target classes divided by "
                    f"the batch size: the one-hot target term (softmax minus one-hot) is "
                    f"probably missing or wrong in the loss gradient that reaches {name}.")
    return Diagnosis(name, "one_hot", sentence, _confidence(evidence, cap=0.9))


# --------------------------------------------------------------------------------------------
# flipped or shifted along axes


def _axis_sets(ndim: int) -> list[tuple[int, ...]]:
    sets = [(ax,) for ax in range(ndim)]
    if ndim >= 2:
        sets.append((ndim - 2, ndim - 1))
    return sets


def test_flipped(ctx: _Ctx) -> Diagnosis | None:
    """``A ≈ N`` reversed along one axis or the last two (a flipped kernel or window).

    Scored like the transpose: ``E = m·(-log10 r)`` for the misfit ``r`` of the prediction,
    less ``log10`` of the number of axis sets tried.
    """
    if not ctx.layout:
        return None
    best = None
    sets = [s for s in _axis_sets(ctx.a.ndim) if all(ctx.a.shape[ax] >= 2 for ax in s)]
    for axes in sets:
        r = ctx.fit_r(np.flip(ctx.n, axis=axes))
        if r >= 0.5:
            continue
        evidence = _pr(ctx.d * ctx.d) * _neglog(r) - math.log10(len(sets))
        if best is None or evidence > best[0]:
            best = (evidence, axes)
    if best is None:
        return None
    evidence, axes = best
    sentence = (f"The gradient of {ctx.name} is the numerical gradient reversed along "
                f"{_axes_text(axes)}: a kernel or window is flipped, check the index order "
                f"(i versus size-1-i, correlation versus convolution) in the backward pass for "
                f"{ctx.name}.")
    return Diagnosis(ctx.name, "flipped", sentence, _confidence(evidence))


def _shift(x: np.ndarray, axes: tuple[int, ...], s: int) -> tuple[np.ndarray, np.ndarray]:
    """``x`` moved by ``s`` along ``axes`` (``out[i] = x[i - s]``) and where that is defined."""
    out = np.zeros_like(x)
    valid = np.zeros(x.shape, dtype=bool)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    for ax in axes:
        if s > 0:
            src[ax], dst[ax] = slice(0, -s), slice(s, None)
        else:
            src[ax], dst[ax] = slice(-s, None), slice(0, s)
    out[tuple(dst)] = x[tuple(src)]
    valid[tuple(dst)] = True
    return out, valid


def test_shifted(ctx: _Ctx) -> Diagnosis | None:
    """``A[i] ≈ N[i - s]`` (``s = ±1``) along one axis or the last two, where defined.

    An index or crop off by one moves the whole gradient by one position; the entries moved
    in from outside (a padding border) are not predicted and are left out of the fit, which
    is scored like the transpose on the rest (less ``log10`` of the shifts tried).
    """
    if not ctx.layout:
        return None
    best = None
    sets = [s for s in _axis_sets(ctx.a.ndim) if all(ctx.a.shape[ax] >= 3 for ax in s)]
    tried = math.log10(max(2 * len(sets), 1))
    for axes in sets:
        for s in (1, -1):
            pred, valid = _shift(ctx.n, axes, s)
            if valid.sum() < 0.5 * valid.size:
                continue
            a, d = ctx.a[valid], ctx.d[valid]
            res, dn, an = _norm(a - pred[valid]), _norm(d), _norm(a)
            if dn == 0 or an == 0:
                continue
            r = max(res / dn, res / an)
            if r >= 0.5:
                continue
            evidence = _pr(d * d) * _neglog(r) - tried
            if best is None or evidence > best[0]:
                best = (evidence, axes, s)
    if best is None:
        return None
    evidence, axes, s = best
    idx = "i - 1" if s > 0 else "i + 1"
    sentence = (f"The gradient of {ctx.name} is the numerical gradient shifted by one position "
                f"along {_axes_text(axes)} (entry i holds the gradient of entry {idx}): an "
                f"index or crop off by one, e.g. the padding cut off dx one position too early "
                f"or a loop starting at 1 instead of 0.")
    return Diagnosis(ctx.name, "shifted", sentence, _confidence(evidence, cap=0.9))


# --------------------------------------------------------------------------------------------
# low rank: one time step's outer products; one wrong factor of X^T·delta


def _rank(s: np.ndarray, floor: float) -> int:
    return int(np.sum(s > floor))


def _noise_floor(ctx: _Ctx) -> float | None:
    """Singular values below this are noise (10 times the norm of the tolerances); None when
    the tensor is not a matrix the rank tests apply to (or too large for an SVD to be cheap
    next to the check)."""
    if (ctx.a.ndim != 2 or min(ctx.a.shape) < 3 or not ctx.layout
            or ctx.a.size > _SVD_MAX_SIZE):
        return None
    return 10.0 * float(np.sqrt(np.sum(ctx.tol_abs ** 2)))


def test_one_step(ctx: _Ctx) -> Diagnosis | None:
    """The error of a weight matrix has rank ``r <= batch_size``, below the gradient's rank.

    Through time a weight's gradient is ``Σ_t δ_tᵀ x_t``, a sum of ``T·B`` outer products
    (full rank); a mistake in one time step's term changes it by ``B`` outer products only, so
    the error has rank at most ``B``, spread over more than ``B`` rows and columns (errors
    confined to a few rows are a region's or a zero's pattern). Needs ``seq_len`` (a sequence
    model) and ``batch_size``.
    Evidence: the ``(m - r)(n - r)`` directions left over sit below the noise floor, worth
    ``(m - r)(n - r)·min(-log10(σ_{r+1}/σ_1), 1)``.
    """
    b, t = ctx.batch_size, ctx.seq_len
    floor = _noise_floor(ctx)
    if floor is None or b is None or t is None or t < 2:
        return None
    sd = np.linalg.svd(ctx.d, compute_uv=False)
    sn = np.linalg.svd(ctx.n, compute_uv=False)
    r = _rank(sd, floor)
    m1, m2 = ctx.d.shape
    if r == 0 or r > b or r >= _rank(sn, floor) or r > min(m1, m2) // 2:
        return None
    if min(int(ctx.bad.any(axis=1).sum()), int(ctx.bad.any(axis=0).sum())) <= r:
        return None                 # errors in a few rows or columns: a region, not a step
    gap = sd[r] / sd[0] if r < len(sd) else 0.0
    evidence = (m1 - r) * (m2 - r) * min(_neglog(gap), 1.0)
    sentence = (f"The error in the gradient of {ctx.name} has rank {r} (the batch size is {b}) "
                f"while the gradient has full rank: it is one step's outer products, so a "
                f"single time step's term is wrong; check the first and the last step of the "
                f"backward loop (e.g. h[t-1] at t = 0 must be the initial state h0, not h[-1], "
                f"the last one).")
    return Diagnosis(ctx.name, "one_step", sentence, _confidence(evidence, cap=0.9))


def test_factor(ctx: _Ctx) -> Diagnosis | None:
    """The error of ``G = Xᵀ·δ`` lies in the row (or column) space of the true gradient.

    When the true gradient of a matrix has rank below both its dimensions (a product of
    thin factors, ``Xᵀ·δ`` over a small batch), an error confined to its row space keeps the
    right ``δ`` and has the wrong ``X``, and one confined to its column space keeps ``X`` and
    has the wrong ``δ``. ``A ≈ c·N`` lies in both and is left to the constant test. Evidence:
    with ``ρ`` the fraction of the error outside the space, ``(k - rank)·m·min(-log10 ρ, 1)``
    over the ``(k - rank)·m`` directions outside.
    """
    floor = _noise_floor(ctx)
    if floor is None:
        return None
    u, sn, vt = np.linalg.svd(ctx.n)
    rank = _rank(sn, floor)
    m1, m2 = ctx.n.shape
    if rank == 0 or rank >= min(m1, m2):
        return None
    if ctx.proportional():
        return None
    dn = _norm(ctx.d)
    row, col = vt[:rank], u[:, :rank]
    out_row = _norm(ctx.d - ctx.d @ row.T @ row) / dn
    out_col = _norm(ctx.d - col @ (col.T @ ctx.d)) / dn
    if min(out_row, out_col) > 1e-3:
        return None
    e_row = (m2 - rank) * m1 * min(_neglog(out_row), 1.0)
    e_col = (m1 - rank) * m2 * min(_neglog(out_col), 1.0)
    name = ctx.name
    if e_row >= e_col:
        sentence = (f"The error in the gradient of {name} lies in the row space of the true "
                    f"gradient X^T·delta: the upstream gradient delta is right and the left "
                    f"factor X is wrong, it is multiplied with the wrong activations (e.g. the "
                    f"new hidden state instead of the previous one, or the output instead of "
                    f"the input).")
    else:
        sentence = (f"The error in the gradient of {name} lies in the column space of the true "
                    f"gradient X^T·delta: the activations X are right and the upstream "
                    f"gradient delta is wrong, so look at what reaches this product (e.g. an "
                    f"activation's derivative or a missing incoming gradient), not at the "
                    f"product itself.")
    return Diagnosis(name, "factor", sentence, _confidence(max(e_row, e_col), cap=0.85))
