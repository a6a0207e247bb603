"""The check itself: analytic gradient once, numeric estimates per entry, verdicts, report.

This is the seed's ``grad_check`` (§3) made careful: perturbation in place with exact restore,
the base loss computed once (twice, to catch a forward that is not deterministic), error bars
on every estimate, and a report instead of a stream of prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, InputError
from gradcheck.estimate.schemes import AUTO_REAL, get_scheme
from gradcheck.estimate.steps import auto_estimate, nominal_steps
from gradcheck.evaluate.local import SerialEvaluator, loss_dtype, loss_value
from gradcheck.evaluate.progress import make_progress
from gradcheck.evaluate.randomness import make_reset, nondeterminism_message
from gradcheck.judge.secondlook import Context as LookContext
from gradcheck.judge.secondlook import second_look
from gradcheck.judge.verdict import (
    Criteria,
    entry_warnings,
    judge,
    kink_notes,
    model_scale,
    nondeterminism_is_rounding,
    tensor_scale,
)
from gradcheck.params import tree as trees
from gradcheck.params.sampling import select
from gradcheck.report.results import Report, TensorReport

#: Rounding noise of one loss evaluation, in units of ε·|f|. A forward that sums many terms
#: accumulates several ulps; 16 keeps a correct model from being called wrong by rounding.
NOISE_ULPS = 16.0
#: Rounding noise of an analytic gradient entry, in units of ε(dtype)·(|a| + tensor scale).
ANALYTIC_ULPS = 64.0


@dataclass
class Options:
    """Options of :func:`check` (all keyword arguments; see its docstring)."""

    method: str = "central"
    h: float | None = None
    relative_step: bool = False
    tol: float = 1e-5
    measure: str = "relative"
    denominator: str = "max"
    floor: float = 1e-8
    promote: bool = True
    sample: int | float | None = None
    sample_seed: int = 0
    seed: int | None = None
    reset: Callable[[], None] | None = None
    loss_scale: float = 1.0
    mode: str = "elementwise"
    batched_forward: Callable[[Any], Any] | None = None
    batch_size: int | None = None
    executor: Any = None
    workers: int | None = None
    progress: bool = True
    second_look: bool = True
    context: dict[str, Any] | None = None
    diagnose: bool = True

    def __post_init__(self) -> None:
        if self.method == "auto" and self.h not in (None, "auto"):
            raise InputError(f"h={self.h!r} with method='auto': auto chooses the scheme and its "
                             "step; leave h unset or pick a method such as 'central'.")
        self.scheme = get_scheme(AUTO_REAL if self.method == "auto" else self.method)
        if self.h is None:
            self.h = self.scheme.default_h
        if self.h == "auto":
            pass  # a step per entry, see gradcheck.estimate.steps.auto_estimate
        elif not (isinstance(self.h, (int, float)) and np.isfinite(self.h) and self.h > 0):
            raise InputError(f"h={self.h!r} must be a positive number such as 1e-5.")
        if not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise InputError(f"tol={self.tol!r} must be a positive number such as 1e-5.")
        if self.measure not in ("relative", "absolute"):
            raise InputError(f"measure={self.measure!r}: choose 'relative' or 'absolute'.")
        if self.denominator not in ("max", "abs_analytic", "sum"):
            raise InputError(f"denominator={self.denominator!r}: choose 'max' (max(|a|,|n|)), "
                             "'abs_analytic' (|a|) or 'sum' (|a|+|n|).")
        if not (isinstance(self.loss_scale, (int, float)) and self.loss_scale > 0):
            raise InputError(f"loss_scale={self.loss_scale!r} must be a positive number.")
        _validate_speed_options(self)
        _validate_context(self.context)

    def public(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if d["reset"] is not None:
            d["reset"] = getattr(d["reset"], "__name__", "callable")
        for key in ("batched_forward", "executor"):
            if d[key] is not None:
                d[key] = getattr(d[key], "__name__", type(d[key]).__name__)
        return d


def _validate_speed_options(o: Options) -> None:
    """Checks of mode, batched_forward, batch_size, executor, workers and progress."""
    if o.mode not in ("elementwise", "directional"):
        raise InputError(f"mode={o.mode!r}: choose 'elementwise' (every entry, default) or "
                         "'directional' (one random direction per tensor, then localise).")
    if o.batched_forward is not None and not callable(o.batched_forward):
        raise InputError(f"batched_forward={o.batched_forward!r} is not callable; pass a "
                         "function of stacked params that returns a vector of losses.")
    if o.batch_size is not None and not (isinstance(o.batch_size, int) and o.batch_size >= 1):
        raise InputError(f"batch_size={o.batch_size!r} must be a positive integer such as 64.")
    if o.workers is not None and not (isinstance(o.workers, int) and o.workers >= 1):
        raise InputError(f"workers={o.workers!r} must be a positive integer such as 2.")
    if o.executor is not None and not hasattr(o.executor, "submit"):
        raise InputError(f"executor={o.executor!r} has no submit(); pass a "
                         "concurrent.futures.Executor such as ProcessPoolExecutor() or a "
                         "Dask client.get_executor().")
    if o.executor is not None and o.workers is not None:
        raise InputError("pass either executor= or workers=, not both (workers=N starts a "
                         "local process pool).")


#: Keys of ``context=``: facts about the model that let the diagnosis name a bug.
CONTEXT_KEYS = ("batch_size", "seq_len", "time_axis", "repeated_rows")


def _validate_context(context: Any) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        raise InputError(f"context={context!r} must be a dict such as "
                         "{'batch_size': 32, 'seq_len': 10}.")
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:
        raise InputError(f"context has unknown key(s) {', '.join(unknown)}; known keys are "
                         f"{', '.join(CONTEXT_KEYS)}.")


def make_options(options: dict[str, Any]) -> Options:
    """Options from keyword arguments, with a clear error for a misspelt name."""
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; valid options are "
                        f"{', '.join(sorted(known))}.")
    return Options(**options)


@dataclass
class Analytic:
    """What ``forward_backward`` gave: the loss (if returned) and gradients aligned to leaves."""

    loss: float | None
    grads: list[np.ndarray]


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
        # a copy: the forward may later overwrite a buffer the gradient shares
        g = np.array(g, copy=True)
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
    return Analytic(loss, arrays)


def _is_loss_and_grads(out: Any, params: Any) -> bool:
    """``(loss, grads)`` rather than grads: a pair whose first item is a number — unless the
    params are themselves a pair starting with a 0-d array (then it is ambiguous; grads win)."""
    if not (isinstance(out, tuple) and len(out) == 2):
        return False
    if isinstance(out[0], (dict, list, tuple)) or np.ndim(out[0]) != 0:
        return False
    return not (isinstance(params, (list, tuple)) and len(params) == 2
                and np.ndim(params[0]) == 0)


def precision_notes(leaves: list[trees.Leaf], grads: list[np.ndarray]) -> list[str]:
    """A note per gradient returned in a lower precision than its parameter."""
    out = []
    for leaf, g in zip(leaves, grads):
        if g.dtype.itemsize < leaf.array.dtype.itemsize and not np.iscomplexobj(leaf.array):
            out.append(f"The gradient of '{leaf.name}' is {g.dtype} while the parameter is "
                       f"{leaf.array.dtype}: it is judged with the tolerance of {g.dtype}.")
    return out


def tolerance_note(grads: list[np.ndarray], tol: float) -> list[str]:
    """Say which tolerance low-precision analytic gradients were judged with."""
    low = sorted({str(g.dtype) for g in grads if np.issubdtype(g.dtype, np.floating)
                  and effective_tol(tol, g.dtype) > tol})
    return [f"{dt} analytic gradients are judged with tol = max({tol:g}, √ε({dt})) = "
            f"{effective_tol(tol, np.dtype(dt)):.2e}: a {dt} backward cannot be more accurate."
            for dt in low]


def changed_leaves(leaves: list[trees.Leaf], snapshot: list[np.ndarray]) -> list[str]:
    """Names of leaves whose bytes differ from the snapshot (NaN-safe, bit exact)."""
    return [leaf.name for leaf, snap in zip(leaves, snapshot)
            if leaf.array.shape != snap.shape or leaf.array.tobytes() != snap.tobytes()]


def workspace_changed(work: Workspace, leaves: list[trees.Leaf]) -> list[str]:
    """Names of promoted copies that no longer equal their parameter (the forward wrote into
    them); always empty when the workspace is the user's own arrays."""
    if not work.promoted:
        return []
    return [leaf.name for leaf, a in zip(leaves, work.arrays)
            if a.tobytes() != leaf.array.astype(a.dtype).tobytes()]


def restore(leaves: list[trees.Leaf], snapshot: list[np.ndarray]) -> None:
    for leaf, snap in zip(leaves, snapshot):
        if leaf.array.tobytes() != snap.tobytes():
            leaf.array[...] = snap


@dataclass
class Workspace:
    """The arrays the numeric pass perturbs and the tree handed to the forward.

    The user's own arrays when possible; float64 copies of low-precision leaves when promoting
    (one copy per tensor per check, never per entry); complex copies for the complex step.
    """

    tree: Any
    arrays: list[np.ndarray]
    promoted: bool = False


def user_workspace(params: Any, leaves: list[trees.Leaf]) -> Workspace:
    return Workspace(params, [leaf.array for leaf in leaves])


def promoted_workspace(params: Any, leaves: list[trees.Leaf], dtype: Any) -> Workspace:
    arrays = [leaf.array.astype(np.result_type(leaf.array.dtype, dtype)) for leaf in leaves]
    return Workspace(trees.replace_leaves(params, arrays), arrays, promoted=True)


def noise_level(f0: float, dtype: np.dtype) -> float:
    """Absolute rounding noise of one loss evaluation: ``NOISE_ULPS · ε(dtype) · |f0|``."""
    eps = float(np.finfo(dtype).eps)
    return NOISE_ULPS * eps * max(abs(f0), float(np.finfo(dtype).tiny))


def check(forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any], params: Any,
          **options: Any) -> Report:
    """Compare the analytic gradients of ``forward_backward`` with numeric estimates.

    Parameters
    ----------
    forward : ``forward(params) -> loss`` (a scalar).
    forward_backward : ``forward_backward(params) -> grads`` or ``(loss, grads)``; ``grads``
        shaped like ``params``.
    params : a numpy array or a dict / list / tuple of them (nested). Perturbed in place and
        restored exactly; bit-identical afterwards, also when the forward raises.
    method : ``"central"`` (default, error O(h²)), ``"forward"``, ``"backward"`` (O(h)) or
        ``"complex"`` (``Im f(θ+ih)/h``, machine precision; needs a complex-analytic forward,
        probed first and refused with a reason when it is not), ``"central4"`` (five-point,
        O(h⁴)), ``"richardson"`` (Richardson-extrapolated central differences, O(h⁶), with an
        error estimate) or ``"auto"`` (complex step where safe, else central4; see
        :mod:`gradcheck.estimate.complex_safety`).
    h : step (default 1e-5; central4 3e-3, richardson 2e-2, complex 1e-20), or ``"auto"`` for
        a step per entry (:func:`gradcheck.estimate.steps.auto_estimate`).
        relative_step : ``h·|θ_i|``.
    tol : tolerance on the error measure (default 1e-5).
    measure : ``"relative"`` (default) or ``"absolute"``.
    denominator : ``Z`` of the relative error: ``"max"`` (max(|a|,|n|), default),
        ``"abs_analytic"`` (|a|) or ``"sum"`` (|a|+|n|). floor : lower bound of Z (1e-8).
    promote : run the numerics in float64 when params are float32/float16 and the forward
        accepts float64 (default True).
    sample : check ``k`` entries per tensor (int) or a fraction (float); corners always
        included; ``sample_seed`` makes it reproducible. A dict ``{name: k | fraction |
        [indices]}`` sets it per tensor (tensors not named are checked in full).
    seed : re-seed numpy, ``random`` and torch before every evaluation (dropout); f(θ) is
        evaluated twice first, and a forward that still differs gets no gradient verdict.
    reset : a callable run before every evaluation, for any other random state.
    loss_scale : multiply the loss (and the gradients) by this constant, the seed's remedy for
        gradients too small to resolve.
    second_look : re-examine entries the first estimate cannot settle (default True): would-be
        failures at smaller steps with a kink test (:mod:`gradcheck.judge.kinks`), inconclusive
        entries at larger steps (:mod:`gradcheck.judge.secondlook`).
    context : facts that help explain a failure, e.g. ``{"batch_size": 32, "seq_len": 10,
        "time_axis": 0, "repeated_rows": {"W_embed": mask}}``: a gradient B times too large
        is then named as a missing division by the batch size.
    diagnose : explain each failing tensor in one sentence (default True; see
        :mod:`gradcheck.diagnose.patterns`).

    Returns
    -------
    Report
    """
    start = time.perf_counter()
    opts = make_options(options)
    leaves = trees.flatten(params)
    trees.validate_leaves(leaves)
    snapshot = [leaf.array.copy() for leaf in leaves]
    reset = make_reset(opts.seed, opts.reset)
    warnings: list[str] = []
    notes: list[str] = []
    opened: list[Any] = []  # evaluators and the progress bar, closed in the finally
    try:
        analytic = analytic_gradients(forward_backward, params, leaves, reset)
        trees.check_structure(params, leaves, "forward_backward")
        notes.extend(precision_notes(leaves, analytic.grads))
        notes.extend(tolerance_note(analytic.grads, opts.tol))
        moved = changed_leaves(leaves, snapshot)
        if moved:
            raise InputError(f"forward_backward modified the parameter(s) {', '.join(moved)} "
                             "in place; it must not change params (compute into new arrays).")
        opts.grad_scale = model_scale(analytic.grads) * opts.loss_scale
        work, dtype_note, probes = _choose_workspace(forward, params, leaves, opts, reset)
        if dtype_note:
            notes.append(dtype_note)
        progress = make_progress(opts.progress, _expected_evaluations(leaves, opts))
        opened.append(progress)
        evaluator = _make_evaluator(forward, work, leaves, opts, reset, complex_mode=False)
        opened.append(evaluator)
        evaluator.progress = progress
        f0 = evaluator.base()
        f0_again = evaluator.base()
        trees.check_structure(work.tree, [trees.Leaf(leaf.name, leaf.path, a) for leaf, a in
                                          zip(leaves, work.arrays)], "forward")
        moved = changed_leaves(leaves, snapshot) or workspace_changed(work, leaves)
        if moved:
            raise InputError(f"forward modified the parameter(s) {', '.join(moved)} in place; "
                             "it must not change params (compute into new arrays).")
        if not np.isfinite(f0):
            raise ForwardError(f"The loss at the given params is {f0}; a gradient check needs a "
                               "finite loss — check the forward and the data.")
        tiny_jitter = nondeterminism_is_rounding(f0, f0_again, evaluator.loss_dtype)
        if tiny_jitter:
            notes.append(f"Two calls of the forward at the same params differ by "
                         f"{abs(f0 - f0_again):.1e} (a few rounding errors, e.g. a threaded or "
                         "unordered sum); that jitter is counted in the error bars.")
        if f0 != f0_again and not tiny_jitter:
            warnings.append(nondeterminism_message(f0, f0_again, reset is not None))
            tensors = [_empty_tensor(leaf) for leaf in leaves]
            return _report("inconclusive", tensors, opts, probes + evaluator.count, start, warnings,
                           notes, f0)
        if analytic.loss is not None and opts.loss_scale == 1.0:
            _compare_losses(analytic.loss, f0, analytic.grads, warnings)
        noise = max(noise_level(f0, evaluator.loss_dtype), 4.0 * abs(f0 - f0_again))
        if opts.method in ("complex", "auto") and opts.mode == "elementwise":
            probes += _complex_safety(forward, params, analytic, opts, noise, reset, notes)
        numeric_eval = evaluator
        if opts.scheme.is_complex:
            cwork = promoted_workspace(params, leaves, np.complex128)
            numeric_eval = _make_evaluator(forward, cwork, leaves, opts, reset,
                                           complex_mode=True)
            opened.append(numeric_eval)
            numeric_eval.progress = progress
        if getattr(opts, "complex_rescue", False):  # method='auto', complex step slower
            rwork = promoted_workspace(params, leaves, np.complex128)
            opts.rescue_eval = SerialEvaluator(_scaled(forward, opts.loss_scale), rwork.tree,
                                               rwork.arrays, [lf.name for lf in leaves],
                                               reset, complex_mode=True)
            opened.append(opts.rescue_eval)
        if opts.mode == "directional":
            tensors = _check_directional(leaves, evaluator, numeric_eval, work, analytic, f0,
                                         noise, opts, progress)
            evaluations = probes + evaluator.count
            if numeric_eval is not evaluator:
                evaluations += numeric_eval.count
            return _report(_overall(tensors), tensors, opts, evaluations, start, warnings,
                           notes, f0)
        rng = np.random.default_rng(opts.sample_seed)
        tensors = []
        for i, leaf in enumerate(leaves):
            idx = select(leaf.shape, opts.sample, rng, leaf.name)
            tensors.append(_check_leaf(i, leaf, idx, numeric_eval, work.arrays[i],
                                       analytic.grads[i] * opts.loss_scale, f0, noise, opts))
        evaluations = probes + evaluator.count
        if numeric_eval is not evaluator:
            evaluations += numeric_eval.count
        if getattr(opts, "rescue_eval", None) is not None:
            evaluations += opts.rescue_eval.count
        moved = workspace_changed(work, leaves)
        if moved:
            raise InputError(f"forward modified the parameter(s) {', '.join(moved)} in place "
                             "during the check; it must not change params (compute into new "
                             "arrays). Your arrays were not touched.")
        status = _overall(tensors)
        warnings.extend(entry_warnings(tensors))
        notes.extend(kink_notes(tensors))
        return _report(status, tensors, opts, evaluations, start, warnings, notes, f0)
    finally:
        for thing in opened:
            if thing is not None:
                thing.close()
        moved = changed_leaves(leaves, snapshot)
        restore(leaves, snapshot)
        if moved and not _already_raising():
            raise InputError(f"the forward modified the parameter(s) {', '.join(moved)} in "
                             "place during the check; it must not change params. They have "
                             "been restored.")


def _complex_safety(forward, params, analytic: Analytic, opts: Options, noise: float, reset,
                    notes: list[str]) -> int:
    """Probe the complex step (see gradcheck.estimate.complex_safety) before trusting it: refuse
    ``method='complex'`` on unsafe code; let ``method='auto'`` pick complex or the best real
    scheme. Returns the evaluations spent."""
    from gradcheck.estimate import complex_safety

    safety = complex_safety.probe(_scaled(forward, opts.loss_scale), params, analytic.grads,
                                  noise, reset)
    if opts.method == "complex":
        if not safety.safe:
            raise InputError(complex_safety.refusal(safety))
        return safety.evaluations
    if safety.safe and not safety.cost_ratio > complex_safety.RESCUE_RATIO:
        opts.scheme = get_scheme("complex")
        opts.h = opts.scheme.default_h
    elif safety.safe:  # complex step slower than the real scheme: only where it is needed
        opts.complex_rescue = True
        notes.append(f"method='auto' used {AUTO_REAL} and the complex step only for entries "
                     f"{AUTO_REAL} left inconclusive: a complex forward costs "
                     f"{safety.cost_ratio:.1f}× a real one.")
        return safety.evaluations
    notes.append(complex_safety.auto_note(safety, AUTO_REAL))
    return safety.evaluations


def _step(opts: Options) -> float:
    """The nominal step: ``opts.h``, or the scheme's default when ``h="auto"``."""
    return opts.scheme.default_h if opts.h == "auto" else float(opts.h)


def _already_raising() -> bool:
    import sys

    return sys.exc_info()[0] is not None


def _make_evaluator(forward, work: Workspace, leaves, opts: Options, reset, complex_mode: bool
                    ) -> Any:
    """Serial, batched or executor evaluator, as the options ask (see gradcheck.evaluate.local).

    With the complex step, the real-valued evaluator only computes the base loss, so it stays
    serial; the complex one does the work.
    """
    names = [leaf.name for leaf in leaves]
    fwd = _scaled(forward, opts.loss_scale)
    batched = opts.batched_forward
    if batched is not None and opts.loss_scale != 1.0:
        batched = _scaled(batched, opts.loss_scale)
    if opts.scheme.is_complex and not complex_mode and opts.mode == "elementwise":
        return SerialEvaluator(fwd, work.tree, work.arrays, names, reset)
    if opts.executor is not None or opts.workers is not None:
        from gradcheck.evaluate.parallel import ExecutorEvaluator

        return ExecutorEvaluator(opts.executor, fwd, work.tree, work.arrays, names, opts.seed,
                                 opts.reset, complex_mode, opts.workers, batched,
                                 opts.batch_size)
    if batched is not None:
        from gradcheck.evaluate.local import BatchedEvaluator

        return BatchedEvaluator(batched, work.tree, work.arrays, names, reset, complex_mode,
                                opts.batch_size)
    return SerialEvaluator(fwd, work.tree, work.arrays, names, reset, complex_mode)


def _expected_evaluations(leaves: list[trees.Leaf], opts: Options) -> int:
    """About how many evaluations the check will take (for the progress bar's ETA)."""
    if opts.mode == "directional":
        return 2 + 2 * len(leaves)
    total = 0
    for leaf in leaves:
        size = leaf.size
        if isinstance(opts.sample, float):
            size = max(1, int(round(opts.sample * size)))
        elif isinstance(opts.sample, int):
            size = min(size, opts.sample)
        total += size
    return 2 + total * opts.scheme.evaluations


def _check_directional(leaves, evaluator, numeric_eval, work: Workspace, analytic: Analytic,
                       f0: float, noise: float, opts: Options, progress: Any
                       ) -> list[TensorReport]:
    """``mode="directional"``: one random direction per tensor, localisation of failures,
    located entries checked elementwise (see gradcheck.modes.directional)."""
    from gradcheck.modes.directional import check_directional

    grads = [g * opts.loss_scale for g in analytic.grads]

    def elementwise(i: int, idx: np.ndarray) -> TensorReport:
        if idx.size == 0:
            return _empty_tensor(leaves[i])
        return _check_leaf(i, leaves[i], idx, numeric_eval, work.arrays[i], grads[i], f0,
                           noise, opts)

    h = _step(opts) if not opts.scheme.is_complex else 1e-5
    results = check_directional(evaluator, [leaf.name for leaf in leaves], work.arrays, grads,
                                noise, h, opts.tol, opts.sample_seed, ANALYTIC_ULPS,
                                elementwise, progress)
    tensors = []
    for tensor, result in results:
        tensor.directional = result
        tensors.append(tensor)
    return tensors


def _scaled(forward: Callable[[Any], Any], scale: float) -> Callable[[Any], Any]:
    if scale == 1.0:
        return forward
    return lambda p: forward(p) * scale


def _choose_workspace(forward, params, leaves, opts, reset) -> tuple[Workspace, str | None, int]:
    """Pick the arrays to perturb; promote float32/float16 to float64 when the forward allows.

    Returns the workspace, a note for the report, and how many probe evaluations were spent.
    """
    low = [leaf.name for leaf in leaves if leaf.array.dtype in (np.float32, np.float16)]
    user = user_workspace(params, leaves)
    if not low:
        return user, None, 0
    names = ", ".join(low)
    if not opts.promote:
        return user, (f"params {names} are low precision and promote=False: the numerics ran "
                       "in their precision, so the tolerance is looser and some entries may be "
                       "inconclusive."), 0
    work = promoted_workspace(params, leaves, np.float64)
    if reset is not None:
        reset()
    try:
        dt = loss_dtype(forward(work.tree))
    except Exception:
        dt = None
    if dt == np.float64:
        return work, (f"params {names} are low precision: the numerical gradient was computed "
                      "in float64 (promote=False turns this off), and the tolerance follows "
                      "the analytic gradient's dtype."), 1
    return user, (f"params {names} are low precision and the forward does not compute in "
                  "float64, so the numerics ran in low precision; some entries may be "
                  "inconclusive."), 1


def _compare_losses(loss_a: float, f0: float, grads: list[np.ndarray], warnings: list[str]
                    ) -> None:
    eps = max(float(np.finfo(g.dtype).eps) for g in grads if np.issubdtype(g.dtype, np.inexact))
    if abs(loss_a - f0) > 1e3 * eps * max(abs(f0), 1e-300) + 1e-300:
        warnings.append(f"forward_backward returned the loss {loss_a!r} but forward gives "
                        f"{f0!r} at the same params: do they compute the same function "
                        "(same data, same mode)?")


def effective_tol(tol: float, analytic_dtype: np.dtype) -> float:
    """Tolerance adapted to the analytic gradient's precision: ``max(tol, √ε(dtype))``.

    A float32 backward cannot be more accurate than a few ulps times the conditioning of its
    sums, so asking for 1e-5 would fail correct float32 code; √ε32 ≈ 3.5e-4.
    """
    if not np.issubdtype(analytic_dtype, np.inexact):
        return tol
    return max(tol, float(np.sqrt(np.finfo(analytic_dtype).eps)))


def _check_leaf(i: int, leaf: trees.Leaf, idx: np.ndarray, evaluator: SerialEvaluator,
                work_array: np.ndarray, grad: np.ndarray, f0: float, noise: float,
                opts: Options) -> TensorReport:
    scheme = opts.scheme
    dtype = work_array.dtype
    x = np.asarray(work_array).reshape(-1)[idx] if work_array.ndim else work_array.reshape(1)
    a = np.asarray(grad).reshape(-1)[idx]
    if opts.h == "auto" and not scheme.is_complex:
        est = auto_estimate(scheme, lambda m, pts: evaluator.entries(i, idx[m], pts), x, f0,
                            noise, dtype)
    else:
        steps = nominal_steps(x, _step(opts), opts.relative_step)
        if scheme.is_complex:
            points = scheme.points(x, steps, np.complex128)
        else:
            points = scheme.points(x, steps, dtype)
        losses = evaluator.entries(i, idx, points)
        est = scheme.combine(x, points, losses, f0, noise)
    a_dtype = grad.dtype if np.issubdtype(grad.dtype, np.inexact) else np.dtype(np.float64)
    a_real = a.real.astype(np.float64) if np.iscomplexobj(a) else a.astype(np.float64)
    scale = tensor_scale(est.value)
    analytic_bar = ANALYTIC_ULPS * float(np.finfo(a_dtype).eps) * (
        np.abs(a_real) + tensor_scale(a_real))
    criteria = Criteria(effective_tol(opts.tol, a_dtype), opts.measure, opts.denominator,
                        opts.floor, zero_scale=getattr(opts, "grad_scale", None))
    bar = est.error_bar + analytic_bar
    j = judge(a_real, est.value, bar, criteria, scale)
    numeric = est.value
    if opts.second_look and not scheme.is_complex:
        # Kinks (smaller steps) for would-be failures, larger steps for inconclusive entries.
        ctx = LookContext(evaluator, i, idx, x, a_real, est.value, est.step, f0, noise, dtype,
                          criteria, scale, analytic_bar, _step(opts),
                          getattr(evaluator, "loss_dtype", None), est.rounding, est.truncation)
        revised = second_look(ctx, j, bar)
        j, numeric, bar = revised.judgement, revised.numeric, revised.error_bar
    if getattr(opts, "rescue_eval", None) is not None:
        from gradcheck.estimate.complex_safety import rescue_inconclusive

        j, numeric, bar = rescue_inconclusive(opts.rescue_eval, i, idx, x, a_real, j, numeric,
                                              bar, criteria, scale, analytic_bar)
    return TensorReport(leaf.name, leaf.shape, str(leaf.array.dtype), idx, a_real, numeric,
                        j.error, j.abs_error, bar, j.status, j.reason)


def _empty_tensor(leaf: trees.Leaf) -> TensorReport:
    empty = np.zeros(0)
    return TensorReport(leaf.name, leaf.shape, str(leaf.array.dtype), np.zeros(0, np.int64),
                        empty, empty, empty, empty, empty, np.zeros(0, np.int8),
                        np.zeros(0, object))


def _overall(tensors: list[TensorReport]) -> str:
    if any(t.failed for t in tensors):
        return "fail"
    if any(t.verdict == "inconclusive" for t in tensors):
        return "inconclusive"
    return "pass"


def _report(status, tensors, opts, evaluations, start, warnings, notes, f0) -> Report:
    if status == "fail" and opts.diagnose:
        attach_diagnoses(tensors, opts.context or {})
    return Report(status, tensors, opts.public(), evaluations, time.perf_counter() - start,
                  warnings, notes, float(np.real(f0)))



def _entry_arrays(t: TensorReport) -> tuple[dict[str, np.ndarray], bool]:
    """A tensor's checked entries as arrays for :mod:`gradcheck.diagnose.patterns`: in the tensor's
    shape when every entry was checked, else flat (shape-based patterns then do not apply)."""
    from gradcheck.judge.verdict import FAIL, SKIPPED

    keep = t.status != SKIPPED
    full = bool(keep.all()) and t.flat_index.size == t.size
    out = {}
    for key, values in (("a", t.analytic), ("n", t.numeric), ("noise", t.error_bar),
                        ("failed", t.status == FAIL)):
        if full:
            grid = np.empty(t.size, dtype=np.asarray(values).dtype)
            grid[t.flat_index] = values
            out[key] = grid.reshape(t.shape)
        else:
            out[key] = np.asarray(values)[keep]
    return out, full


def attach_diagnoses(tensors: list[TensorReport], context: dict[str, Any]) -> None:
    """Set ``diagnosis`` (one sentence) and ``likely_bug`` on each failing tensor whose
    pattern :func:`gradcheck.diagnose.patterns.diagnose` finds with confidence
    ≥ ``CONFIDENT`` (0.7).

    Fully checked tensors get the whole context (time axis, repeated rows) and the swap test
    against every other fully checked tensor; sampled tensors only the scalar patterns.
    """
    from gradcheck.diagnose.patterns import CONFIDENT, diagnose

    arrays = {t.name: _entry_arrays(t) for t in tensors}
    pool = {name: (d["a"], d["n"]) for name, (d, full) in arrays.items() if full}
    scalar_context = {k: v for k, v in context.items() if k in ("batch_size", "seq_len")}
    for t in tensors:
        if not t.failed:
            continue
        d, full = arrays[t.name]
        kwargs = dict(context) if full else dict(scalar_context)
        if isinstance(kwargs.get("repeated_rows"), dict):
            kwargs["repeated_rows"] = kwargs["repeated_rows"].get(t.name)
        try:
            found = diagnose({t.name: (d["a"], d["n"])}, all_tensors=pool if full else None,
                             failed={t.name: d["failed"]}, noise={t.name: d["noise"]},
                             **kwargs)[t.name]
        except ValueError as exc:
            raise InputError(f"context does not fit tensor '{t.name}': {exc}; give "
                             "repeated_rows as {tensor name: mask over its first axis}.") from exc
        if found.confidence >= CONFIDENT:
            t.diagnosis = found.sentence
            t.likely_bug = found
