"""Command line: ``gradcheck demo rnn [--bug NAME] ...``, ``gradcheck check module:factory``,
``gradcheck sweep TARGET``.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage error (the command line), 4 the user's
code raised (module, factory, forward) or returned something unusable. Every error is one
line on stderr, ``gradcheck: <sentence>``, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gradcheck import __version__
from gradcheck.cli import accuracy, demo
from gradcheck.cli.options import (
    EXIT_ERROR,
    EXIT_PASS,
    EXIT_USAGE,
    Parser,
    UsageError,
    quiet_stdout,
)
from gradcheck.cli.targets import one_line
from gradcheck.errors import GradcheckError

EPILOG = """\
examples:
  gradcheck demo rnn --bug sign                 the lecture's RNN with a sign bug
  gradcheck check mymodel:problem               problem() in mymodel.py returns
                                                (forward, forward_backward, params)
  gradcheck check mymodel:problem --mode directional --workers 2 --json report.json
  gradcheck sweep rnn --entries "W[2,3]" --plot sweep.png

Exit codes:
  0  pass: the analytic gradients agree with the numerical ones
  1  fail: some gradient entries are wrong (the report names them)
  2  inconclusive: the numerics could not decide (the report says what would)
  3  usage error: the command line is wrong
  4  your code raised (module, factory or forward), or returned something unusable
"""


def build_parser() -> Parser:
    parser = Parser(prog="gradcheck", description="Numerical gradient checking: which tensor "
                    "and which entry of your gradients is wrong, and why.", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    demo.add_commands(sub)  # gradcheck demo rnn | layer
    accuracy.add_commands(sub)  # gradcheck sweep TARGET, gradcheck check module:factory
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            raise UsageError("say what to run, e.g. 'gradcheck demo rnn' or 'gradcheck check "
                             "mymodel:problem' (see gradcheck --help)")
        return args.func(args)
    except SystemExit as exc:  # --help and --version print, then exit 0
        return exc.code if isinstance(exc.code, int) else EXIT_PASS
    except UsageError as exc:
        return _error(exc, EXIT_USAGE)
    except GradcheckError as exc:
        return _error(exc, EXIT_ERROR)
    except BrokenPipeError:  # gradcheck ... | head
        quiet_stdout()
        return EXIT_PASS


def _error(exc: BaseException, code: int) -> int:
    try:
        print(f"gradcheck: {one_line(exc)}", file=sys.stderr)
    except BrokenPipeError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
