"""Scale of a check with the number of parameters (issue 13): wall time and peak extra memory.

For N from 1e4 up (5e7, 1e8 and 5e8 behind ``--big``), float64 and float32 parameters, on
a model whose forward costs O(N) and needs no whole-size temporaries:

    f(w) = Σ_i c_i w_i + ½ Σ_i w_i²,      ∇f = c + w,

with ``c`` (the data) and ``w`` uniform in [0.5, 1.5) — all terms positive, so the loss is
summed without cancellation — evaluated in chunks of 2¹³ entries (numpy's pairwise sum per
chunk, ``math.fsum`` over the chunks), so its rounding noise stays near ε·|f| at any N.

Modes:

* ``directional`` — ``mode="directional"`` on the correct gradient;
* ``located`` — the same with one planted wrong entry (5× the RMS gradient), which must be
  localised (the row records whether it was);
* ``sampled`` — elementwise on ``SAMPLE`` entries of the tensor;
* ``elementwise`` (projected) — a full elementwise check: wall time projected as
  (evaluations of a full check) × (seconds per evaluation measured in the sampled run);
  memory as the per-entry bytes of a full check measured directly at N = 1e4 and 1e5,
  times N.

*Extra memory* is what the issue defines: the peak resident memory during ``gc.check``
minus the resident memory just before it, when the process already holds the params, the
data and one analytic gradient (``forward_backward`` returns that precomputed gradient).
Each measurement runs in a fresh subprocess; the peak is reset with
``/proc/self/clear_refs`` (``5``) just before the check and read from ``VmHWM`` after it
(Linux only). A measurement is skipped when the memory it would need (from the multiple
measured at the previous size) exceeds what the machine has available.

Run: .venv/bin/python benchmarks/scale.py [--big] [--label after] [--before main]
Results go to benchmarks/scale-<label>.json, the figure to benchmarks/scale.png and a
section of benchmarks/RESULTS.md (comparing with ``--before``'s JSON when given).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHUNK = 1 << 13
SAMPLE = 16
DEFAULT_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
BIG_SIZES = (50_000_000, 100_000_000, 500_000_000)
MODES = ("directional", "located", "sampled", "elementwise")
DTYPES = ("float64", "float32")
#: Full elementwise checks are measured directly up to this size, projected above.
FULL_MEASURED = 100_000
#: Planted error, in RMS gradients.
BUG = 5.0


# -- the model ---------------------------------------------------------------------------

class Model:
    """``f(w) = Σ c·w + ½ Σ w²`` with chunked, cancellation-free evaluation."""

    def __init__(self, n: int, dtype: str, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.c = np.empty(n, dtype=dtype)
        self.w = np.empty(n, dtype=dtype)
        self.grad = np.empty(n, dtype=dtype)
        for s in self.slices():  # filled in chunks: no N-sized temporaries
            self.c[s] = rng.uniform(0.5, 1.5, s.stop - s.start)
            self.w[s] = rng.uniform(0.5, 1.5, s.stop - s.start)
            self.grad[s] = self.c[s].astype(np.float64) + self.w[s]

    def slices(self) -> list[slice]:
        return [slice(i, min(i + CHUNK, self.n)) for i in range(0, self.n, CHUNK)]

    def forward(self, p: dict[str, np.ndarray]) -> float:
        w, c = p["w"], self.c
        parts = []
        for s in self.slices():
            ws = w[s]
            parts.append(float(np.dot(c[s].astype(ws.dtype, copy=False), ws))
                         + 0.5 * float(np.dot(ws, ws)))
        return math.fsum(parts)


# -- one measurement, in a fresh process ----------------------------------------------------

def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status (Linux only)")


def measure(mode: str, dtype: str, n: int) -> dict:
    """Build the model, then time one check and its peak extra memory."""
    import gradcheck as gc

    # warm lazy imports and caches on a tiny check of the same kind
    tiny = Model(64, dtype, seed=1)
    gc.check(tiny.forward, lambda p: {"w": tiny.grad}, {"w": tiny.w}, progress=False,
             mode="directional")
    gc.check(tiny.forward, lambda p: {"w": tiny.grad}, {"w": tiny.w}, progress=False,
             sample=4)
    model = Model(n, dtype)
    bad = None
    if mode == "located":
        bad = n // 3 + 7
        rms = float(np.sqrt(np.mean(model.grad[: min(n, 1 << 20)].astype(np.float64) ** 2)))
        model.grad[bad] += BUG * rms
    options: dict = {"progress": False}
    if mode in ("directional", "located"):
        options["mode"] = "directional"
    elif mode == "sampled":
        options["sample"] = SAMPLE
    params = {"w": model.w}
    grads = {"w": model.grad}
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t0 = time.perf_counter()
    report = gc.check(model.forward, lambda p: grads, params, **options)
    wall = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    extra = max(0, peak - before) * 1024
    row = {"mode": mode, "dtype": dtype, "n": n, "wall": wall, "extra": extra,
           "param_bytes": int(model.w.nbytes), "multiple": extra / model.w.nbytes,
           "baseline": before * 1024, "status": report.status,
           "evaluations": int(report.evaluations), "projected": False}
    if bad is not None:
        t = report.tensor("w")
        row["located"] = t.flat_index[t.status == 1].tolist() == [bad]
    return row


def measure_torch(n_out: int, n_in: int, dtype: str) -> dict:
    """A ``torch.nn.Linear(n_in, n_out)`` (about ``n_in·n_out`` parameters) checked in
    directional mode through the adapter (``check_module``): wall time and extra memory over
    the process holding the module and its input (the analytic gradient is computed inside
    the check here, by autograd)."""
    import torch

    import gradcheck as gc  # noqa: F401 - warm imports
    from gradcheck.adapters.torch import check_module

    torch.set_num_threads(1)
    tiny = torch.nn.Linear(8, 4).to(getattr(torch, dtype))
    check_module(tiny, torch.randn(2, 8, dtype=getattr(torch, dtype)), mode="directional",
                 progress=False)
    with torch.no_grad():
        model = torch.nn.Linear(n_in, n_out).to(getattr(torch, dtype))
    x = torch.randn(2, n_in, dtype=getattr(torch, dtype))
    n = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    before = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t0 = time.perf_counter()
    report = check_module(model, x, mode="directional", progress=False)
    wall = time.perf_counter() - t0
    extra = max(0, _status_kb("VmHWM") - before) * 1024
    return {"mode": "torch Linear directional", "dtype": dtype, "n": n, "wall": wall,
            "extra": extra, "param_bytes": param_bytes, "multiple": extra / param_bytes,
            "baseline": before * 1024, "status": report.status,
            "evaluations": int(report.evaluations), "projected": False}


def run_child(mode: str, dtype: str, n: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, dtype, str(n)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "dtype": dtype, "n": n, "error": f"timeout after {timeout:.0f} s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"mode": mode, "dtype": dtype, "n": n,
                "error": f"exit {out.returncode}: {tail[:200]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# -- the sweep -----------------------------------------------------------------------------

def project_full(rows: list[dict]) -> list[dict]:
    """Full elementwise rows above FULL_MEASURED: time from the sampled run's seconds per
    evaluation, memory from the largest directly measured per-entry bytes."""
    out = []
    for dtype in DTYPES:
        measured = [r for r in rows if r["mode"] == "elementwise" and r["dtype"] == dtype
                    and "error" not in r]
        if not measured:
            continue
        per_entry = max(r["extra"] / r["n"] for r in measured)
        per_eval_full = max(r["wall"] / r["evaluations"] for r in measured)
        for s in rows:
            if s["mode"] != "sampled" or s["dtype"] != dtype or "error" in s:
                continue
            if s["n"] <= FULL_MEASURED:
                continue
            evals = 2 * s["n"] + 3
            per_eval = max(s["wall"] / s["evaluations"], per_eval_full)
            itemsize = np.dtype(dtype).itemsize
            extra = per_entry * s["n"] + s["extra"]
            out.append({"mode": "elementwise", "dtype": dtype, "n": s["n"],
                        "wall": per_eval * evals, "extra": extra,
                        "param_bytes": s["n"] * itemsize,
                        "multiple": extra / (s["n"] * itemsize), "status": "projected",
                        "evaluations": evals, "projected": True})
    return out


def sweep(sizes: list[int], modes: list[str], dtypes: list[str], timeout: float,
          limit: float = float("inf")) -> list[dict]:
    rows: list[dict] = []
    for dtype in dtypes:
        multiple: dict[str, float] = {}
        for n in sizes:
            for mode in modes:
                if mode == "elementwise" and n > FULL_MEASURED:
                    continue
                itemsize = np.dtype(dtype).itemsize
                need = 3 * n * itemsize + multiple.get(mode, 2.0) * n * itemsize * 1.1
                if need > limit or (multiple.get(mode) is not None
                                    and need > 0.9 * available_bytes()):
                    row = {"mode": mode, "dtype": dtype, "n": n,
                           "error": f"skipped: would need {need / 2**30:.1f} GiB "
                                    f"({multiple.get(mode, 2.0):.1f}× params extra)"}
                else:
                    row = run_child(mode, dtype, n, timeout)
                if "error" not in row:  # the multiple at the largest size so far
                    multiple[mode] = row["multiple"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows + project_full(rows)


# -- output --------------------------------------------------------------------------------

STYLE = {"directional": ("C0", "o"), "located": ("C1", "s"), "sampled": ("C2", "^"),
         "elementwise": ("C3", "v")}


def plot(rows: list[dict], before: list[dict] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 6.5))
    for label, data, alpha, ls in (("before", before or [], 0.35, ":"), ("", rows, 1.0, "-")):
        for mode in MODES:
            for dtype, marker_fill in (("float64", "full"), ("float32", "none")):
                pts = sorted((r for r in data if r["mode"] == mode and r["dtype"] == dtype
                              and "error" not in r), key=lambda r: r["n"])
                if not pts:
                    continue
                color, marker = STYLE[mode]
                name = f"{mode} {dtype}" + (f" ({label})" if label else "")
                if mode == "elementwise":
                    name += " (projected above 1e5)"
                n = [r["n"] for r in pts]
                kw = dict(color=color, marker=marker, fillstyle=marker_fill, alpha=alpha,
                          linestyle=ls if dtype == "float64" else "--" if not label else ":")
                axes[0].loglog(n, [r["wall"] for r in pts], label=name, **kw)
                axes[1].loglog(n, [max(r["extra"], 1) / 2**20 for r in pts], label=name, **kw)
    ns = np.array([1e4, 5e8])
    for k, ls in ((1, "-"), (2, "--")):
        axes[1].loglog(ns, k * 8 * ns / 2**20, color="grey", lw=0.8, ls=ls)
        axes[1].text(ns[-1], k * 8 * ns[-1] / 2**20, f" {k}×float64 params", fontsize=7,
                     va="center", color="grey")
    axes[0].set(xlabel="parameters N", ylabel="wall time of the check (s)",
                title="time vs N")
    axes[1].set(xlabel="parameters N", ylabel="peak extra resident memory (MiB)",
                title="extra memory vs N (over params + data + one gradient)")
    for ax in axes:
        ax.grid(True, which="both", lw=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_bytes(b: float) -> str:
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.1f} MiB"


def table(rows: list[dict], before: list[dict] | None) -> str:
    old = {(r["mode"], r["dtype"], r["n"]): r for r in (before or [])}
    lines = ["| mode | dtype | N | wall (s) | evaluations | extra memory | × param bytes | "
             "before: × param bytes | status |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    order = {m: i for i, m in enumerate(MODES)}
    for r in sorted(rows, key=lambda r: (order.get(r["mode"], len(MODES)), r["dtype"], r["n"])):
        b = old.get((r["mode"], r["dtype"], r["n"]))
        prev = "–" if b is None else ("skipped/failed" if "error" in b
                                      else f"{b['multiple']:.2f}")
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['dtype']} | {r['n']:.0e} | – | – | – | – | "
                         f"{prev} | {r['error']} |")
            continue
        status = r["status"]
        if "located" in r:
            status += ", planted entry located" if r["located"] else ", NOT located"
        lines.append(f"| {r['mode']} | {r['dtype']} | {r['n']:.0e} | {r['wall']:.2f} | "
                     f"{r['evaluations']} | {_fmt_bytes(r['extra'])} | {r['multiple']:.2f} | "
                     f"{prev} | {status} |")
    return "\n".join(lines)


def goals(rows: list[dict], before: list[dict] | None) -> str:
    """The issue's goals against the largest measured sizes."""
    ok = [r for r in rows if "error" not in r and not r.get("projected")]

    def largest(mode: str, dtype: str) -> dict | None:
        pts = [r for r in ok if r["mode"] == mode and r["dtype"] == dtype]
        return max(pts, key=lambda r: r["n"]) if pts else None

    old = {(r["mode"], r["dtype"], r["n"]): r for r in (before or []) if "error" not in r}
    lines = ["| goal | measured | before | met |", "|---|---|---|---|"]
    for mode, dtype, limit in (("directional", "float64", 1.2), ("located", "float64", 1.2),
                               ("directional", "float32", 2.2), ("located", "float32", 2.2)):
        r = largest(mode, dtype)
        if r is None:
            continue
        prev = max((b for (m, d, _), b in old.items() if m == mode and d == dtype),
                   key=lambda b: b["n"], default=None)
        was = f"{prev['multiple']:.1f}× at N={prev['n']:.0e}" if prev else "–"
        extra = (", planted entry located" if r.get("located") else
                 ", planted entry NOT located" if "located" in r else "")
        lines.append(f"| {mode} {dtype}: extra ≤ {limit}× param bytes | {r['multiple']:.2f}× at "
                     f"N={r['n']:.0e}{extra} | {was} | "
                     f"{'yes' if r['multiple'] <= limit and r.get('located', True) else 'NO'} |")
    for mode in ("sampled",):
        for dtype in DTYPES:
            r = largest(mode, dtype)
            if r is not None:
                bound = 2.2 if dtype == "float32" else 0.2
                note = "; the float64 working copy" if dtype == "float32" else ""
                lines.append(f"| {mode} {dtype}: O(sample) | {_fmt_bytes(r['extra'])} at "
                             f"N={r['n']:.0e} ({r['multiple']:.2f}×{note}) | – | "
                             f"{'yes' if r['multiple'] <= bound else 'NO'} |")
    big = [r for r in ok if r["dtype"] == "float32" and r["n"] >= 500_000_000
           and r["mode"] == "directional"]
    lines.append("| directional on 5e8 float32 parameters completes | "
                 + (f"{big[0]['wall']:.0f} s, {_fmt_bytes(big[0]['extra'])} extra, "
                    f"{big[0]['status']}" if big else "not run") + " | – | "
                 + ("yes" if big else "NO") + " |")
    for r in ok:
        if r["mode"].startswith("torch"):
            lines.append(f"| torch nn.Module of ~1e8 parameters through the adapter | "
                         f"{r['n']:.2e} parameters, {r['wall']:.0f} s, "
                         f"{_fmt_bytes(r['extra'])} extra ({r['multiple']:.2f}×: autograd's "
                         "gradient + the float64 working copy), no copy of the parameters | "
                         "at 1e7: 32.2× (10 s) | yes |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "DTYPE", "N"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--big", action="store_true", help="add N = 5e7, 1e8, 5e8")
    parser.add_argument("--sizes", type=float, nargs="*", help="explicit sizes")
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--dtypes", nargs="*", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--label", default="after", help="name of this run's JSON")
    parser.add_argument("--before", help="label of an earlier run to compare with")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per check")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--report", action="store_true",
                        help="measure nothing: redraw the figure and section from the JSON")
    parser.add_argument("--torch", action="store_true",
                        help="add a torch.nn.Linear(1e4, 1e4) (1e8 parameters, float32) row")
    parser.add_argument("--add", action="store_true",
                        help="merge into the label's existing JSON (new rows replace old ones)")
    parser.add_argument("--limit-gb", type=float, default=float("inf"),
                        help="skip rows that would need more memory than this (GB)")
    args = parser.parse_args(argv)
    if args.child and args.child[0] == "torch":
        n_out = int(float(args.child[2]))
        print(json.dumps(measure_torch(n_out, n_out, args.child[1])))
        return
    if args.child:
        mode, dtype, n = args.child
        print(json.dumps(measure(mode, dtype, int(float(n)))))
        return
    sizes = [int(s) for s in args.sizes] if args.sizes else list(DEFAULT_SIZES) + (
        list(BIG_SIZES) if args.big else [])
    out = HERE / f"scale-{args.label}.json"
    rows = [] if args.report else sweep(sizes, args.modes, args.dtypes, args.timeout,
                                        args.limit_gb * 1e9)
    if args.report:
        rows = json.loads(out.read_text())
    if args.torch and not args.report:
        rows.append(run_child("torch", "float32", 10_000, args.timeout))
        print(json.dumps(rows[-1]), flush=True)
    if args.add and out.exists() and not args.report:
        new = {(r["mode"], r["dtype"], r["n"]): r for r in rows if not r.get("projected")}
        old = [r for r in json.loads(out.read_text()) if not r.get("projected")
               and (r["mode"], r["dtype"], r["n"]) not in new]
        measured = old + list(new.values())
        rows = measured + project_full(measured)
    out.write_text(json.dumps(rows, indent=1))
    before = None
    if args.before:
        before = json.loads((HERE / f"scale-{args.before}.json").read_text())
    if args.no_write:
        print(table(rows, before))
        return
    plot(rows, before, HERE / "scale.png")
    try:
        from benchmarks.results import machine, write_section
    except ImportError:
        from results import machine, write_section  # type: ignore[no-redef]
    body = ("## Scale: time and extra memory vs parameters (benchmarks/scale.py)\n\n"
            f"Machine: {machine()}. Model f(w) = Σ c·w + ½Σw² (one tensor of N entries; "
            "forward in chunks, no N-sized temporaries). Extra memory = peak resident "
            "memory during `gc.check` − resident memory just before (params, data and one "
            "analytic gradient already held), fresh process per row. `located` plants one "
            f"wrong entry ({BUG:g}× the RMS gradient); `sampled` checks {SAMPLE} entries; "
            "`elementwise` above N = 1e5 is projected (time from the sampled run's seconds "
            "per evaluation, memory from the per-entry bytes measured at 1e4–1e5). "
            f"Before = `scale-{args.before}.json`. Params of at most 16 MiB are still copied "
            "(so a forward's own writes are undone), hence the larger multiples of a few MiB "
            "at small N; above that the check keeps one buffer at most. Wall times on a "
            "machine shared with other jobs.\n\n![scale](scale.png)\n\n"
            + goals(rows, before) + "\n\n" + table(rows, before))
    write_section("scale", body)


if __name__ == "__main__":
    main()
