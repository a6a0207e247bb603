"""False alarms and missed bugs: the lecture's plain algorithm vs gradcheck at defaults.

The suite: every model of ``gradcheck.examples.zoo.MODELS``, the RNN demo with each of its bug
variants (``gradcheck.examples.rnn``), and every layer of ``gradcheck.examples.layers`` with each
of its bug variants (checked as ``L = Σ out ⊙ dout`` for a fixed random ``dout``).

* **plain** is the lecture's §3 algorithm as written: central differences with ``h = 1e-5`` on
  every entry, alarm when ``|a - n| / max(1e-10, |a|, |n|) > 1e-5``, no re-seeding.
* **gradcheck** is ``gradcheck.check(forward, forward_backward, params)`` at its defaults;
  models that draw from numpy's global RNG (dropout) get ``seed=model.needs_seed``.

A *false alarm* is a correct model reported broken (plain: any alarm; gradcheck: status
"fail"); a *missed bug* is a buggy model not reported broken (gradcheck: any status other than
"fail"). gradcheck's "inconclusive" on correct models is counted separately.

Run ``python benchmarks/zoo_suite.py``; it prints the table and writes its section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gradcheck.examples.suite import (  # noqa: E402
    Case,
    Row,
    all_cases,
    run,
    summary,
)


def render(rows: list[Row]) -> str:
    groups = ["zoo", "rnn", "layers"]
    lines = ["## Zoo suite: false alarms and missed bugs (`benchmarks/zoo_suite.py`)", "",
             "plain = the lecture's algorithm as written (central h=1e-5, "
             "|a-n|/max(1e-10,|a|,|n|) > 1e-5 on every entry, no seeding); gradcheck = "
             "`gc.check` at defaults (dropout models get `seed=`).", "",
             "| suite | models | correct | buggy | plain false alarms | plain missed | "
             "gradcheck false alarms | gradcheck missed | gradcheck inconclusive (correct) | "
             "bad tensors named exactly |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for g in [*groups, "all"]:
        sub = rows if g == "all" else [r for r in rows if r.case.group == g]
        s = summary(sub)
        lines.append(f"| {g} | {s['models']} | {s['correct']} | {s['buggy']} | "
                     f"{s['plain_false_alarms']} | {s['plain_missed']} | {s['gc_false_alarms']} | "
                     f"{s['gc_missed']} | {s['gc_inconclusive_correct']} | "
                     f"{s['gc_exact_tensors']}/{s['buggy']} |")
    fa = [r.case.name for r in rows if not r.case.buggy and r.plain_alarm]
    miss = [r.case.name for r in rows if r.case.buggy and not r.plain_alarm]
    gfa = [r.case.name for r in rows if not r.case.buggy and r.status != "pass"]
    gmiss = [r.case.name for r in rows if r.case.buggy and r.status != "fail"]
    inexact = [f"{r.case.name} (named {sorted(r.tensors)}, expected {sorted(r.case.bad)})"
               for r in rows if r.case.buggy and r.status == "fail" and r.tensors != r.case.bad]
    kinks = [r.case.name for r in rows if not r.case.buggy and r.kinks]
    lines += ["", f"Plain false alarms ({len(fa)}): {', '.join(fa) or 'none'}.", "",
              f"Plain missed bugs ({len(miss)}): {', '.join(miss) or 'none'}.", "",
              f"gradcheck, correct models not reported pass ({len(gfa)}): "
              f"{', '.join(gfa) or 'none'}.", "",
              f"gradcheck, buggy models not reported fail ({len(gmiss)}): "
              f"{', '.join(gmiss) or 'none'}.", "",
              f"gradcheck, failing tensors differ from the bug's tensors ({len(inexact)}): "
              f"{'; '.join(inexact) or 'none'}.", "",
              f"Correct models that pass with entries at kinks (valid subgradients): "
              f"{', '.join(kinks) or 'none'}.", "",
              f"gradcheck wall time over the suite: {sum(r.seconds for r in rows):.1f} s."]
    return "\n".join(lines)


#: Other settings a user might choose; gradcheck should stay honest with each of them.
VARIANTS: tuple[dict[str, Any], ...] = (
    {"h": 1e-7}, {"h": 1e-6}, {"h": 1e-4}, {"h": 1e-3}, {"h": 1e-2}, {"method": "forward"},
    {"method": "backward"}, {"method": "central4"}, {"method": "richardson"},
    {"relative_step": True}, {"denominator": "sum"}, {"sample": 3},
)


def render_cost(cases: list[Case], rows: list[Row]) -> str:
    """Loss evaluations with and without the second look (kinks, larger steps)."""
    plain = run(cases, plain=False, second_look=False)
    out = []
    for label, pick in (("correct", False), ("buggy", True)):
        with_ = sum(r.evaluations for r in rows if r.case.buggy == pick)
        without = sum(r.evaluations for r in plain if r.case.buggy == pick)
        out.append(f"{label} models {with_} evaluations vs {without} without the second look "
                   f"(+{100 * (with_ - without) / max(without, 1):.0f} %)")
    fa = sum(r.status == "fail" for r in plain if not r.case.buggy)
    return ("\nCost of the second look (kink analysis and larger steps, only for entries the "
            f"first estimate cannot settle): {'; '.join(out)}. Without it gradcheck would "
            f"report {fa} of the correct models as failing.")


def render_variants(cases: list[Case]) -> str:
    lines = ["", "### gradcheck with other settings (same suite)", "",
             "| options | false alarms | missed bugs | inconclusive (correct) | "
             "inconclusive (buggy) | wall time |", "|---|---:|---:|---:|---:|---:|"]
    for options in VARIANTS:
        t = time.perf_counter()
        try:
            rows = run(cases, plain=False, **options)
        except (TypeError, ValueError):   # an option or method this version does not have
            continue
        s = summary(rows)
        inc_bug = sum(r.status == "inconclusive" for r in rows if r.case.buggy)
        missed = [r.case.name for r in rows if r.case.buggy and r.status != "fail"]
        inc = [r.case.name for r in rows if not r.case.buggy and r.status == "inconclusive"]
        label = ", ".join(f"{k}={v!r}" for k, v in options.items())
        lines.append(f"| `{label}` | {s['gc_false_alarms']} | {s['gc_missed']}"
                     f"{' (' + ', '.join(missed) + ')' if missed else ''} | "
                     f"{s['gc_inconclusive_correct']}{' (' + ', '.join(inc) + ')' if inc else ''}"
                     f" | {inc_bug} | {time.perf_counter() - t:.1f} s |")
    lines += ["", "A sampled check (`sample=3`) can only find a bug in the entries it looks at; "
              "the inconclusive entries above say what would decide them (a larger h for "
              "`h=1e-7` on a loss of 1e6)."]
    return "\n".join(lines)


def main() -> None:
    from results import machine, write_section

    cases = all_cases()
    rows = run(cases)
    body = render(rows) + "\n" + render_cost(cases, rows) + "\n" + render_variants(cases) + (
        f"\n\nMeasured on {machine()}.")
    print(body)
    write_section("zoo_suite", body)


if __name__ == "__main__":
    main()
