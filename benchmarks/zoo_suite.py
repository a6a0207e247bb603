"""False alarms and missed bugs: the seed's plain algorithm vs gradcheck at defaults.

The suite: every model of ``gradcheck.examples.zoo.MODELS``, the RNN demo with each of its bug
variants (``gradcheck.examples.rnn``), and every layer of ``gradcheck.examples.layers`` with each
of its bug variants (checked as ``L = Σ out ⊙ dout`` for a fixed random ``dout``).

* **plain** is the seed's §3 algorithm as written: central differences with ``h = 1e-5`` on
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradcheck as gc  # noqa: E402
from gradcheck.params import tree as trees  # noqa: E402

PLAIN_H = 1e-5
PLAIN_TOL = 1e-5
PLAIN_FLOOR = 1e-10


@dataclass
class Case:
    """One model of the suite: a forward, a (possibly buggy) forward_backward, params."""

    group: str
    name: str
    params: Any
    forward: Callable[[Any], Any]
    forward_backward: Callable[[Any], Any]
    buggy: bool
    bad: frozenset[str]
    seed: int | None = None


# ------------------------------------------------------------------------------ the suite


def zoo_cases() -> Iterator[Case]:
    from gradcheck.examples import zoo

    for m in zoo.build_all():
        yield Case("zoo", m.name, m.params, m.forward, m.forward_backward, m.buggy,
                   frozenset(m.bad_tensors), m.needs_seed)


def rnn_cases() -> Iterator[Case]:
    from gradcheck.examples import rnn

    for bug in (None, *rnn.BUGS):
        p = rnn.make_problem(bug)
        name = "rnn" if bug is None else f"rnn_bug_{bug}"
        yield Case("rnn", name, p.params, p.forward, p.forward_backward, bug is not None,
                   frozenset(p.expected_bad))


def layer_cases() -> Iterator[Case]:
    from gradcheck.examples import layers as L

    for name, spec in L.LAYERS.items():
        for bug in (None, *spec.bugs):
            yield layer_case(name, bug)


def layer_case(name: str, bug: str | None) -> Case:
    """Layer ``name`` as a scalar model ``L = Σ out ⊙ dout`` of its differentiable inputs."""
    from gradcheck.examples import layers as L

    spec = L.LAYERS[name]
    inputs = spec.make_inputs(np.random.default_rng(0))
    fixed = {k: v for k, v in inputs.items() if k not in spec.differentiable}
    params = {k: np.array(inputs[k], dtype=np.float64) for k in spec.differentiable}
    backward = spec.backward if bug is None else L.buggy_backward(name, bug)

    def args(p: dict[str, np.ndarray]) -> list[Any]:
        return [p[k] if k in p else fixed[k] for k in spec.input_names]

    label = name if bug is None else f"{name}_bug_{bug}"
    if spec.is_loss:
        def forward(p: dict[str, np.ndarray]) -> float:
            return float(spec.forward(*args(p))[0])

        def forward_backward(p: dict[str, np.ndarray]) -> Any:
            loss, dx = backward(*args(p))
            return float(loss), {spec.differentiable[0]: dx}

        return Case("layers", label, params, forward, forward_backward, bug is not None,
                    frozenset(spec.bugs[bug].affects) if bug else frozenset())

    out, _ = spec.forward(*args(params), **spec.kwargs)
    rng = np.random.default_rng(1)
    dout = (tuple(rng.standard_normal(np.shape(o)) for o in out) if spec.tuple_output
            else rng.standard_normal(np.shape(out)))

    def inner(o: Any) -> float:
        if spec.tuple_output:
            return float(sum(np.sum(oi * di) for oi, di in zip(o, dout)))
        return float(np.sum(o * dout))

    def forward(p: dict[str, np.ndarray]) -> float:
        return inner(spec.forward(*args(p), **spec.kwargs)[0])

    def forward_backward(p: dict[str, np.ndarray]) -> Any:
        o, cache = spec.forward(*args(p), **spec.kwargs)
        grads = backward(dout, cache)
        return inner(o), dict(zip(spec.differentiable, grads))

    return Case("layers", label, params, forward, forward_backward, bug is not None,
                frozenset(spec.bugs[bug].affects) if bug else frozenset())


def all_cases() -> list[Case]:
    return [*zoo_cases(), *rnn_cases(), *layer_cases()]


# ------------------------------------------------------------------------------ the checkers


def plain_alarm(case: Case) -> tuple[bool, set[str]]:
    """The seed's §3 check, literally: alarm if any entry's relative error exceeds 1e-5."""
    _, grads = _loss_and_grads(case.forward_backward(case.params))
    leaves = trees.flatten(case.params)
    aligned = trees.align(case.params, grads)
    alarmed: set[str] = set()
    for leaf, g in zip(leaves, aligned):
        x = leaf.array
        g = np.asarray(g, dtype=np.float64)
        for idx in np.ndindex(x.shape):
            old = x[idx].copy()
            try:
                x[idx] = old + PLAIN_H
                fp = float(case.forward(case.params))
                x[idx] = old - PLAIN_H
                fm = float(case.forward(case.params))
            finally:
                x[idx] = old
            n = (fp - fm) / (2 * PLAIN_H)
            a = float(g[idx])
            if abs(a - n) / max(PLAIN_FLOOR, abs(a), abs(n)) > PLAIN_TOL:
                alarmed.add(leaf.name)
                break
    return bool(alarmed), alarmed


def _loss_and_grads(out: Any) -> tuple[Any, Any]:
    if isinstance(out, tuple) and len(out) == 2 and np.ndim(out[0]) == 0 and not isinstance(
            out[0], (dict, list, tuple)):
        return out
    return None, out


def gradcheck_status(case: Case, **options: Any) -> tuple[str, set[str], gc.Report]:
    """gradcheck at its defaults (plus ``seed=`` for models that need one, and ``options``)."""
    report = gc.check(case.forward, case.forward_backward, case.params, seed=case.seed,
                      **options)
    return report.status, set(report.failing_tensors), report


# ------------------------------------------------------------------------------ the table


@dataclass
class Row:
    case: Case
    plain_alarm: bool
    plain_tensors: set[str]
    status: str
    tensors: set[str]
    kinks: int
    seconds: float
    evaluations: int = 0


def run(cases: list[Case], plain: bool = True, **options: Any) -> list[Row]:
    rows = []
    for c in cases:
        pa, pt = plain_alarm(c) if plain else (False, set())
        t = time.perf_counter()
        status, tensors, report = gradcheck_status(c, **options)
        rows.append(Row(c, pa, pt, status, tensors, report.counts["kinks"],
                        time.perf_counter() - t, report.evaluations))
    return rows


def summary(rows: list[Row]) -> dict[str, int]:
    correct = [r for r in rows if not r.case.buggy]
    buggy = [r for r in rows if r.case.buggy]
    return {
        "models": len(rows), "correct": len(correct), "buggy": len(buggy),
        "plain_false_alarms": sum(r.plain_alarm for r in correct),
        "plain_missed": sum(not r.plain_alarm for r in buggy),
        "gc_false_alarms": sum(r.status == "fail" for r in correct),
        "gc_inconclusive_correct": sum(r.status == "inconclusive" for r in correct),
        "gc_missed": sum(r.status != "fail" for r in buggy),
        "gc_exact_tensors": sum(r.tensors == set(r.case.bad) for r in buggy),
        "gc_kink_models": sum(r.kinks > 0 for r in rows),
    }


def render(rows: list[Row]) -> str:
    groups = ["zoo", "rnn", "layers"]
    lines = ["## Zoo suite: false alarms and missed bugs (`benchmarks/zoo_suite.py`)", "",
             "plain = the seed's algorithm as written (central h=1e-5, "
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
