"""What every command shares: exit codes, the parser that raises instead of exiting, the
check options, the checks made before a run (outputs writable, matplotlib for ``--plot``),
and how a report is finished (printed, written as JSON, plotted).

Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 usage error, 4 the checked code raised.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from gradcheck.cli import types
from gradcheck.errors import InputError
from gradcheck.optional import available
from gradcheck.options import make_plan

EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3, 4


class UsageError(Exception):
    """A bad command line; the message is one sentence."""


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting with code 2 (2 = inconclusive)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_check_options(p: argparse.ArgumentParser,
                      extra_modes: tuple[tuple[str, str], ...] = ()) -> None:
    """Options shared by every command that runs a check."""
    p.add_argument("--method", type=types.method, default="central",
                   help="central (default), forward, backward, central4, richardson, complex "
                   "or auto (complex step where safe, else central4)")
    p.add_argument("--h", type=types.step, default=None,
                   help="step, or 'auto' for a step per entry (default 1e-5; central4 3e-3, "
                   "richardson 2e-2, complex 1e-20)")
    p.add_argument("--tol", type=types.positive_float, default=1e-5,
                   help="tolerance (default 1e-5)")
    p.add_argument("--sample", type=types.sample, default=None,
                   help="entries per tensor (int) or a fraction (float in (0, 1])")
    p.add_argument("--sample-seed", type=types.seed, default=None,
                   help="seed of the sample (default 0; reproducible)")
    p.add_argument("--seed", type=types.seed, default=None,
                   help="re-seed numpy/random/torch before every evaluation (dropout)")
    p.add_argument("--strict", action="store_true",
                   help="also FAIL tensors whose small discrepancy is far outside its error bar, "
                   "and gradients returned in a lower precision than their parameter")
    p.add_argument("--no-second-look", action="store_true",
                   help="judge every entry at h only (no kink analysis, no larger steps)")
    p.add_argument("--mode", choices=("elementwise", "directional", *dict(extra_modes)),
                   default=None, help="elementwise (every entry, default) or directional (one "
                   "random direction per tensor, then localise the wrong entries)"
                   + "".join(f"; {m}: {what}" for m, what in extra_modes))
    p.add_argument("--workers", type=types.positive_int, default=None,
                   help="evaluate on N local worker processes (a check under about a second "
                   "runs serially)")
    p.add_argument("--batch-size", type=types.positive_int, default=None,
                   help="perturbations per call of a batched forward (with --batched)")
    p.add_argument("--no-progress", action="store_true", help="never draw a progress bar")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the report as JSON to FILE ('-': to stdout, the text report "
                   "then goes to stderr); every failing and inconclusive entry is listed")
    p.add_argument("--json-all", action="store_true",
                   help="list every checked entry in the JSON, not only the problems")
    p.add_argument("--plot", metavar="FILE", default=None,
                   help="also draw error heatmaps and a histogram to FILE.png (needs matplotlib)")


def check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`gradcheck.check` given on the command line."""
    opts: dict[str, Any] = {"method": args.method, "tol": args.tol}
    if args.h is not None:
        opts["h"] = args.h
    if args.sample is not None:
        opts["sample"] = args.sample
    for key in ("mode", "workers", "batch_size", "batched_forward"):
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
    if getattr(args, "strict", False):
        opts["strict"] = True
    return opts


def check_outputs(args: argparse.Namespace) -> None:
    """Before running anything: the ``--json`` / ``--plot`` files can be written, and
    matplotlib is there for ``--plot`` (a usage error now, not after a long check)."""
    for option in ("json", "plot"):
        path = getattr(args, option, None)
        if path is None or (option == "json" and path == "-"):
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write --{option} {path}: the folder {folder} does not "
                             "exist")
        if os.path.isdir(path) or not os.access(folder, os.W_OK) or (
                os.path.exists(path) and not os.access(path, os.W_OK)):
            raise UsageError(f"cannot write --{option} {path}: not a writable file")
    if getattr(args, "plot", None) is not None and not available("matplotlib"):
        raise UsageError("--plot needs matplotlib, which is not installed; install it with "
                         "pip install 'gradcheck[plot]' or leave out --plot")


def check_plan(options: dict[str, Any]) -> None:
    """The options together, as :func:`gradcheck.check` will see them (e.g. ``--h`` with
    ``--method auto``): a usage error now rather than an error of the run."""
    try:
        make_plan(options)
    except (InputError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def text_stream(args: argparse.Namespace) -> TextIO:
    """Where the human-readable text goes: stdout, or stderr when ``--json -`` takes stdout."""
    return sys.stderr if getattr(args, "json", None) == "-" else sys.stdout


def quiet_stdout() -> None:
    """After a closed pipe (``gradcheck ... | head``): send what is left of stdout to
    /dev/null, so that Python's final flush does not print a BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor
        pass


def finish(report: Any, args: argparse.Namespace) -> int:
    """Print the report, write the JSON and the plot if asked, and return the exit code."""
    out = text_stream(args)
    entries = "all" if getattr(args, "json_all", False) else "problems"
    try:
        print(report, file=out)
        if getattr(args, "json", None) == "-":
            sys.stdout.write(report.to_json(entries=entries) + "\n")
            sys.stdout.flush()
        elif getattr(args, "json", None):
            try:
                with open(args.json, "w") as fh:
                    fh.write(report.to_json(entries=entries))
            except OSError as exc:
                raise UsageError(f"cannot write --json {args.json}: {exc.strerror}") from exc
        if getattr(args, "plot", None):
            try:
                report.plot(args.plot)
            except OSError as exc:
                raise UsageError(f"cannot write --plot {args.plot}: {exc.strerror}") from exc
            print(f"Plot written to {args.plot}", file=out)
        out.flush()
    except BrokenPipeError:
        quiet_stdout()
    return report.exit_code
