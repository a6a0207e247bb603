"""Entries estimated together by least squares over simultaneous perturbations (issue #10).

A loss computed in float32 has noise ``σ ≈ 1e-7·|f|``: one central difference per entry,
``(f(θ + s·e_i) - f(θ - s·e_i))/2s``, carries rounding ``~σ/s``, and the steps that would
shrink it hit truncation, kinks or the step cap. Moving all entries ``U`` of one tensor at once
along ``M`` directions ``Δ_k ∈ {±1}^U`` (columns of a Hadamard matrix, so ``Σ_k Δ_kΔ_kᵀ = M·I``
exactly, and each column orthogonal to the all-ones one) and regressing

    ``y_k = (f(θ + sΔ_k) - f(θ - sΔ_k))/2s ≈ Δ_kᵀg``,   ``ĝ = (ΣΔ_kΔ_kᵀ)⁻¹ Σ Δ_k y_k``

gives each entry a rounding standard deviation ``σ/(s·√(2M))`` for ``2M`` evaluations —
``√(2M)`` times less than one central difference per entry at about the same cost (``M ≈ |U|``).
The one-sided regressions of ``f(θ + sΔ_k) - f(θ)`` and ``f(θ) - f(θ - sΔ_k)`` give per-entry
slopes ``r_i``, ``l_i`` (``f(θ)`` drops out: the columns sum to zero).

Why the ladder's validation carries over unchanged: with the design fixed and the steps
``s·w`` proportional to one scalar ``s``, every per-entry estimate is a fixed linear combination
of the ``M`` one-variable functions ``φ_k(s) = f(θ + s·w∘Δ_k)``, i.e. the ordinary central and
one-sided differences of the scalar function ``ψ_i(s) = Σ_k c_ik·φ_k(s)`` (``c``: the rows of
the least-squares solution), whose derivative at 0 is ``g_i·w_i``. ``ψ_i`` is piecewise smooth
with the kinks of all ``M`` lines, and noise ``σ·‖c_i‖``. So an estimate is judged exactly as
:mod:`gradcheck.judge.ladder` judges one entry — at a **validated triple** of steps ``s, ρs,
ρ²s`` (both pairs smooth by :func:`gradcheck.judge.ladder.analyse_pair`, the differences of
second order as in :func:`gradcheck.judge.significance.confirm`), with a bar of rounding and
Richardson's truncation (as the ladder's own pass rule: no term for kinks hidden from the gap
test — three validated steps leave little room for them, and this look never FAILs). Joint
moves cross more kinks than one entry's:
the validation then fails and the entry stays inconclusive. This look **passes** an entry
(``|a - D(s)| + bar ≤ A``) and never FAILs one.

Two things the one-entry ladder does not need: every one of the ``2M`` points must be distinct
(rows of the design distinct up to sign — a repeated point repeats its rounding, which is then
no longer independent), and the noise is taken as the larger of the measured ``σ`` and the
scatter of the central regression's residuals (rounding of the moved entries inside a float32
forward adds noise along joint moves that a one-entry measurement does not see).

Cost: up to ``LEVELS`` levels of ``2M`` evaluations for ``n`` entries, ``M`` the smallest
Hadamard order ``≥ OVERSAMPLE·n + 1 + DOF``, in blocks of at most ``BLOCK`` entries — about
``2·(OVERSAMPLE·n + 1 + DOF)/n ≈ 8–13`` evaluations per entry and level; each triple is judged
as soon as it is measured (the last level only for entries still undecided), and a block is
skipped when the fit's rounding at its largest step already exceeds every entry's tolerance.
The fits need no matrix inverse: ``ΔᵀΔ = M·I``, so the least-squares rows are ``Δᵀ/(M·s)``.

References: J. C. Spall, "Multivariate stochastic approximation using a simultaneous
perturbation gradient approximation", IEEE Trans. Automatic Control 37(3), 332–341, 1992;
Y. Nesterov and V. Spokoiny, "Random gradient-free minimization of convex functions", Found.
Comput. Math. 17, 527–566, 2017; orthogonal (Hadamard) designs for least squares: A. Hedayat
and W. D. Wallis, "Hadamard matrices and their applications", Ann. Statist. 6(6), 1978;
R. E. A. C. Paley, "On orthogonal matrices", J. Math. Phys. 12, 311–320, 1933.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import ForwardError
from gradcheck.judge import ladder

#: The losses at the entries set to each of a list of value vectors (as ``group.MoveLoss``).
MoveLoss = Callable[[list[np.ndarray]], np.ndarray]
#: The :data:`MoveLoss` of the entries at the given positions (the others left in place).
Moves = Callable[[np.ndarray], MoveLoss]
Allowance = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Residual degrees of freedom of the central regression (for its noise estimate).
DOF = 8
#: Directions per entry (``M ≥ OVERSAMPLE·n + 1 + DOF``): rounding ``∝ 1/√M``.
OVERSAMPLE = 4
#: Fewest entries worth a joint look (below, rows repeat up to sign), and most per block.
MIN_ENTRIES = 8
BLOCK = 256
#: Levels ``T, T/ρ, …`` measured (``LEVELS - 2`` triples).
LEVELS = 4
#: Designs tried before giving up on one whose points are all distinct.
TRIES = 8
#: Seed of the design's column choice and signs (a check is reproducible).
SEED = 0x5EED


def _primes_3_mod_4(limit: int) -> list[int]:
    sieve = np.ones(limit + 1, bool)
    sieve[:2] = False
    for p in range(2, int(limit ** 0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = False
    return [int(p) for p in np.flatnonzero(sieve) if p % 4 == 3]


def _paley(q: int) -> np.ndarray:
    """Paley's construction I: a Hadamard matrix of order ``q + 1`` for a prime ``q ≡ 3 (mod
    4)``: ``H = I + S`` with ``S = [[0, 1ᵀ], [-1, Q]]``, ``Q_ij = χ(j - i)`` (Legendre
    symbol)."""
    squares = np.zeros(q, bool)
    squares[(np.arange(1, q) ** 2) % q] = True
    chi = np.where(squares, 1, -1)
    chi[0] = 0
    i = np.arange(q)
    s = np.zeros((q + 1, q + 1), int)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = chi[(i[None, :] - i[:, None]) % q]
    return np.eye(q + 1, dtype=int) + s


def order_at_least(m: int) -> int:
    """The smallest order ``2^a·(q + 1)`` (``q`` a prime ``≡ 3 mod 4``, or ``q + 1 = 1``) that
    is at least ``m``."""
    best = 1 << max(m - 1, 0).bit_length()
    for q in _primes_3_mod_4(m):
        base = q + 1
        while base < m:
            base *= 2
        best = min(best, base)
    return best


def hadamard(order: int) -> np.ndarray:
    """A Hadamard matrix (``HᵀH = order·I``, entries ±1) whose first column is all ones, for
    an order from :func:`order_at_least` (Sylvester's doubling of Paley's matrix)."""
    twos = 0
    base = order
    while base % 2 == 0 and base > 1 and not (base - 1 > 2 and _is_prime_3_mod_4(base - 1)):
        base //= 2
        twos += 1
    if base == 1:
        h = np.ones((1, 1), int)
    elif base == 2:
        h = np.array([[1, 1], [1, -1]])
    elif _is_prime_3_mod_4(base - 1):
        h = _paley(base - 1)
    else:
        raise ValueError(f"no Hadamard construction for order {order}")
    for _ in range(twos):
        h = np.block([[h, h], [h, -h]])
    return h * h[:, :1]   # rows signed so that the first column is all ones


def _is_prime_3_mod_4(q: int) -> bool:
    return q % 4 == 3 and q > 2 and all(q % p for p in range(2, int(q ** 0.5) + 1))


def design(n: int, rng: np.random.Generator) -> np.ndarray | None:
    """``M × n`` directions: ``n`` random columns of a Hadamard matrix other than its all-ones
    first one, each with a random sign (``ΔᵀΔ = M·I``, ``Δᵀ1 = 0``), ``M`` the smallest order
    ``≥ OVERSAMPLE·n + 1 + DOF``; ``None`` when no draw of ``TRIES`` gives ``M`` rows distinct
    up to sign (then some of the ``2M`` points coincide)."""
    h = hadamard(order_at_least(OVERSAMPLE * n + 1 + DOF))
    m = h.shape[0]
    for _ in range(TRIES):
        cols = 1 + rng.choice(m - 1, size=n, replace=False)
        d = h[:, cols] * rng.choice([-1, 1], size=n)[None, :]
        canon = d * np.where(d[:, :1] < 0, -1, 1)
        if np.unique(canon, axis=0).shape[0] == m:
            return d.astype(np.float64)
    return None


@dataclass(frozen=True)
class Look:
    """What :func:`regression_pass` found: per entry ``passed``, the estimate ``numeric`` at
    the validated step with its ``bar`` and ``step``; ``evaluations`` spent and the noise used
    (``sigma``: the larger of the measured one and the residuals')."""

    passed: np.ndarray
    numeric: np.ndarray
    bar: np.ndarray
    step: np.ndarray
    evaluations: int
    sigma: float


def measure(move_loss: MoveLoss, x: np.ndarray, d: np.ndarray, steps: np.ndarray, f0: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The losses at ``x ± steps∘Δ_k`` and the least-squares fits: per entry the central,
    right and left slopes, plus the central fit's residual variance of ``f₊ - f₋`` and the
    three fits' coefficient rows (``B``: ``ĝ = B·y``).

    Returns ``(central, right, left, resid_var, (Bc, Bp, Bq))`` with the fits' rows."""
    plus, minus = x[None, :] + steps[None, :] * d, x[None, :] - steps[None, :] * d
    f = np.asarray(move_loss(list(plus) + list(minus)), dtype=np.float64)
    fp, fm = f[:d.shape[0]], f[d.shape[0]:]
    p = steps[None, :] * d                           # the displacements (both sides)
    xc = 2.0 * p
    # ΔᵀΔ = M·I: the least-squares rows are Δᵀ/(M·s) per side, Δᵀ/(2M·s) for the central fit
    bp = d.T / (d.shape[0] * steps[:, None])
    bq, bc = bp, bp / 2.0
    central = bc @ (fp - fm)
    right = bp @ (fp - f0)
    left = bq @ (f0 - fm)
    res = (fp - fm) - xc @ central
    dof = max(d.shape[0] - d.shape[1], 1)
    return central, right, left, np.array(float(res @ res) / dof), (bc, bp, bq)


def _level(central, right, left, rows, steps, sigma, finite) -> ladder.Level:
    """A :class:`~gradcheck.judge.ladder.Level` of the per-entry slopes times ``w`` (the
    derivative of ``ψ_i`` in the scale of one step), with the ladder's bars for noise
    ``σ``: central ``K_ROUND·√2·std``, gap ``2·std`` (``std`` from the fits' rows)."""
    bc, bp, bq = rows
    std_c = sigma * np.sqrt(2.0 * np.sum(bc ** 2, axis=1))
    # r - l = Bp(f₊ - f0) - Bq(f0 - f₋): f₊, f₋ independent, f0 shared
    var_g = np.sum(bp ** 2, axis=1) + np.sum(bq ** 2, axis=1) + (
        np.sum(bp, axis=1) + np.sum(bq, axis=1)) ** 2
    std_g = sigma * np.sqrt(var_g)
    ok = np.full(central.shape, bool(finite)) & np.isfinite(central) & np.isfinite(
        right) & np.isfinite(left)
    return ladder.Level(steps.copy(), central, right, left,
                        np.where(ok, ladder.K_ROUND * np.sqrt(2.0) * std_c, np.inf),
                        np.where(ok, 2.0 * std_g, np.inf), ok)


def judge_triple(small: ladder.Level, mid: ladder.Level, big: ladder.Level, a: np.ndarray,
                 allow: Allowance) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per entry, whether three steps ``s, ρs, ρ²s`` validate and pass: both pairs smooth
    (:func:`gradcheck.judge.ladder.analyse_pair`), the differences of second order (or both
    within rounding), as :func:`gradcheck.judge.significance.confirm`; the estimate is the
    better of ``D(s)`` and ``D(ρs)``, each with rounding plus Richardson's truncation from the
    pair above it; pass when ``|a - D| + bar ≤ A``. Returns (passed, estimate, bar, step)."""
    lower, upper = ladder.analyse_pair(mid, small), ladder.analyse_pair(big, mid)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        rho = mid.step / small.step
        d_small, d_big = mid.central - small.central, big.central - mid.central
        n_small, n_big = mid.rounding + small.rounding, big.rounding + mid.rounding
        ordered = ladder.second_order(d_small, d_big, n_small, n_big, rho ** 2)
        at_mid = upper.bar_small < lower.bar_small
        est = np.where(at_mid, mid.central, small.central)
        bar = np.where(at_mid, upper.bar_small, lower.bar_small)
        step = np.where(at_mid, mid.step, small.step)
        ok = (lower.smooth & upper.smooth & ordered & np.isfinite(bar)
              & (np.abs(a - est) + bar <= allow(a, est)))
    return ok, est, bar, step


def regression_pass(moves: Moves, x: np.ndarray, a: np.ndarray, steps: np.ndarray,
                    cap: np.ndarray, f0: float, sigma: float, allow: Allowance,
                    seed: int = SEED) -> Look:
    """A last look at entries of one tensor the ladder left undecided by noise or truncation
    (see the module docstring): pass where a validated triple of joint-move estimates agrees
    with the analytic value within the tolerance including its bar; never FAIL.

    Parameters
    ----------
    moves : ``moves(positions)`` is the loss at the entries ``positions`` (of ``x``) set to
        each of a list of value vectors, the other entries left in place — one block at a
        time.
    x, a : the entries' values and analytic gradients (float64).
    steps : the step each entry's ladder ended at; the levels are ``T·ρ^-k`` times
        ``w = max(|x|, 1)``, ``T = min(ρ²·median(steps/w), min(cap/w))``, ``k < LEVELS``.
    cap : the largest step allowed per entry.
    f0, sigma : the loss at ``x`` and its measured noise.
    allow : the tolerance in absolute units, ``allow(a, n)``.
    seed : of the design (columns and signs).

    Returns
    -------
    Look
        ``passed`` and, where passed, ``numeric``, ``bar`` and ``step``; ``evaluations``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    n = x.size
    out = Look(np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.inf), np.full(n, np.nan),
               0, sigma)
    if n < MIN_ENTRIES:
        return out
    rng = np.random.default_rng(seed)
    spent, used_sigma = 0, sigma
    blocks = np.array_split(np.arange(n), -(-n // BLOCK))
    for blk in blocks:
        if blk.size < MIN_ENTRIES:
            continue
        d = design(blk.size, rng)
        if d is None:
            continue
        xb, ab = x[blk], a[blk]
        w = np.maximum(np.abs(xb), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            top = min(ladder.RATIO ** 2 * float(np.median(steps[blk] / w)),
                      float(np.min(cap[blk] / w)))
        if not (np.isfinite(top) and top > 0) or hopeless(ab, top * w, d.shape[0], sigma,
                                                          allow):
            continue
        used, sig = _block_look(moves(blk), xb, ab, d, top * w, f0, sigma, allow, blk, out)
        spent += used
        used_sigma = max(used_sigma, sig)
    return Look(out.passed, out.numeric, out.bar, out.step, spent, used_sigma)


def _block_look(move_loss: MoveLoss, x: np.ndarray, a: np.ndarray, d: np.ndarray,
                top: np.ndarray, f0: float, sigma: float, allow: Allowance, blk: np.ndarray,
                out: Look) -> tuple[int, float]:
    """Levels ``top·ρ^-k`` of one block (design ``d``), each triple judged as soon as it is
    measured and the next level only for entries still undecided; passes written into
    ``out`` at ``blk``; a forward that raises at a level ends the block's look. Returns the
    evaluations spent and the largest noise used."""
    fits: list = []
    done = np.zeros(x.size, bool)
    spent, used_sigma = 0, sigma
    for k in range(LEVELS):
        s = top * ladder.RATIO ** -k
        try:
            fits.append((s, measure(move_loss, x, d, s, f0)))
        except ForwardError:
            break
        spent += 2 * d.shape[0]
        if len(fits) < 3:
            continue
        sig = _noise(sigma, fits)
        used_sigma = max(used_sigma, sig)
        big, mid, small = (_level(c, r, lf, rows, st, sig, True)
                           for st, (c, r, lf, _, rows) in fits[-3:])
        ok, est, bar, stp = judge_triple(small, mid, big, a, allow)
        new = ok & ~done
        out.passed[blk[new]] = True
        out.numeric[blk[new]], out.bar[blk[new]], out.step[blk[new]] = (est[new], bar[new],
                                                                         stp[new])
        done |= ok
        if done.all():
            break
    return spent, used_sigma


def _noise(sigma: float, fits: list) -> float:
    """The measured ``σ``, or the central fits' residual scatter where larger (the smallest
    over the levels measured: truncation only adds to it)."""
    resid = min(float(np.sqrt(r[3] / 2.0)) for _, r in fits)
    return max(sigma, resid) if np.isfinite(resid) else np.inf


def hopeless(a: np.ndarray, top: np.ndarray, m: int, sigma: float, allow: Allowance) -> bool:
    """Whether no entry of a block can pass: the central fit's rounding bar at the largest
    step an estimate is taken at (``top/ρ``), ``K_ROUND·σ/(s·√M)``, exceeds every entry's
    tolerance ``A``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bar = ladder.K_ROUND * sigma / (top / ladder.RATIO * np.sqrt(m))
        return not np.any(bar < allow(a, a))
