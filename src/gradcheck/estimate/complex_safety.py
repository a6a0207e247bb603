"""Is the complex step safe for this forward? Probe before trusting it.

The complex step ``Im f(x + ih)/h`` (Squire & Trapp, SIAM Review 40(1), 1998; Martins,
Sturdza & Alonso, ACM TOMS 29(3), 2003) is exact to machine precision only when every
operation on the way is complex-analytic. Code that is not — ``abs``, ``.real``, ``float()``,
assigning complex values into a float array, comparisons that pick a branch — gives a wrong
derivative *silently*. :func:`probe` catches it in three ways before any verdict relies on it:

1. numpy's ``ComplexWarning`` ("Casting complex values to real discards the imaginary part")
   raised anywhere during a complex evaluation, reported with the file and line;
2. a real (not complex) loss returned for complex params, or an exception;
3. for one entry per tensor (the one with the largest analytic gradient), the complex-step
   value compared with a central difference ``(f(x+h) - f(x-h))/2h``: an imaginary part that
   vanishes while the central difference does not, or a disagreement beyond the central
   difference's own error, marks the forward as not complex-analytic.

It also times one real and one complex forward: a complex forward of a matrix-heavy model costs
2–3× a real one, so the complex step halves the evaluations but not always the time.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.estimate.schemes import Scheme, get_scheme
from gradcheck.params import tree as trees

try:
    _ComplexWarning = np.exceptions.ComplexWarning
except AttributeError:  # numpy < 1.25
    _ComplexWarning = np.ComplexWarning  # type: ignore[attr-defined]

#: Step of the probe's complex evaluations and of its reference central difference.
H_COMPLEX, H_CENTRAL = 1e-20, 1e-5
#: Relative disagreement between complex step and central difference that marks code unsafe.
REL_TOL = 1e-4


@dataclass
class Safety:
    """Outcome of :func:`probe`.

    safe : the complex step can be trusted; reason : one sentence when it cannot;
    checked : element names spot-checked; evaluations : forwards spent;
    real_time, complex_time : median seconds of one real and one complex forward.
    """

    safe: bool
    reason: str | None = None
    checked: list[str] = field(default_factory=list)
    evaluations: int = 0
    real_time: float = float("nan")
    complex_time: float = float("nan")

    @property
    def cost_ratio(self) -> float:
        """Time of a complex forward over a real one."""
        return self.complex_time / self.real_time if self.real_time > 0 else float("nan")


def probe(forward: Callable[[Any], Any], params: Any, grads: list[np.ndarray], noise: float,
          reset: Callable[[], None] | None = None, max_leaves: int = 16) -> Safety:
    """Decide whether ``forward`` is complex-analytic enough for the complex step.

    Works on private copies (the user's params are not touched). ``grads`` are the analytic
    gradients aligned to ``tree.flatten(params)``; ``noise`` the absolute rounding noise of
    one real loss evaluation.
    """
    leaves = trees.flatten(params)
    carr = [leaf.array.astype(np.complex128) for leaf in leaves]
    rarr = [leaf.array.astype(np.float64) for leaf in leaves]
    ctree, rtree = trees.replace_leaves(params, carr), trees.replace_leaves(params, rarr)
    out = Safety(True)
    real_times: list[float] = []
    complex_times: list[float] = []

    def call(tree: Any, times: list[float]) -> Any:
        if reset is not None:
            reset()
        out.evaluations += 1
        t = time.perf_counter()
        value = forward(tree)
        times.append(time.perf_counter() - t)
        return value

    def complex_call(where: str) -> complex | str:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", _ComplexWarning)
            try:
                value = call(ctree, complex_times)
            except Exception as exc:
                return (f"the forward raised {type(exc).__name__}: {exc} on complex params "
                        f"({where})")
        for w in caught:
            if issubclass(w.category, _ComplexWarning):
                return (f"numpy warned '{w.message}' at {w.filename}:{w.lineno} ({where}): "
                        "the imaginary part is discarded there (float(), .real, .astype(float) "
                        "or assigning complex values into a float array)")
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if not np.iscomplexobj(np.asarray(value)):
            return (f"the forward returned a real number for complex params ({where}): abs, "
                    ".real, float() or a cast drops the imaginary part")
        return complex(np.asarray(value).reshape(()))

    base = complex_call("at the given params")
    if isinstance(base, str):
        return _unsafe(out, base, real_times, complex_times)
    for i, (leaf, g) in enumerate(zip(leaves, grads)):
        if i >= max_leaves or leaf.size == 0:
            continue
        k = int(np.argmax(np.abs(np.asarray(g, dtype=np.float64).reshape(-1))))
        name = leaf.element_name(k)
        out.checked.append(name)
        cflat, rflat = carr[i].reshape(-1), rarr[i].reshape(-1)
        saved = cflat[k]
        cflat[k] = saved + 1j * H_COMPLEX
        try:
            value = complex_call(f"when {name} was moved")
        finally:
            cflat[k] = saved
        if isinstance(value, str):
            return _unsafe(out, value, real_times, complex_times)
        cs = value.imag / H_COMPLEX
        x = rflat[k]
        try:
            rflat[k] = x + H_CENTRAL
            fp = float(np.real(call(rtree, real_times)))
            rflat[k] = x - H_CENTRAL
            fm = float(np.real(call(rtree, real_times)))
        finally:
            rflat[k] = x
        central = (fp - fm) / (2 * H_CENTRAL)
        bar = REL_TOL * max(abs(cs), abs(central)) + 100.0 * noise / H_CENTRAL
        if value.imag == 0.0 and abs(central) > bar:
            return _unsafe(out, f"Im f(x+ih) is exactly 0 for {name} although its central "
                           f"difference is {central:.3e}: the imaginary part is lost on the "
                           "way (abs, .real, or a real-valued branch)", real_times,
                           complex_times)
        if abs(cs - central) > bar:
            return _unsafe(out, f"the complex step gives {cs:.6e} for {name} but a central "
                           f"difference gives {central:.6e}: the forward is not "
                           "complex-analytic there (abs, sign, max/min or a comparison changes "
                           "the derivative)", real_times, complex_times)
    return _timed(out, real_times, complex_times)


def _timed(out: Safety, real_times: list[float], complex_times: list[float]) -> Safety:
    if real_times:
        out.real_time = float(np.median(real_times))
    if complex_times:
        out.complex_time = float(np.median(complex_times))
    return out


def _unsafe(out: Safety, reason: str, real_times: list[float], complex_times: list[float]
            ) -> Safety:
    out.safe, out.reason = False, reason
    return _timed(out, real_times, complex_times)


def refusal(safety: Safety) -> str:
    """The error message of ``method='complex'`` on code that is not complex-safe."""
    return (f"method='complex' is not safe for this forward: {safety.reason}; use "
            "method='central' (or method='auto', which falls back to a real scheme), or make "
            "that code complex-analytic.")


def auto_note(safety: Safety, real_scheme: str) -> str:
    """What ``method='auto'`` chose and why, with the measured time ratio."""
    if safety.safe:
        ratio = safety.cost_ratio
        cost = (f"; a complex forward costs {ratio:.1f}× a real one, so one complex evaluation "
                f"per entry takes {'less' if ratio < 2 else 'more'} time than the two of a "
                "central difference") if np.isfinite(ratio) else ""
        return (f"method='auto' used the complex step (machine precision, one evaluation per "
                f"entry): spot checks of {', '.join(safety.checked[:4])} agree with central "
                f"differences{cost}.")
    return (f"method='auto' used {real_scheme}: the complex step is not safe here "
            f"({safety.reason}).")


#: ``method='auto'`` keeps its real scheme and uses the complex step only for inconclusive
#: entries when one complex forward costs more than this many real ones (central4's four).
RESCUE_RATIO = 4.0


@dataclass(frozen=True)
class SchemeChoice:
    """What ``method="complex"`` or ``"auto"`` decided after the probe."""

    scheme: Scheme
    h: float | str
    rescue: bool = False          # real scheme, complex step for its inconclusive entries
    note: str | None = None


def choose_scheme(method: str, safety: Safety, asked: Scheme, h: float | str) -> SchemeChoice:
    """Refuse ``method="complex"`` on unsafe code; let ``method="auto"`` pick the complex step
    (safe and cheap), the real scheme with the complex step for inconclusive entries (safe but
    more than ``RESCUE_RATIO`` real forwards), or the real scheme alone (unsafe)."""
    if method == "complex":
        if not safety.safe:
            raise InputError(refusal(safety))
        return SchemeChoice(asked, h)
    real = asked  # method="auto": the asked scheme is its real fallback
    if safety.safe and not safety.cost_ratio > RESCUE_RATIO:
        complex_step = get_scheme("complex")
        return SchemeChoice(complex_step, complex_step.default_h,
                            note=auto_note(safety, real.name))
    if safety.safe:
        return SchemeChoice(real, h, rescue=True, note=(
            f"method='auto' used {real.name} and the complex step only for entries "
            f"{real.name} left inconclusive: a complex forward costs "
            f"{safety.cost_ratio:.1f}× a real one."))
    return SchemeChoice(real, h, note=auto_note(safety, real.name))
