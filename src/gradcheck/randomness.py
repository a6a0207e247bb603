"""Re-seeding before every evaluation, so stochastic forwards (dropout) can be checked.

The seed (§4): either switch stochastic layers off, or fix the same random seed before every
evaluation — f(x+h), f(x-h) and the analytic gradient alike.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import numpy as np


def make_reset(seed: int | None, reset: Callable[[], None] | None
               ) -> Callable[[], None] | None:
    """A function to call before every evaluation, or ``None`` when nothing is asked.

    ``seed`` re-seeds numpy's global RNG, Python's ``random`` and, when already imported, torch
    (CPU and CUDA). JAX has no global RNG state: pass keys explicitly or use ``reset=``.
    ``reset`` is any callable (e.g. re-create your own ``np.random.Generator``), called after
    the re-seeding.
    """
    if seed is None and reset is None:
        return None
    if reset is not None and not callable(reset):
        from gradcheck.errors import InputError

        raise InputError(f"reset={reset!r} is not callable; pass a function with no arguments "
                         "that puts your random state back, e.g. lambda: rng.bit_generator...")

    def reseed() -> None:
        if seed is not None:
            np.random.seed(seed)
            random.seed(seed)
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.manual_seed(seed)
        if reset is not None:
            reset()

    return reseed
