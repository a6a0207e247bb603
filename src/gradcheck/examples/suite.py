"""The suite every verdict is measured on: every zoo model, the RNN demo with each bug
variant, every reference layer with each bug variant — and the lecture's plain algorithm for
contrast.

* **plain** is the lecture's §3 algorithm as written: central differences with ``h = 1e-5`` on
  every entry, alarm when ``|a - n| / max(1e-10, |a|, |n|) > 1e-5``, no re-seeding.
* **gradcheck** is ``gradcheck.check(forward, forward_backward, params)`` at its defaults;
  models that draw from numpy's global RNG (dropout) get ``seed=model.needs_seed``.

Used by ``benchmarks/zoo_suite.py`` (which renders the table) and by the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.check import check
from gradcheck.examples import rnn, zoo
from gradcheck.examples.layers import LAYERS, buggy_backward
from gradcheck.params import tree as trees
from gradcheck.report import Report

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

    for m in zoo.build_all():
        yield Case("zoo", m.name, m.params, m.forward, m.forward_backward, m.buggy,
                   frozenset(m.bad_tensors), m.needs_seed)


def rnn_cases() -> Iterator[Case]:

    for bug in (None, *rnn.BUGS):
        p = rnn.make_problem(bug)
        name = "rnn" if bug is None else f"rnn_bug_{bug}"
        yield Case("rnn", name, p.params, p.forward, p.forward_backward, bug is not None,
                   frozenset(p.expected_bad))


def layer_cases() -> Iterator[Case]:

    for name, spec in LAYERS.items():
        for bug in (None, *spec.bugs):
            yield layer_case(name, bug)


def layer_case(name: str, bug: str | None) -> Case:
    """Layer ``name`` as a scalar model ``L = Σ out ⊙ dout`` of its differentiable inputs."""

    spec = LAYERS[name]
    inputs = spec.make_inputs(np.random.default_rng(0))
    fixed = {k: v for k, v in inputs.items() if k not in spec.differentiable}
    params = {k: np.array(inputs[k], dtype=np.float64) for k in spec.differentiable}
    backward = spec.backward if bug is None else buggy_backward(name, bug)

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
    """The lecture's §3 check, literally: alarm if any entry's relative error exceeds 1e-5."""
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


def gradcheck_status(case: Case, **options: Any) -> tuple[str, set[str], Report]:
    """gradcheck at its defaults (plus ``seed=`` for models that need one, and ``options``)."""
    report = check(case.forward, case.forward_backward, case.params, seed=case.seed,
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


