"""Batched elementwise checks against serial ones on the lecture's RNN (issue 13).

Full elementwise checks of ``rnn.make_problem(hidden=H)`` (H = 25: 2,027 parameters; H = 130:
24,077), serial and with ``batched_forward=problem.batched_forward`` at the automatic batch
size and at fixed ones. Times are CPU seconds of this process (``time.process_time``), not
wall time: the machine is shared, and CPU time is what the batching saves. BLAS runs
single-threaded. Each row is the best of ``--repeat`` runs.

Run: .venv/bin/python benchmarks/batching.py [--repeat 2] [--hidden 25 130]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import gradcheck as gc  # noqa: E402
from gradcheck.examples import rnn  # noqa: E402

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]


def timed(problem, repeat: int, **options) -> tuple[float, gc.Report]:
    """Best CPU time of ``repeat`` checks, and the last report."""
    best, report = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        report = gc.check(problem.forward, problem.forward_backward, problem.params,
                          progress=False, **options)
        best = min(best, time.process_time() - t0)
    return best, report


def same(a: gc.Report, b: gc.Report) -> bool:
    return a.status == b.status and all(
        np.array_equal(s.status, t.status) for s, t in zip(a.tensors, b.tensors))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="*", default=[25, 130])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    lines = ["| model | parameters | check | CPU s | gain over serial | same verdicts |",
             "|---|---:|---|---:|---:|---|"]
    goals = []
    for hidden in args.hidden:
        problem = rnn.make_problem(hidden=hidden)
        label = f"RNN H={hidden}"
        serial, ref = timed(problem, args.repeat)
        lines.append(f"| {label} | {problem.n_params} | serial | {serial:.2f} | 1.00 | – |")
        print(lines[-1], flush=True)
        for size in (None, 8, 32, 128):
            cpu, rep = timed(problem, args.repeat, batched_forward=problem.batched_forward,
                             batch_size=size)
            name = "batched, automatic size" if size is None else f"batched, batch_size={size}"
            lines.append(f"| {label} | {problem.n_params} | {name} | {cpu:.2f} | "
                         f"{serial / cpu:.2f} | {same(ref, rep)} |")
            print(lines[-1], flush=True)
            if size is None:
                goals.append((problem.n_params, serial / cpu))
    body = ("## Batching (benchmarks/batching.py)\n\n"
            f"Machine: {machine()}; CPU seconds of the checking process (best of "
            f"{args.repeat}), BLAS single-threaded, full elementwise checks.\n\n"
            + "\n".join(lines) + "\n\n"
            + "\n".join(f"Goal batched ≥ 4× serial at {n} parameters: {g:.2f}× — "
                        f"{'met' if g >= 4 else 'NOT met'}." for n, g in goals))
    print(body)
    if not args.no_write:
        write_section("batching", body)


if __name__ == "__main__":
    main()
