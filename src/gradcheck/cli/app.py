"""Command line: ``gradcheck demo rnn [--bug NAME] ...``, ``gradcheck check module:factory``,
``gradcheck sweep TARGET``.

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage error, 4 the checked code raised.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gradcheck.cli import accuracy, demo
from gradcheck.cli.options import EXIT_ERROR, EXIT_USAGE, Parser, UsageError
from gradcheck.errors import GradcheckError


def build_parser() -> Parser:
    parser = Parser(prog="gradcheck", description="Numerical gradient checking.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    demo.add_commands(sub)  # gradcheck demo rnn | layer
    accuracy.add_commands(sub)  # gradcheck sweep TARGET, gradcheck check module:factory
    return parser



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
