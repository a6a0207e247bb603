"""``gradcheck sweep TARGET`` and ``gradcheck check module:factory`` (wired in by cli/app.py).

A TARGET is ``rnn`` (the built-in RNN example, optionally ``--bug NAME``) or
``module:factory`` where ``factory()`` returns ``(forward, forward_backward, params)``.
"""

from __future__ import annotations

import argparse
from typing import Any

from gradcheck.check import check
from gradcheck.cli import higher_order, types
from gradcheck.cli.options import (
    UsageError,
    add_check_options,
    check_options,
    check_outputs,
    check_plan,
    finish,
    text_stream,
)
from gradcheck.cli.plan import announce
from gradcheck.cli.targets import load_target
from gradcheck.errors import InputError
from gradcheck.params import tree as trees
from gradcheck.sweep.run import parse_entry, sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    check_outputs(args)
    for name in args.methods.split(","):
        if name not in types.METHODS[:-1]:
            raise UsageError(f"--methods: {name!r} is not a scheme; choose from "
                             f"{', '.join(types.METHODS[:-1])}")
    forward, forward_backward, params = load_target(args.target, args.bug)
    leaves = trees.flatten(params)
    for spec in args.entries or ():
        try:
            parse_entry(spec, leaves)
        except InputError as exc:  # a typo on the command line, not the user's code
            raise UsageError(f"--entries: {exc}") from None
    result = sweep(forward, forward_backward, params, entries=args.entries or None,
                   sample=args.sample, methods=tuple(args.methods.split(",")))
    print(result.table())
    if args.plot:
        result.plot(args.plot)
        print(f"Plot written to {args.plot}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check the user's ``module:factory`` (or the built-in ``rnn``)."""
    if higher_order.wants_higher_order(args):
        return higher_order.cmd_check(args)
    check_outputs(args)
    check_plan(check_options(args))
    forward, forward_backward, params, batched = load_target(args.target, args.bug,
                                                             with_batched=True)
    if args.batched and batched is None:
        raise UsageError(f"--batched needs a batched forward: let {args.target}() return "
                         "(forward, forward_backward, params, batched_forward)")
    args.batched_forward = batched if args.batched else None
    options = check_options(args)
    announce(forward, params, options, text_stream(args))
    report = check(forward, forward_backward, params, **options)
    return finish(report, args)


def add_commands(sub: Any) -> None:
    """Add ``sweep`` and ``check`` to the subcommands ``sub`` of the main parser."""
    sw = sub.add_parser("sweep", help="relative error vs step h (1e-1…1e-12) and complex step")
    sw.add_argument("target", help="'rnn' or module:factory (factory() returns "
                    "(forward, forward_backward, params))")
    sw.add_argument("--bug", default=None, help="bug variant of the RNN example")
    sw.add_argument("--entries", nargs="+", default=None, metavar="ENTRY",
                    help="entries such as W[2,3] b[0] (default: sampled)")
    sw.add_argument("--sample", type=types.positive_int, default=8,
                    help="entries to sample (default 8)")
    sw.add_argument("--methods", default="central,forward,central4",
                    help="comma-separated schemes (default central,forward,central4)")
    sw.add_argument("--plot", metavar="FILE.png", default=None, help="also draw the sweep")
    sw.set_defaults(func=cmd_sweep)
    ck = sub.add_parser("check", help="check module:factory (factory() returns "
                        "(forward, forward_backward, params))")
    ck.add_argument("target", help="module:factory, or rnn")
    ck.add_argument("--bug", default=None, help="bug variant when the target is rnn")
    ck.add_argument("--batched", action="store_true",
                    help="evaluate perturbations in stacks with the batched forward that "
                    "factory() returns as a fourth item")
    ck.add_argument("--order", type=int, choices=(1, 2), default=1,
                    help="2: also check second derivatives (factory() returns a dict with "
                    "'hvp')")
    add_check_options(ck, extra_modes=(("jvp", "forward mode, factory() returns a dict with "
                                            "'jvp'"),))
    ck.set_defaults(func=cmd_check)
