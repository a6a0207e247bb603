"""The lecture's RNN with its forward computed in float32 (issue #10, item 4).

The forward casts the parameters to float32, computes the loss there and returns a Python
float (as ``loss.item()`` in torch); the backward returns float32 gradients. One central
difference per entry is lost in the loss's float32 noise, so this is where inconclusive
entries pile up. For the correct model and each of its 8 bugs (:data:`gradcheck.examples.rnn.
BUGS`): the verdict, the failing tensors against the bug's own, the share of inconclusive
entries, evaluations per entry, and *wrong passes* — entries passed whose analytic value is
off the exact float64 gradient by more than 3× the tolerance at the model's gradient scale
(must be 0).

``python benchmarks/float32_forward.py`` writes its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradcheck as gc  # noqa: E402
from gradcheck.examples import rnn  # noqa: E402

TOL32 = float(np.sqrt(np.finfo(np.float32).eps))


def float32_problem(bug: str | None):
    """``(forward, forward_backward, params)`` of the RNN with a float32 forward."""
    problem = rnn.make_problem(bug)
    return problem.float32_forward, problem.float32_forward_backward, problem.params


def wrong_passes(report, exact: dict[str, np.ndarray]) -> int:
    """Entries passed whose analytic value is off ``exact`` by more than ``3·tol·max(|g|, S)``."""
    scale = float(np.sqrt(np.mean(np.concatenate([g.ravel() for g in exact.values()]) ** 2)))
    wrong = 0
    for t in report.tensors:
        g = exact[t.name].ravel()[t.flat_index]
        beyond = np.abs(t.analytic - g) > 3 * TOL32 * np.maximum(np.abs(g), scale)
        wrong += int(np.count_nonzero(beyond & (np.asarray(t.status) == 0)))
    return wrong


def main() -> None:
    rows = ["| model | verdict | failing tensors | expected | inconclusive entries "
            "| evals/entry | wrong passes | seconds |", "|" + "---|" * 8]
    for bug in [None, *rnn.BUGS]:
        forward, forward_backward, params = float32_problem(bug)
        exact = rnn.make_problem(None).forward_backward(params)[1]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            report = gc.check(forward, forward_backward, params, progress=False)
        seconds = time.perf_counter() - t0
        counts = report.counts
        expected = ", ".join(sorted(rnn.BUGS[bug].affects)) if bug else "—"
        row = (f"| {bug or 'correct'} | {report.status} | "
               f"{', '.join(sorted(report.failing_tensors)) or '—'} | {expected} | "
               f"{counts['inconclusive'] / counts['checked']:.1%} | "
               f"{report.evaluations / counts['checked']:.1f} | "
               f"{wrong_passes(report, exact)} | {seconds:.1f} |")
        print(row, flush=True)
        rows.append(row)
    from results import machine, write_section

    write_section("float32_forward", (
        "## The RNN with a float32 forward (`benchmarks/float32_forward.py`)\n\n"
        f"Machine: {machine()}. `rnn.make_problem(bug)` (1163 parameters), the forward "
        "computed in float32 and returned as a Python float, float32 gradients; checked at "
        "the defaults. A wrong pass is an entry passed whose analytic value is off the exact "
        "gradient by more than 3× the float32 tolerance at the model's gradient scale.\n\n"
        + "\n".join(rows) + "\n"))


if __name__ == "__main__":
    main()
