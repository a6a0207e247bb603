r"""Directional check per tensor, and localisation of wrong elements by group testing.

Directional test
----------------
For a tensor :math:`x \in \mathbb R^n` with analytic gradient :math:`g`, draw a direction
:math:`v_i = s_i m_i` with Rademacher signs :math:`s_i = \pm 1` and magnitudes
:math:`m_i \sim U[1, 2)`, and set :math:`u = v/\lVert v\rVert`. Every element keeps a weight
:math:`|u_i| \ge 1/\lVert v\rVert \approx 1/\sqrt{7n/3}` (a Gaussian direction has elements
of weight near zero), and two equal errors cannot cancel exactly (with pure ±1 signs they
cancel with probability ½ — a real risk, since bugs often put the same error in several
entries). Moving the whole tensor to :math:`x_\pm = \mathrm{fl}(x \pm t u)` and
writing :math:`d = x_+ - x_-` for the displacement actually taken,

.. math::

    N = \frac{f(x_+) - f(x_-)}{\lVert d \rVert}, \qquad
    A = \frac{\langle g, d \rangle}{\lVert d \rVert},

estimate the same directional derivative: :math:`N - A = \langle \nabla f - g, \hat d\rangle
+ O(t^2)`. Two evaluations per tensor instead of two per element (the idea of PyTorch's
``fast_mode`` and of HIPS autograd's ``check_grads``). What differs here is the threshold:
not PyTorch's ``atol·Σu·Σv`` — which grows with :math:`\sqrt n` and lets an isolated error of
``atol·n`` pass — but the error bar of the difference itself:

.. math::

    |N - A| \le \underbrace{\frac{2\,\eta}{\lVert d\rVert}}_{\text{rounding}}
      + \underbrace{c\,\varepsilon_g\,\frac{\lVert (|g| + s_g) \odot d \rVert}
      {\lVert d \rVert}}_{\text{analytic precision}},

with :math:`\eta` the rounding noise of one loss evaluation (see :func:`gradcheck.estimate.noise.
noise_level`), :math:`\varepsilon_g` the precision of the analytic gradient's dtype,
:math:`s_g` the RMS of :math:`g` and :math:`c` = ``ANALYTIC_ULPS``. An isolated error
:math:`\delta` in element :math:`i` contributes :math:`\delta u_i`, so the smallest error
detectable in every element is the bar times :math:`\lVert v\rVert/\min_i |v_i|
\approx \sqrt{7n/3}` — reported per tensor as ``detectable``.

Truncation (:math:`t^2 D^3 f[u,u,u]/6`) is not in the first bar: when the first pair fails,
a second pair at :math:`2t` tells truncation from a wrong gradient. Truncation grows 4× with
the step, a gradient error does not, so the Richardson combination
:math:`\rho^* = (4\rho(t) - \rho(2t))/3` of the residuals :math:`\rho = N - A` removes the
:math:`t^2` term (Richardson 1911; Nocedal & Wright, *Numerical Optimization*, §8.1).

Localisation
------------
A failing group (initially the whole tensor) is split into two halves, each tested with
:math:`v` restricted to it and renormalised (so an isolated error weighs about
:math:`1/\sqrt{|G|}`, more as groups shrink); failing halves are split again, down to groups
of at most ``leaf_group`` elements, which are checked elementwise — so located elements
appear in the report exactly as the elementwise check lists them. This is adaptive group
testing (Dorfman 1943; Du & Hwang, *Combinatorial Group Testing*, 2000): about
:math:`4\,b \log_2 n` evaluations for :math:`b` wrong elements among :math:`n` (both halves
of a failing group are tested; the failing one takes a second pair). When more than
``max_groups`` groups of a tensor fail at one level, most of the tensor is wrong: splitting
stops and ``sample`` entries of the failing groups are checked elementwise instead; likewise
when at least ``DENSE_GROUPS`` groups and ``DENSE_SHARE`` of those tested at a level fail.

Memory
------
A group is always a contiguous span ``[start, stop)`` of the flat tensor (halves of halves),
so it is two integers, not an index array. The direction is regenerated from its seed chunk
by chunk (:mod:`gradcheck.params.directions`), and every sum over a group — the displacement
:math:`d`, :math:`\langle g, d\rangle`, :math:`\lVert d\rVert`, the analytic bar — is
accumulated chunk by chunk from the working array and the analytic gradient as they are.
The moves handed to the evaluator are descriptions (:class:`~gradcheck.params.directions.
DirectionMove`), whose values the evaluator computes chunk by chunk too; what the check
holds beyond the params and the gradient is what the evaluator keeps to restore the moved
entries exactly (at most one copy of the largest tensor, none when the numerics run on a
promoted float64 copy of float32 params), plus O(chunk) temporaries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gradcheck.judge.tolerance import ANALYTIC_ULPS
from gradcheck.modes import elementwise
from gradcheck.modes.run import Run
from gradcheck.params.directions import (
    Direction,
    DirectionMove,
    DirectionStats,
    moved_values,
    read_flat,
    spans,
)
from gradcheck.report.results import TensorReport

#: Groups this small are checked elementwise (2 evaluations per entry) instead of split.
LEAF_GROUP = 4
#: More failing groups than this at one level: stop splitting and sample.
MAX_GROUPS = 16
#: At least this many failing groups at one level, and at least DENSE_SHARE of those tested:
#: the error is dense (most of the tensor is wrong), so stop splitting and sample.
DENSE_GROUPS = 8
DENSE_SHARE = 0.75
#: Entries checked elementwise when sampling instead of localising.
SAMPLE = 64
#: A failing child skips the second pair when its excess residual exceeds this many times the
#: truncation its parent measured (the disagreement is then clearly not truncation).
SKIP_FACTOR = 10.0
#: Share of the truncation change allowed as the t⁴ remainder after Richardson extrapolation.
RICHARDSON_MARGIN = 0.25

Span = tuple[int, int]


@dataclass
class DirectionalResult:
    """The directional test of one tensor and what its localisation spent and found.

    Attributes
    ----------
    tensor, size : the tensor and its number of elements.
    analytic, numeric : ``⟨g, d̂⟩`` and ``(f(x₊) − f(x₋))/‖d‖`` for the whole tensor.
    abs_error, error_bar : ``|numeric − analytic|`` and its error bar (after the second step
        when one was taken).
    step : ``t``, the length of the step along the unit direction (see :func:`step_length`).
    passed : the whole-tensor test passed.
    detectable : smallest error on any one element that this test is sure to detect
        (``bar · ‖v‖ / min|v_i|``, about ``bar · √(7n/3)``);
        ``detectable_relative`` divides it by the RMS analytic gradient of the tensor.
    evaluations : loss evaluations spent on this tensor (tests, then elementwise entries).
    tests : group tests run (each 2 or 4 evaluations).
    located : entries checked elementwise after localisation (or sampled).
    sampled : localisation stopped because most of the tensor is wrong, and entries were
        sampled instead.
    seed : seed of the random directions (``sample_seed``).
    note : one sentence when something needs saying.
    """

    tensor: str
    size: int
    analytic: float
    numeric: float
    abs_error: float
    error_bar: float
    step: float
    passed: bool
    detectable: float
    detectable_relative: float
    evaluations: int = 0
    tests: int = 0
    located: int = 0
    sampled: bool = False
    seed: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as the strings "nan", "inf", "-inf")."""
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            if isinstance(v, (float, np.floating)):
                v = float(v)
                if not np.isfinite(v):
                    v = "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
            out[k] = v
        return out


@dataclass
class Group:
    """The entries ``[start, stop)`` (flat) of one tensor, tested together along ``v``
    restricted to them."""

    leaf: int
    start: int
    stop: int
    depth: int = 0
    parent: int = -1   # position of the parent in its TensorState.failing, -1 for the root
    truncation: float = np.inf  # the parent's truncation estimate at step t (inf: unknown)

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Outcome:
    """Result of one group test."""

    passed: bool
    analytic: float
    numeric: float
    abs_error: float
    error_bar: float
    evaluations: int
    truncation: float = np.inf  # |ρ(2t) − ρ(t)|/3 ≈ the t² term at step t, when measured


@dataclass
class TensorState:
    """Per-tensor bookkeeping of the localisation. Holds references, never copies."""

    work: np.ndarray         # the working array (perturbed by the evaluator), read here
    grad: np.ndarray         # the analytic gradient as the user gave it, read here
    direction: Direction     # the random direction, regenerated from its seed
    stats: DirectionStats    # per-chunk norms and extremes of the direction
    g_eps: float             # precision of the analytic gradient's dtype
    analytic_ulps: float     # rounding of the analytic gradient, in ulps of its dtype
    s_g: float = 0.0         # RMS of the finite analytic entries
    finite: bool = True      # every analytic entry is finite
    h: float = 1e-5          # largest move of any one entry
    target: float = 0.0      # error on one element the test should resolve (tol · RMS g)
    noise: float = 0.0       # rounding noise of one loss evaluation
    root: Outcome | None = None
    evaluations: int = 0
    tests: int = 0
    located: list[np.ndarray] = field(default_factory=list)
    orphans: list[Span] = field(default_factory=list)
    failing: list[Span] = field(default_factory=list)
    sampled: bool = False

    @property
    def size(self) -> int:
        return int(self.work.size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.work.dtype)

    def grad_chunk(self, lo: int, hi: int) -> np.ndarray:
        """``g[lo:hi]`` as float64 (real part of a complex gradient)."""
        g = read_flat(self.grad, lo, hi)
        return (g.real if np.iscomplexobj(g) else g).astype(np.float64)


def random_direction(rng: np.random.Generator, n: int) -> np.ndarray:
    """``v_i = s_i·m_i``: Rademacher signs ``s_i = ±1`` times magnitudes ``m_i ~ U[1, 2)``
    (stored; the check itself regenerates its directions chunk by chunk, see
    :class:`~gradcheck.params.directions.Direction`).

    The signs make ``⟨δ, v⟩`` of a spread-out error behave like a random walk (no systematic
    cancellation with ``g``); the magnitudes keep every weight ≥ 1 and make an exact
    cancellation of equal errors a probability-zero event.
    """
    signs = rng.integers(0, 2, size=n).astype(np.float64) * 2.0 - 1.0
    return signs * rng.uniform(1.0, 2.0, size=n)


def step_length(state: TensorState, start: int, stop: int) -> float:
    r"""Length ``t`` of the step along the unit direction of the group ``[start, stop)``.

    An error ``δ`` on element ``i`` shows as ``δ·|u_i| ≥ δ·min|v|/‖v‖`` against a rounding
    bar ``η/t``, so resolving ``δ = target`` (``tol`` × the tensor's RMS gradient) needs
    ``t ≥ η·(‖v‖/min|v|)/target``. The step is that, but at least ``h`` (the elementwise
    step) and at most ``h·‖v‖/max|v|`` — no entry moves by more than ``h``, which bounds the
    truncation error like the elementwise check's.
    """
    norm, vmin, vmax = state.stats.span(start, stop)
    t_max = state.h * norm / vmax
    if state.target <= 0:
        return t_max
    t = state.noise * (norm / vmin) / state.target
    return float(min(max(t, state.h), t_max))


def group_moves(state: TensorState, group: Group, factor: float = 1.0
                ) -> tuple[list[DirectionMove], tuple[float, float, float]]:
    """The two moves ``x ± t·u`` (``u = v|_G / ‖v|_G‖``, ``t = factor ·`` :func:`step_length`)
    and the sums over the displacement ``d = x₊ − x₋`` that :func:`residual` needs:
    ``(⟨g, d⟩, ‖d‖², ‖g_bar ⊙ d‖²)`` with ``g_bar = c·ε_g·(|g| + s_g)``, accumulated chunk by
    chunk from the values the evaluator will write (:func:`~gradcheck.params.directions.
    moved_values`)."""
    norm = state.stats.span(group.start, group.stop)[0]
    coef = factor * step_length(state, group.start, group.stop) / norm
    gd = dd = gbd = 0.0
    bar = state.analytic_ulps * state.g_eps
    for lo, hi in spans(group.start, group.stop):
        x = read_flat(state.work, lo, hi)
        v = state.direction.values(lo, hi)
        d = (moved_values(x, coef, v, state.dtype).astype(np.float64)
             - moved_values(x, -coef, v, state.dtype).astype(np.float64))
        g = state.grad_chunk(lo, hi)
        gd += float(np.dot(g, d))
        dd += float(np.dot(d, d))
        np.abs(g, out=g)
        g += state.s_g
        g *= bar * d
        gbd += float(np.dot(g, g))
    moves = [DirectionMove(state.direction, group.start, group.stop, coef),
             DirectionMove(state.direction, group.start, group.stop, -coef)]
    return moves, (gd, dd, gbd)


def residual(sums: tuple[float, float, float], f_plus: float, f_minus: float, noise: float
             ) -> tuple[float, float, float, float]:
    """``(analytic, numeric, rounding bar, analytic bar)`` per unit length of ``d``.

    ``numeric = (f₊ − f₋)/‖d‖``; ``analytic = ⟨g, d⟩/‖d‖``; rounding ``2η/‖d‖`` (two
    evaluations, each within η); analytic bar ``‖g_bar ⊙ d‖/‖d‖`` (Cauchy–Schwarz bound of
    the rounding of ``g`` projected on ``d̂``). ``sums`` as :func:`group_moves` returns them.
    """
    gd, dd, gbd = sums
    norm = float(np.sqrt(dd))
    if norm == 0.0:
        return 0.0, 0.0, np.inf, 0.0
    analytic = gd / norm
    numeric = float(np.real(f_plus) - np.real(f_minus)) / norm
    rounding = 2.0 * noise / norm
    a_bar = float(np.sqrt(gbd)) / norm
    return analytic, numeric, rounding, a_bar


def run_tests(evaluator: Any, states: list[TensorState], groups: list[Group], noise: float
              ) -> list[Outcome]:
    """Test ``groups`` (all at once, so executors and batched forwards see one big call).

    First pair at step ``t`` (:func:`step_length`): pass when
    ``|N − A| ≤ rounding + analytic bar``. Groups that fail get a second pair at ``2t``
    (unless the parent's measured truncation is less than 1/``SKIP_FACTOR`` of the excess
    residual) and are judged on the Richardson-extrapolated residual
    ``(4ρ(t) − ρ(2t))/3`` with bar ``(4R(t) + R(2t))/3 + analytic bar + ¼|ρ(t) − ρ(2t)|``.
    """
    moves: list[DirectionMove] = []
    sums = []
    for g in groups:
        m, s = group_moves(states[g.leaf], g)
        moves += m
        sums.append(s)
    losses = evaluator.directions(moves)
    first = []
    retry = []
    for k in range(len(groups)):
        a, n, r, ab = residual(sums[k], losses[2 * k], losses[2 * k + 1], noise)
        first.append((a, n, r, ab))
        if not abs(n - a) <= r + ab:
            retry.append(k)
    outcomes = [Outcome(abs(n - a) <= r + ab, a, n, abs(n - a), r + ab, 2, g.truncation)
                for (a, n, r, ab), g in zip(first, groups)]
    # A child whose residual dwarfs its parent's measured truncation fails without a 2nd pair.
    retry = [k for k in retry if not abs(first[k][1] - first[k][0]) - outcomes[k].error_bar
             > SKIP_FACTOR * groups[k].truncation]
    if retry:
        moves, sums2 = [], {}
        for k in retry:
            m, s = group_moves(states[groups[k].leaf], groups[k], 2.0)
            moves += m
            sums2[k] = s
        losses2 = evaluator.directions(moves)
        for j, k in enumerate(retry):
            a1, n1, r1, ab = first[k]
            a2, n2, r2, _ = residual(sums2[k], losses2[2 * j], losses2[2 * j + 1], noise)
            rho1, rho2 = n1 - a1, n2 - a2
            rho = (4.0 * rho1 - rho2) / 3.0
            bar = (4.0 * r1 + r2) / 3.0 + ab + RICHARDSON_MARGIN * abs(rho1 - rho2)
            ok = bool(np.isfinite(rho) and abs(rho) <= bar)
            outcomes[k] = Outcome(ok, a1, a1 + rho, abs(rho), bar, 4, abs(rho2 - rho1) / 3.0)
    for g, o in zip(groups, outcomes):
        states[g.leaf].evaluations += o.evaluations
        states[g.leaf].tests += 1
    return outcomes


def sample_spans(rng: np.random.Generator, pool: list[Span], k: int) -> np.ndarray:
    """``k`` distinct flat indices drawn uniformly from the union of disjoint spans, in
    O(k + number of spans) memory (the union is never materialised): the same draw as
    ``rng.choice(np.concatenate([arange(a, b) for a, b in sorted(pool)]), k, replace=False)``."""
    pool = sorted(set(pool))
    starts = np.array([a for a, _ in pool], dtype=np.int64)
    lengths = np.array([b - a for a, b in pool], dtype=np.int64)
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if ends.size else 0
    k = min(k, total)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    j = np.asarray(rng.choice(total, size=k, replace=False), dtype=np.int64)
    which = np.searchsorted(ends, j, side="right")
    return starts[which] + (j - (ends[which] - lengths[which]))


def localise(evaluator: Any, states: list[TensorState], noise: float,
             rng: np.random.Generator, progress: Any = None, leaf_group: int = LEAF_GROUP,
             max_groups: int = MAX_GROUPS, sample: int = SAMPLE) -> None:
    """Test every tensor, then split failing groups level by level (breadth first).

    Fills each state's ``root``, ``located``, ``orphans`` (failing groups whose halves both
    passed: the error is spread or cancels) and ``sampled``.
    """
    frontier = [Group(i, 0, s.size) for i, s in enumerate(states) if s.size]
    while frontier:
        outcomes = run_tests(evaluator, states, frontier, noise)
        failing: dict[int, list[Group]] = {}
        tested: dict[int, int] = {}
        passed_children: dict[tuple[int, int], int] = {}
        outcome_of = {id(g): o.truncation for g, o in zip(frontier, outcomes)}
        for g, o in zip(frontier, outcomes):
            tested[g.leaf] = tested.get(g.leaf, 0) + 1
            if g.depth == 0:
                states[g.leaf].root = o
            if not o.passed:
                failing.setdefault(g.leaf, []).append(g)
        # a parent both of whose halves passed is an orphan (spread-out or cancelling error)
        for g, o in zip(frontier, outcomes):
            if g.depth and o.passed:
                key = (g.leaf, g.parent)
                passed_children[key] = passed_children.get(key, 0) + 1
        for (leaf, pid), count in passed_children.items():
            if count == 2 and pid >= 0:
                states[leaf].orphans.append(states[leaf].failing[pid])
        nxt: list[Group] = []
        for leaf, groups in failing.items():
            st = states[leaf]
            dense = len(groups) >= DENSE_GROUPS and len(groups) >= DENSE_SHARE * tested[leaf]
            if len(groups) > max_groups or dense:
                st.sampled = True
                drawn = sample_spans(rng, [(g.start, g.stop) for g in groups], sample)
                st.located.append(np.sort(drawn))
                continue
            for g in groups:
                if g.size <= leaf_group:
                    st.located.append(np.arange(g.start, g.stop, dtype=np.int64))
                    continue
                st.failing.append((g.start, g.stop))
                pid = len(st.failing) - 1
                mid = g.start + g.size // 2
                for a, b in ((g.start, mid), (mid, g.stop)):
                    nxt.append(Group(leaf, a, b, g.depth + 1, pid, outcome_of[id(g)]))
        if progress is not None and nxt:
            progress.add_total(2 * len(nxt) + 2)
        frontier = nxt


def entries_to_check(state: TensorState, rng: np.random.Generator, sample: int = SAMPLE
                     ) -> np.ndarray:
    """Located entries, plus a sample of the orphan groups (errors spread too thin to split)."""
    parts = list(state.located)
    if state.orphans:
        parts.append(sample_spans(rng, state.orphans, sample))
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts).astype(np.int64))


def make_state(leaf: int, work: np.ndarray, grad: np.ndarray, analytic_ulps: float,
               seed: int, h: float = 1e-5, tol: float = 1e-5, noise: float = 0.0
               ) -> TensorState:
    """Per-tensor state: references to the working array and the analytic gradient, the
    direction (seeded by ``(seed, leaf)``), the RMS gradient (one chunked pass), and what a
    step must resolve (``tol`` — at least ``√ε`` of the gradient's dtype — times the RMS
    analytic gradient)."""
    g = np.asarray(grad)
    g_dtype = g.dtype if np.issubdtype(g.dtype, np.inexact) else np.dtype(np.float64)
    eps = float(np.finfo(g_dtype).eps)
    n = int(np.size(work))
    direction = Direction(int(seed), int(leaf), n)
    state = TensorState(work=work, grad=g, direction=direction,
                        stats=DirectionStats(direction), g_eps=eps,
                        analytic_ulps=analytic_ulps, h=h, noise=noise)
    total, count = 0.0, 0
    for lo, hi in spans(0, n):
        chunk = state.grad_chunk(lo, hi)
        ok = np.isfinite(chunk)
        if not ok.all():
            state.finite = False
            chunk = chunk[ok]
        total += float(np.dot(chunk, chunk))
        count += chunk.size
    state.s_g = float(np.sqrt(total / count)) if count else 0.0
    tol = max(tol, float(np.sqrt(eps))) if eps > 1e-12 else tol
    state.target = tol * state.s_g
    return state


def summarise(name: str, state: TensorState, seed: int, checked: int,
              extra_evaluations: int) -> DirectionalResult:
    """The :class:`DirectionalResult` of one tensor (``checked`` entries were then checked
    elementwise at ``extra_evaluations`` evaluations)."""
    root = state.root
    n = state.size
    if root is None:  # empty tensor
        return DirectionalResult(name, n, 0.0, 0.0, 0.0, 0.0, 0.0, True, 0.0, 0.0, seed=seed)
    t = step_length(state, 0, n)
    s_g = state.s_g if state.finite else 0.0
    norm, vmin, _ = state.stats.span(0, n)
    detectable = float(root.error_bar * norm / vmin)
    note = ""
    if not root.passed:
        if state.sampled:
            note = (f"most of the tensor disagrees: localisation stopped and {checked} entries "
                    "were sampled")
        elif state.orphans:
            note = ("part of the disagreement is spread over many entries (no single entry "
                    "explains it); a sample of them was checked elementwise")
        else:
            note = f"localised to {checked} entries"
    if not state.finite:
        note = (note + "; " if note else "") + "the analytic gradient has NaN/Inf entries"
    return DirectionalResult(
        name, n, root.analytic, root.numeric, root.abs_error, root.error_bar, t, root.passed,
        detectable, detectable / s_g if s_g > 0 else float("inf"),
        state.evaluations + extra_evaluations, state.tests, checked, state.sampled, seed, note)


def run(state: Run, max_groups: int = MAX_GROUPS, sample: int = SAMPLE
        ) -> list[TensorReport]:
    """``mode="directional"``: a directional test of every tensor, localisation of the failing
    ones, and the located entries checked elementwise
    (:func:`gradcheck.modes.elementwise.check_entries`), so they appear in the report exactly as
    the elementwise mode lists them.

    The tests move every entry by at most the elementwise step (``1e-5`` when the run's scheme
    is the complex step, which has no real step of its own); the step is chosen to resolve an
    error of ``tol`` × the tensor's RMS gradient on a single element (:func:`step_length`).
    Directions and samples are seeded by the check's ``sample_seed``. Each tensor's report
    carries its :class:`DirectionalResult` in ``directional``.
    """
    h = state.nominal_h if not state.scheme.is_complex else 1e-5
    seed, evaluator = state.plan.sample_seed, state.evaluator
    rng = np.random.default_rng(seed)
    states = [make_state(i, w, g, ANALYTIC_ULPS, seed, h, state.plan.tol, state.noise)
              for i, (w, g) in enumerate(zip(state.work.arrays, state.grads))]
    localise(evaluator, states, state.noise, rng, state.progress, max_groups=max_groups,
             sample=sample)
    tensors = []
    for i, st in enumerate(states):
        idx = entries_to_check(st, rng, sample)
        before = evaluator.count
        tensor = elementwise.check_entries(state, i, idx)
        tensor.directional = summarise(state.leaves[i].name, st, seed, int(idx.size),
                                       evaluator.count - before)
        tensors.append(tensor)
    return tensors


def expected_evaluations(n_leaves: int) -> int:
    """About how many evaluations a directional check takes (for the progress bar's ETA)."""
    return 2 + 2 * n_leaves
