"""Command line: ``gradcheck demo rnn [--bug NAME] ...``.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage error, 4 the checked code raised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gradcheck.errors import GradcheckError

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3, 4


class UsageError(Exception):
    """A bad command line; the message is one sentence."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting with code 2 (2 = inconclusive)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_check_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs a check."""
    p.add_argument("--method", default="central",
                   help="central (default), forward, backward, central4, richardson, complex "
                   "or auto (complex step where safe, else central4)")
    p.add_argument("--h", type=_step, default=None,
                   help="step, or 'auto' for a step per entry (default 1e-5; central4 3e-3, "
                   "richardson 2e-2, complex 1e-20)")
    p.add_argument("--tol", type=float, default=1e-5, help="tolerance (default 1e-5)")
    p.add_argument("--sample", type=_sample, default=None,
                   help="entries per tensor (int) or a fraction (float in (0, 1])")
    p.add_argument("--sample-seed", type=int, default=None,
                   help="seed of the sample (default 0; reproducible)")
    p.add_argument("--seed", type=int, default=None,
                   help="re-seed numpy/random/torch before every evaluation (dropout)")
    p.add_argument("--no-second-look", action="store_true",
                   help="judge every entry at h only (no kink analysis, no larger steps)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw error heatmaps and a histogram to FILE.png (needs matplotlib)")


def _step(text: str) -> float | str:
    return "auto" if text == "auto" else float(text)


def _sample(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer such as 2")
    return n


def check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`gradcheck.check` given on the command line."""
    opts: dict[str, Any] = {"method": args.method, "tol": args.tol}
    if args.h is not None:
        opts["h"] = args.h
    if args.sample is not None:
        opts["sample"] = args.sample
    for key in ("mode", "workers", "batched_forward"):  # speed options, where a command has them
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    if getattr(args, "no_progress", False):
        opts["progress"] = False
    if getattr(args, "sample_seed", None) is not None:
        opts["sample_seed"] = args.sample_seed
    if getattr(args, "seed", None) is not None:
        opts["seed"] = args.seed
    if getattr(args, "no_second_look", False):
        opts["second_look"] = False
    return opts


def cmd_demo_rnn(args: argparse.Namespace) -> int:
    """Run the seed's RNN example (trained a few steps first) and check it."""
    from gradcheck.check import check
    from gradcheck.examples import rnn

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
    problem = rnn.make_problem(args.bug, hidden=args.hidden, seq_len=args.seq_len,
                               batch=args.batch, train_steps=args.train_steps)
    args.batched_forward = problem.batched_forward if args.batched else None
    title = f"with bug {args.bug!r}" if args.bug else "(correct backward pass)"
    print(f"Checking the seed's RNN example {title}: hidden={args.hidden}, "
          f"seq_len={args.seq_len}, batch={args.batch}, {problem.n_params} parameters, after "
          f"{args.train_steps} SGD steps.")
    report = check(problem.forward, problem.forward_backward, problem.params,
                   context={"batch_size": args.batch, "seq_len": args.seq_len},
                   **check_options(args))
    return finish(report, args)


def cmd_demo_layer(args: argparse.Namespace) -> int:
    """Check a reference CS231n-style layer (optionally with a named bug) with check_layer."""
    from gradcheck.examples.layers import LAYERS
    from gradcheck.layers import check_reference_layer

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
    what = f"with bug {args.bug!r}: {spec.bugs[args.bug].description}" if args.bug else \
        "(correct backward pass)"
    print(f"Checking the reference layer {args.name!r} {what}")
    report = check_reference_layer(args.name, args.bug, **check_options(args))
    return finish(report, args)


def finish(report: Any, args: argparse.Namespace) -> int:
    """Print the report, write the JSON and the plot if asked, and return the exit code."""
    print(report)
    if getattr(args, "json", None):
        with open(args.json, "w") as fh:
            fh.write(report.to_json())
    if getattr(args, "plot", None):
        report.plot(args.plot)
        print(f"Plot written to {args.plot}")
    return report.exit_code


def build_parser() -> Parser:
    parser = Parser(prog="gradcheck", description="Numerical gradient checking.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    demo = sub.add_parser("demo", help="run a built-in example")
    demo_sub = demo.add_subparsers(dest="example", parser_class=Parser)
    rnn = demo_sub.add_parser("rnn", help="the seed's vanilla RNN (numpy, hand-written BPTT)")
    rnn.add_argument("--bug", default=None, help="a bug variant (see --list-bugs)")
    rnn.add_argument("--list-bugs", action="store_true", help="list the bug variants")
    rnn.add_argument("--hidden", type=int, default=16)
    rnn.add_argument("--seq-len", type=int, default=10)
    rnn.add_argument("--batch", type=int, default=4)
    rnn.add_argument("--train-steps", type=int, default=20)
    rnn.add_argument("--mode", choices=("elementwise", "directional"), default=None,
                     help="elementwise (every entry, default) or directional (one random "
                     "direction per tensor, then localise the wrong entries)")
    rnn.add_argument("--workers", type=_positive, default=None,
                     help="evaluate on N local worker processes")
    rnn.add_argument("--batched", action="store_true",
                     help="evaluate perturbations in stacks with the RNN's vectorised forward")
    rnn.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    add_check_options(rnn)
    rnn.set_defaults(func=cmd_demo_rnn)
    layer = demo_sub.add_parser("layer", help="a CS231n-style numpy layer (forward/backward)")
    layer.add_argument("name", nargs="?", default=None, help="layer name (see --list)")
    layer.add_argument("--bug", default=None, help="a bug variant of the layer")
    layer.add_argument("--list", action="store_true", help="list the layers and their bugs")
    add_check_options(layer)
    layer.set_defaults(func=cmd_demo_layer)
    from gradcheck.cli_accuracy import add_commands

    add_commands(sub)  # gradcheck sweep TARGET, gradcheck check module:factory
    return parser


COMMANDS: list[Callable[[Parser], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            raise UsageError("say what to run, e.g. 'gradcheck demo rnn' (see gradcheck --help)")
        return args.func(args)
    except UsageError as exc:
        print(f"gradcheck: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GradcheckError as exc:
        print(f"gradcheck: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
