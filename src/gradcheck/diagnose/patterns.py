"""Say in one plain sentence what the likely bug is, from the analytic gradient ``A`` and the
numerical gradient ``N`` of a tensor that failed a gradient check.

Method
------
Every known bug pattern is a *hypothesis* that predicts ``A`` from ``N`` (and context):

* a fitted constant, ``A ≈ c·N`` (least squares ``c = <A, N> / <N, N>``), which is a sign flip
  (``c = -1``), a factor 2 or ½, the batch size or sequence length (or their inverses), another
  constant, or, when ``c`` is within 2 % of 1, a small term missing (``small_term``);
* ``A ≈ Nᵀ`` (transpose), ``A ≈ N`` of another tensor of the same shape (swapped), ``A ≈ 0``
  (never computed), ``A - N ≈ κ·W`` when the tensor's value ``W`` is given (regularisation);
* errors confined to a region: the first or last step along the time axis, the first and/or
  last index along an axis (edges, padding), rows that are hit more than once (assignment
  instead of accumulation), or entries where ``A`` is zero (not accumulated);
* the shape of the error (:mod:`gradcheck.diagnose.layouts`): only where one of ``A`` and ``N``
  is zero (a missing, wrong or inverted mask), in whole multiples of ``1/batch_size`` (a
  one-hot target term), ``N`` reversed or shifted by one along axes (a flipped kernel, a crop
  off by one), of rank ``<= batch_size`` (one time step's term), in one factor's space of
  ``Xᵀ·δ`` (the wrong activations or the wrong upstream gradient);
* context beyond ``A`` and ``N`` (:mod:`gradcheck.diagnose.values`): with the tensor's value
  ``x``, an activation's derivative slipped (at the input instead of the output, a factor
  missing), slopes of a piecewise-linear activation wrong on one side, a normalisation's
  mean and variance terms missing (error ``α + β·x`` along an axis); with the terms of the
  sum the gradient needs, ``A`` equal to one of them.

Which tensors of a group sharing an upstream gradient fail, and what to say when nothing
fits, are decided per check (:mod:`gradcheck.diagnose.groups`, :mod:`gradcheck.diagnose.attach`).

A hypothesis is scored by an *evidence* ``E``, roughly ``-log10`` of the chance that random
disagreement (``A = N + noise``, or an unrelated ``A``) fits it as well as the data does:

* for a prediction ``P`` of ``A``, the misfit is ``r = ||A - P|| / min(||D||, ||A||)`` with
  ``D = A - N`` (``P`` must explain both the discrepancy and ``A`` itself); random noise with
  ``m`` effective degrees of freedom lands within ``r`` with probability about ``r**m``, so
  ``E = m·(-log10 r)`` (``m - 1`` when a constant is fitted). ``m`` is a participation ratio,
  ``(Σw)² / Σw²``, so that a few dominant entries do not count as many independent ones. A
  fitted ``c`` that hits a special value (``-1``, 2, the batch size, ...) to relative
  precision ``δ`` adds ``-log10 δ``, provided the fit leaves less than 10 % of the
  discrepancy (``r < 0.1``);
* for a region of ``k`` of the ``n`` entries, the errors inside must stand at least 20 times
  above every discrepancy outside (the *gap*), both in units of the error bar and relative to
  the entries' size; each of the ``n_out`` entries outside is a chance for noise to break the
  pattern, worth ``0.75·n_out·log10(gap)`` (``0.75`` allows for heavy-tailed noise; capped at
  6 since error bars may be off), and ``e`` errors all falling in the region by chance has
  probability ``(k/n)**e``, worth ``e·log10(n/k)``; ``E`` is the sum, less ``log10`` of the
  number of regions tried;
* for ``A = 0`` everywhere, ``E = m·(-log10 r - 2)`` with ``r = ||A|| / ||D||``; for zeros in
  places, each entry where ``|A|`` is ``t`` times ``|N|`` (or the typical ``|A|`` elsewhere,
  whichever is larger) adds ``-log10 t``.

The numerical error bar (``noise``) sets the per-entry tolerance (4 error bars, plus 1e-5 of
the entry and 1e-6 of the tensor's RMS gradient, which alone are the default): a discrepancy
within it is not diagnosed at all, only entries beyond it count as errors inside a region, and
region gaps are measured in units of it. The
evidence maps to a confidence ``0.5 + 0.05·(E - 2)``, clipped to ``[0, cap]``, so that
``E = 6`` (a one-in-a-million coincidence) gives 0.7. Hypotheses are tried from the most
specific to the least; the first with confidence >= 0.7 wins, otherwise the most confident one
above 0.5 is returned, otherwise ``None``.
"""


from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradcheck.diagnose import layouts, values
from gradcheck.diagnose.evidence import (
    _CLEAN_CAP,
    _DEFAULT_ATOL,
    _DEFAULT_RTOL,
    _GAP_LOG_CAP,
    _GAP_MIN,
    _HEAVY_TAIL,
    _LOG_CAP,
    _REGION_MAX,
    _SMALL_TERM,
    _SPECIAL_RTOL,
    _ZERO_RATIO,
    CONFIDENT,
    KINDS,
    WEAK,
    Diagnosis,
    _broadcast_noise,
    _confidence,
    _Ctx,
    _fmt,
    _index_list,
    _join,
    _neglog,
    _norm,
    _pr,
    _slab,
    _slice_word,
)
from gradcheck.diagnose.groups import describe_error

__all__ = ["CONFIDENT", "KINDS", "Diagnosis", "diagnose", "diagnose_tensor"]

_SPECIAL_FIT = 0.1      # a special c needs the fit to leave under 10 % of the discrepancy

# --------------------------------------------------------------------------------------------
# the tests, each returning a Diagnosis (any confidence) or None


def _special_factors(ctx: _Ctx) -> list[tuple[float, str]]:
    """Special values of ``c`` with their meaning (a key used to pick the sentence)."""
    out: list[tuple[float, str]] = []
    for size, key in ((ctx.batch_size, "batch"), (ctx.seq_len, "seq")):
        if size is not None and size > 1:        # context first: it wins ties (size 2)
            out.append((float(size), key))
            out.append((1.0 / size, key + "_inv"))
    out += [(2.0, "two"), (0.5, "half")]
    b = ctx.batch_size
    if b is not None and b > 2:                  # biased vs unbiased variance: N vs N - 1
        for v in (math.sqrt((b - 1) / b), (b - 1) / b):
            out += [(v, "bessel_inv"), (1.0 / v, "bessel")]
    signed = [(-v, k) for v, k in out]
    return [(-1.0, "sign")] + out + signed


def _scale_sentence(name: str, c: float, key: str | None, ctx: _Ctx,
                    exact: bool = False) -> tuple[str, str]:
    """Kind and sentence for ``A ≈ c·N`` (``key`` names the special value, if any)."""
    how = "exactly" if exact else "about"
    if key == "sign":
        return "sign", (f"The gradient of {name} is {how} -1 times the numerical gradient: "
                        f"a sign flip, check the sign of the update in the backward pass for "
                        f"{name}.")
    head = f"The gradient of {name} is {how} {_fmt(c)} times the numerical gradient"
    base = key.removesuffix("_inv") if key else None
    big = abs(c) > 1
    if base in ("two", "half"):
        what = "an extra factor of 2" if big else "a missing factor of 2"
        hint = "e.g. the derivative of x**2 is 2*x, a 0.5 in the loss, or a term added twice"
    elif base == "batch":
        b = ctx.batch_size
        if big:
            what = f"a missing division by the batch size ({b})"
            hint = f"the loss averages over the batch, so the gradient of {name} must too"
        else:
            what = f"an extra division by the batch size ({b})"
            hint = "divide once, where the loss takes its mean over the batch"
    elif base == "seq":
        t = ctx.seq_len
        if big:
            what = f"a missing division by the sequence length ({t})"
            hint = f"the loss averages over time steps, so the gradient of {name} must too"
        else:
            what = f"an extra division by the sequence length ({t})"
            hint = "divide once, where the loss takes its mean over time steps"
    elif base == "bessel":
        b = ctx.batch_size
        what = f"the variance divided by {b} - 1 in one pass and by {b} in the other"
        hint = ("use the same (biased, 1/N) variance in the forward and the backward pass, "
                "or a factor sqrt(N / (N - 1)) or N / (N - 1) slipped in")
    else:
        what = "a wrong constant factor"
        hint = ("look for a missing or extra scale such as a mean, a temperature or a "
                "normalisation constant")
    if c < 0:
        return "sign", (f"{head}: a sign flip plus {what}, check the sign and the constant "
                        f"factors in the backward pass for {name}.")
    return "scale", f"{head}: {what}, {hint}."


def _test_constant(ctx: _Ctx) -> tuple[Diagnosis | None, Diagnosis | None]:
    """Fit ``A ≈ c·N``; return (special-valued diagnosis, generic / small-term diagnosis)."""
    nn = float(np.sum(ctx.n * ctx.n))
    if nn == 0.0:
        return None, None
    c = float(np.sum(ctx.a * ctx.n)) / nn
    r = ctx.fit_r(c * ctx.n)
    if r >= 0.5:
        return None, None
    w = ctx.n * ctx.n
    dd = ctx.d * ctx.d
    den = float(np.sum(w * dd))
    m = nn * float(np.sum(dd)) / den if den > 0 else 1.0
    fit_evidence = max(m - 1.0, 0.0) * _neglog(r)

    best: tuple[float, float, str] | None = None      # (rel. distance, value, key)
    # a special value counts only when the fit explains most of the discrepancy: a poor fit
    # can land on 1.25 or 2 by coincidence (its bonus would then swamp the misfit)
    for value, key in _special_factors(ctx) if r < _SPECIAL_FIT else ():
        rel = abs(c - value) / abs(value)
        if rel <= _SPECIAL_RTOL and (best is None or rel < best[0]):
            best = (rel, value, key)
    special = None
    if best is not None:
        rel, value, key = best
        evidence = fit_evidence + _neglog(rel)
        exact = rel < 1e-3
        kind, sentence = _scale_sentence(ctx.name, value if exact else c, key, ctx, exact)
        special = Diagnosis(ctx.name, kind, sentence, _confidence(evidence), c)
        return special, None

    if abs(c - 1.0) < _SMALL_TERM:
        pct = abs(c - 1.0) * 100
        sentence = (f"The gradient of {ctx.name} is off from the numerical one by the same "
                    f"small relative amount everywhere (about {pct:.2g} %, "
                    f"{'too large' if c > 1 else 'too small'}): a small term is missing, "
                    f"e.g. the regularisation gradient (lambda * {ctx.name}) or a small extra "
                    f"loss term.")
        return None, Diagnosis(ctx.name, "small_term", sentence,
                               _confidence(fit_evidence, cap=0.9), c)
    kind, sentence = _scale_sentence(ctx.name, c, None, ctx)
    return None, Diagnosis(ctx.name, kind, sentence, _confidence(fit_evidence, cap=0.9), c)


def _test_transpose(ctx: _Ctx) -> Diagnosis | None:
    """``A ≈ Nᵀ`` (last two axes swapped) for square matrices."""
    if ctx.a.ndim < 2 or ctx.a.shape[-1] != ctx.a.shape[-2] or ctx.a.shape[-1] < 2:
        return None
    pred = np.swapaxes(ctx.n, -1, -2)
    r = ctx.fit_r(pred)
    if r >= 0.5:
        return None
    evidence = _pr(ctx.d * ctx.d) * _neglog(r)
    sentence = (f"The gradient of {ctx.name} looks like the transpose of the true one: "
                f"a missing or extra .T in the backward pass for {ctx.name} "
                f"(e.g. x.T @ dout versus dout.T @ x)?")
    return Diagnosis(ctx.name, "transpose", sentence, _confidence(evidence))


def _test_swapped(ctx: _Ctx) -> Diagnosis | None:
    """``A ≈ N`` of another same-shaped tensor (and, ideally, vice versa)."""
    best: tuple[float, str, bool] | None = None
    for other, pair in ctx.others.items():
        if other == ctx.name:
            continue
        oa = np.asarray(pair[0], dtype=np.float64)
        on = np.asarray(pair[1], dtype=np.float64)
        if on.shape != ctx.a.shape or not np.all(np.isfinite(on)):
            continue
        r = ctx.fit_r(on)
        if r >= 0.5:
            continue
        evidence = _pr(ctx.d * ctx.d) * _neglog(r)
        mutual = False
        if oa.shape == ctx.n.shape and np.all(np.isfinite(oa)):
            od = oa - on
            odn = _norm(od)
            if odn > 0:
                ro = _norm(oa - ctx.n) / odn
                if ro < 0.5:
                    evidence += _pr(od * od) * _neglog(ro)
                    mutual = True
        if best is None or evidence > best[0]:
            best = (evidence, other, mutual)
    if best is None:
        return None
    evidence, other, mutual = best
    both = " (and vice versa)" if mutual else ""
    sentence = (f"The gradient of {ctx.name} matches the numerical gradient of {other}"
                f"{both}: the gradients of {ctx.name} and {other} are probably swapped, check "
                f"which variable each result of the backward pass is assigned to.")
    return Diagnosis(ctx.name, "swapped", sentence, _confidence(evidence))


def _test_zero_whole(ctx: _Ctx) -> Diagnosis | None:
    """``A ≈ 0`` everywhere while ``N`` is not."""
    an = _norm(ctx.a)
    r = an / ctx.dnorm
    if r >= _ZERO_RATIO:
        return None
    nn = float(np.sum(ctx.n * ctx.n))
    if an > 0 and _norm(ctx.a - float(np.sum(ctx.a * ctx.n)) / nn * ctx.n) < 0.1 * an:
        return None             # A is small but proportional to N: a scale, not a zero
    # evidence counts how far below "1 % of the discrepancy" A is
    evidence = _pr(ctx.d * ctx.d) * (_neglog(r) + math.log10(_ZERO_RATIO))
    exact = not np.any(ctx.a)
    what = "exactly zero" if exact else "essentially zero"
    sentence = (f"The gradient of {ctx.name} is {what} while the numerical gradient is not: "
                f"it is never computed, never written back or overwritten with zeros, check "
                f"that the backward pass assigns (or accumulates into) the gradient of "
                f"{ctx.name}.")
    return Diagnosis(ctx.name, "zero", sentence, _confidence(evidence))


def _test_small_term_value(ctx: _Ctx) -> Diagnosis | None:
    """``A - N ≈ κ·W`` with ``W`` the tensor's value: a missing (or extra) ``λ·W`` term."""
    if ctx.value is None:
        return None
    w = np.asarray(ctx.value, dtype=np.float64)
    if w.shape != ctx.a.shape or not np.all(np.isfinite(w)):
        return None
    ww = float(np.sum(w * w))
    if ww == 0.0:
        return None
    kappa = float(np.sum(ctx.d * w)) / ww
    r = _norm(ctx.d - kappa * w) / ctx.dnorm
    if r >= 0.5:
        return None
    dd = ctx.d * ctx.d
    den = float(np.sum(w * w * dd))
    m = ww * float(np.sum(dd)) / den if den > 0 else 1.0
    evidence = max(m - 1.0, 0.0) * _neglog(r)
    lam = _fmt(abs(kappa))
    if kappa < 0:
        sentence = (f"The gradient of {ctx.name} is short by about {lam} * {ctx.name}: the "
                    f"regularisation term (lambda * {ctx.name}, lambda ~ {lam}) is missing from "
                    f"the gradient of {ctx.name}.")
    else:
        sentence = (f"The gradient of {ctx.name} has about {lam} * {ctx.name} too much: the "
                    f"regularisation term (lambda * {ctx.name}, lambda ~ {lam}) is added twice, "
                    f"with the wrong sign or is not in the loss.")
    return Diagnosis(ctx.name, "small_term", sentence, _confidence(evidence, cap=0.9))


def _region_evidence(ctx: _Ctx, region: np.ndarray) -> tuple[float, np.ndarray] | None:
    """Evidence that the errors are confined to ``region``; also the error entries in it.

    Three conditions, so that neither absolute noise on a tensor with a few tiny entries nor
    relative noise on a tensor with a few huge entries passes for a localised bug:

    * absolute gap: the errors inside, in units of the error bar ``z = |D| / tol_abs``, stand
      ``_GAP_MIN`` times above every ``z`` outside;
    * relative gap: their relative error is 5 times the 90th percentile of the relative
      errors of the significant entries (``|A|, |N| >> tol_abs``) outside;
    * at least 90 % of the entries outside match, within tolerance or relatively.
    """
    size = region.size
    k = int(region.sum())
    if k == 0 or k == size:
        return None
    if ctx.failed is not None and np.any(ctx.bad & ~region):
        return None             # the checker failed entries outside, beyond the noise
    out = ~region
    absd = np.abs(ctx.d)
    z = absd / ctx.tol_abs
    out_max = float(z[out].max())
    errors = region & ctx.bad & (z > 3.0 * out_max)
    if not errors.any():
        return None
    gap = float(np.median(z[errors])) / out_max if out_max > 0 else math.inf
    if gap < _GAP_MIN:
        return None
    mag = np.maximum(np.abs(ctx.a), np.abs(ctx.n))
    rel = np.divide(absd, mag, out=np.zeros_like(absd), where=mag > 0)
    rel_in = float(np.median(rel[errors]))
    significant = out & (mag > 10.0 * ctx.tol_abs)
    if significant.any() and rel_in < 5.0 * float(np.quantile(rel[significant], 0.9)):
        return None
    matched = (absd[out] <= 3.0 * ctx.tol[out]) | (rel[out] <= 0.05 * rel_in)
    if matched.mean() < 0.9:
        return None
    log_gap = min(math.log10(gap), _GAP_LOG_CAP) if np.isfinite(gap) else _GAP_LOG_CAP
    clean = min(_HEAVY_TAIL * (size - k) * log_gap, _CLEAN_CAP)
    placed = min(int(errors.sum()) * math.log10(size / k), _LOG_CAP / 2)
    return clean + placed, errors


def _zero_note(ctx: _Ctx, errors: np.ndarray) -> str:
    return ", where it is zero" if ctx.zero_like(errors) else ""


def _test_repeated_rows(ctx: _Ctx) -> Diagnosis | None:
    """Errors only on rows hit more than once: assignment instead of accumulation."""
    if ctx.repeated_rows is None or ctx.a.ndim < 1:
        return None
    rows = np.asarray(ctx.repeated_rows).ravel()
    if rows.dtype != bool and np.issubdtype(rows.dtype, np.integer):   # row indices
        mask = np.zeros(ctx.a.shape[0], dtype=bool)
        mask[rows] = True
        rows = mask
    rows = rows.astype(bool)
    if rows.shape[0] != ctx.a.shape[0]:
        raise ValueError(f"repeated_rows has {rows.shape[0]} entries but {ctx.name} has "
                         f"{ctx.a.shape[0]} rows")
    region = np.zeros(ctx.a.shape, dtype=bool)
    region[rows] = True
    found = _region_evidence(ctx, region)
    if found is None:
        return None
    evidence, errors = found
    wrong_rows = np.flatnonzero(errors.reshape(errors.shape[0], -1).any(axis=1))
    # assigning instead of accumulating spoils every repeated row (with a nonzero gradient)
    live = rows & np.any((np.abs(ctx.n) > ctx.tol).reshape(rows.shape[0], -1), axis=1)
    cover = len(wrong_rows) / max(int(live.sum()), 1)
    cap = 0.95 if cover >= 0.5 else 0.6
    word = "row" if len(wrong_rows) == 1 else "rows"
    sentence = (f"The gradient of {ctx.name} is wrong only on rows whose index occurs more than "
                f"once ({word} {_index_list(wrong_rows)}): the backward pass assigns instead of "
                f"accumulating, use np.add.at(d{ctx.name.split('.')[-1]}, idx, dout) instead of "
                f"d{ctx.name.split('.')[-1]}[idx] = dout.")
    return Diagnosis(ctx.name, "repeated_rows", sentence, _confidence(evidence, cap=cap))


def _test_regions(ctx: _Ctx) -> Diagnosis | None:
    """Errors only at the first/last step of the time axis, or on the edges of an axis."""
    shape = ctx.a.shape
    ndim = ctx.a.ndim
    if ndim == 0:
        return None
    size = ctx.a.size
    t = ctx.time_axis
    cands: list[tuple[str, Any, str, np.ndarray]] = []
    if shape[t] >= 2:
        cands.append(("first_step", t, "first", _slab(shape, t, 0)))
        cands.append(("last_step", t, "last", _slab(shape, t, -1)))
    for ax in range(ndim):
        if ax != t and shape[ax] >= 2:
            cands.append(("edges", ax, "first", _slab(shape, ax, 0)))
            cands.append(("edges", ax, "last", _slab(shape, ax, -1)))
        if shape[ax] >= 3:
            cands.append(("edges", ax, "both", _slab(shape, ax, 0) | _slab(shape, ax, -1)))
    big = [ax for ax in range(ndim) if shape[ax] >= 3]
    groups = [tuple(big)] if len(big) >= 2 else []
    if len(big) >= 3:           # e.g. the spatial border of (batch, channel, H, W)
        groups += [(i, j) for i in big for j in big if i < j]
    n_slabs = len(cands)
    for group in groups:
        border = np.zeros(shape, dtype=bool)
        for ax in group:
            border |= _slab(shape, ax, 0) | _slab(shape, ax, -1)
        cands.append(("edges", group, "border", border))

    best = None
    tried = math.log10(max(len(cands), 1))
    for order, (kind, ax, which, region) in enumerate(cands):
        if region.sum() > _REGION_MAX * size:
            continue
        found = _region_evidence(ctx, region)
        if found is None:
            continue
        errors = found[1]
        if which == "both" and not (np.any(errors & _slab(shape, ax, 0))
                                    and np.any(errors & _slab(shape, ax, -1))):
            continue            # only one end is wrong: that end's own region says so
        if which == "border" and any(np.all(errors <= c[3]) for c in cands[:n_slabs]):
            continue            # all errors in one slab: that slab's region says so
        key = (found[0], -int(region.sum()), -order)
        if best is None or key > best[0]:
            best = (key, kind, ax, which, found[1])
    if best is None:
        return None
    (evidence, _, _), kind, ax, which, errors = best
    evidence -= tried
    name = ctx.name
    zero = _zero_note(ctx, errors)
    if kind in ("first_step", "last_step") and not (ctx.time_given or ctx.seq_len):
        # no sign of a sequence: the first or last slice along axis 0, said as such
        idx = "index 0" if which == "first" else f"index {shape[t] - 1}"
        sentence = (f"The gradient of {name} is wrong only in the {which} "
                    f"{_slice_word(t, ndim)} ({idx} along axis {t}){zero}: an off-by-one at "
                    f"the boundary (a loop range, slice or padding), or, if axis {t} is time, "
                    f"the {which} step of the backward loop.")
    elif kind in ("first_step", "last_step"):
        step = "time step" if ctx.time_given else "step"
        idx = "index 0" if which == "first" else f"index {shape[t] - 1}"
        if kind == "first_step":
            hint = ("check the end of the backward loop, e.g. the gradient into the initial "
                    "hidden state or a range that stops before step 0")
        else:
            hint = ("check where the backward loop starts, e.g. the gradient from the loss at "
                    "the final step or the initial value of the carried gradient (dh_next)")
        sentence = (f"The gradient of {name} is wrong only at the {which} {step} ({idx} along "
                    f"axis {t}){zero}: {hint}.")
    else:
        if which == "border" and len(ax) == ndim:
            where = "on the border (the first and last index along each axis)"
        elif which == "border":
            axes = _join([str(i) for i in ax])
            where = f"on the border along axes {axes} (their first and last index)"
        elif which == "both":
            where = f"in the first and last {_slice_word(ax, ndim)}"
            if ndim > 2:
                where = f"at the first and last index along axis {ax}"
        else:
            where = f"in the {which} {_slice_word(ax, ndim)}"
            if ndim > 2:
                where = f"at the {which} index along axis {ax}"
        sentence = (f"The gradient of {name} is wrong only {where}{zero}: an off-by-one at the "
                    f"boundary, check the loop ranges, slicing and padding in the backward pass "
                    f"for {name}.")
    return Diagnosis(name, kind, sentence, _confidence(evidence, cap=0.9))


def _zero_where(ctx: _Ctx, zero: np.ndarray) -> str:
    """Describe the zero entries: whole rows/columns/slices if they are, else a count."""
    k = int(zero.sum())
    if not ctx.layout:
        return f"{k} {'entry' if k == 1 else 'entries'}"
    if ctx.a.ndim == 1:
        return f"{'entry' if k == 1 else 'entries'} {_index_list(np.flatnonzero(zero))}"
    best: tuple[int, str] | None = None
    a_zero = np.abs(ctx.a) <= _ZERO_RATIO * np.abs(ctx.n)
    for ax in range(ctx.a.ndim):
        length = zero.shape[ax]
        hit = np.moveaxis(zero, ax, 0).reshape(length, -1).any(axis=1)
        whole = np.moveaxis(a_zero, ax, 0).reshape(length, -1)[hit].all()
        if hit.sum() < length and whole and (best is None or hit.sum() < best[0]):
            idx = np.flatnonzero(hit)
            plural = len(idx) > 1
            if ctx.a.ndim == 2:
                text = f"{_slice_word(ax, 2, plural=plural)} {_index_list(idx)}"
            else:
                text = f"{'indices' if plural else 'index'} {_index_list(idx)} along axis {ax}"
            best = (len(idx), text)
    return best[1] if best else f"{k} {'entry' if k == 1 else 'entries'}"


def _test_zero_partial(ctx: _Ctx) -> Diagnosis | None:
    """``A`` is zero exactly where it is wrong (and ``N`` is not)."""
    bad = ctx.bad
    if not bad.any() or bad.all():
        return None
    absd = np.abs(ctx.d)
    absn = np.abs(ctx.n)
    zero = bad & (np.abs(ctx.a) <= _ZERO_RATIO * absn) & (absn > ctx.tol)
    if not np.array_equal(zero, bad):
        return None
    out = ~zero
    out_max = float(absd[out].max())
    if out_max > 0 and float(np.median(absd[zero])) < _GAP_MIN * out_max:
        return None
    # |A| must be small next to |N| there and next to the typical |A| elsewhere
    ratio = np.abs(ctx.a[zero]) / absn[zero]
    typical = float(np.sqrt(np.mean(ctx.a[out] ** 2)))
    if typical > 0:
        ratio = np.maximum(ratio, np.abs(ctx.a[zero]) / typical)
    ratio = np.maximum(ratio, 1e-6)
    evidence = min(float(np.sum(-np.log10(ratio))), _LOG_CAP)

    where = _zero_where(ctx, zero)
    sentence = (f"The gradient of {ctx.name} is zero at {where} where the numerical gradient is "
                f"not: those entries are never computed or not accumulated, check the loop, "
                f"mask or index that fills the gradient of {ctx.name}.")
    return Diagnosis(ctx.name, "zero", sentence, _confidence(evidence, cap=0.9))


# --------------------------------------------------------------------------------------------
# public API


def _nan_diagnosis(name: str, a: np.ndarray, n: np.ndarray) -> Diagnosis | None:
    bad_a = ~np.isfinite(a)
    bad_n = ~np.isfinite(n)
    if bad_a.any():
        k = int(bad_a.sum())
        what = "NaN" if np.isnan(a).any() else "Inf"
        if np.isnan(a).any() and np.isinf(a).any():
            what = "NaN and Inf"
        count = "every entry" if k == a.size else f"{k} {'entry' if k == 1 else 'entries'}"
        also = (", and so does the numerical one, so the loss itself is not finite there"
                if np.any(bad_a & bad_n) else "")
        sentence = (f"The gradient of {name} contains {what} at {count}{also}: check for log(0), "
                    f"division by zero, sqrt of a negative or overflow (e.g. exp of large values) "
                    f"in the backward pass for {name}.")
        return Diagnosis(name, "nan", sentence, 0.99)
    if bad_n.any():
        sentence = (f"The numerical gradient of {name} is not finite while the analytic one is: "
                    f"the loss is not finite near the checked point (e.g. log(0) or overflow), "
                    f"so check the forward pass and the step size rather than the backward "
                    f"pass.")
        return Diagnosis(name, "nan", sentence, 0.9)
    return None


#: Exact predictions from extra context (the terms of the sum, the tensor's value, whole
#: multiples of 1/batch), tried before the constant fit and the regions: a slip of an
#: activation or of one slope can look like a constant on most entries, and one-hot targets
#: that happen to sit in the first and last column like edges, but only the exact
#: prediction fits them all.
EXACT_TESTS: tuple[Callable[[_Ctx], Diagnosis | None], ...] = (
    values.test_one_term, values.test_activation, values.test_slopes, layouts.test_one_hot,
)
#: Patterns beyond a constant, a transpose and regions, tried after them: masks, one-hot
#: terms, batch-statistics terms, then positions and ranks.
SHAPE_TESTS: tuple[Callable[[_Ctx], Diagnosis | None], ...] = (
    layouts.test_mask, values.test_mean_terms, layouts.test_flipped,
    layouts.test_shifted, layouts.test_one_step, layouts.test_factor,
)


def diagnose_tensor(name: str, analytic: np.ndarray, numeric: np.ndarray, *,
                    failed: np.ndarray | None = None,
                    others: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                    batch_size: int | None = None, seq_len: int | None = None,
                    time_axis: int | None = None, repeated_rows: np.ndarray | None = None,
                    noise: np.ndarray | float | None = None,
                    value: np.ndarray | None = None, layout: bool = True,
                    terms: np.ndarray | None = None) -> Diagnosis | None:
    """Diagnose the likely bug behind a failed gradient check of one tensor.

    Each known bug pattern is scored by how unlikely random disagreement would fit it (see
    the module docstring); patterns are tried from the most specific to the least: NaN/Inf,
    swapped with another tensor, all zero, the exact predictions from context (one term of
    ``terms``; an activation slip or wrong slopes, from ``value``), ``A ≈ c·N`` with a special
    ``c`` (sign, 2, ½, batch size, sequence length, ``N/(N-1)`` and its root), transpose, a
    missing ``λ·W`` term (when ``value`` is given), errors only on repeated rows, on the
    first/last step, on the edges, a mask, a one-hot term, normalisation terms, a flip, a
    shift by one, one time step's rank, one wrong factor, zeros where ``A`` should not be,
    ``A ≈ c·N`` with another ``c``, and a small consistent relative error.

    Parameters
    ----------
    name : str
        Tensor name used in the sentence.
    analytic, numeric : numpy.ndarray
        The analytic gradient ``A`` and the numerical gradient ``N`` (same shape).
    failed : numpy.ndarray of bool, optional
        Entries the checker failed. When given, errors outside a region rule the region out.
    others : mapping of str to (analytic, numeric), optional
        Gradients of other tensors of the model, for the swap test.
    batch_size, seq_len : int, optional
        Recognised as special factors ``c`` (and ``1/c``). ``batch_size`` also sets the
        quantum ``1/batch_size`` of the one-hot test and bounds the rank of the one-time-step
        test, which needs ``seq_len``.
    time_axis : int, optional
        Axis of time steps for the first/last step tests (default: axis 0).
    repeated_rows : numpy.ndarray of bool, optional
        Mask over the first axis: rows hit more than once (e.g. repeated embedding indices).
        An integer array is taken as the indices of those rows.
    noise : float or numpy.ndarray, optional
        Numerical error bar per entry (or one for all). Discrepancies within it are not
        diagnosed; only errors above it count inside a region.
    value : numpy.ndarray, optional
        The tensor's current value ``W``; enables the test ``A - N ≈ -λ·W`` (a missing
        regularisation gradient) and, when the tensor is an activation's input, the
        activation, slopes and normalisation-terms tests.
    layout : bool, default True
        Whether the arrays have the tensor's layout. Pass False for a flat sample of its
        entries: the tests that depend on positions (transpose, edges, first/last step,
        repeated rows, flips, shifts, ranks) are then skipped, and zeros are counted rather
        than located.
    terms : numpy.ndarray, optional
        Shape ``(K, *shape)``: the ``K`` terms whose sum is the right gradient (e.g. the rows
        of the upstream gradient for a bias); enables the one-term test.

    Returns
    -------
    Diagnosis or None
        The first pattern with confidence >= 0.7, else the most confident above 0.5, else
        ``None`` (no confident diagnosis, e.g. when ``A`` and ``N`` differ by noise).

    Raises
    ------
    ValueError
        If ``failed``, ``noise``, ``repeated_rows``, ``time_axis`` or ``terms`` do not fit
        the shape.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        if a.ndim == 2 and a.shape == n.shape[::-1]:
            fits = np.allclose(a, n.T, rtol=1e-3, atol=1e-8 * (np.abs(n).max() + 1e-300))
            sentence = (f"The gradient of {name} has shape {a.shape} but {name} has shape "
                        f"{n.shape}: it is transposed, a missing or extra .T in the backward "
                        f"pass for {name}.")
            return Diagnosis(name, "transpose", sentence, 0.95 if fits else 0.8)
        sentence = (f"The gradient of {name} has shape {a.shape} but {name} has shape "
                    f"{n.shape}: check the reshapes, sums over broadcast axes and transposes "
                    f"in the backward pass for {name}.")
        return Diagnosis(name, "unknown", sentence, 0.9)
    if a.size == 0:
        return None
    nan = _nan_diagnosis(name, a, n)
    if nan is not None:
        return nan

    shape = a.shape
    sigma = _broadcast_noise(noise, shape)
    finite_n = n[np.isfinite(n)]
    scale = float(np.sqrt(np.mean(finite_n ** 2))) if finite_n.size else 0.0
    if scale == 0.0:
        scale = float(np.sqrt(np.mean(a ** 2))) or 1.0
    tol_abs = 4.0 * sigma + _DEFAULT_ATOL * scale
    tol = tol_abs + _DEFAULT_RTOL * np.maximum(np.abs(a), np.abs(n))
    d = a - n
    fmask = None
    if failed is not None:
        fmask = np.asarray(failed, dtype=bool)
        if fmask.shape != shape:
            raise ValueError(f"failed has shape {fmask.shape}, expected {shape}")
    over = np.abs(d) > tol
    if not over.any():
        return None          # the disagreement is within the numerical noise
    bad = over if fmask is None else (fmask & over)
    if not bad.any():
        return None
    if time_axis is None:
        t = 0
    else:
        if a.ndim == 0 or not -a.ndim <= time_axis < a.ndim:
            raise ValueError(f"time_axis {time_axis} out of range for shape {shape}")
        t = time_axis % a.ndim
    if terms is not None and (np.ndim(terms) != a.ndim + 1 or np.shape(terms)[1:] != shape):
        raise ValueError(f"terms of shape {np.shape(terms)} do not fit: give (K, "
                         f"{', '.join(map(str, shape))}), the K terms of the sum")
    ctx = _Ctx(name=name, a=a, n=n, d=d, tol=tol, tol_abs=tol_abs, bad=bad, failed=fmask,
               others=others or {},
               batch_size=batch_size, seq_len=seq_len, time_axis=t,
               time_given=time_axis is not None, repeated_rows=repeated_rows, value=value,
               layout=layout, terms=terms)

    special, generic = _test_constant(ctx)
    positional = [_test_transpose, _test_repeated_rows, _test_regions] if layout else []
    tests: list[Callable[[], Diagnosis | None]] = [
        lambda: _test_swapped(ctx),
        lambda: _test_zero_whole(ctx),
        *[lambda test=test: test(ctx) for test in EXACT_TESTS],
        lambda: special,
        *[lambda test=test: test(ctx) for test in positional[:1]],
        lambda: _test_small_term_value(ctx),
        *[lambda test=test: test(ctx) for test in positional[1:]],
        *[lambda test=test: test(ctx) for test in SHAPE_TESTS],
        lambda: _test_zero_partial(ctx),
        lambda: generic,
    ]
    weak: list[Diagnosis] = []
    for test in tests:
        found = test()
        if found is None:
            continue
        if found.confidence >= CONFIDENT:
            return found
        weak.append(found)
    weak = [w for w in weak if w.confidence >= WEAK]
    if weak:
        return max(weak, key=lambda w: w.confidence)
    if not np.any(np.abs(n) > tol) and _norm(a) > 0:
        sentence = (f"The numerical gradient of {name} is zero (the loss does not depend on "
                    f"{name} here) but the analytic one is not: the backward pass computes a "
                    f"gradient the forward pass never uses, or mixes up two tensors' gradients.")
        return Diagnosis(name, "unknown", sentence, 0.6)
    return None


def _unknown(name: str, a: np.ndarray, n: np.ndarray, failed: np.ndarray | None = None
             ) -> Diagnosis:
    """No pattern: say so and show where, with what sign and how large the errors are."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if a.shape != n.shape:
        return Diagnosis(name, "unknown", f"The gradient of {name} has shape {a.shape} but "
                         f"the numerical one {n.shape}: check the backward pass for {name}.",
                         0.0)
    if failed is not None and np.shape(failed) == a.shape:
        bad = np.asarray(failed, dtype=bool)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-8)
        bad = rel > _DEFAULT_RTOL
    return describe_error(name, a, n, bad)


_PER_TENSOR = ("failed", "repeated_rows", "noise", "value", "terms")


def diagnose(failing: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
             all_tensors: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
             **context: object) -> dict[str, Diagnosis]:
    """Diagnose every failing tensor; one :class:`Diagnosis` per tensor.

    Parameters
    ----------
    failing : mapping of str to (analytic, numeric)
        The tensors that failed the check.
    all_tensors : mapping of str to (analytic, numeric), optional
        All tensors of the model (default: ``failing``), used for the swap test.
    **context
        Keyword arguments of :func:`diagnose_tensor`. ``failed``, ``repeated_rows``,
        ``noise`` and ``value`` may be given per tensor as a mapping from tensor name to
        value (a missing name means ``None``); anything else applies to every tensor.

    Returns
    -------
    dict of str to Diagnosis
        In the order of ``failing``. Tensors without a confident pattern get
        ``kind="unknown"`` with confidence 0 (or the weak diagnosis, if one was found).
    """
    pool = dict(all_tensors) if all_tensors is not None else dict(failing)
    out: dict[str, Diagnosis] = {}
    for name, (a, n) in failing.items():
        kwargs = dict(context)
        kwargs.pop("others", None)
        for key in _PER_TENSOR:
            if isinstance(kwargs.get(key), Mapping):
                kwargs[key] = kwargs[key].get(name)
        others = {k: v for k, v in pool.items() if k != name}
        found = diagnose_tensor(name, a, n, others=others, **kwargs)
        out[name] = found if found is not None else _unknown(name, a, n,
                                                               kwargs.get("failed"))
    return out
