"""Verdicts under stress (issue #10): false FAILs, missed bugs and inconclusive entries per regime.

The grid (:mod:`gradcheck.examples.regimes`): initial scale (1e-6 … 1) × nonlinearity (ReLU,
leaky ReLU, max-pool, abs, hinge, tanh, sigmoid, softplus) × precision path (float64; float32
params; float32 inside a forward returning a Python float; float16 params) × loss scale
(1e-15, 1, 1e6) × seeds. Every model is checked with ``gradcheck.check`` at its defaults:

* **correct** — any "fail" is a *false FAIL*; inconclusive entries are counted;
* **bug 1e-3** (a uniform scale error of one tensor whose size is 1e-3 of the model's gradient
  norm) — "pass" is a *missed* bug; "inconclusive" is *undetected* (honest, but no verdict);
* **bug 1e-6** — below the tolerance, far above float64 error bars: it should be *reported*
  (``report.significant`` names the tensor) by default and FAIL with ``strict=True``;
* **scattered 1e-3 / 1e-6** — the same sizes as independent normal errors over the tensor,
  nearly orthogonal to its gradient (as a wrong ReLU mask at a small init): invisible along
  the analytic gradient's own direction, so a checker must look entry by entry or along the
  estimates' residual.

Run ``python benchmarks/verdict_stress.py`` (the full grid, a few minutes) or ``--quick`` (a
subset; also what the tests import). ``--write`` stores the tables in its section of
``benchmarks/RESULTS.md``; ``--label NAME`` names the run in that section.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradcheck as gc  # noqa: E402
from gradcheck.examples import regimes as R  # noqa: E402

QUICK = dict(scales=(1e-6, 1e-4, 1e-2, 1.0), nonlinearities=("relu", "maxpool", "tanh"),
             precisions=("f64", "f32", "f32in"), loss_scales=(1e-15, 1.0), seeds=(0, 1))


@dataclass
class Outcome:
    """What one check of one model said."""

    regime: R.Regime
    variant: str          # "correct" | "bug1e-3" | "bug1e-6" | "bug1e-6 strict"
    status: str
    entries: int
    inconclusive: int
    evaluations: int
    reported: bool        # the bug tensor named as a small but significant discrepancy
    seconds: float


def _check(model: R.RegimeModel, strict: bool) -> tuple[Any, bool]:
    """Run gradcheck at its defaults (plus ``strict``); returns the report and whether the
    options were accepted (``strict`` is new in issue #10)."""
    kwargs: dict[str, Any] = {"progress": False}
    if strict:
        kwargs["strict"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return gc.check(model.forward, model.forward_backward, model.params, **kwargs), True
        except TypeError:
            if not strict:
                raise
            return None, False


#: Variants: the bug's relative size and how it is spread over its tensor.
VARIANTS = {"correct": (0.0, "uniform"), "bug1e-3": (1e-3, "uniform"),
            "bug1e-6": (1e-6, "uniform"), "bug1e-6 strict": (1e-6, "uniform"),
            "scattered1e-3": (1e-3, "scattered"), "scattered1e-6": (1e-6, "scattered")}


def run_one(regime: R.Regime, variant: str) -> Outcome | None:
    bug, pattern = VARIANTS[variant]
    model = R.build(regime, bug, pattern=pattern)
    t0 = time.perf_counter()
    report, ok = _check(model, strict=variant.endswith("strict"))
    if not ok:
        return None
    seconds = time.perf_counter() - t0
    counts = report.counts
    significant = getattr(report, "significant", None) or []
    names = {getattr(s, "tensor", s) for s in significant}
    reported = model.bug_tensor is not None and (model.bug_tensor in names
                                                 or model.bug_tensor in report.failing_tensors)
    return Outcome(regime, variant, report.status, counts["checked"], counts["inconclusive"],
                   report.evaluations, reported, seconds)


def run(regimes: Iterable[R.Regime], variants=tuple(VARIANTS)) -> list[Outcome]:
    out = []
    for regime in regimes:
        for v in variants:
            o = run_one(regime, v)
            if o is not None:
                out.append(o)
    return out


@dataclass
class Row:
    """Aggregates of one regime group."""

    models: int = 0
    false_fail: int = 0
    incon_entries: int = 0
    entries: int = 0
    incon_models: int = 0
    evaluations: int = 0
    bug3: int = 0
    missed3: int = 0
    undetected3: int = 0
    bug6: int = 0
    reported6: int = 0
    bug6s: int = 0
    failed6s: int = 0
    sbug3: int = 0
    smissed3: int = 0
    sundetected3: int = 0
    sbug6: int = 0
    sreported6: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.seconds += o.seconds
        if o.variant == "correct":
            self.models += 1
            self.entries += o.entries
            self.incon_entries += o.inconclusive
            self.evaluations += o.evaluations
            self.incon_models += o.status == "inconclusive"
            if o.status == "fail":
                self.false_fail += 1
                if len(self.examples) < 3:
                    self.examples.append(o.regime.label)
        elif o.variant == "bug1e-3":
            self.bug3 += 1
            self.missed3 += o.status == "pass"
            self.undetected3 += o.status == "inconclusive"
        elif o.variant == "bug1e-6":
            self.bug6 += 1
            self.reported6 += o.reported
        elif o.variant == "scattered1e-3":
            self.sbug3 += 1
            self.smissed3 += o.status == "pass"
            self.sundetected3 += o.status == "inconclusive"
        elif o.variant == "scattered1e-6":
            self.sbug6 += 1
            self.sreported6 += o.reported
        else:
            self.bug6s += 1
            self.failed6s += o.status == "fail"


def _pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "-"


HEAD = ("| regime | models | false FAIL | inconcl. entries | inconcl. models | evals/entry "
        "| 1e-3 missed (pass) | 1e-3 undetected (inconcl.) | 1e-6 reported | 1e-6 FAIL strict "
        "| scattered 1e-3 missed | scattered 1e-3 undetected | scattered 1e-6 reported |")
RULE = "|" + "---|" * 13


def table(outcomes: list[Outcome], key) -> list[str]:
    rows: dict[Any, Row] = defaultdict(Row)
    total = Row()
    for o in outcomes:
        rows[key(o.regime)].add(o)
        total.add(o)
    lines = [HEAD, RULE]
    for k, r in sorted(rows.items(), key=lambda kv: str(kv[0])) + [("all", total)]:
        strict = f"{r.failed6s}/{r.bug6s}" if r.bug6s else "n/a"
        lines.append(f"| {k} | {r.models} | {r.false_fail} | {_pct(r.incon_entries, r.entries)} "
                     f"| {r.incon_models} | {r.evaluations / max(r.entries, 1):.2f} "
                     f"| {r.missed3}/{r.bug3} | {r.undetected3}/{r.bug3} "
                     f"| {r.reported6}/{r.bug6} | {strict} "
                     f"| {r.smissed3}/{r.sbug3} | {r.sundetected3}/{r.sbug3} "
                     f"| {r.sreported6}/{r.sbug6} |")
    return lines


def summary(outcomes: list[Outcome]) -> str:
    """Markdown tables: by precision × nonlinearity, by initial scale, by loss scale."""
    t = sum(o.seconds for o in outcomes)
    smooth64 = [o for o in outcomes if o.variant == "correct" and o.regime.precision == "f64"
                and o.regime.nonlinearity not in R.KINKED]
    epe = sum(o.evaluations for o in smooth64) / max(sum(o.entries for o in smooth64), 1)
    false_fails = [o.regime.label for o in outcomes if o.variant == "correct"
                   and o.status == "fail"]
    parts = [f"{len(outcomes)} checks in {t:.0f} s of checking; evaluations per entry on "
             f"smooth float64 correct models: {epe:.2f}.", ""]
    if false_fails:
        parts += ["False FAILs (first 10): " + "; ".join(false_fails[:10]), ""]
    parts += ["By precision path and nonlinearity:", ""]
    parts += table(outcomes, lambda r: f"{r.precision} {r.nonlinearity}")
    parts += ["", "By precision path:", ""]
    parts += table(outcomes, lambda r: r.precision)
    parts += ["", "By precision path and initial scale:", ""]
    parts += table(outcomes, lambda r: f"{r.precision} scale {r.scale:g}")
    parts += ["", "By initial scale:", ""]
    parts += table(outcomes, lambda r: f"scale {r.scale:g}")
    parts += ["", "By loss scale:", ""]
    parts += table(outcomes, lambda r: f"loss × {r.loss_scale:g}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a subset of the grid")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    ap.add_argument("--label", default="", help="name of this run in RESULTS.md")
    args = ap.parse_args(argv)
    regimes = (R.grid(**QUICK) if args.quick
               else R.grid(seeds=tuple(range(args.seeds))))
    outcomes = run(regimes)
    text = summary(outcomes)
    print(text)
    if args.write:
        from results import machine, write_section

        name = "verdict_stress" + (f" {args.label}" if args.label else "")
        body = (f"## Verdicts under stress ({args.label or 'current'}; "
                f"`benchmarks/verdict_stress.py{' --quick' if args.quick else ''}`)\n\n"
                f"Machine: {machine()}.\n\n{text}\n")
        write_section(name, body)


if __name__ == "__main__":
    main()
