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

with :math:`\eta` the rounding noise of one loss evaluation, :math:`\varepsilon_g` the precision
of the analytic gradient's dtype, :math:`s_g` the RMS of :math:`g` and :math:`c` =
``ANALYTIC_ULPS``. An isolated error :math:`\delta` in element :math:`i` contributes
:math:`\delta u_i`, so the smallest error detectable in every element is the bar times
:math:`\lVert v\rVert/\min_i |v_i| \approx \sqrt{7n/3}` — reported per tensor as
``detectable``.

The loss's noise and the step
-----------------------------
The first test of every tensor takes :math:`\eta` from the loss's dtype (in the precision the
loss was computed in, :func:`gradcheck.estimate.ecnoise.assumed`), so a correct float64 model
costs two evaluations per tensor. As soon as one test does not pass outright, the noise is
measured (``Run.meter``, Moré & Wild's ECnoise, once per check), :math:`\eta = K_{round}\,
\sigma`, and the tests that did not pass are taken again when the measured noise is larger
than the assumed one. The step along the direction is as long as resolving the target needs
(:func:`step_length`), but at least the validated engine's first step adapted to a tensor,
:math:`h = H\,(\sigma/|f_0|)^{1/3}\max(\mathrm{RMS}(x), 1)`
(:func:`gradcheck.modes.validated.first_steps`; Gill, Murray & Wright, *Practical
Optimization* §8.6) or the user's numeric ``h``, and no entry moves by more than the
validated engine's largest step, ``UP_CAP`` times the parameters' scale.

The pass rule
-------------
A test *agrees* when :math:`|N - A|` is within its bar, and *resolves* when the error it must
detect is at least ``detectable``. That error is the per-entry **target**
:math:`\tau = \mathrm{tol}\cdot\max(s_g, S)` on any one entry (``tol`` at least
:math:`\sqrt{\varepsilon_g}` and :math:`\sqrt{\sigma/|f_0|}`, what the gradient's dtype and the
loss's noise allow, as in elementwise mode; :math:`S` the model's gradient scale) — or, where
the analytic gradient's own rounding summed along the direction hides that (float32 gradients
over many entries), an error of norm :math:`\tau\sqrt{n}` over the test's :math:`n` entries
(:func:`group_target`): a claim about the tensor's error as a whole, relative to its gradient
norm, as in PyTorch's fast gradcheck (each entry against its own tolerance is
``mode="elementwise"``). Besides, a uniform relative error :math:`\tau/s_g`
(a scale error shows as :math:`(\tau/s_g)\,|A|`, small when :math:`u` happens to be nearly
orthogonal to :math:`g`) is at least ``SCALE_MARGIN`` bars. Only a test that agrees *and*
resolves passes a tensor (:func:`classify`). A test that agrees without resolving says nothing
about an isolated error: its group is checked elementwise when it has at most ``FULL_CHECK``
entries; otherwise (and likewise when localisation stops to sample a mostly differing tensor)
the tensor is **inconclusive** unless a checked entry fails, with the reason — the loss's
noise, or the rounding of a low-precision analytic gradient summed along the direction — and
what would decide it. A tensor passes only when each of its entries is in a test that passed
or was checked elementwise.

Truncation (:math:`t^2 D^3f[u,u,u]/6`) is not in the first bar: when the first pair disagrees,
a second pair at :math:`2t` tells truncation from a wrong gradient. Truncation grows 4× with
the step, a gradient error does not, so the Richardson combination
:math:`\rho^* = (4\rho(t) - \rho(2t))/3` of the residuals :math:`\rho = N - A` removes the
:math:`t^2` term (Richardson 1911; Nocedal & Wright, *Numerical Optimization*, §8.1). A test
that still disagrees never FAILs a tensor by itself (a kink crossed by the step disagrees
too): it only localises the entries that the validated engine then judges.

Localisation
------------
A failing group (initially the whole tensor) is split into two halves, each tested with
:math:`v` restricted to it and renormalised (so an isolated error weighs about
:math:`1/\sqrt{|G|}`, more as groups shrink); failing halves are split again, down to groups
of at most ``leaf_group`` elements, whose entries are judged by the validated central-
difference engine of elementwise mode (:func:`gradcheck.modes.validated.run`: its ladder of
validated steps, kink test and group look), so located elements appear in the report as the
elementwise check lists them. This is adaptive group
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

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck.estimate import ecnoise
from gradcheck.judge import metrics
from gradcheck.judge.ladder import K_ROUND
from gradcheck.judge.tolerance import ANALYTIC_ULPS, effective_tol
from gradcheck.modes import elementwise, validated
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
#: A group this small that its test does not decide (it agrees without resolving, or most of
#: it differs) is checked whole, elementwise; a larger unresolved tensor has this many of its
#: entries checked (to catch a dense error) and is inconclusive unless one fails.
FULL_CHECK = 128
#: A failing child skips the second pair when its excess residual exceeds this many times the
#: truncation its parent measured (the disagreement is then clearly not truncation).
SKIP_FACTOR = 10.0
#: Share of the truncation change allowed as the t⁴ remainder after Richardson extrapolation.
RICHARDSON_MARGIN = 0.25
#: A uniform relative error of ``target/s_g`` must show as at least this many error bars.
SCALE_MARGIN = 2.0
#: The step aims at this share of the bar that resolves the target (the bar's formula is
#: approximate before the displacement is known).
AIM = 0.8

Span = tuple[int, int]

#: The three answers of a directional test (see :func:`classify`).
PASS, DIFFERS, UNRESOLVED = "pass", "differs", "unresolved"


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
    passed : the whole-tensor test passed: it agrees and resolves its target.
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
    result : ``"pass"``, ``"differs"`` or ``"unresolved"`` (agrees, but its error bar is too
        large to resolve the target), see :func:`classify`.
    target : the error on one element the test must resolve (``tol · max(s_g, S)``).
    inconclusive : the test did not resolve the tensor and its entries checked elementwise
        do not cover it: the tensor is inconclusive unless one of them fails.
    noise : the rounding bar ``η`` of one loss evaluation the test used;
        ``noise_measured`` : whether it rests on the measured noise (``Run.meter``).
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
    result: str = PASS
    target: float = 0.0
    inconclusive: bool = False
    noise: float = 0.0
    noise_measured: bool = False

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


@dataclass(frozen=True)
class LossNoise:
    """The loss's noise as the tests use it: ``eta`` bounds one evaluation's rounding
    (``max(Run.noise, K_ROUND·σ)``), ``rel = σ/|f0|`` sets the step and the tolerance,
    ``measured`` says whether it was measured (``Run.meter``) or assumed from the dtype."""

    eta: float
    rel: float
    measured: bool


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
    """Result of one group test: ``result`` is ``PASS``, ``DIFFERS`` or ``UNRESOLVED``."""

    result: str
    analytic: float
    numeric: float
    abs_error: float
    error_bar: float
    evaluations: int
    truncation: float = np.inf  # |ρ(2t) − ρ(t)|/3 ≈ the t² term at step t, when measured
    detectable: float = np.inf
    step: float = 0.0
    analytic_bar: float = 0.0  # the analytic gradient's own share of ``error_bar``

    @property
    def passed(self) -> bool:
        return self.result == PASS


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
    h: float = 1e-5          # the first step of one entry (from the loss's noise)
    reach: float = 1e-5      # largest move of any one entry (at least h)
    target: float = 0.0      # error on one element the test should resolve (tol · max(s_g, S))
    noise: float = 0.0       # rounding noise of one loss evaluation
    root: Outcome | None = None
    evaluations: int = 0
    tests: int = 0
    located: list[np.ndarray] = field(default_factory=list)
    orphans: list[Span] = field(default_factory=list)
    failing: list[Span] = field(default_factory=list)
    sampled: bool = False
    unresolved: bool = False  # some test agreed without resolving its target
    uncovered: bool = False   # some entries are neither in a passed test nor checked
    measured: bool = False    # ``noise`` rests on the measured noise

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


def unit_analytic(state: TensorState, start: int, stop: int) -> float:
    """``⟨g, u⟩`` with ``u = v|_G/‖v|_G‖``: the analytic directional derivative of the group
    ``[start, stop)``, known before any evaluation (one chunked pass)."""
    norm = state.stats.span(start, stop)[0]
    total = 0.0
    for lo, hi in spans(start, stop):
        g = state.grad_chunk(lo, hi)
        total += float(np.dot(np.where(np.isfinite(g), g, 0.0), state.direction.values(lo, hi)))
    return total / norm if norm > 0 else 0.0


def group_target(state: TensorState, start: int, stop: int) -> float:
    r"""The error a test of the ``n = stop - start`` entries ``[start, stop)`` must resolve.

    ``τ`` on any one entry (the per-entry target), when the analytic gradient's own rounding
    summed along the direction, ``b_g·‖v‖/min|v|``, leaves room for it. Where it does not —
    a float32 gradient over more than a few hundred entries — no step can resolve ``τ`` on
    one entry, and the test resolves errors by their norm instead: ``τ·√n``, ``tol`` times
    the group's gradient norm ``s_g·√n`` (floored at the model's scale), whether the error
    sits on one entry or is spread (a direction shows ``e`` as ``⟨e, u⟩ ≈ ‖e‖/√n`` either
    way; PyTorch's fast gradcheck makes the same claim). Each entry against its own
    tolerance is then ``mode="elementwise"``."""
    norm, vmin, _ = state.stats.span(start, stop)
    g_bar = 2.0 * state.analytic_ulps * state.g_eps * state.s_g
    if norm > 0 and AIM * state.target * vmin / norm > g_bar:
        return state.target
    return state.target * float(np.sqrt(max(stop - start, 1)))


def needed_bar(state: TensorState, start: int, stop: int, analytic: float) -> float:
    r"""The error bar a test of ``[start, stop)`` must reach to resolve its target
    (:func:`group_target`, ``T``):

    * an error of norm ``T`` on any one element shows as ``T·min|v|/‖v‖`` (the isolated
      error, the hardest to see);
    * a uniform relative error ``τ/s_g`` of the group shows as ``(τ/s_g)·|A|``, with
      ``A = ⟨g, u⟩`` the analytic directional derivative (a scale error — a missing ``1/N``,
      a wrong factor — is orthogonal to a direction that ``g`` happens to be nearly
      orthogonal to), and must be ``SCALE_MARGIN`` bars.

    Returns the smaller of ``τ·min|v|/‖v‖`` and ``τ·|A|/(SCALE_MARGIN·s_g)`` (the first alone
    when ``s_g = 0``)."""
    norm, vmin, _ = state.stats.span(start, stop)
    isolated = group_target(state, start, stop) * vmin / norm if norm > 0 else 0.0
    if state.s_g <= 0:
        return isolated
    return min(isolated, state.target * abs(analytic) / (SCALE_MARGIN * state.s_g))


def step_length(state: TensorState, start: int, stop: int,
                analytic: float | None = None) -> float:
    r"""Length ``t`` of the step along the unit direction of the group ``[start, stop)``.

    The rounding bar of the pair is ``2η/‖d‖ ≈ η/t``, so reaching the bar ``b`` that
    resolves the target (:func:`needed_bar`) needs ``t ≥ η/b`` — ``η/(AIM·b − b_g)`` with
    ``b_g ≈ 2c·ε_g·s_g`` the analytic gradient's own bar. The step is that, but at least
    ``h`` (the validated engine's first step from the loss's noise, or the user's) and at
    most ``reach·‖v‖/max|v|`` — no entry moves by more than ``reach``, the largest step the
    validated engine would take (:func:`configure`). A truncation that shows at that step is
    measured by the second pair (:func:`run_tests`); a kink crossed makes the test differ,
    and the entries it localises are judged by the validated engine. ``analytic`` is
    ``⟨g, u⟩`` (:func:`unit_analytic`, computed when not given).
    """
    norm, _, vmax = state.stats.span(start, stop)
    t_max = state.reach * norm / vmax
    if state.target <= 0:
        return t_max
    if analytic is None:
        analytic = unit_analytic(state, start, stop)
    g_bar = 2.0 * state.analytic_ulps * state.g_eps * state.s_g
    need = AIM * needed_bar(state, start, stop, analytic) - g_bar
    if not need > 0:  # the gradient's own rounding hides the target: no step resolves it
        need = g_bar
    if not need > 0:
        return t_max
    return float(min(max(state.noise / need, state.h), t_max))


def group_moves(state: TensorState, group: Group, factor: float = 1.0
                ) -> tuple[list[DirectionMove], tuple[float, float, float], float]:
    """The two moves ``x ± t·u`` (``u = v|_G / ‖v|_G‖``, ``t = factor ·`` :func:`step_length`),
    the sums over the displacement ``d = x₊ − x₋`` that :func:`residual` needs:
    ``(⟨g, d⟩, ‖d‖², ‖g_bar ⊙ d‖²)`` with ``g_bar = c·ε_g·(|g| + s_g)``, accumulated chunk by
    chunk from the values the evaluator will write (:func:`~gradcheck.params.directions.
    moved_values`), and ``t``."""
    norm = state.stats.span(group.start, group.stop)[0]
    t = factor * step_length(state, group.start, group.stop)
    coef = t / norm
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
    return moves, (gd, dd, gbd), t


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


def classify(analytic: float, numeric: float, bar: float, detectable: float, target: float,
             s_g: float) -> str:
    r"""The pass rule: ``PASS`` when the test agrees, ``|N − A| ≤ bar``, *and* resolves its
    target ``τ``: ``detectable ≤ τ`` (an error ``τ`` on any one element would have shown) and
    ``SCALE_MARGIN·bar·s_g ≤ τ·|A|`` (so would a uniform relative error ``τ/s_g``; skipped
    when ``s_g = 0``). ``DIFFERS`` when it does not agree (or a number is not finite),
    ``UNRESOLVED`` when it agrees without resolving: its bar is too large to tell an error of
    the target's size from none."""
    rho = numeric - analytic
    if not (np.isfinite(rho) and abs(rho) <= bar):
        return DIFFERS
    if not detectable <= target:
        return UNRESOLVED
    if s_g > 0 and not SCALE_MARGIN * bar * s_g <= target * abs(analytic):
        return UNRESOLVED
    return PASS


def outcome(state: TensorState, group: Group, analytic: float, numeric: float, bar: float,
            evaluations: int, truncation: float, step: float, a_bar: float) -> Outcome:
    """An :class:`Outcome` judged by :func:`classify` (``detectable = bar·‖v‖/min|v|``;
    ``a_bar`` is the analytic gradient's share of ``bar``)."""
    norm, vmin, _ = state.stats.span(group.start, group.stop)
    detectable = float(bar * norm / vmin) if vmin > 0 else np.inf
    result = classify(analytic, numeric, bar, detectable,
                      group_target(state, group.start, group.stop), state.s_g)
    return Outcome(result, analytic, numeric, abs(numeric - analytic), bar, evaluations,
                   truncation, detectable, step, a_bar)


def run_tests(evaluator: Any, states: list[TensorState], groups: list[Group]) -> list[Outcome]:
    """Test ``groups`` (all at once, so executors and batched forwards see one big call).

    First pair at step ``t`` (:func:`step_length`), judged by :func:`classify` with the bar
    ``rounding + analytic bar``. Groups that differ get a second pair at ``2t`` (unless the
    parent's measured truncation is less than 1/``SKIP_FACTOR`` of the excess residual) and
    are judged on the Richardson-extrapolated residual ``(4ρ(t) − ρ(2t))/3`` with bar
    ``(4R(t) + R(2t))/3 + analytic bar + ¼|ρ(t) − ρ(2t)|``.
    """
    moves: list[DirectionMove] = []
    sums, steps = [], []
    for g in groups:
        m, s, t = group_moves(states[g.leaf], g)
        moves += m
        sums.append(s)
        steps.append(t)
    losses = evaluator.directions(moves)
    first = []
    outcomes = []
    for k, g in enumerate(groups):
        st = states[g.leaf]
        a, n, r, ab = residual(sums[k], losses[2 * k], losses[2 * k + 1], st.noise)
        first.append((a, n, r, ab))
        outcomes.append(outcome(st, g, a, n, r + ab, 2, g.truncation, steps[k], ab))
    # A child whose residual dwarfs its parent's measured truncation fails without a 2nd pair.
    retry = [k for k, o in enumerate(outcomes) if o.result == DIFFERS
             and not o.abs_error - o.error_bar > SKIP_FACTOR * groups[k].truncation]
    if retry:
        moves, sums2 = [], {}
        for k in retry:
            m, s, _ = group_moves(states[groups[k].leaf], groups[k], 2.0)
            moves += m
            sums2[k] = s
        losses2 = evaluator.directions(moves)
        for j, k in enumerate(retry):
            st, g = states[groups[k].leaf], groups[k]
            a1, n1, r1, ab = first[k]
            a2, n2, r2, _ = residual(sums2[k], losses2[2 * j], losses2[2 * j + 1], st.noise)
            rho1, rho2 = n1 - a1, n2 - a2
            rho = (4.0 * rho1 - rho2) / 3.0
            bar = (4.0 * r1 + r2) / 3.0 + ab + RICHARDSON_MARGIN * abs(rho1 - rho2)
            outcomes[k] = outcome(st, g, a1, a1 + rho, bar, 4, abs(rho2 - rho1) / 3.0,
                                  steps[k], ab)
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


def advance(states: list[TensorState], frontier: list[Group], outcomes: list[Outcome],
            rng: np.random.Generator, leaf_group: int = LEAF_GROUP,
            max_groups: int = MAX_GROUPS, sample: int = SAMPLE) -> list[Group]:
    """Record one tested level and return the next: the halves of the groups that differ.

    A group that agrees without resolving its target is not split (its halves would resolve
    no better): up to ``FULL_CHECK`` entries it is checked whole, elementwise; a larger one
    leaves its tensor ``uncovered`` (a root also has ``FULL_CHECK`` of its entries checked,
    to catch a dense error). Fills each state's ``root``, ``located``, ``orphans`` (failing
    groups whose halves both passed: the error is spread, cancels, or is truncation),
    ``sampled``, ``unresolved`` and ``uncovered``.
    """
    failing: dict[int, list[Group]] = {}
    tested: dict[int, int] = {}
    passed_children: dict[tuple[int, int], int] = {}
    outcome_of = {id(g): o.truncation for g, o in zip(frontier, outcomes)}
    for g, o in zip(frontier, outcomes):
        st = states[g.leaf]
        tested[g.leaf] = tested.get(g.leaf, 0) + 1
        if g.depth == 0:
            st.root = o
        if o.result == UNRESOLVED:
            unresolved(st, g, rng)
        elif o.result == DIFFERS:
            failing.setdefault(g.leaf, []).append(g)
        elif g.depth:
            key = (g.leaf, g.parent)
            passed_children[key] = passed_children.get(key, 0) + 1
    # a parent both of whose halves passed is an orphan (spread-out or cancelling error)
    for (leaf, pid), count in passed_children.items():
        if count == 2 and pid >= 0:
            states[leaf].orphans.append(states[leaf].failing[pid])
    nxt: list[Group] = []
    for leaf, groups in failing.items():
        st = states[leaf]
        dense = len(groups) >= DENSE_GROUPS and len(groups) >= DENSE_SHARE * tested[leaf]
        if len(groups) > max_groups or dense:
            st.sampled = True
            pool = [(g.start, g.stop) for g in groups]
            k = sum(b - a for a, b in pool)
            if k > max(sample, FULL_CHECK):
                st.uncovered = True
                k = sample
            st.located.append(np.sort(sample_spans(rng, pool, k)))
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
    return nxt


def unresolved(st: TensorState, g: Group, rng: np.random.Generator) -> None:
    """A group whose test agrees without resolving its target: its entries are checked
    elementwise when there are at most ``FULL_CHECK``; otherwise the tensor is uncovered
    (and, for the whole tensor, ``FULL_CHECK`` of its entries are checked)."""
    st.unresolved = True
    if g.size <= FULL_CHECK:
        st.located.append(np.arange(g.start, g.stop, dtype=np.int64))
        return
    st.uncovered = True
    if g.depth == 0:
        st.located.append(np.sort(sample_spans(rng, [(g.start, g.stop)], FULL_CHECK)))


def localise(evaluator: Any, states: list[TensorState], rng: np.random.Generator,
             frontier: list[Group], outcomes: list[Outcome], progress: Any = None,
             leaf_group: int = LEAF_GROUP, max_groups: int = MAX_GROUPS,
             sample: int = SAMPLE) -> None:
    """From a tested level (``frontier`` and its ``outcomes``, usually the roots), split
    failing groups level by level (breadth first) until every group passed, was located or
    was sampled (:func:`advance`)."""
    while frontier:
        frontier = advance(states, frontier, outcomes, rng, leaf_group, max_groups, sample)
        if progress is not None and frontier:
            progress.add_total(2 * len(frontier) + 2)
        if frontier:
            outcomes = run_tests(evaluator, states, frontier)


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
               seed: int, h: float = 1e-5, tol: float = 1e-5, noise: float = 0.0,
               floor: float = 0.0) -> TensorState:
    """Per-tensor state: references to the working array and the analytic gradient, the
    direction (seeded by ``(seed, leaf)``), the RMS gradient (one chunked pass), and what a
    step must resolve (:func:`configure`)."""
    g = np.asarray(grad)
    g_dtype = g.dtype if np.issubdtype(g.dtype, np.inexact) else np.dtype(np.float64)
    eps = float(np.finfo(g_dtype).eps)
    n = int(np.size(work))
    direction = Direction(int(seed), int(leaf), n)
    state = TensorState(work=work, grad=g, direction=direction,
                        stats=DirectionStats(direction), g_eps=eps,
                        analytic_ulps=analytic_ulps)
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
    configure(state, h, noise, effective_tol(tol, g_dtype), floor)
    return state


def configure(state: TensorState, h: float, noise: float, tol: float, floor: float,
              measured: bool = False, scale: float = 0.0) -> None:
    """Set the first step ``h``, the largest move ``reach = max(h, UP_CAP·scale)`` (``scale``:
    the parameters' own, as the validated engine caps its steps; ``0`` keeps ``reach = h``),
    the rounding bar ``noise`` of one evaluation and the target ``τ = tol·max(s_g, floor)``
    (``floor``: the model's gradient scale ``S``, as the elementwise check's relative error
    is floored at it)."""
    state.h, state.noise, state.measured = float(h), float(noise), measured
    state.reach = max(state.h, validated.UP_CAP * scale)
    state.target = tol * max(state.s_g, floor)


def first_noise(state: Run) -> ecnoise.Noise:
    """The noise the first tests assume: the run's measured noise when it has one, else the
    dtype's in the precision the loss was computed in (:func:`gradcheck.estimate.ecnoise.
    assumed`, which tells a float32 loss returned as a Python float)."""
    if state.measured is not None:
        return state.measured
    return ecnoise.assumed(state.f0, getattr(state.evaluator, "loss_dtype", None))


def loss_noise(state: Run, noise: ecnoise.Noise, measured: bool) -> LossNoise:
    """``η = max(Run.noise, K_ROUND·σ)`` and ``σ/|f0|`` of a :class:`~gradcheck.estimate.
    ecnoise.Noise` (``K_ROUND`` as the validated ladder's rounding bar)."""
    return LossNoise(max(state.noise, K_ROUND * noise.sigma), noise.relative(state.f0),
                     measured)


def max_move(state: Run, work: np.ndarray, rel: float) -> float:
    """The largest move ``h`` of any one entry: the user's numeric ``h`` (not with the
    complex step, whose ``h`` is no real step), else the validated engine's first step
    adapted to a tensor, ``H_FACTOR·(σ/|f0|)^(1/3)·max(RMS(x), 1)``
    (:func:`gradcheck.modes.validated.first_steps`)."""
    if isinstance(state.h, (int, float)) and not state.scheme.is_complex:
        return float(state.h)
    return validated.H_FACTOR * rel ** (1.0 / 3.0) * max(metrics.chunked_rms([work]), 1.0)


def tensor_tol(state: Run, grad: np.ndarray, rel: float) -> float:
    """The tolerance of a tensor: ``max(tol, √ε(gradient dtype), √(σ/|f0|))`` — what the
    gradient's precision and the loss's noise allow (as the validated engine's)."""
    g_dtype = grad.dtype if np.issubdtype(grad.dtype, np.inexact) else np.dtype(np.float64)
    return max(effective_tol(state.plan.tol, g_dtype), validated.noise_tolerance(rel))


def set_noise(states: list[TensorState], state: Run, noise: LossNoise,
              which: Sequence[int]) -> None:
    """:func:`configure` the tensors ``which`` for ``noise``: their step, reach, bar and
    target (the reach from the tensor's RMS value, else the model's, else 1, as the
    validated engine's ``Chunk.scale``)."""
    model = metrics.chunked_rms(state.work.arrays)
    for i in which:
        work = state.work.arrays[i]
        configure(states[i], max_move(state, work, noise.rel), noise.eta,
                  tensor_tol(state, state.grads[i], noise.rel), state.grad_scale,
                  noise.measured, metrics.chunked_rms([work]) or model or 1.0)


def reset(st: TensorState) -> None:
    """Forget a tensor's tests (before it is tested again with the measured noise)."""
    st.root, st.sampled, st.unresolved, st.uncovered = None, False, False, False
    st.located, st.orphans, st.failing = [], [], []


def first_tests(evaluator: Any, states: list[TensorState], state: Run
               ) -> tuple[list[Group], list[Outcome]]:
    """The first test of every tensor with the noise of :func:`first_noise`; when one does not
    pass, the noise is measured (once, ``state.meter()``) and those that did not pass are
    tested again with it if it is larger than assumed (their step, bar and target follow it).
    Returns the roots and their outcomes."""
    noise = loss_noise(state, first_noise(state), state.measured is not None)
    set_noise(states, state, noise, range(len(states)))
    roots = [Group(i, 0, st.size) for i, st in enumerate(states) if st.size]
    outcomes = run_tests(evaluator, states, roots)
    again = [k for k, o in enumerate(outcomes) if not o.passed]
    if not again or noise.measured or state.meter is None:
        return roots, outcomes
    measured = loss_noise(state, state.meter(), True)
    set_noise(states, state, measured, [roots[k].leaf for k in again])
    if measured.eta <= noise.eta and measured.rel <= noise.rel:
        # the first bars were conservative: their differences stand; unresolved tests get
        # the measured noise's smaller bar and target (unless the gradient's bar dominates)
        again = [k for k in again if outcomes[k].result == UNRESOLVED
                 and outcomes[k].analytic_bar <= 0.5 * outcomes[k].error_bar]
    if state.progress is not None and again:
        state.progress.add_total(2 * len(again))
    if again:
        redone = run_tests(evaluator, states, [roots[k] for k in again])
        for k, o in zip(again, redone):
            outcomes[k] = o
    return roots, outcomes


class _PerLeaf:
    """An evaluator that counts the evaluations spent on each leaf (to report them per
    tensor when one call of the validated engine judges every tensor's entries); everything
    else is the wrapped evaluator's."""

    def __init__(self, inner: Any, n: int) -> None:
        self._inner = inner
        self.spent = [0] * n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
        before = self._inner.count
        out = self._inner.entries(leaf, flat_index, values)
        self.spent[leaf] += self._inner.count - before
        return out

    def directions(self, moves: Sequence[Any]) -> np.ndarray:
        before = self._inner.count
        out = self._inner.directions(moves)
        leaves = {m[0] if isinstance(m, tuple) else m.leaf for m in moves}
        if len(leaves) == 1:
            self.spent[leaves.pop()] += self._inner.count - before
        return out


def verified_scale(states: list[TensorState]) -> float:
    r"""The model's gradient scale as far as the tests verified it:
    :math:`\sqrt{\sum_{T\ \mathrm{passed}} \lVert g_T\rVert^2 / N}` over the tensors whose
    test passed (their analytic gradient agrees to the tolerance), ``N`` every entry of the
    model. Never above the true RMS gradient (a wrong backward cannot inflate it); the
    validated engine floors ``Z`` at it, as elementwise mode floors it at the RMS over every
    entry — which the located entries alone (often the small gradients near kinks) are not."""
    total = sum(st.size for st in states)
    passed = sum(st.s_g ** 2 * st.size for st in states
                 if st.root is not None and st.root.passed and st.finite)
    return float(np.sqrt(passed / total)) if total else 0.0


def judge_entries(state: Run, idxs: list[np.ndarray], scale: float = 0.0
                  ) -> tuple[list[TensorReport], list[int]]:
    """The entries ``idxs`` of every tensor judged as elementwise mode judges them: by the
    validated engine (:func:`gradcheck.modes.validated.run`: its ladder of validated steps,
    kink test and group look, on the loss's measured noise; ``Z`` floored at ``scale``, see
    :func:`verified_scale`), or with the complex step by the run's scheme
    (:func:`gradcheck.modes.elementwise.check_entries`). Returns the tensors' reports and the
    evaluations spent on each."""
    n = len(state.leaves)
    if not any(idx.size for idx in idxs):
        return [elementwise.empty_tensor(leaf) for leaf in state.leaves], [0] * n
    if state.scheme.is_complex:
        tensors, spent = [], []
        for i, idx in enumerate(idxs):
            before = state.numeric.count
            tensors.append(elementwise.check_entries(state, i, idx))
            spent.append(state.numeric.count - before)
        return tensors, spent
    counted = _PerLeaf(state.numeric, n)
    measured = state.measured if state.measured is not None else state.meter()
    h = state.h if isinstance(state.h, (int, float)) else None
    plan = replace(state.plan, floor=max(state.plan.floor or 0.0, scale)) if scale > 0 else (
        state.plan)
    vstate = replace(state, plan=plan, measured=measured, h=h, numeric=counted)
    out = validated.run(vstate, idxs)
    return ([t if t is not None else elementwise.empty_tensor(leaf)
             for t, leaf in zip(out, state.leaves)], counted.spent)


NOTES = {
    "sampled": "most of the tensor disagrees: localisation stopped and {checked} entries "
               "were sampled",
    "orphans": "part of the disagreement is spread over many entries (no single entry "
               "explains it); a sample of them was checked elementwise",
    "located": "localised to {checked} entries",
    "covered": "the test cannot resolve an error of norm {target:.1e} (its bar "
               "{bar:.1e} is too large for the loss's noise): all {checked} entries were "
               "checked elementwise instead",
    "unresolved": "the test cannot resolve an error of norm {target:.1e} (its bar "
                  "{bar:.1e} is too large: {why})",
    "noise": "the loss's noise",
    "gradient": "mostly the rounding of the {dtype} analytic gradient, summed along the "
                "direction over {size} entries",
    "uncovered": "inconclusive: some entries are neither in a test that resolves them nor "
                 "among the {checked} of {size} checked elementwise — {remedy} would decide "
                 "them",
    "remedy noise": "mode='elementwise', a larger loss_scale or a float64 forward",
    "remedy gradient": "mode='elementwise' (each entry against its own tolerance)",
}


def summarise(name: str, state: TensorState, seed: int, checked: int,
              extra_evaluations: int) -> DirectionalResult:
    """The :class:`DirectionalResult` of one tensor (``checked`` entries were then checked
    elementwise at ``extra_evaluations`` evaluations)."""
    root = state.root
    n = state.size
    if root is None:  # empty tensor
        return DirectionalResult(name, n, 0.0, 0.0, 0.0, 0.0, 0.0, True, 0.0, 0.0, seed=seed)
    s_g = state.s_g if state.finite else 0.0
    notes = []
    cause = "gradient" if root.analytic_bar > 0.5 * root.error_bar else "noise"
    fill = dict(target=group_target(state, 0, n), bar=root.error_bar, checked=checked, size=n,
                remedy=NOTES["remedy " + cause])
    fill["why"] = NOTES[cause].format(dtype=state.grad.dtype, size=n)
    if root.result == UNRESOLVED:
        notes.append(NOTES["covered" if checked >= n else "unresolved"].format(**fill))
    elif not root.passed:
        key = "sampled" if state.sampled else "orphans" if state.orphans else "located"
        notes.append(NOTES[key].format(**fill))
    inconclusive = state.uncovered and checked < n
    if inconclusive:
        notes.append(NOTES["uncovered"].format(**fill))
    if not state.finite:
        notes.append("the analytic gradient has NaN/Inf entries")
    return DirectionalResult(
        name, n, root.analytic, root.numeric, root.abs_error, root.error_bar, root.step,
        root.passed, root.detectable, root.detectable / s_g if s_g > 0 else float("inf"),
        state.evaluations + extra_evaluations, state.tests, checked, state.sampled, seed,
        "; ".join(notes), root.result, state.target, inconclusive, state.noise,
        state.measured)


def run(state: Run, max_groups: int = MAX_GROUPS, sample: int = SAMPLE
        ) -> list[TensorReport]:
    """``mode="directional"``: a directional test of every tensor (:func:`first_tests`),
    localisation of those that differ, and the located entries judged by the validated
    engine (:func:`judge_entries`), so they appear in the report as elementwise mode lists
    them. A tensor whose test agrees without resolving its target is checked elementwise
    (all of it, or ``FULL_CHECK`` entries) and stays inconclusive unless those entries
    cover it or one fails.

    Directions and samples are seeded by the check's ``sample_seed``. Each tensor's report
    carries its :class:`DirectionalResult` in ``directional``.
    """
    seed, evaluator = state.plan.sample_seed, state.evaluator
    rng = np.random.default_rng(seed)
    states = [make_state(i, w, g, ANALYTIC_ULPS, seed)
              for i, (w, g) in enumerate(zip(state.work.arrays, state.grads))]
    roots, outcomes = first_tests(evaluator, states, state)
    localise(evaluator, states, rng, roots, outcomes, state.progress, max_groups=max_groups,
             sample=sample)
    idxs = [elementwise.finite(leaf, entries_to_check(st, rng, sample))
            for leaf, st in zip(state.leaves, states)]
    tensors, spent = judge_entries(state, idxs, verified_scale(states))
    for i, (tensor, st) in enumerate(zip(tensors, states)):
        tensor.directional = summarise(state.leaves[i].name, st, seed, int(idxs[i].size),
                                       spent[i])
    return tensors


def expected_evaluations(n_leaves: int) -> int:
    """About how many evaluations a directional check takes (for the progress bar's ETA)."""
    return 2 + 2 * n_leaves
