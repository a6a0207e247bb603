"""Argument types of the command line: each turns the text after an option into a value or
raises ``argparse.ArgumentTypeError`` with one sentence (argparse shows it as
``argument --tol: ...``; the ``Parser`` turns that into a usage error, exit 3)."""

from __future__ import annotations

import argparse
import math

#: The schemes of ``--method`` (``gradcheck.check``'s ``method=``).
METHODS = ("central", "forward", "backward", "central4", "richardson", "complex", "auto")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def method(text: str) -> str:
    """One of :data:`METHODS`."""
    if text not in METHODS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a method; choose one of "
                                         f"{', '.join(METHODS)}")
    return text


def positive_float(text: str) -> float:
    """A finite number > 0 (``--tol``)."""
    x = _float(text)
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite positive number such as "
                                         "1e-5")
    return x


def step(text: str) -> float | str:
    """A finite number > 0, or ``auto`` (``--h``)."""
    if text == "auto":
        return "auto"
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step; give a finite positive "
                                         "number such as 1e-5, or 'auto'") from None


def sample(text: str) -> int | float:
    """An int ≥ 1 (entries per tensor) or a fraction in (0, 1] (``--sample``)."""
    try:
        k = int(text)
    except ValueError:
        k = None
    if k is not None:
        if k < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a count ≥ 1 or a fraction in "
                                             "(0, 1] such as 0.1")
        return k
    x = _float(text)
    if not (math.isfinite(x) and 0 < x <= 1):
        raise argparse.ArgumentTypeError(f"{text!r} is neither a count ≥ 1 nor a fraction in "
                                         "(0, 1] such as 0.1")
    return x


def seed(text: str) -> int:
    """An integer in [0, 2³²) (``--seed``, ``--sample-seed``)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer in [0, 2**32) such as 0")
    return n


def positive_int(text: str) -> int:
    """An integer ≥ 1 (``--workers``, ``--batch-size``)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer such as 2")
    return n


def count(text: str) -> int:
    """An integer ≥ 0 (``--train-steps``)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count such as 0 or 20")
    return n
