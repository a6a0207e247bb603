"""Spot checks during training (seed §4: check in the middle of training, not at the start).

At initialisation many units sit in pathological regimes (all ReLUs alive, tiny weights,
softmax near uniform) where a wrong gradient can look right; a gradient that is right at step 0
can also go wrong later (a branch taken only once the loss is small). A :class:`Monitor` runs a
cheap sampled check every ``every`` training steps, logs one line each time, keeps a history,
and raises a clear alert when a check fails.

Example
-------
>>> monitor = gc.Monitor(forward, forward_backward, every=100, sample=5)   # doctest: +SKIP
>>> for step in range(10_000):                                              # doctest: +SKIP
...     loss, grads = forward_backward(params)
...     monitor(params, step)          # a check at steps 0, 100, 200, ...
...     sgd_update(params, grads)
>>> monitor.history[-1].status                                              # doctest: +SKIP
'pass'
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gradcheck.check import check
from gradcheck.errors import GradcheckError, InputError
from gradcheck.options import make_plan
from gradcheck.report.results import Report

ON_FAIL = ("warn", "raise", "log")


class GradientAlert(UserWarning):
    """Warning category of a failed spot check (``on_fail="warn"``)."""


class GradientCheckFailed(GradcheckError, AssertionError):
    """Raised by a failed spot check when ``on_fail="raise"``; ``.report`` holds the report."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class Record:
    """One spot check: when, what it found, and (optionally) the full report."""

    step: int
    status: str
    checked: int
    failed: int
    inconclusive: int
    max_error: float
    worst: str
    failing_tensors: list[str]
    evaluations: int
    seconds: float
    report: Report | None = field(default=None, repr=False)

    def line(self) -> str:
        """The one-line log of this check."""
        text = (f"gradcheck step {self.step}: {self.status} — {self.checked} entries, max error "
                f"{self.max_error:.2e}")
        if self.worst:
            text += f" (worst {self.worst})"
        if self.failed:
            text += f", {self.failed} FAIL in {', '.join(self.failing_tensors)}"
        if self.inconclusive:
            text += f", {self.inconclusive} inconclusive"
        return text + f", {self.evaluations} evaluations in {self.seconds:.2f} s"


class Monitor:
    """Run a sampled gradient check every ``every`` calls inside a training loop.

    Parameters
    ----------
    forward, forward_backward : as for :func:`gradcheck.check`; they may read the current
        batch from the enclosing scope, or be passed per call (``monitor(params, step,
        forward=..., forward_backward=...)``).
    every : check when ``step % every == 0`` (``step`` counts calls when not given).
    sample : entries per tensor (int) or fraction (float) per spot check; edges are always
        included, and the other entries change from check to check (``sample_seed`` is
        ``seed_base + step``), so over a run many entries get looked at.
    start : first step at which to check (the lecture advises against the very start).
    on_fail : ``"warn"`` (a :class:`GradientAlert` warning, default), ``"raise"``
        (:class:`GradientCheckFailed`) or ``"log"`` (only the ALERT line).
    log : where the one-line logs go (default ``print``; ``None`` for silence).
    keep_reports : keep each full :class:`~gradcheck.report.results.Report` in the history.
    **options : any other option of :func:`gradcheck.check` (``seed=``, ``tol=``, ...).
    """

    def __init__(self, forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any],
                 every: int = 100, sample: int | float | None = 5, *, start: int = 0,
                 on_fail: str = "warn", log: Callable[[str], Any] | None = print,
                 keep_reports: bool = False, seed_base: int = 0, **options: Any) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError(f"every={every!r} must be a positive int (check every N steps).")
        if on_fail not in ON_FAIL:
            raise InputError(f"on_fail={on_fail!r}: choose 'warn', 'raise' or 'log'.")
        if "sample_seed" in options:
            raise InputError("sample_seed is set per check by the Monitor (seed_base + step); "
                             "pass seed_base= instead.")
        make_plan({"sample": sample, **options})  # fail now, not at step 10 000
        self.forward = forward
        self.forward_backward = forward_backward
        self.every = every
        self.sample = sample
        self.start = start
        self.on_fail = on_fail
        self.log = log
        self.keep_reports = keep_reports
        self.seed_base = seed_base
        self.options = options
        self.history: list[Record] = []
        self.calls = 0

    def due(self, step: int) -> bool:
        """Whether ``step`` is a checking step."""
        return step >= self.start and (step - self.start) % self.every == 0

    def __call__(self, params: Any, step: int | None = None, *,
                 forward: Callable[[Any], Any] | None = None,
                 forward_backward: Callable[[Any], Any] | None = None) -> Report | None:
        """Check at this step if it is due; return the report (else ``None``)."""
        if step is None:
            step = self.calls
        self.calls += 1
        if not self.due(step):
            return None
        return self.check_now(params, step, forward=forward, forward_backward=forward_backward)

    def check_now(self, params: Any, step: int, *, forward: Callable[[Any], Any] | None = None,
                  forward_backward: Callable[[Any], Any] | None = None) -> Report:
        """Run a spot check now, whatever the step."""
        options = {"progress": False, **self.options}
        t0 = time.perf_counter()
        report = check(forward or self.forward, forward_backward or self.forward_backward,
                       params, sample=self.sample, sample_seed=self.seed_base + step, **options)
        seconds = time.perf_counter() - t0
        worst = report.worst(1)
        c = report.counts
        rec = Record(step, report.status, c["checked"], c["failed"], c["inconclusive"],
                     worst[0].error if worst else float("nan"), worst[0].name if worst else "",
                     report.failing_tensors, report.evaluations, seconds,
                     report if self.keep_reports else None)
        self.history.append(rec)
        self._emit(rec.line())
        if report.status == "fail":
            self._alert(rec, report)
        elif report.status == "inconclusive" and report.warnings:
            self._emit(f"gradcheck step {step}: {report.warnings[0]}")
        return report

    def _emit(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def _alert(self, rec: Record, report: Report) -> None:
        e = report.worst(1)[0]
        msg = (f"gradcheck ALERT at step {rec.step}: the analytic gradient is wrong in "
               f"{', '.join(rec.failing_tensors)} ({rec.failed} of {rec.checked} sampled entries "
               f"FAIL; worst {e.name}: analytic {e.analytic:.6g}, numeric {e.numeric:.6g}).")
        diagnoses = [f"{t.name}: {t.diagnosis}" for t in report.tensors if t.diagnosis]
        if diagnoses:
            msg += " Likely: " + "; ".join(diagnoses)
        self._emit(msg)
        if self.on_fail == "raise":
            raise GradientCheckFailed(msg, report)
        if self.on_fail == "warn":
            warnings.warn(msg, GradientAlert, stacklevel=4)  # the training loop's line

    @property
    def failures(self) -> list[Record]:
        """The spot checks that failed."""
        return [r for r in self.history if r.status == "fail"]

    @property
    def ok(self) -> bool:
        """True while no spot check has failed."""
        return not self.failures

    def summary(self) -> str:
        """One line over the whole history."""
        n = len(self.history)
        if not n:
            return "gradcheck monitor: no spot check yet."
        fails = self.failures
        text = f"gradcheck monitor: {n} spot checks, {len(fails)} failed"
        if fails:
            text += f" (first at step {fails[0].step})"
        return text + "."
