"""Verdicts under stress for the non-default options of ``gradcheck.check``.

:mod:`verdict_stress` checks the regime grid (:mod:`gradcheck.examples.regimes`) at the
default options only, which run the validated central-difference engine. This script runs the
same QUICK grid (plus the ``f16`` precision path) under each option set of :data:`OPTIONS`,
on correct models and on models with a 1e-3 bug, and counts per option set × precision path:

* **false FAIL** — a correct model whose status is "fail";
* **silent pass** — a 1e-3 bug whose status is "pass" (it must never pass), uniform or
  scattered over its tensor;
* **inconcl. models** — share of correct models whose status is "inconclusive";
* **evals/entry** — evaluations per checked entry on correct models (in directional mode
  only the entries localised after a failed directional test count as checked), and
  **evals/param** — per parameter entry of the model (the cost of the whole check);
* **errors** — checks that raised (the message is recorded: a combination that raises is a
  finding too).

Run ``python benchmarks/verdict_options.py`` (a few minutes on two cores; it writes its section
of ``benchmarks/RESULTS.md`` unless ``--only`` is given); ``--seeds N`` widens the grid to
seeds 0..N-1, ``--reports K`` prints the first lines of up to K reports per option set and
kind of wrong verdict, ``--only NAME`` runs one option set.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verdict_stress import QUICK, _pct  # noqa: E402

import gradcheck as gc  # noqa: E402
from gradcheck.examples import regimes as R  # noqa: E402

#: The option sets audited, by name; "default" is the baseline verdict_stress measures.
OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "central4": {"method": "central4"},
    "richardson": {"method": "richardson"},
    "auto": {"method": "auto"},
    "h=auto": {"h": "auto"},
    "directional": {"mode": "directional"},
    "relative_step": {"relative_step": True},
    "sample=8": {"sample": 8},
    "second_look=False": {"second_look": False},
    "method=forward": {"method": "forward"},
    "directional+h=auto": {"mode": "directional", "h": "auto"},
}
#: The models checked per regime: correct, a uniform 1e-3 bug, a scattered one (errors nearly
#: orthogonal to the tensor's gradient, :data:`gradcheck.examples.regimes.PATTERNS`).
VARIANTS = ((0.0, "uniform"), (1e-3, "uniform"), (1e-3, "scattered"))
#: Lines of ``str(report)`` kept per wrong verdict.
REPORT_LINES = 15


@dataclass
class Outcome:
    """One check of one model under one option set (``status`` is ``"error"`` if it raised)."""

    option: str
    regime: R.Regime
    bug: float
    status: str
    pattern: str = "uniform"
    entries: int = 0
    evaluations: int = 0
    size: int = 0    # parameter entries of the model
    text: str = ""   # first REPORT_LINES of the report, or the exception


def run_one(option: str, regime: R.Regime, bug: float, pattern: str = "uniform") -> Outcome:
    """Check ``regimes.build(regime, bug, pattern=pattern)`` with the option set
    ``OPTIONS[option]``."""
    model = R.build(regime, bug, pattern=pattern)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            report = gc.check(model.forward, model.forward_backward, model.params,
                              progress=False, **OPTIONS[option])
        except Exception as e:  # noqa: BLE001 - an option combination that raises is a finding
            return Outcome(option, regime, bug, "error", pattern,
                           text=f"{type(e).__name__}: {e}")
    text = "\n".join(str(report).splitlines()[:REPORT_LINES])
    size = sum(int(v.size) for v in model.params.values())
    return Outcome(option, regime, bug, report.status, pattern, report.counts["checked"],
                   report.evaluations, size, text)


@dataclass
class Row:
    """Aggregates of one option set × precision path."""

    models: int = 0
    false_fail: int = 0
    incon: int = 0
    entries: int = 0
    evaluations: int = 0
    size: int = 0
    bugs: int = 0
    silent: int = 0
    undetected: int = 0
    scattered: int = 0
    scattered_silent: int = 0
    errors: int = 0
    messages: Counter = field(default_factory=Counter)

    def add(self, o: Outcome) -> None:
        if o.status == "error":
            self.errors += 1
            self.messages[o.text] += 1
        elif o.bug == 0.0:
            self.models += 1
            self.false_fail += o.status == "fail"
            self.incon += o.status == "inconclusive"
            self.entries += o.entries
            self.evaluations += o.evaluations
            self.size += o.size
        elif o.pattern == "scattered":
            self.scattered += 1
            self.scattered_silent += o.status == "pass"
        else:
            self.bugs += 1
            self.silent += o.status == "pass"
            self.undetected += o.status == "inconclusive"


HEAD = ("| option set | precision | models | false FAIL | 1e-3 silent pass | 1e-3 inconcl. "
        "| scattered 1e-3 silent pass | inconcl. models | evals/entry | evals/param | errors |")
RULE = "|" + "---|" * 11


def table(outcomes: list[Outcome], precisions: tuple[str, ...]) -> list[str]:
    """One row per option set × precision path, plus each option set's total."""
    rows: dict[tuple[str, str], Row] = defaultdict(Row)
    for o in outcomes:
        rows[(o.option, o.regime.precision)].add(o)
        rows[(o.option, "all")].add(o)
    lines = [HEAD, RULE]
    for opt in OPTIONS:
        for prec in (*precisions, "all"):
            if (opt, prec) not in rows:
                continue
            r = rows[(opt, prec)]
            lines.append(f"| {opt} | {prec} | {r.models} | {r.false_fail} "
                         f"| {r.silent}/{r.bugs} | {r.undetected}/{r.bugs} "
                         f"| {r.scattered_silent}/{r.scattered} "
                         f"| {_pct(r.incon, r.models)} | {r.evaluations / max(r.entries, 1):.1f} "
                         f"| {r.evaluations / max(r.size, 1):.1f} | {r.errors} |")
    messages = Counter()
    for (opt, prec), r in rows.items():
        if prec == "all":
            messages.update({(opt, m): n for m, n in r.messages.items()})
    if messages:
        lines += ["", "Errors (option set, count, message):", ""]
        lines += [f"* {opt} ×{n}: {m}" for (opt, m), n in messages.most_common()]
    return lines


def wrong(outcomes: list[Outcome], reports: int) -> list[str]:
    """Every false FAIL and silent pass by label, and the first lines of up to ``reports``
    of their reports per option set and kind."""
    lines: list[str] = []
    for option in OPTIONS:
        for kind, bug, status, pattern in (("false FAIL", 0.0, "fail", "uniform"),
                                           ("silent pass", 1e-3, "pass", "uniform"),
                                           ("scattered silent pass", 1e-3, "pass", "scattered")):
            bad = [o for o in outcomes if o.option == option and o.bug == bug
                   and o.status == status and o.pattern == pattern]
            if not bad:
                continue
            lines += ["", f"### {option}: {kind} ({len(bad)})", "",
                      "; ".join(o.regime.label for o in bad)]
            for o in bad[:reports]:
                lines += ["", f"{o.regime.label} [{option}]", "```", o.text, "```"]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=len(QUICK["seeds"]))
    ap.add_argument("--reports", type=int, default=2,
                    help="reports printed per option set and kind of wrong verdict")
    ap.add_argument("--only", choices=tuple(OPTIONS), help="run one option set")
    args = ap.parse_args(argv)
    grid = dict(QUICK, precisions=(*QUICK["precisions"], "f16"), seeds=tuple(range(args.seeds)))
    regimes = R.grid(**grid)
    options = [args.only] if args.only else list(OPTIONS)
    t0 = time.perf_counter()
    outcomes = [run_one(opt, regime, bug, pattern) for opt in options for regime in regimes
                for bug, pattern in VARIANTS]
    print(f"{len(regimes)} regimes × {{correct, bug 1e-3, scattered 1e-3}} × "
          f"{len(options)} option sets: "
          f"{len(outcomes)} checks in {time.perf_counter() - t0:.0f} s.\n")
    text = "\n".join(table(outcomes, grid["precisions"]) + wrong(outcomes, args.reports))
    print(text)
    if not args.only:
        from results import machine, write_section

        write_section("verdict_options", (
            "## Verdicts under stress, non-default options (`benchmarks/verdict_options.py`)\n\n"
            f"Machine: {machine()}. {len(regimes)} regimes (the QUICK grid of verdict_stress "
            "plus the f16 path) × {correct, bug 1e-3, scattered 1e-3} × "
            f"{len(options)} option sets: {len(outcomes)} checks in "
            f"{time.perf_counter() - t0:.0f} s.\n\n{text}\n"))


if __name__ == "__main__":
    main()
