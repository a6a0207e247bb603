"""workers=2 against serial on the RNN demo at about 2k and 20k parameters (issue 12).

A pool only pays off when the check is long enough to amortise starting the workers and
shipping the problem; the check runs serially below about a second of work and says so. This
measures the ratio serial time / workers=2 time (above 1: the workers help) for the
elementwise and directional modes, on the default RNN demo (fast forward, ~0.1 ms) at
hidden=25 (2,027 parameters) and hidden=130 (24,077 parameters).

Run: .venv/bin/python benchmarks/workers_small.py [--no-write]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import gradcheck as gc  # noqa: E402
from gradcheck.examples import rnn  # noqa: E402

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]

SIZES = {"2k": 25, "20k": 130}


def timed(problem: rnn.RNNProblem, repeat: int, **options) -> tuple[float, gc.Report]:
    """Fastest wall time of ``repeat`` checks, and the last report."""
    best, report = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        report = gc.check(problem.forward, problem.forward_backward, problem.params,
                          progress=False, **options)
        best = min(best, time.perf_counter() - start)
    return best, report


def rows(repeat: int) -> list[tuple[str, str, int, float, float, str]]:
    out = []
    for label, hidden in SIZES.items():
        problem = rnn.make_problem(hidden=hidden)
        for mode in ("elementwise", "directional"):
            serial, _ = timed(problem, repeat, mode=mode)
            par, report = timed(problem, repeat, mode=mode, workers=2)
            ran_serially = any("serially" in n for n in report.notes)
            out.append((label, mode, problem.n_params, serial, par,
                        "ran serially (said so)" if ran_serially else "pool"))
            print(out[-1], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    table = rows(args.repeat)
    lines = ["## workers=2 vs serial on the RNN demo (benchmarks/workers_small.py)", "",
             f"Machine: {machine()}; load average {load:.2f} at start, "
             f"{os.getloadavg()[0]:.2f} at the end; fastest of {args.repeat}.", "",
             "| size | mode | parameters | serial (s) | workers=2 (s) | serial / workers | how |",
             "|---|---|---:|---:|---:|---:|---|"]
    lines += [f"| {s} | {m} | {n:,} | {a:.2f} | {b:.2f} | {a / b:.2f}× | {how} |"
              for s, m, n, a, b, how in table]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("workers-small", text)


if __name__ == "__main__":
    main()
