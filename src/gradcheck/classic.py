"""The lecture's own interface: ``grad_check`` that prints alerts, and ``numerical_gradient``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from gradcheck.check import check
from gradcheck.params import tree as trees
from gradcheck.report.results import EntryResult, Report


def print_alert(entry: EntryResult, tol: float, file: TextIO | None = None) -> None:
    """One line per mismatching element, in the spirit of the lecture's ``print_alert``."""
    print(f"ALERT {entry.name}: analytic {entry.analytic:.6e} numeric {entry.numeric:.6e} "
          f"error {entry.error:.2e} > tol {tol:g}", file=file or sys.stdout)


def grad_check(forward_f: Callable[[Any], Any], forward_backward_f: Callable[[Any], Any],
               theta: Any, h: float = 1e-5, tol: float = 1e-5, **options: Any) -> Report:
    """The lecture's ``grad_check(forward_f, forward_backward_f, theta, h, tol)`` (§3).

    Checks every entry with central differences, prints an alert for every entry that fails,
    and returns the :class:`~gradcheck.report.results.Report` (which also holds the inconclusive and
    kink entries the lecture's version could not tell apart).
    """
    report = check(forward_f, forward_backward_f, theta, h=h, tol=tol, **options)
    for entry in report.entries("FAIL"):
        print_alert(entry, tol)
    return report


def numerical_gradient(forward: Callable[[Any], Any], params: Any, *, method: str = "central",
                       h: float | None = None, relative_step: bool = False,
                       seed: int | None = None) -> Any:
    """The numeric estimate of ``∇forward(params)`` as a tree shaped like ``params``.

    Uses the same in-place perturbation and schemes as :func:`gradcheck.check`; params are
    bit-identical afterwards.
    """
    leaves = trees.flatten(params)

    def zeros_backward(p: Any) -> Any:
        return trees.map_leaves(p, lambda a: np.zeros(np.shape(a)))

    kwargs: dict[str, Any] = {"method": method, "relative_step": relative_step, "seed": seed,
                              "second_look": False}  # the estimate at h, as asked
    if h is not None:
        kwargs["h"] = h
    report = check(forward, zeros_backward, params, **kwargs)
    grads = []
    for leaf, t in zip(leaves, report.tensors):
        g = np.zeros(leaf.shape, dtype=np.float64)
        g.reshape(-1)[t.flat_index] = t.numeric
        grads.append(g)
    return trees.replace_leaves(params, grads)
