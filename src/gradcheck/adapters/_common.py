"""Pieces shared by the framework adapters: the random upstream gradient and ``Σ out ⊙ dout``."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.layer_check import DOUT_SEED


def random_cotangent(shapes: list[tuple[int, ...]], seed: int | None) -> list[np.ndarray]:
    """Standard-normal float64 arrays of the given shapes (the upstream gradient ``dout``).

    A random ``dout`` turns a Jacobian check into a scalar one: ``L = Σ out ⊙ dout`` has
    gradient ``doutᵀ J``, and a wrong ``J`` changes it for almost every draw.
    """
    rng = np.random.default_rng(DOUT_SEED if seed is None else seed)
    return [rng.standard_normal(s) for s in shapes]


def input_names(n: int, names: list[str] | tuple[str, ...] | None) -> list[str]:
    if names is None:
        return [f"input{i}" for i in range(n)]
    if len(names) != n:
        raise InputError(f"names has {len(names)} entries but there are {n} inputs; give one "
                         "name per input.")
    return [str(x) for x in names]


def as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]
