"""Patterns that use more than ``A`` and ``N``: the tensor's own value ``x``, or the terms its
gradient must add up.

* **activation**: ``A = N·g(x)/f'(x)`` for a known activation ``f`` and a known slip ``g``
  (the derivative evaluated at the input instead of the output, a missing factor);
* **slopes**: ``A ≈ c₊·N`` where ``x > 0`` and ``c₋·N`` where ``x < 0`` (the slopes of a
  piecewise-linear activation wrong or swapped);
* **mean_terms**: the error is ``α + β·x`` along one axis in every slice (the terms through a
  normalisation's mean and variance are missing);
* **one_term**: ``A`` equals one term of the sum it needs (``db = dout[0]``, ``=`` for ``+=``).

Each test returns a :class:`~gradcheck.diagnose.evidence.Diagnosis` or ``None``, scored as in
:mod:`gradcheck.diagnose.patterns`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gradcheck.diagnose.evidence import Diagnosis, _confidence, _Ctx, _fmt, _neglog, _pr


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _dsigmoid(x: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return s * (1.0 - s)


def _dtanh(x: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(x) ** 2


Slip = tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray], str]

#: ``(activation, right derivative f'(x), slipped derivative g(x), the mistake)``, both as
#: functions of the activation's input ``x``: the mistakes people make writing them by hand.
ACTIVATION_SLIPS: tuple[Slip, ...] = (
    ("sigmoid", _dsigmoid, lambda x: x * (1 - x),
     "the sigmoid derivative s*(1 - s) is evaluated at the input x, x*(1 - x), instead of at "
     "the output s = sigmoid(x); use the cached output"),
    ("sigmoid", _dsigmoid, _sigmoid,
     "the sigmoid derivative is taken as s instead of s*(1 - s), the factor (1 - s) is "
     "missing"),
    ("sigmoid", _dsigmoid, lambda x: 1 - _sigmoid(x) ** 2,
     "the sigmoid derivative is written like tanh's, 1 - s**2, instead of s*(1 - s)"),
    ("sigmoid", _dsigmoid, np.ones_like,
     "the sigmoid derivative s*(1 - s) is missing, the upstream gradient is passed through "
     "unchanged"),
    ("tanh", _dtanh, lambda x: 1 - x ** 2,
     "the tanh derivative 1 - t**2 is evaluated at the input x, 1 - x**2, instead of at the "
     "output t = tanh(x); use the cached output"),
    ("tanh", _dtanh, lambda x: 1 - np.tanh(x),
     "the tanh derivative is taken as 1 - t instead of 1 - t**2, the square is missing"),
    ("tanh", _dtanh, np.ones_like,
     "the tanh derivative 1 - t**2 is missing, the upstream gradient is passed through "
     "unchanged"),
)


def _own_value(ctx: _Ctx) -> np.ndarray | None:
    if ctx.value is None:
        return None
    x = np.asarray(ctx.value, dtype=np.float64)
    return x if x.shape == ctx.a.shape and np.all(np.isfinite(x)) else None


def test_activation(ctx: _Ctx) -> Diagnosis | None:
    """``A = N · g(x) / f'(x)`` for a known activation ``f`` and a known slip ``g``.

    For an elementwise activation ``y = f(x)`` the gradient is ``dout · f'(x)``; a slip that
    writes ``g(x)`` instead gives ``A = N · g(x)/f'(x)`` exactly, at every entry. Each slip of
    :data:`ACTIVATION_SLIPS` is a prediction of ``A`` scored like the transpose
    (``E = m·(-log10 r)``, less ``log10`` of the number of slips tried); a slip whose ratio
    ``g/f'`` is nearly constant over ``x`` (spread below 10 %) cannot be told from a scale and
    is skipped.
    """
    x = _own_value(ctx)
    if x is None:
        return None
    best = None
    tried = math.log10(len(ACTIVATION_SLIPS))
    with np.errstate(all="ignore"):
        for act, right, wrong, what in ACTIVATION_SLIPS:
            fp = right(x)
            if np.any(np.abs(fp) < 1e-8):
                continue
            ratio = wrong(x) / fp
            if not np.all(np.isfinite(ratio)):
                continue
            if float(np.std(ratio)) < 0.1 * float(np.mean(np.abs(ratio))):
                continue
            r = ctx.fit_r(ctx.n * ratio)
            if r >= 0.1:
                continue
            evidence = _pr(ctx.d * ctx.d) * _neglog(r) - tried
            if best is None or evidence > best[0]:
                best = (evidence, act, what)
    if best is None:
        return None
    evidence, act, what = best
    sentence = (f"The gradient of {ctx.name} is the {act} gradient with a slipped derivative: "
                f"{what}.")
    return Diagnosis(ctx.name, "activation", sentence, _confidence(evidence))


def _fit_side(a: np.ndarray, n: np.ndarray, tol: np.ndarray) -> tuple[float, float] | None:
    """``(c, evidence)`` of ``a ≈ c·n`` as in the constant test (``c = 1``, no evidence, when
    ``a`` matches ``n`` within ``tol``), or None when it fits badly."""
    nn = float(np.sum(n * n))
    if a.size < 2 or nn == 0:
        return None
    if np.all(np.abs(a - n) <= tol):
        return 1.0, 0.0
    c = float(np.sum(a * n)) / nn
    d = a - n
    res = float(np.sqrt(np.sum((a - c * n) ** 2)))
    scale = min(float(np.sqrt(np.sum(d * d))), float(np.sqrt(np.sum(a * a))))
    if scale == 0:
        return c, 0.0
    r = res / scale
    if r >= 0.1:
        return None
    w = float(np.sum(n * n * d * d))
    m = nn * float(np.sum(d * d)) / w if w > 0 else 1.0
    return c, max(m - 1.0, 0.0) * _neglog(r)


def test_slopes(ctx: _Ctx) -> Diagnosis | None:
    """``A ≈ c₊·N`` where ``x > 0`` and ``A ≈ c₋·N`` where ``x < 0``, with ``c₊ ≠ c₋``.

    A piecewise-linear activation (ReLU, leaky ReLU, PReLU) has one slope per side of its
    kink; swapping or forgetting one scales the gradient on that side only. Evidence: the two
    constant fits, each ``(m - 1)·(-log10 r)`` as in the constant test.
    """
    x = _own_value(ctx)
    if x is None:
        return None
    fits = [_fit_side(ctx.a[side], ctx.n[side], ctx.tol[side]) for side in (x > 0, x < 0)]
    if fits[0] is None or fits[1] is None:
        return None
    (cp, ep), (cm, em) = fits
    if abs(cp - cm) < 0.02 * max(abs(cp), abs(cm)) or ep + em == 0:
        return None                                   # one constant: the scale test's case
    swapped = abs(cp * cm - 1.0) < 0.02 and abs(cp - 1.0) > 0.02
    what = ("swapped (the negative slope is used for positive inputs and 1 for negative "
            "ones)" if swapped else "wrong on one side of the kink")
    sentence = (f"The gradient of {ctx.name} is {_fmt(round(cp, 4))} times the numerical one "
                f"where {ctx.name} > 0 and {_fmt(round(cm, 4))} times where {ctx.name} < 0: "
                f"the slopes of a piecewise-linear activation (e.g. leaky ReLU's 1 and alpha) "
                f"are {what}.")
    return Diagnosis(ctx.name, "slopes", sentence, _confidence(ep + em, cap=0.9))


def test_mean_terms(ctx: _Ctx) -> Diagnosis | None:
    """The error is ``α + β·x`` along one axis in every slice: batch-statistics terms missing.

    The gradient of a normalisation ``x̂ = (x - mean) / std`` over an axis carries two terms
    from the mean and the variance, ``-mean(g) - x̂·mean(g·x̂)``, constant and linear in ``x``
    along that axis. If the error in every slice along the axis is fitted by ``α + β·x`` to a
    relative residual below 1e-3 (and the term in ``x`` is needed: an error constant along
    the axis, or ``A ≈ c·N``, is not this pattern), those terms are missing or wrong.
    Evidence: the ``L - 2`` residual degrees of freedom per slice,
    ``Σ (L - 2)·min(-log10 r, 2)``.
    """
    x = _own_value(ctx)
    if x is None or ctx.a.ndim != 2 or not ctx.layout:
        return None
    if ctx.proportional():
        return None
    best = None
    for axis in (0, 1):
        length = x.shape[axis]
        if length < 3:
            continue
        xs, ds = np.moveaxis(x, axis, 0), np.moveaxis(ctx.d, axis, 0)
        worst, needs_x, evidence = 0.0, 0.0, 0.0
        for j in range(xs.shape[1]):
            dj = ds[:, j]
            dn = float(np.sqrt(np.sum(dj ** 2)))
            if dn == 0:
                continue
            basis = np.stack([np.ones(length), xs[:, j]], axis=1)
            coef, *_ = np.linalg.lstsq(basis, dj, rcond=None)
            r = float(np.sqrt(np.sum((dj - basis @ coef) ** 2))) / dn
            worst = max(worst, r)
            needs_x = max(needs_x, float(np.sqrt(np.sum((dj - dj.mean()) ** 2))) / dn)
            evidence += (length - 2) * min(_neglog(r), 2.0)
        if (worst < 1e-3 and needs_x > 0.1 and evidence > 0
                and (best is None or evidence > best[0])):
            best = (evidence, axis)
    if best is None:
        return None
    evidence, axis = best
    sentence = (f"The error in the gradient of {ctx.name} is, along axis {axis} in every "
                f"slice, a constant plus a multiple of {ctx.name}: the terms through the mean "
                f"and the variance over axis {axis} are missing or wrong (a normalisation's "
                f"dx must subtract mean(dxhat) and xhat*mean(dxhat*xhat) over that axis).")
    return Diagnosis(ctx.name, "mean_terms", sentence, _confidence(evidence, cap=0.9))


def test_one_term(ctx: _Ctx) -> Diagnosis | None:
    """``A`` equals one term ``T_k`` of the sum ``Σ_k T_k`` the gradient needs.

    A bias's gradient sums the upstream gradient over examples (and time steps); keeping one
    term (``db = dout[0]``, or ``db = ...`` assigned inside the loop instead of ``+=``) makes
    ``A`` equal to that term. Needs ``terms`` (shape ``(K, *shape)``); scored like the
    transpose, less ``log10 K`` for the terms tried.
    """
    if ctx.terms is None:
        return None
    t = np.asarray(ctx.terms, dtype=np.float64)
    if t.ndim < 1 or t.shape[1:] != ctx.a.shape or t.shape[0] < 2:
        return None
    best = None
    for k in range(t.shape[0]):
        r = ctx.fit_r(t[k])
        if r < 0.5 and (best is None or r < best[0]):
            best = (r, k)
    if best is None:
        return None
    r, k = best
    evidence = _pr(ctx.d * ctx.d) * _neglog(r) - math.log10(t.shape[0])
    short = ctx.name.split(".")[-1]
    sentence = (f"The gradient of {ctx.name} equals term {k} of the {t.shape[0]} terms it must "
                f"add up: it keeps one example or time step instead of the sum, e.g. "
                f"d{short} = dout[{k}], or an assignment d{short} = ... inside the loop where "
                f"d{short} += ... is needed.")
    return Diagnosis(ctx.name, "one_term", sentence, _confidence(evidence))
