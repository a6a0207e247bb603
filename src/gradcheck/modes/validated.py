"""The validated central-difference engine of elementwise mode (issue #10).

Per check: the loss's noise ``σ`` is measured once (:mod:`gradcheck.estimate.ecnoise`), every
checked entry is estimated at a first step ``h0 = H_FACTOR·(σ/|f0|)^(1/3)·max(|θ|, 1)`` (the
step that balances rounding ``σ/h`` against truncation ``|f'''|h²/6`` when ``|f'''| ~ |f|``;
Gill, Murray & Wright, *Practical Optimization* §8.6), the model's gradient scale ``S`` is
taken from those estimates and the analytic gradient, and each tensor's entries are judged by
:mod:`gradcheck.judge.ladder`: a pass at ``h0`` costs two evaluations, anything else walks a
ladder of validated steps. Passed tensors are then screened for small but significant
discrepancies (:mod:`gradcheck.judge.significance`).

Every real scheme goes through this engine. With ``method="central4"``, ``"richardson"``,
``"forward"``, ``"backward"`` (or ``"auto"`` when it picks one of them) the scheme's own
estimate is the first look (:func:`scheme_first`): it may **pass** an entry (``|a - n| + bar ≤
A`` with the scheme's error bar, and no jump in its one-sided slopes), never FAIL one — a
wider stencil across a kink, or a truncation it does not bound, is no evidence. Every entry it
does not pass is measured at the central ``h0`` and decided by the ladder, so only validated
central differences can FAIL an entry (and ``method="auto"``'s complex step, when the forward
was probed safe, may still decide the ones the ladder leaves inconclusive: :func:`rescue`).
``h="auto"`` is this engine's own choice of steps: ``h0`` from the measured noise, then the
ladder (for another scheme, :func:`gradcheck.estimate.steps.auto_estimate` picks its step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from gradcheck.errors import ForwardError
from gradcheck.estimate import ecnoise
from gradcheck.estimate.schemes import Estimate, Scheme, get_scheme
from gradcheck.estimate.steps import auto_estimate, nominal_steps
from gradcheck.judge import group, ladder, metrics, regression, significance
from gradcheck.judge.tolerance import ANALYTIC_ULPS, effective_tol
from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, PASS
from gradcheck.modes.run import Run
from gradcheck.report.results import TensorReport

#: ``h0 = H_FACTOR·(σ/|f0|)^(1/3)·max(|θ|, 1)``: about 1e-5 for a float64 loss.
H_FACTOR = 2.0
#: Entries larger than this in magnitude get a note that their step is relative to ``|θ|``.
LARGE = 1e4
#: An absolute step that fails (non-finite loss, unrepresentable) is replaced by a relative
#: one when it is larger than this fraction of ``|θ|``.
MEANINGLESS = 1e-2
#: Steps never grow beyond this multiple of the parameter's own scale (``max(|θ_i|, RMS of
#: the tensor's values)``).
UP_CAP = 0.5
#: Entry note of an entry moved by the relative fallback.
RELATIVE_NOTE = "step relative to |θ|"
#: Would-be failures re-examined per tensor before the rest are left as FAIL, and how many of
#: them must confirm (a wholly wrong 10⁵-entry tensor should not double the cost).
MAX_REEXAMINE, CONFIRMED = 64, 16


@dataclass
class Chunk:
    """One tensor's checked entries and what the first step said about them."""

    leaf: int
    name: str
    idx: np.ndarray
    x: np.ndarray
    a: np.ndarray
    analytic_bar: np.ndarray
    tol: float
    dtype: np.dtype
    first: ladder.Level | None = None
    #: entries moved by the relative fallback (their absolute step was unusable)
    relative: np.ndarray | None = None
    #: the parameters' own scale: RMS of the tensor's values, else of the whole model's
    scale: float = 1.0
    #: entries passed by another scheme's first look (:func:`scheme_first`); their ``first``
    #: level holds that scheme's estimate, and ``central_step`` the central ``h0`` the
    #: significance screen starts from
    by_scheme: np.ndarray | None = None
    central_step: np.ndarray | None = None
    #: fewer entries are checked than the tensor holds (``sample``)
    sampled: bool = False


def first_steps(x: np.ndarray, h: float | None, relative_step: bool, rel_noise: float
                ) -> np.ndarray:
    """``h0`` per entry: the user's ``h`` (times ``|θ|`` with ``relative_step``), else
    ``H_FACTOR·(σ/|f0|)^(1/3)·max(|θ|, 1)``. ``relative_step`` changes only an explicit
    ``h``: the default is already relative to ``|θ|`` where ``|θ| > 1``, and below 1 a step
    relative to ``|θ|`` only adds rounding (measured on the regime grid: a quarter of the
    float64 models inconclusive instead of none)."""
    mag = np.abs(np.asarray(x, dtype=np.float64))
    if h is not None:
        return np.where(relative_step & (mag > 0), h * mag, h) if relative_step else np.full(
            mag.shape, float(h))
    return H_FACTOR * rel_noise ** (1.0 / 3.0) * np.maximum(mag, 1.0)


def noise_tolerance(rel_noise: float) -> float:
    """The tolerance a loss with relative noise ``ρ = σ/|f0|`` allows: ``√ρ`` (as ``√ε`` for
    a dtype: a float32 loss cannot verify a gradient to 1e-5)."""
    return float(np.sqrt(rel_noise))


def make_chunk(i: int, name: str, idx: np.ndarray, work_array: np.ndarray, grad: np.ndarray,
               tol: float) -> Chunk:
    """Entries ``idx`` of leaf ``i``: their values, analytic gradients (real float64) and
    the analytic gradient's rounding, ``ANALYTIC_ULPS·ε(dtype)·(|a| + RMS(a))``."""
    x = (np.asarray(work_array).reshape(-1)[idx] if work_array.ndim
         else np.asarray(work_array).reshape(1))
    a = np.asarray(grad).reshape(-1)[idx]
    a_dtype = grad.dtype if np.issubdtype(grad.dtype, np.inexact) else np.dtype(np.float64)
    a = a.real.astype(np.float64) if np.iscomplexobj(a) else a.astype(np.float64)
    scale = metrics.rms(a)
    bar = ANALYTIC_ULPS * float(np.finfo(a_dtype).eps) * (np.abs(a) + scale)
    return Chunk(i, name, idx, x.astype(np.float64) if not np.iscomplexobj(x) else x.real,
                 a, np.where(np.isfinite(bar), bar, 0.0), tol, work_array.dtype,
                 sampled=idx.size < max(int(np.size(work_array)), 1))


def measure_first(chunks: list[Chunk], entries: Callable[[int, np.ndarray, np.ndarray],
                                                         np.ndarray],
                  f0: float, noise: ecnoise.Noise, h: float | None, relative_step: bool,
                  grad_scale: float = 0.0) -> None:
    """The first level of every chunk (``c.first``), with the relative-step fallback for
    entries whose absolute step gave a non-finite loss or did not move them
    (``c.relative``)."""
    for c in chunks:
        c.first, c.relative = central_first(c, np.arange(c.idx.size), entries, f0, noise, h,
                                            relative_step, grad_scale)


#: The automatic first step shrinks by up to this factor where its rounding stays at most
#: ``1/ROUNDING_SHARE`` of the entry's tolerance (see :func:`rounding_steps`).
SHRINK = 4.0
ROUNDING_SHARE = 16.0


def rounding_steps(c: Chunk, pos: np.ndarray, sigma: float, grad_scale: float) -> np.ndarray:
    """The step whose rounding bar ``K_ROUND·σ/h`` is ``A/ROUNDING_SHARE``, with the
    tolerance ``A ≈ tol·max(|a|, S)`` from the analytic values (``S``: the model's gradient
    scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        allowance = c.tol * np.maximum(np.abs(c.a[pos]), grad_scale)
        h = ROUNDING_SHARE * ladder.K_ROUND * sigma / allowance
    return np.where(np.isfinite(h) & (h > 0), h, np.inf)


def central_first(c: Chunk, pos: np.ndarray, entries: Callable[[int, np.ndarray, np.ndarray],
                                                                np.ndarray],
                  f0: float, noise: ecnoise.Noise, h: float | None, relative_step: bool,
                  grad_scale: float = 0.0) -> tuple[ladder.Level, np.ndarray]:
    """The central :class:`~gradcheck.judge.ladder.Level` at ``h0`` (:func:`first_steps`) of
    the chunk's entries ``pos``, and which of them were moved by the relative fallback: an
    entry whose absolute step gave a non-finite loss, or did not move it (``x ± h == x``), is
    measured again at ``H_FACTOR·(σ/|f0|)^(1/3)·|θ|``."""
    rel = noise.relative(f0)
    x = c.x[pos]

    def ev(m, pts):
        return entries(c.leaf, c.idx[pos[m]], pts)
    h0 = first_steps(x, h, relative_step, rel)
    if h is None:
        h0 = np.maximum(h0 / SHRINK, np.minimum(h0, rounding_steps(c, pos, noise.sigma,
                                                                    grad_scale)))
    first = ladder.measure_level(ev, x, h0, f0, noise.sigma, c.dtype, tolerate_errors=False)
    relative = np.zeros(pos.size, bool)
    mag = np.abs(x)
    tiny_step = h0 < 4 * float(np.finfo(c.dtype).eps) * mag   # x ± h == x
    redo = ~first.finite & (mag > 0) & ((h0 > MEANINGLESS * mag) | tiny_step)
    if redo.any():
        sub = np.flatnonzero(redo)
        hr = H_FACTOR * rel ** (1.0 / 3.0) * mag[sub]
        lv = ladder.measure_level(lambda m, pts: ev(sub[m], pts), x[sub], hr, f0, noise.sigma,
                                  c.dtype)
        ok = lv.finite
        ladder.put(first, sub[ok], lv.take(np.flatnonzero(ok)))
        relative[sub[ok]] = True
    return first, relative


def scheme_first(c: Chunk, entries: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
                 scheme: Scheme, h: float | str | None, relative_step: bool, f0: float,
                 noise_abs: float, sigma: float) -> ladder.Level:
    """Another scheme's estimate of every entry of the chunk, as a first
    :class:`~gradcheck.judge.ladder.Level`: ``central`` holds the scheme's value, ``rounding``
    its whole error bar (rounding ``noise_abs·Σ|w_j|`` plus the truncation it estimates), the
    one-sided slopes its innermost points' (the estimate itself where the stencil has none),
    ``gap_bar`` the central rounding of those slopes, ``K_GAP·σ/s``. The step is ``h`` (the
    scheme's default when ``None``; times ``|θ|`` with ``relative_step``), or the scheme's own
    per-entry choice with ``h="auto"`` (:func:`gradcheck.estimate.steps.auto_estimate`). A
    forward that raises at the stencil's points leaves the entries not finite (the central
    first step then decides them)."""
    def ev(m, pts):
        return entries(c.leaf, c.idx[m], pts)
    try:
        if h == "auto":
            est = auto_estimate(scheme, ev, c.x, f0, noise_abs, c.dtype)
        else:
            steps = nominal_steps(c.x, scheme.default_h if h is None else float(h),
                                  relative_step)
            points = scheme.points(c.x, steps, c.dtype)
            est = scheme.combine(c.x, points, entries(c.leaf, c.idx, points), f0, noise_abs)
    except ForwardError:
        nan = np.full(c.idx.size, np.nan)
        est = Estimate(nan, nan, nan, np.full(c.idx.size, np.inf))
    return level_of(est, sigma)


def level_of(est: Estimate, sigma: float) -> ladder.Level:
    """An :class:`~gradcheck.estimate.schemes.Estimate` as a first
    :class:`~gradcheck.judge.ladder.Level` (see :func:`scheme_first`)."""
    value = np.asarray(est.value, dtype=np.float64)
    right = value if est.right is None else np.asarray(est.right, dtype=np.float64)
    left = value if est.left is None else np.asarray(est.left, dtype=np.float64)
    step = np.asarray(est.step, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (np.isfinite(value) & np.isfinite(right) & np.isfinite(left) & np.isfinite(step)
              & (step > 0) & np.isfinite(est.error_bar))
        bar = np.where(ok, est.error_bar, np.inf)
        gap_bar = np.where(ok, ladder.K_GAP * sigma / np.where(ok, step, 1.0), np.inf)
    return ladder.Level(step, value, right, left, bar, gap_bar, ok)


def scheme_pass(chunks: list[Chunk], entries: Callable[[int, np.ndarray, np.ndarray],
                                                       np.ndarray],
                f0: float, noise: ecnoise.Noise, allow_of, relative_step: bool) -> None:
    """Keep the entries the scheme's first look passes (``c.by_scheme``;
    :func:`gradcheck.judge.ladder.single_step_pass`: ``|a - n| + bar ≤ A`` without a jump in
    the one-sided slopes) and replace the first level of every other entry by the central one
    at ``h0`` (:func:`central_first`), where the ladder starts."""
    for c in chunks:
        allow = allow_of(c)
        c.by_scheme = ladder.single_step_pass(c.a, c.first, allow) & np.isfinite(c.a)
        c.central_step = first_steps(c.x, None, False, noise.relative(f0))
        rest = np.flatnonzero(~c.by_scheme)
        c.relative = np.zeros(c.idx.size, bool)
        if rest.size:
            lv, moved = central_first(c, rest, entries, f0, noise, None, relative_step)
            ladder.put(c.first, rest, lv)
            c.relative[rest] = moved
            c.central_step[rest] = lv.step


def model_floor(chunks: list[Chunk], grads_rms: float) -> float:
    """The model's gradient scale ``S``: the smaller of the RMS of the analytic gradient and
    the RMS of the first numerical estimates (neither a wrong backward nor a noisy estimate
    can inflate it)."""
    vals = [c.first.central[c.first.finite] for c in chunks if c.first is not None]
    return min(grads_rms, metrics.rms(np.concatenate(vals)) if vals else 0.0)


Moves = Callable[[int, np.ndarray], group.MoveLoss]
Entries = Callable[[int, np.ndarray, np.ndarray], np.ndarray]
Allowance = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Probe:
    """How one chunk's entries are measured and judged: ``entries(leaf, idx, points)`` is the
    loss with entries ``idx`` set to each point, ``moves(leaf, idx)`` the loss with them set
    together (for the group look); ``f0`` and ``noise`` the base loss and its measured noise;
    ``allow(a, n)`` the tolerance in absolute units."""

    entries: Entries
    moves: Moves
    f0: float
    noise: ecnoise.Noise
    allow: Allowance

    def level(self, c: Chunk, pos: np.ndarray, steps: np.ndarray) -> ladder.Level:
        """The :class:`~gradcheck.judge.ladder.Level` of entries ``pos`` of ``c`` at
        ``steps``."""
        return ladder.measure_level(self.on(c, pos), c.x[pos], steps, self.f0,
                                    self.noise.sigma, c.dtype)

    def on(self, c: Chunk, pos: np.ndarray) -> ladder.Evaluate:
        """The ladder's ``evaluate(mask, points)`` for entries ``pos`` of ``c``."""
        return lambda m, pts: self.entries(c.leaf, c.idx[pos[m]], pts)


def judge_chunk(c: Chunk, probe: Probe, strict: bool
                ) -> tuple[dict[str, np.ndarray], significance.Significant | None,
                           group.Group | None]:
    """Verdicts for one chunk: a pass at the first step, the ladder for the rest (at most
    ``MAX_REEXAMINE`` would-be failures first), then the significance screen of the passed
    entries (FAIL for the confirmed ones with ``strict``), and the entries no step decided
    judged together (:mod:`gradcheck.judge.group`). Returns the per-entry arrays (status,
    numeric, bar, note), the :class:`~gradcheck.judge.significance.Significant` record or
    ``None``, and the :class:`~gradcheck.judge.group.Group` that fails the tensor or
    ``None``."""
    first = c.first
    n = c.a.size
    allow = probe.allow
    status = np.full(n, PASS, np.int8)
    numeric = first.central.copy()
    bar = first.rounding + c.analytic_bar
    note = np.full(n, "", dtype=object)
    step = first.step.copy()      # the step each entry was decided at
    passed0 = ladder.single_step_pass(c.a, first, allow) & np.isfinite(c.a)
    if c.by_scheme is not None:   # another scheme's pass: the screen starts at the central h0
        passed0 |= c.by_scheme
        step[c.by_scheme] = c.central_step[c.by_scheme]
    todo = np.flatnonzero(~passed0)
    with np.errstate(invalid="ignore"):
        failing0 = first.finite & (np.abs(c.a - first.central) > np.maximum(
            allow(c.a, first.central), ladder.K_FAIL * first.rounding + c.analytic_bar))
    fails = np.flatnonzero(failing0 & ~passed0)
    rest_fail = np.zeros(0, int)
    if fails.size > MAX_REEXAMINE:
        subset = fails[np.linspace(0, fails.size - 1, MAX_REEXAMINE).astype(int)]
        out = _ladder(c, subset, probe)
        confirmed = int(np.count_nonzero(out.status == FAIL))
        _store(out, subset, status, numeric, bar, note)
        step[subset] = out.step
        if confirmed >= CONFIRMED:
            rest_fail = np.setdiff1d(fails, subset)
            status[rest_fail] = FAIL
            note[rest_fail] = (f"not re-examined: {confirmed} of {subset.size} re-examined "
                               "entries of this tensor confirm the failure")
        todo = np.setdiff1d(todo, np.concatenate([subset, rest_fail]))
    if todo.size:
        out = _ladder(c, todo, probe)
        _store(out, todo, status, numeric, bar, note)
        step[todo] = out.step
    sig, grp = None, None
    cand = (status == PASS) & c.first.finite
    if cand.any() and significance.is_candidate(c.a, numeric, bar, cand):
        verdicts = {"status": status, "numeric": numeric, "note": note}
        sig, unconfirmed = _significant(c, cand, probe, strict, step, verdicts)
        if unconfirmed:
            # kinks at every step of the entries: look along the tensor's own direction
            sig, grp = _together_significant(c, np.flatnonzero(cand), probe, strict, numeric)
    undecided = np.flatnonzero((status == INCONCLUSIVE) & np.isfinite(c.a))
    if grp is None and undecided.size >= 2 and not np.any(status == FAIL):
        grp = group.fail_look(_members(c, undecided, allow), numeric[undecided], probe.f0,
                              probe.noise.sigma, probe.moves(c.leaf, c.idx[undecided]))
    if c.relative is not None and c.relative.any():
        note[c.relative] = [f"{RELATIVE_NOTE}; {n}" if n else RELATIVE_NOTE
                            for n in note[c.relative]]
    return {"status": status, "numeric": numeric, "bar": bar, "note": note}, sig, grp


def _significant(c: Chunk, cand: np.ndarray, probe: Probe, strict: bool, step: np.ndarray,
                 verdicts: dict[str, np.ndarray]) -> tuple[significance.Significant | None, bool]:
    """The significance screen of a candidate tensor's passed entries ``cand``
    (:mod:`gradcheck.judge.significance`; ``step``: the step each entry was decided at),
    updating the arrays ``status``, ``numeric`` and ``note`` of ``verdicts`` in place: FAIL
    for the confirmed entries that are wrong at the tensor's own gradient scale, or with
    ``strict``. Returns the report (``None`` when none stands) and whether too few entries
    validated to tell (kinks at every step)."""
    status, numeric, note = verdicts["status"], verdicts["numeric"], verdicts["note"]
    pick = significance.pick(c.a, cand)
    valid, z, numeric[pick] = _confirm(c, pick, probe, step)
    with np.errstate(divide="ignore", invalid="ignore"):
        zden = probe.allow(c.a[pick], numeric[pick]) / c.tol
    sig = significance.report(c.name, c.a[pick], numeric[pick], z, valid, zden)
    if sig is None:
        return None, np.count_nonzero(valid) < min(significance.MIN_CONFIRMED, valid.size)
    bad = pick[valid & (z > significance.Z_SIGNIFICANT)]
    own = float(np.median(tensor_relative(c, pick, numeric)[valid]))
    if own > c.tol:
        # wrong at the tensor's own scale, hidden only by the model's larger gradients
        status[bad] = FAIL
        note[bad] = (f"wrong by a relative {own:.1e} at this tensor's own gradient scale "
                     f"({sig.sigmas:.0f} validated error bars); only the model's larger "
                     "gradients keep it below the tolerance")
        return None, False
    if strict:
        status[bad] = FAIL
        note[bad] = (f"strict: below the tolerance but {sig.sigmas:.0f} times its error bar "
                     "(a small but significant discrepancy)")
    return sig, False


def _members(c: Chunk, pos: np.ndarray, allow) -> group.Members:
    """Entries ``pos`` of a chunk as a :class:`~gradcheck.judge.group.Members`: tolerance
    ``A_i = allow(a_i, a_i)``, first step the median of theirs, cap ``UP_CAP·max(scale, 1)``
    (a float32 loss at a small init scale needs steps beyond the tensor's own scale; the
    group's triple validation, not the cap, keeps kinks out)."""
    a = c.a[pos]
    eps = float(np.finfo(c.dtype).eps) if np.issubdtype(c.dtype, np.floating) else 0.0
    return group.Members(c.name, c.x[pos], a, allow(a, a), c.analytic_bar[pos], eps,
                         float(np.median(_central_steps(c)[pos])), UP_CAP * max(c.scale, 1.0))


def _central_steps(c: Chunk) -> np.ndarray:
    """The central step of each entry's first look (``h0`` where another scheme's passed)."""
    return c.first.step if c.central_step is None else c.central_step


def _together_significant(c: Chunk, pos: np.ndarray, probe: Probe, strict: bool,
                          numeric: np.ndarray) -> tuple[significance.Significant | None,
                                                        group.Group | None]:
    """The significance screen along the tensor's analytic direction and its estimates'
    residual ``numeric - a`` (:func:`gradcheck.judge.group.significance_look`): a report, or
    a failing group when the discrepancy is beyond the tolerance at the tensor's own gradient
    scale ``‖a‖`` (or ``strict``)."""
    m = _members(c, pos, probe.allow)
    g = group.significance_look(m, probe.f0, probe.noise.sigma, probe.moves(c.leaf, c.idx[pos]),
                                numeric[pos])
    if g is None or g.sigmas <= significance.Z_SIGNIFICANT:
        return None, None
    # relative to ‖a‖, the largest derivative along any unit direction (along the residual,
    # a·u may be tiny): a lower bound on the tensor's own relative error ‖e‖/‖a‖
    norm = float(np.linalg.norm(m.a))
    own = g.discrepancy / norm if norm else float("inf")
    if own > c.tol:
        return None, replace(g, failed=True, kind=group.OWN_SCALE, own=own)
    if strict:
        return None, replace(g, failed=True, kind=group.STRICT)
    relative = g.discrepancy / (g.allowance / c.tol)
    cause = (f"a uniform relative error of {g.scale:+.1e} along it, or a small term wrong "
             "under a larger one" if g.scale is not None else significance.SMALL_TERM)
    return significance.Significant(c.name, relative, g.sigmas, g.entries, g.scale, cause,
                                    how=f"along {g.direction}, at validated steps"), None


def tensor_relative(c: Chunk, pick: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, S_T)`` with ``S_T`` the tensor's own gradient scale (the
    smaller of its RMS analytic and RMS first estimate)."""
    s_t = min(metrics.rms(c.a), metrics.rms(c.first.central[c.first.finite]))
    a, n = c.a[pick], numeric[pick]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), max(s_t, 1e-300))


def _confirm(c: Chunk, pick: np.ndarray, probe: Probe, steps: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the picked entries' estimates for the significance screen on three steps
    ``4s, s, s/4`` around the step ``s`` each was decided at (see
    :func:`gradcheck.judge.significance.confirm`). Returns validity, discrepancies in error
    bars, and the estimates at ``s``."""
    def level(s: np.ndarray) -> ladder.Level:
        return probe.level(c, pick, s)

    s = steps[pick]
    first = c.first.take(pick)
    central = c.by_scheme is None or not c.by_scheme[pick].any()
    mid = first if central and np.array_equal(s, first.step) else level(s)
    big, small = level(s * ladder.RATIO), level(s / ladder.RATIO)
    valid, z = significance.confirm(big, mid, small, c.a[pick], c.analytic_bar[pick])
    return valid, z, mid.central


#: The averaged last look costs ~4·``ladder.AVERAGE`` evaluations per entry: it runs for the
#: stragglers of a tensor (at most this share of its checked entries, or ``AVERAGED_MIN`` of a
#: tensor checked in full), not for a tensor the loss's noise swamps wholesale, where it would
#: multiply the check's cost.
AVERAGED_SHARE = 0.15
AVERAGED_MIN = 16


def averaging_budget(c: Chunk) -> float:
    """How many stragglers of a chunk the averaged last look may take: ``AVERAGED_SHARE`` of
    its checked entries, and at least ``AVERAGED_MIN`` when the tensor is checked in full (a
    small bias). A sample has no such floor: with ``sample=8`` the floor would be the whole
    sample, about a hundred evaluations per checked entry on a float32 loss."""
    share = AVERAGED_SHARE * c.idx.size
    return share if c.sampled else max(AVERAGED_MIN, share)


def _ladder(c: Chunk, pos: np.ndarray, probe: Probe) -> ladder.Outcome:
    """The ladder for entries ``pos``, then two last looks for those it left undecided by
    noise or truncation (a float32 loss's noise, not a kink, is what stops them): the entries
    estimated together by least squares over joint moves
    (:func:`gradcheck.judge.regression.regression_pass`), then the averaged look
    (:func:`gradcheck.judge.ladder.averaged_pass`) for the few still left. Neither can FAIL
    an entry."""
    cap = np.maximum(UP_CAP * np.maximum(np.abs(c.x[pos]), c.scale), c.first.step[pos])
    f0, sigma, allow = probe.f0, probe.noise.sigma, probe.allow
    out = ladder.decide(probe.on(c, pos), c.x[pos], c.a[pos], c.first.take(pos), f0, sigma,
                        c.dtype, allow, c.analytic_bar[pos], cap)
    if out.why is None:
        return out
    again = _undecided(out, c.a[pos])
    if again.size and c.dtype == np.float64:
        _regression(c, pos, again, out, cap, probe)
        again = _undecided(out, c.a[pos])
    if again.size == 0 or again.size > averaging_budget(c):
        return out  # none left, or so many that averaging would multiply the check's cost
    sub = pos[again]
    ok, num, bar, step, _ = ladder.averaged_pass(
        probe.on(c, sub), c.x[sub], c.a[sub], out.step[again], cap[again], f0, sigma, c.dtype,
        allow)
    for k in np.flatnonzero(ok):
        i = again[k]
        out.status[i], out.numeric[i], out.step[i] = PASS, num[k], step[k]
        out.error_bar[i] = bar[k] + c.analytic_bar[sub[k]]
        out.note[i] = (f"agrees at step {step[k]:.1e} (the mean of {ladder.AVERAGE} jittered "
                       "steps: the loss's noise swamps a single one)")
    return out


def _undecided(out: ladder.Outcome, a: np.ndarray) -> np.ndarray:
    """Positions the ladder left inconclusive by noise or truncation."""
    return np.flatnonzero((out.status == INCONCLUSIVE) & np.isfinite(a)
                          & np.isin(out.why, ("noise", "truncation")))


def _regression(c: Chunk, pos: np.ndarray, again: np.ndarray, out: ladder.Outcome,
                cap: np.ndarray, probe: Probe) -> None:
    """The joint least-squares look (:mod:`gradcheck.judge.regression`) for entries
    ``pos[again]``, updating ``out`` in place for those it passes."""
    sub = pos[again]
    look = regression.regression_pass(lambda blk: probe.moves(c.leaf, c.idx[sub[blk]]),
                                      c.x[sub], c.a[sub],
                                      out.step[again], cap[again], probe.f0,
                                      probe.noise.sigma, probe.allow)
    out.evaluations += look.evaluations
    for k in np.flatnonzero(look.passed):
        i = again[k]
        out.status[i], out.numeric[i], out.step[i] = PASS, look.numeric[k], look.step[k]
        out.error_bar[i] = look.bar[k] + c.analytic_bar[sub[k]]
        out.note[i] = (f"agrees at step {look.step[k]:.1e}, estimated together with "
                       f"{again.size - 1} other entries by least squares over joint moves "
                       "(validated at three steps; the loss's noise swamps one entry's "
                       "difference)")


def _store(out: ladder.Outcome, pos, status, numeric, bar, note) -> None:
    status[pos] = out.status
    numeric[pos] = out.numeric
    bar[pos] = out.error_bar
    note[pos] = out.note


def allowance_factory(floor: float, measure: str, denominator: str
                      ) -> Callable[[Chunk], Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """``allow(a, n) = tol·Z`` with ``Z = denominator(a, n)`` floored at the model's gradient
    scale, or ``tol`` for the absolute measure."""
    def of(c: Chunk):
        def allow(a: np.ndarray, n: np.ndarray) -> np.ndarray:
            if measure == "absolute":
                return np.full(np.shape(a), c.tol)
            with np.errstate(invalid="ignore"):
                return c.tol * metrics.denominator(a, np.nan_to_num(n, nan=0.0, posinf=0.0,
                                                                     neginf=0.0),
                                                   denominator, floor)
        return allow
    return of




def applies(state: Run) -> bool:
    """Whether this engine decides: a real scheme (any step, ``"auto"`` included), the second
    look on, and a measured noise."""
    return (not state.scheme.is_complex and state.plan.second_look
            and state.measured is not None)


def run(state: Run, idxs: list[np.ndarray]) -> list[TensorReport | None]:
    """Verdicts for every tensor (``None`` where no entry is selected): the first level
    everywhere, the model's scale ``S``, then the ladder and the significance screen."""
    plan, noise, f0 = state.plan, state.measured, state.f0
    loss_tol = noise_tolerance(noise.relative(f0))
    chunks = []
    for i, leaf in enumerate(state.leaves):
        grad = state.grads[i]
        a_dtype = grad.dtype if np.issubdtype(grad.dtype, np.inexact) else np.dtype(np.float64)
        tol = max(effective_tol(plan.tol, a_dtype), loss_tol)
        chunks.append(make_chunk(i, leaf.name, idxs[i], state.work.arrays[i], grad, tol))
    model_scale = metrics.chunked_rms(state.work.arrays)
    for c, a in zip(chunks, state.work.arrays):
        c.scale = metrics.chunked_rms([a]) or model_scale or 1.0
    live = [c for c in chunks if c.idx.size]
    entries = state.numeric.entries
    count0 = state.numeric.count

    def moves(leaf: int, index: np.ndarray) -> group.MoveLoss:
        return lambda values: state.numeric.directions([(leaf, index, v) for v in values])

    central = state.scheme.name == "central"
    if central:
        h = None if state.h in (None, "auto") else float(state.h)
        measure_first(live, entries, f0, noise, h, plan.relative_step, state.grad_scale)
    else:
        for c in live:
            c.first = scheme_first(c, entries, state.scheme, state.h, plan.relative_step, f0,
                                   state.noise, noise.sigma)
    # Z never below the model's own gradient scale (issue #10: a floor of 1e-8 swamps a loss
    # of 1e-15); an explicit floor can only raise it
    floor = max(model_floor(live, state.grad_scale), float(plan.floor or 0.0), 1e-300)
    allow_of = allowance_factory(floor, plan.measure, plan.denominator)
    if not central:
        scheme_pass(live, entries, f0, noise, allow_of, plan.relative_step)
    out: list[TensorReport | None] = []
    for c, leaf in zip(chunks, state.leaves):
        if c.idx.size == 0:
            out.append(None)
            continue
        probe = Probe(entries, moves, f0, noise, allow_of(c))
        arrays, sig, grp = judge_chunk(c, probe, plan.strict)
        if state.rescue is not None:
            rescue(c, arrays, state.rescue, allow_of(c))
        if not central:
            arrays["note"] = attribute(c, arrays["note"], state.scheme.name)
        num = arrays["numeric"]
        with np.errstate(invalid="ignore", over="ignore"):
            abs_err = metrics.absolute_error(c.a, num)
            err = metrics.error(c.a, num, plan.measure, plan.denominator, floor)
        t = TensorReport(leaf.name, leaf.shape, str(leaf.array.dtype), c.idx, c.a, num, err,
                         abs_err, arrays["bar"], arrays["status"], arrays["note"])
        t.significant, t.group = sig, grp
        out.append(t)
    if state.progress is not None:  # the ladder's evaluations beyond 2 per entry
        extra = state.numeric.count - count0 - plan.scheme.evaluations * sum(
            c.idx.size for c in live)
        if extra > 0:
            state.progress.add_total(extra)
    return out


def rescue(c: Chunk, arrays: dict[str, np.ndarray], evaluator, allow) -> None:
    """``method="auto"``: the complex step ``Im f(θ + ih)/h`` (probed safe for this forward,
    :mod:`gradcheck.estimate.complex_safety`) for the entries the ladder left inconclusive,
    updating ``arrays`` in place. Its error bar is ``~4ε|n|`` with no truncation or
    cancellation (Squire & Trapp, SIAM Review 40(1), 1998), and it is taken at θ itself, so no
    kink lies inside a step: **pass** when ``|a - n| + bar ≤ A``, **FAIL** when
    ``|a - n| > max(A, K_FAIL·bar)``."""
    pos = np.flatnonzero((arrays["status"] == INCONCLUSIVE) & np.isfinite(c.a))
    if pos.size == 0:
        return
    scheme = get_scheme("complex")
    pts = scheme.points(c.x[pos], np.full(pos.size, scheme.default_h), np.complex128)
    est = scheme.combine(c.x[pos], pts, evaluator.entries(c.leaf, c.idx[pos], pts), 0.0, 0.0)
    a, n = c.a[pos], est.value
    bar = est.error_bar + c.analytic_bar[pos]
    with np.errstate(invalid="ignore"):
        A = allow(a, n)
        ok = np.isfinite(n) & (np.abs(a - n) + bar <= A)
        bad = np.isfinite(n) & (np.abs(a - n) > np.maximum(A, ladder.K_FAIL * bar))
    for k in np.flatnonzero(ok | bad):
        i = pos[k]
        arrays["status"][i] = PASS if ok[k] else FAIL
        arrays["numeric"][i], arrays["bar"][i] = n[k], bar[k]
        arrays["note"][i] = ("complex step: " + ("agrees" if ok[k] else "disagrees")
                             + " (the central ladder could not decide)")


def attribute(c: Chunk, note: np.ndarray, scheme: str) -> np.ndarray:
    """Per-entry notes that say which estimate decided: ``scheme`` for the entries its first
    look passed, central differences for the others."""
    out = note.copy()
    for i in range(out.size):
        how = scheme if c.by_scheme is not None and c.by_scheme[i] else "central"
        if not str(out[i]).startswith("complex step"):
            out[i] = f"{how}: {out[i]}" if out[i] else f"{how}"
    return out


def notes(state: Run, tensors: list[TensorReport]) -> list[str]:
    """What the engine did that the reader should know: a loss noisier than its dtype (and
    the tolerance that allows), params so large that steps are relative, entries moved by a
    relative step because the absolute one was unusable."""
    if not applies(state):
        return []
    out = []
    if state.scheme.name != "central":
        out.append(f"method {state.scheme.name}: its estimates passed the entries noted "
                   f"'{state.scheme.name}'; every other entry was decided by validated central "
                   "differences (noted 'central'), the only evidence that can FAIL an entry"
                   + (" (and the complex step where they stayed inconclusive)"
                      if state.rescue is not None else "") + ".")
    rel = state.measured.relative(state.f0)
    loss_tol = noise_tolerance(rel)
    if loss_tol > state.plan.tol:
        out.append(f"The loss's measured noise is {rel:.1e} of its value (a forward that "
                   "computes in low precision inside, or a loss with a large constant part): "
                   "steps follow that noise and entries are judged with tol = "
                   f"max({state.plan.tol:g}, √noise) = {loss_tol:.1e}.")
    if state.plan.relative_step and state.h in (None, "auto"):
        out.append("relative_step=True changes only an explicit h: the default step, "
                   f"{H_FACTOR:g}·(σ/|f|)^(1/3)·max(|θ|, 1), is already relative to |θ| where "
                   "|θ| > 1 (pass h=... to step h·|θ| everywhere).")
    big = max((metrics.chunked_max_abs(a) for a in state.work.arrays), default=0.0)
    if big >= LARGE:
        out.append(f"Params as large as {big:.1e}: their steps are relative to |θ| (an "
                   "absolute step would not change them at all).")
    moved = sum(int(sum(RELATIVE_NOTE in str(n) for n in t.notes)) for t in tensors)
    if moved:
        out.append(f"{moved} entr{'y' if moved == 1 else 'ies'} with small |θ| gave a "
                   "non-finite or unusable loss at the absolute step: they were moved by a "
                   f"{RELATIVE_NOTE} instead.")
    return out
