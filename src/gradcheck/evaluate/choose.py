"""Choose the evaluator a check asks for: serial, batched, or spread over an executor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradcheck.evaluate.base import Evaluator
from gradcheck.evaluate.batched import BatchedEvaluator
from gradcheck.evaluate.parallel import ExecutorEvaluator, WorkerProblem
from gradcheck.evaluate.serial import SerialEvaluator
from gradcheck.options import Plan
from gradcheck.params.workspace import Workspace


def scaled(forward: Callable[[Any], Any], scale: float) -> Callable[[Any], Any]:
    """``forward`` times ``scale`` (the lecture's "multiply the loss by a constant")."""
    if scale == 1.0:
        return forward
    return lambda p: forward(p) * scale


def make_evaluator(forward: Callable[[Any], Any], work: Workspace, names: list[str],
                   plan: Plan, reset: Callable[[], None] | None, complex_mode: bool = False,
                   serial: bool = False, parallel: bool = True) -> Evaluator:
    """The evaluator of ``forward`` on ``work`` that ``plan`` asks for.

    ``executor=``/``workers=`` give an :class:`ExecutorEvaluator`, ``batched_forward=`` a
    :class:`BatchedEvaluator`, otherwise (or with ``serial=True``) a :class:`SerialEvaluator`.
    ``complex_mode`` evaluates complex perturbations (the complex step); ``parallel=False``
    ignores ``executor=``/``workers=`` (a check too short to gain from them).
    """
    fwd = scaled(forward, plan.loss_scale)
    batched = plan.batched_forward
    if batched is not None and plan.loss_scale != 1.0:
        batched = scaled(batched, plan.loss_scale)
    originals = work.originals
    if serial:
        return SerialEvaluator(fwd, work.tree, work.arrays, names, reset, complex_mode,
                               originals)
    if parallel and (plan.executor is not None or plan.workers is not None):
        problem = WorkerProblem(fwd, work.tree, names, plan.seed, plan.reset, complex_mode,
                                batched, plan.batch_size)
        return ExecutorEvaluator(plan.executor, problem, work.arrays, plan.workers)
    if batched is not None:
        return BatchedEvaluator(batched, work.tree, work.arrays, names, reset, complex_mode,
                                plan.batch_size)
    return SerialEvaluator(fwd, work.tree, work.arrays, names, reset, complex_mode, originals)
