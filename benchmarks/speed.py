"""Speed and scale of gradient checking on the lecture's RNN (issue 5): one run, one machine.

Rows: wall time, loss evaluations and overhead ratio (wall / (evaluations × one forward)) for
gradcheck elementwise (serial), the lecture's copy-per-element loop, ``torch.autograd.gradcheck``
slow and fast mode on the torch twin of the same model, gradcheck through its PyTorch adapter,
directional mode (correct model, then one and five planted bad elements), the batched
forward, two worker processes and a Dask LocalCluster (on a forward of ≥ 10 ms). Then the
sensitivity of directional mode next to torch's fast mode on the same tensor.

BLAS runs single-threaded (OPENBLAS/OMP/MKL_NUM_THREADS=1, torch.set_num_threads(1)) so that
"serial" means one core and the parallel rows measure what extra processes add.

Run: .venv/bin/python benchmarks/speed.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

import gradcheck as gc  # noqa: E402
from gradcheck.examples import rnn  # noqa: E402

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]


@dataclass
class Row:
    what: str
    model: str
    n_params: int
    evaluations: int
    wall: float
    inside: float           # seconds spent inside the forward during the check (nan: remote)
    status: str
    note: str = ""

    @property
    def forward(self) -> float:
        """Mean time of one forward (per stacked row for a batched forward) during the run."""
        return self.inside / self.evaluations if self.evaluations else float("nan")

    @property
    def overhead(self) -> float:
        """wall / (evaluations × one forward) = wall / time inside the forward."""
        return self.wall / self.inside if self.inside > 0 else float("nan")


class Timed:
    """Wrap a forward to count its calls (or stacked rows) and the time spent inside it, so
    the overhead ratio is measured under the same machine load as the check itself."""

    def __init__(self, fn, rows=None) -> None:
        self.fn, self.rows = fn, rows
        self.calls, self.seconds = 0, 0.0

    def __call__(self, *args):
        t0 = time.perf_counter()
        out = self.fn(*args)
        self.seconds += time.perf_counter() - t0
        self.calls += 1 if self.rows is None else self.rows(args)
        return out


def label(problem: rnn.RNNProblem) -> str:
    h = problem.params["W"].shape[0]
    b, t = problem.y.shape
    return f"RNN H={h}, T={t}, B={b}"


# -- the rows ---------------------------------------------------------------------------------

def gradcheck_row(what: str, problem, fb=None, repeat: int = 1, **options
                  ) -> tuple[Row, gc.Report]:
    """Run gc.check ``repeat`` times and keep the fastest run (the least disturbed by other
    jobs on the machine). Time inside the forward (or batched forward) is measured."""
    fb = fb or problem.forward_backward
    best = None
    for _ in range(repeat):
        fwd = Timed(problem.forward)
        if "batched_forward" in options:
            options["batched_forward"] = Timed(problem.batched_forward,
                                               rows=lambda a: len(a[0]["W"]))
        report = gc.check(fwd, fb, problem.params, progress=False, **options)
        inside = fwd.seconds
        if "batched_forward" in options:
            inside += options["batched_forward"].seconds
        if options.get("workers") or options.get("executor"):
            inside = float("nan")
        row = Row(what, label(problem), problem.n_params, report.evaluations,
                  report.wall_time, inside, report.status)
        if best is None or row.wall < best[0].wall:
            best = (row, report)
    return best


def seed_loop(problem) -> Row:
    """The lecture's algorithm: two full copies of the tensor per element (np.copy), a new params
    dict per perturbation, forward, relative error against 1e-5 (seed §3)."""
    params = problem.params
    _, grads = problem.forward_backward(params)
    h, tol = 1e-5, 1e-5
    evaluations, alerts = 0, 0
    forward = Timed(problem.forward)
    t0 = time.perf_counter()
    for key, param in params.items():
        for idx, _ in np.ndenumerate(param):
            minus = np.copy(param)
            minus[idx] -= h
            plus = np.copy(param)
            plus[idx] += h
            p_minus = dict(params, **{key: minus})
            p_plus = dict(params, **{key: plus})
            n = (forward(p_plus) - forward(p_minus)) / (2 * h)
            evaluations += 2
            a = grads[key][idx]
            if abs(a - n) / max(1e-10, abs(a), abs(n)) >= tol:
                alerts += 1
    wall = time.perf_counter() - t0
    return Row("seed's copy-per-element loop", label(problem), problem.n_params, evaluations,
               wall, forward.seconds, "fail" if alerts else "pass", f"{alerts} alerts")


def torch_rows(problem) -> list[Row]:
    """torch.autograd.gradcheck (slow and fast mode) on the torch twin; forwards counted."""
    try:
        import torch
    except ImportError:
        return []
    torch.set_num_threads(1)
    fn, tensors = rnn.torch_twin(problem)
    rows = []
    for fast in (False, True):
        counted = Timed(fn)
        t0 = time.perf_counter()
        ok = torch.autograd.gradcheck(counted, tensors, fast_mode=fast, raise_exception=False)
        wall = time.perf_counter() - t0
        rows.append(Row(f"torch.autograd.gradcheck {'fast' if fast else 'slow'} mode",
                        label(problem), problem.n_params, counted.calls, wall, counted.seconds,
                        "pass" if ok else "fail", "eps=1e-6, atol=1e-5, rtol=1e-3; forward "
                        "time includes the one call with autograd recording"))
    try:
        from gradcheck.adapters.torch import check_function
    except ImportError:
        return rows
    counted = Timed(fn)
    report = check_function(counted, *tensors, names=list(rnn.PARAM_NAMES), progress=False)
    rows.append(Row("gradcheck via its PyTorch adapter (elementwise)", label(problem),
                    problem.n_params, report.evaluations, report.wall_time, counted.seconds,
                    report.status, "numerics on the torch twin's forward"))
    return rows


def planted(problem, count: int, relative: float, seed: int):
    """forward_backward with ``count`` elements of U/W/V wrong by ``relative`` × the RMS
    gradient of their tensor; returns it and the planted (tensor, flat index) pairs."""
    rng = np.random.default_rng(seed)
    names = rng.choice(["U", "W", "V"], size=count)
    plants = sorted({(str(k), int(rng.integers(problem.params[k].size))) for k in names})

    def forward_backward(p):
        loss, g = problem.forward_backward(p)
        g = {k: v.copy() for k, v in g.items()}
        for k, i in plants:
            g[k].reshape(-1)[i] += relative * np.sqrt(np.mean(g[k] ** 2))
        return loss, g

    return forward_backward, plants


def located(report: gc.Report, plants) -> int:
    found = {(t.name, int(i)) for t in report.tensors
             for i, s in zip(t.flat_index, t.status) if s == 1}
    return len(found & set(plants))


def directional_rows(problem) -> tuple[list[Row], dict]:
    rows, facts = [], {}
    row, report = gradcheck_row("gradcheck directional (correct model)", problem,
                                mode="directional")
    rows.append(row)
    facts["correct"] = report.evaluations
    for count in (1, 5):
        fb, plants = planted(problem, count, 1e-2, seed=count)
        row, report = gradcheck_row(f"gradcheck directional + localisation, {count} bad",
                                    problem, fb=fb, mode="directional")
        row.note = (f"{located(report, plants)}/{len(plants)} planted elements located "
                    "(error 1e-2 × RMS gradient)")
        rows.append(row)
        facts[count] = (report.evaluations, located(report, plants), len(plants))
    return rows, facts


def batched_rows(problem, repeat: int) -> tuple[list[Row], float, gc.Report]:
    best = None
    rows = []
    for size in (32, 64, 128):
        row, report = gradcheck_row(f"gradcheck batched, batch_size={size}", problem,
                                    repeat=repeat, batched_forward=problem.batched_forward,
                                    batch_size=size)
        row.note = "problem.batched_forward; one forward = per stacked row"
        rows.append(row)
        if best is None or row.wall < best[0].wall:
            best = (row, report)
    return rows, best[0].wall, best[1]


def identical(a: gc.Report, b: gc.Report) -> bool:
    return a.status == b.status and all(
        np.array_equal(s.numeric, p.numeric) and np.array_equal(s.status, p.status)
        for s, p in zip(a.tensors, b.tensors))


def parallel_main(sample: int = 150) -> None:
    """The parallel rows on a longer run, written to their own section ``speed-parallel``."""
    load = os.getloadavg()[0]
    rows, facts = parallel_rows(False, sample=sample)
    lines = ["## Speed: workers and Dask on a 10 ms forward (benchmarks/speed.py --parallel)", "",
             f"Machine: {machine()}; load average {load:.2f} at start, "
             f"{os.getloadavg()[0]:.2f} at the end. Fresh process without torch, so "
             "`workers=2` starts its pool by fork; the Dask LocalCluster (2 worker processes, "
             "1 thread each, loopback) is started and its imports warmed before timing.", "",
             "| check | model | parameters | evaluations | wall (s) | one forward (ms) | "
             "overhead | status | note |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
    lines += [fmt_row(r) for r in rows]
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    if "workers" in facts:
        sp, same = facts["workers"]
        lines.append(f"| ≥ 1.7× with 2 workers, identical results | {sp:.2f}×, identical: "
                     f"{same} | {'yes' if sp >= 1.7 and same else 'NO'} |")
    if "dask" in facts:
        sp, same = facts["dask"]
        lines.append(f"| identical results on Dask | {sp:.2f}× vs serial, identical: {same} | "
                     f"{'yes' if same else 'NO'} |")
    text = "\n".join(lines)
    print(text)
    write_section("speed-parallel", text)


def parallel_rows(quick: bool, sample: int | None = None) -> tuple[list[Row], dict]:
    """Serial, workers=2 and a Dask LocalCluster (2 processes) on a forward of ≥ 10 ms."""
    problem = rnn.make_problem(hidden=16, seq_len=50, batch=128)
    sample = sample or (20 if quick else 50)
    repeat = 1 if quick else 2
    rows, facts = [], {}
    serial_row, serial = gradcheck_row("gradcheck elementwise, serial (heavy forward)", problem,
                                       sample=sample, repeat=repeat)
    serial_row.note = f"sample={sample} entries per tensor; fastest of {repeat}"
    rows.append(serial_row)
    row, par = gradcheck_row("gradcheck elementwise, workers=2", problem, repeat=repeat,
                             sample=sample, workers=2)
    row.note = f"identical to serial: {identical(serial, par)}"
    rows.append(row)
    facts["workers"] = (serial_row.wall / row.wall, identical(serial, par))
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return rows, facts
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(_warm_imports)  # a one-off cost of a fresh cluster, not of the check
        row, dask_report = gradcheck_row("gradcheck elementwise, Dask LocalCluster (2 workers)",
                                         problem, sample=sample, repeat=repeat,
                                         executor=client.get_executor())
        row.note = f"identical to serial: {identical(serial, dask_report)}"
        rows.append(row)
        facts["dask"] = (serial_row.wall / row.wall, identical(serial, dask_report))
    return rows, facts


def _warm_imports() -> None:
    import gradcheck.evaluate.parallel  # noqa: F401
    import gradcheck.examples.rnn  # noqa: F401


# -- sensitivity --------------------------------------------------------------------------------

def sensitivity(problem, tensor: str = "W", trials: int = 5) -> dict:
    """Smallest planted error on one element of ``tensor`` (relative to its RMS gradient)
    detected in every trial: gradcheck directional vs torch fast mode; plus false alarms of
    gradcheck directional on the correct model over 20 direction seeds."""
    grid = 10.0 ** np.arange(-8, 3.01, 0.5)
    _, g = problem.forward_backward(problem.params)
    rms = float(np.sqrt(np.mean(g[tensor] ** 2)))
    rng = np.random.default_rng(7)
    positions = rng.integers(problem.params[tensor].size, size=trials)

    def gc_detects(rel: float, i: int, seed: int) -> bool:
        def fb(p):
            loss, gg = problem.forward_backward(p)
            gg = {k: v.copy() for k, v in gg.items()}
            gg[tensor].reshape(-1)[i] += rel * rms
            return loss, gg
        rep = gc.check(problem.forward, fb, problem.params, mode="directional",
                       sample_seed=seed, progress=False)
        return not rep.tensor(tensor).directional.passed

    false_alarms = sum(
        not all(t.directional.passed for t in gc.check(
            problem.forward, problem.forward_backward, problem.params, mode="directional",
            sample_seed=s, progress=False).tensors) for s in range(20))
    gc_min = next((r for r in grid if all(gc_detects(r, int(i), k)
                                         for k, i in enumerate(positions))), float("nan"))
    out = {"tensor": tensor, "size": problem.params[tensor].size, "rms": rms,
           "gradcheck": gc_min, "false_alarms": false_alarms, "trials": trials}
    try:
        import torch
    except ImportError:
        return out
    fn, tensors = rnn.torch_twin(problem)
    k = rnn.PARAM_NAMES.index(tensor)

    def torch_detects(rel: float, i: int) -> bool:
        class Plant(torch.autograd.Function):
            """Identity on the loss whose backward adds ``g · δ`` to element i of the
            tensor's gradient (linear in the cotangent g, as torch's checks require)."""

            @staticmethod
            def forward(ctx, out, w):
                ctx.shape = w.shape
                return out.clone()

            @staticmethod
            def backward(ctx, g):
                extra = torch.zeros(ctx.shape, dtype=g.dtype)
                extra.view(-1)[i] = rel * rms
                return g, g * extra

        args = [t.detach().requires_grad_(j == k) for j, t in enumerate(tensors)]

        def planted_fn(*a):
            return Plant.apply(fn(*a), a[k])

        return not torch.autograd.gradcheck(planted_fn, args, fast_mode=True,
                                            raise_exception=False)

    out["torch_fast"] = next((r for r in grid if all(torch_detects(r, int(i))
                                                    for i in positions)), float("nan"))
    return out


# -- report -------------------------------------------------------------------------------------

def fmt_row(r: Row) -> str:
    fwd = f"{r.forward * 1e3:.3f}" if r.inside == r.inside else "(in workers)"
    ovh = f"{r.overhead:.3f}" if r.inside == r.inside else "–"
    return (f"| {r.what} | {r.model} | {r.n_params} | {r.evaluations} | {r.wall:.3f} | "
            f"{fwd} | {ovh} | {r.status} | {r.note} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no slow torch rows")
    parser.add_argument("--parallel", action="store_true",
                        help="only the serial / workers=2 / Dask rows, in a process without "
                        "torch (so workers start by fork), in their own section")
    args = parser.parse_args(argv)
    if args.parallel:
        return parallel_main()
    sizes = (25,) if args.quick else (25, 130)
    rows: list[Row] = []
    goals: dict[str, tuple[str, bool]] = {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for hidden in sizes:
        problem = rnn.make_problem(hidden=hidden)
        repeat = 3 if hidden < 100 else 1
        serial_row, serial = gradcheck_row("gradcheck elementwise (serial)", problem,
                                           repeat=repeat)
        serial_row.note = f"fastest of {repeat}" if repeat > 1 else ""
        rows.append(serial_row)
        print(fmt_row(serial_row), file=sys.stderr)
        rows.append(seed_loop(problem))
        if not args.quick or hidden == 25:
            rows += torch_rows(problem)
        drows, facts = directional_rows(problem)
        rows += drows
        brows, best_wall, best = batched_rows(problem, repeat)
        rows += brows
        for r in rows[-12:]:
            print(fmt_row(r), file=sys.stderr)
        tag = f"{problem.n_params} params"
        goals[f"serial overhead ≤ 1.05 ({tag})"] = (f"{serial_row.overhead:.3f}",
                                                    serial_row.overhead <= 1.05)
        budget = 2 * len(problem.params) + 3
        goals[f"correct model by directional in ≤ {budget} evaluations ({tag})"] = (
            str(facts["correct"]), facts["correct"] <= budget)
        ev1, found1, n1 = facts[1]
        ratio = serial.evaluations / ev1
        if problem.n_params > 10_000 or args.quick:
            goals[f"one bad element located with ≥ 100× fewer evaluations ({tag})"] = (
                f"{ratio:.0f}× ({ev1} vs {serial.evaluations}; {found1}/{n1} located)",
                ratio >= 100 and found1 == n1)
        speed = serial_row.wall / best_wall
        goals[f"batched elementwise ≥ 5× faster than serial ({tag})"] = (
            f"{speed:.1f}× (same verdicts: {best.status == serial.status})", speed >= 5)
    prow, pfacts = parallel_rows(args.quick)
    rows += prow
    if "workers" in pfacts:
        s, same = pfacts["workers"]
        goals["≥ 1.7× with 2 workers, identical results"] = (f"{s:.2f}×, identical: {same}",
                                                             s >= 1.7 and same)
    if "dask" in pfacts:
        s, same = pfacts["dask"]
        goals["identical results on Dask"] = (f"{s:.2f}× vs serial, identical: {same}", same)
    sens_problem = rnn.make_problem(hidden=25 if args.quick else 130)
    sens = sensitivity(sens_problem, trials=3 if args.quick else 5)
    if "torch_fast" in sens:
        ratio = sens["torch_fast"] / sens["gradcheck"]
        goals["directional sensitivity ≥ 100× finer than torch fast mode"] = (
            f"{ratio:.0f}×", ratio >= 100)

    lines = [
        "## Speed and scale (benchmarks/speed.py)",
        "",
        f"Machine: {machine()}; load average {load:.2f} at start, {{end_load:.2f}} at the end "
        "(other jobs shared the 2 cores, so wall times are inflated; ratios measured within "
        "one run are not). BLAS and torch single-threaded. One forward = mean time inside "
        "the forward during that check (per stacked row for a batched forward); overhead = "
        "wall / (evaluations × one forward) = wall / time inside the forward. Models: "
        "`rnn.make_problem(hidden=...)` in float64 (T=10, B=4); torch rows on "
        "`rnn.torch_twin(problem)`.",
        "",
        "| check | model | parameters | evaluations | wall (s) | one forward (ms) | overhead "
        "| status | note |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    lines += [fmt_row(r) for r in rows]
    lines += [
        "",
        f"Sensitivity on `{sens['tensor']}` ({sens['size']} entries, "
        f"{label(sens_problem)}): smallest error on one element, relative to the tensor's RMS "
        f"gradient ({sens['rms']:.3g}), detected in all of {sens['trials']} trials (random "
        "positions; a grid of half decades):",
        "",
        "| checker | smallest detected relative error |",
        "|---|---:|",
        f"| gradcheck directional (tol=1e-5; {sens['false_alarms']} false alarms on the "
        f"correct model over 20 direction seeds) | {sens['gradcheck']:.1e} |",
    ]
    if "torch_fast" in sens:
        lines.append(f"| torch.autograd.gradcheck fast mode (atol=1e-5, rtol=1e-3) | "
                     f"{sens['torch_fast']:.1e} |")
    lines += ["", "Goals:", "", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {'yes' if ok else 'NO'} |" for k, (v, ok) in goals.items()]
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join(lines).replace("{end_load:.2f}", f"{end_load:.2f}")
    print(text)
    if not args.quick:
        write_section("speed", text)


if __name__ == "__main__":
    main()
