"""Re-seeding before every evaluation, so stochastic forwards (dropout) can be checked.

The seed (§4): either switch stochastic layers off, or fix the same random seed before every
evaluation — f(x+h), f(x-h) and the analytic gradient alike. A mask that changes between the
evaluations makes ``(f(x+h) - f(x-h)) / 2h`` the difference of two *different* functions, which
is how dropout gradient checks report errors of 0.9 or numbers like -8·10⁶ (pytorch#62315,
pytorch/tutorials#25).

What ``seed=`` reaches: numpy's global RNG (``np.random.seed``), Python's ``random`` and, when
they are imported, torch (``torch.manual_seed``, CPU and CUDA) and TensorFlow
(``tf.random.set_seed``). JAX has no global random state — its keys are explicit arguments, so a
forward that reuses the same key is already deterministic. A ``np.random.Generator`` or a
``random.Random`` owned by the user's code is out of reach: pass ``reset=`` to re-create it.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import numpy as np

from gradcheck.errors import InputError


def reseed_globals(seed: int) -> list[str]:
    """Seed every global RNG we know of; return the names of those seeded."""
    np.random.seed(seed)
    random.seed(seed)
    done = ["numpy", "random"]
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)
        done.append("torch")
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(getattr(tf, "random", None), "set_seed"):
        tf.random.set_seed(seed)
        done.append("tensorflow")
    return done


def make_reset(seed: int | None, reset: Callable[[], None] | None
               ) -> Callable[[], None] | None:
    """A function to call before every evaluation, or ``None`` when nothing is asked.

    ``seed`` re-seeds the global RNGs (:func:`reseed_globals`); ``reset`` is any callable with
    no arguments (e.g. re-create your own ``np.random.Generator``), called after the
    re-seeding. Both run before every loss evaluation and before ``forward_backward``.
    """
    if seed is None and reset is None:
        return None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not 0 <= int(seed) < 2**32):
        raise InputError(f"seed={seed!r} must be an int in [0, 2**32) such as 0; it is passed "
                         "to np.random.seed before every evaluation.")
    if reset is not None and not callable(reset):
        raise InputError(f"reset={reset!r} is not callable; pass a function with no arguments "
                         "that puts your random state back, e.g. "
                         "lambda: state.update(rng=np.random.default_rng(0)).")
    seed_int = None if seed is None else int(seed)

    def reseed() -> None:
        if seed_int is not None:
            reseed_globals(seed_int)
        if reset is not None:
            reset()

    return reseed


def nondeterminism_message(f0: float, f1: float, seeded: bool) -> str:
    """The plain-words warning for a forward that gives two values at the same params."""
    head = (f"The forward is not deterministic: two calls at the same params gave {f0!r} and "
            f"{f1!r}. ")
    if seeded:
        return head + ("seed=/reset= did not make it repeatable, so it draws from a random "
                       "source they do not reach (its own np.random.default_rng(), a data "
                       "loader that yields a new batch per call like the lecture's "
                       "data.get_next(), a time-dependent value); fix the batch and pass "
                       "reset= that re-creates that generator. No gradient verdict is possible "
                       "until then.")
    return head + ("It probably draws a new batch or a new dropout mask per call (like the "
                   "seed's data.get_next()), or changes its own data or state in place; fix the "
                   "data and pass seed= (or reset=) so every evaluation sees the same "
                   "randomness. No gradient verdict is possible until then.")
