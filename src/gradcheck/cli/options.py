"""What every command shares: exit codes, the parser that raises instead of exiting, the
check options, and how a report is finished (printed, written as JSON, plotted).

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage error, 4 the checked code raised.
"""

from __future__ import annotations

import argparse
from typing import Any

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


def positive_int(text: str) -> int:
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
