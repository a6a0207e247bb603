"""``gradcheck demo rnn`` and ``gradcheck demo layer``: the built-in examples, checked."""

from __future__ import annotations

import argparse
from typing import Any

from gradcheck.check import check
from gradcheck.cli import types
from gradcheck.cli.options import (
    EXIT_PASS,
    Parser,
    UsageError,
    add_check_options,
    check_options,
    check_outputs,
    check_plan,
    finish,
    text_stream,
)
from gradcheck.cli.plan import announce
from gradcheck.examples import rnn
from gradcheck.examples.layers import LAYERS, check_reference_layer


def cmd_demo_rnn(args: argparse.Namespace) -> int:
    """Run the lecture's RNN example (trained a few steps first) and check it."""
    if args.list_bugs:
        width = max(len(n) for n in rnn.BUGS)
        print("Bug variants of the RNN example (use --bug NAME):")
        for name, bug in rnn.BUGS.items():
            wrong = ", ".join(sorted(bug.affects))
            print(f"  {name.ljust(width)}  {bug.description} [wrong: {wrong}]")
        return EXIT_PASS
    if args.bug is not None and args.bug not in rnn.BUGS:
        raise UsageError(f"unknown bug {args.bug!r}; run 'gradcheck demo rnn --list-bugs' to "
                         "see the names")
    check_outputs(args)
    check_plan(check_options(args))
    problem = rnn.make_problem(args.bug, hidden=args.hidden, seq_len=args.seq_len,
                               batch=args.batch, train_steps=args.train_steps)
    args.batched_forward = problem.batched_forward if args.batched else None
    title = f"with bug {args.bug!r}" if args.bug else "(correct backward pass)"
    out = text_stream(args)
    print(f"Checking the lecture's RNN example {title}: hidden={args.hidden}, "
          f"seq_len={args.seq_len}, batch={args.batch}, {problem.n_params} parameters, after "
          f"{args.train_steps} SGD steps.", file=out)
    options = check_options(args)
    announce(problem.forward, problem.params, options, out)
    report = check(problem.forward, problem.forward_backward, problem.params,
                   context=problem.context, **options)
    return finish(report, args)


def cmd_demo_layer(args: argparse.Namespace) -> int:
    """Check a reference CS231n-style layer (optionally with a named bug) with check_layer."""
    if args.list or args.name is None:
        if args.name is None and not args.list:
            raise UsageError("say which layer, e.g. 'gradcheck demo layer affine' (see "
                             "'gradcheck demo layer --list')")
        print("Reference layers and their bug variants (gradcheck demo layer NAME --bug BUG):")
        for name, spec in LAYERS.items():
            print(f"  {name}: {', '.join(spec.bugs) or '-'}")
        return EXIT_PASS
    if args.name not in LAYERS:
        raise UsageError(f"unknown layer {args.name!r}; run 'gradcheck demo layer --list' to see "
                         "the names")
    spec = LAYERS[args.name]
    if args.bug is not None and args.bug not in spec.bugs:
        raise UsageError(f"unknown bug {args.bug!r} for layer {args.name!r}; its bugs are "
                         f"{', '.join(spec.bugs)}")
    check_outputs(args)
    check_plan(check_options(args))
    what = f"with bug {args.bug!r}: {spec.bugs[args.bug].description}" if args.bug else \
        "(correct backward pass)"
    print(f"Checking the reference layer {args.name!r} {what}", file=text_stream(args))
    report = check_reference_layer(args.name, args.bug, **check_options(args))
    return finish(report, args)




def add_commands(sub: Any) -> None:
    """Add ``demo rnn`` and ``demo layer`` to the subcommands ``sub`` of the main parser."""
    demo = sub.add_parser("demo", help="run a built-in example")
    demo_sub = demo.add_subparsers(dest="example", parser_class=Parser)
    rnn_cmd = demo_sub.add_parser("rnn", help="the lecture's vanilla RNN (numpy, hand-written "
                                  "BPTT)")
    rnn_cmd.add_argument("--bug", default=None, help="a bug variant (see --list-bugs)")
    rnn_cmd.add_argument("--list-bugs", action="store_true", help="list the bug variants")
    rnn_cmd.add_argument("--hidden", type=types.positive_int, default=16,
                         help="hidden units (default 16: 1,163 parameters)")
    rnn_cmd.add_argument("--seq-len", type=types.positive_int, default=10)
    rnn_cmd.add_argument("--batch", type=types.positive_int, default=4)
    rnn_cmd.add_argument("--train-steps", type=types.count, default=20,
                         help="SGD steps before the check (default 20: mid-training)")
    rnn_cmd.add_argument("--batched", action="store_true",
                         help="evaluate perturbations in stacks with the RNN's vectorised "
                         "forward")
    add_check_options(rnn_cmd)
    rnn_cmd.set_defaults(func=cmd_demo_rnn)
    layer = demo_sub.add_parser("layer", help="a CS231n-style numpy layer (forward/backward)")
    layer.add_argument("name", nargs="?", default=None, help="layer name (see --list)")
    layer.add_argument("--bug", default=None, help="a bug variant of the layer")
    layer.add_argument("--list", action="store_true", help="list the layers and their bugs")
    add_check_options(layer)
    layer.set_defaults(func=cmd_demo_layer)
