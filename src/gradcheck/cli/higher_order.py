"""``gradcheck check module:factory --order 2`` and ``--mode jvp``.

The factory returns ``(forward, forward_backward, params)`` for a first-order check, or a dict
with the keys ``forward``, ``forward_backward``, ``params`` and, for the higher-order checks,
``hvp`` (``hvp(params, v) -> H·v``, for ``--order 2``) and ``jvp`` (``jvp(params, t) ->
dloss``, for ``--mode jvp``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from gradcheck.check import check
from gradcheck.cli.options import check_options, finish
from gradcheck.derivatives.combine import combine
from gradcheck.derivatives.hvp import check_hvp
from gradcheck.derivatives.jvp import check_jvp
from gradcheck.errors import InputError
from gradcheck.report.results import Report

#: Keys a factory's dict may have.
KEYS = ("forward", "forward_backward", "params", "hvp", "jvp")


def wants_higher_order(args: argparse.Namespace) -> bool:
    """``--order 2`` or ``--mode jvp`` on the command line."""
    return getattr(args, "order", 1) == 2 or getattr(args, "mode", None) == "jvp"


def load_problem(target: str) -> dict[str, Any]:
    """The factory's problem as a dict (a 3-tuple becomes forward, forward_backward, params)."""
    if ":" not in target:
        raise InputError(f"target {target!r} is not 'module:factory'; --order 2 and --mode jvp "
                         "need a factory returning a dict with 'hvp' or 'jvp'.")
    module_name, attr = target.split(":", 1)
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot load {target!r} ({exc}); run from the directory holding "
                         f"{module_name}.py or install it.") from exc
    out = factory()
    if isinstance(out, tuple) and len(out) == 3:
        return dict(zip(KEYS, out))
    if not isinstance(out, dict):
        raise InputError(f"{target}() must return (forward, forward_backward, params) or a dict "
                         f"with keys {', '.join(KEYS)}; got {type(out).__name__}.")
    unknown = sorted(set(out) - set(KEYS))
    if unknown:
        raise InputError(f"{target}() returned unknown key(s) {', '.join(unknown)}; the keys "
                         f"are {', '.join(KEYS)}.")
    return out


def _need(problem: dict[str, Any], key: str, target: str, flag: str) -> Any:
    if problem.get(key) is None:
        raise InputError(f"{flag} needs {target}() to return a dict with '{key}' (see "
                         "'gradcheck check --help'); it has only "
                         f"{', '.join(k for k in problem if problem[k] is not None)}.")
    return problem[key]


def run(args: argparse.Namespace) -> Report:
    """The checks the flags ask for, combined into one report."""
    problem = load_problem(args.target)
    opts = check_options(args)
    if opts.get("mode") == "jvp":
        del opts["mode"]
    params = _need(problem, "params", args.target, "a check")
    reports: dict[str, Report] = {}
    if getattr(args, "mode", None) == "jvp":
        reports["jvp"] = check_jvp(_need(problem, "forward", args.target, "--mode jvp"),
                                   _need(problem, "jvp", args.target, "--mode jvp"), params,
                                   **opts)
    else:
        reports["grad"] = check(_need(problem, "forward", args.target, "a check"),
                                _need(problem, "forward_backward", args.target, "a check"),
                                params, **opts)
    if getattr(args, "order", 1) == 2:
        reports["hvp"] = check_hvp(_need(problem, "forward_backward", args.target, "--order 2"),
                                   _need(problem, "hvp", args.target, "--order 2"), params,
                                   **opts)
    return combine(reports)


def cmd_check(args: argparse.Namespace) -> int:
    return finish(run(args), args)
