"""``gradcheck sweep TARGET`` and ``gradcheck check module:factory`` (wired in by cli/app.py).

A TARGET is ``rnn`` (the built-in RNN example, optionally ``--bug NAME``) or
``module:factory`` where ``factory()`` returns ``(forward, forward_backward, params)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from gradcheck.check import check
from gradcheck.cli.options import add_check_options, check_options, finish
from gradcheck.errors import InputError
from gradcheck.examples import rnn
from gradcheck.sweep.run import sweep


def load_target(target: str, bug: str | None = None) -> tuple[Any, Any, Any]:
    """``(forward, forward_backward, params)`` of ``rnn`` or ``module:factory``."""
    if target == "rnn":
        if bug is not None and bug not in rnn.BUGS:
            raise InputError(f"unknown bug {bug!r}; run 'gradcheck demo rnn --list-bugs' to see "
                             "the names.")
        p = rnn.make_problem(bug)
        return p.forward, p.forward_backward, p.params
    if ":" not in target:
        raise InputError(f"target {target!r} is neither 'rnn' nor 'module:factory'; write e.g. "
                         "'mymodel:problem' where problem() returns (forward, "
                         "forward_backward, params).")
    module_name, attr = target.split(":", 1)
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot load {target!r} ({exc}); run from the directory holding "
                         f"{module_name}.py or install it.") from exc
    out = factory()
    if not (isinstance(out, tuple) and len(out) == 3):
        raise InputError(f"{target}() must return (forward, forward_backward, params), got "
                         f"{type(out).__name__}.")
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    forward, forward_backward, params = load_target(args.target, args.bug)
    result = sweep(forward, forward_backward, params, entries=args.entries or None,
                   sample=args.sample, methods=tuple(args.methods.split(",")))
    print(result.table())
    if args.plot:
        result.plot(args.plot)
        print(f"Plot written to {args.plot}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    forward, forward_backward, params = load_target(args.target, getattr(args, "bug", None))
    report = check(forward, forward_backward, params, **check_options(args))
    return finish(report, args)


def add_commands(sub: Any) -> None:
    """Add ``sweep`` and ``check`` to the subcommands ``sub`` of the main parser."""
    sw = sub.add_parser("sweep", help="relative error vs step h (1e-1…1e-12) and complex step")
    sw.add_argument("target", help="'rnn' or module:factory (factory() returns "
                    "(forward, forward_backward, params))")
    sw.add_argument("--bug", default=None, help="bug variant of the RNN example")
    sw.add_argument("--entries", nargs="+", default=None, metavar="ENTRY",
                    help="entries such as W[2,3] b[0] (default: sampled)")
    sw.add_argument("--sample", type=int, default=8, help="entries to sample (default 8)")
    sw.add_argument("--methods", default="central,forward,central4",
                    help="comma-separated schemes (default central,forward,central4)")
    sw.add_argument("--plot", metavar="FILE.png", default=None, help="also draw the sweep")
    sw.set_defaults(func=cmd_sweep)
    ck = sub.add_parser("check", help="check module:factory (factory() returns "
                        "(forward, forward_backward, params))")
    ck.add_argument("target", help="module:factory, or rnn")
    ck.add_argument("--bug", default=None, help="bug variant when the target is rnn")
    add_check_options(ck)
    ck.set_defaults(func=cmd_check)
