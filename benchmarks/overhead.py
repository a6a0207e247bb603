"""Cost of `gradcheck demo rnn` at its default size: evaluations, wall time and overhead ratio.

overhead = check wall time / (loss evaluations × time of one forward). A ratio of 1.0 means
the check spends all its time inside the user's forward.

Run: .venv/bin/python benchmarks/overhead.py
"""

from __future__ import annotations

import time

import numpy as np

import gradcheck as gc
from gradcheck.examples import rnn

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]


def forward_time(forward, params, repeats: int = 2000) -> float:
    """Median over 7 runs of the mean time of one forward call (seconds)."""
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(repeats):
            forward(params)
        runs.append((time.perf_counter() - t0) / repeats)
    return float(np.median(runs))


def main() -> None:
    rows = []
    for hidden in (16, 25):
        problem = rnn.make_problem(hidden=hidden)
        one = forward_time(problem.forward, problem.params)
        walls = []
        for _ in range(3):
            report = gc.check(problem.forward, problem.forward_backward, problem.params,
                              progress=False) if _has_progress() else gc.check(
                problem.forward, problem.forward_backward, problem.params)
            walls.append(report.wall_time)
        wall = float(np.median(walls))
        ratio = wall / (report.evaluations * one)
        rows.append((hidden, problem.n_params, report.evaluations, wall, one, ratio,
                     report.status))
    lines = [
        "## Core: `gradcheck demo rnn` cost (benchmarks/overhead.py)",
        "",
        f"Machine: {machine()}. Central differences, every entry, float64; wall time is the "
        "median of 3 checks; one forward is the median of 7 × 2000 calls.",
        "",
        "| hidden | parameters | evaluations | wall time (s) | one forward (µs) | overhead "
        "ratio | status |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for h, n, ev, wall, one, ratio, status in rows:
        lines.append(f"| {h} | {n} | {ev} | {wall:.3f} | {one * 1e6:.1f} | {ratio:.3f} | "
                     f"{status} |")
    text = "\n".join(lines)
    print(text)
    write_section("overhead", text)


def _has_progress() -> bool:
    try:
        from gradcheck.options import OPTION_NAMES
    except ImportError:  # before the frozen plan (for measuring older versions)
        return True
    return "progress" in OPTION_NAMES


if __name__ == "__main__":
    main()
