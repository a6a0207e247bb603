"""Validation of single option values for :mod:`gradcheck.options`: one sentence per bad
value, numpy scalars accepted.

Each function takes the option's name and the value the user gave and returns the
normalised Python value (``float``, ``int``, ``bool``), or raises :class:`InputError`
naming the option, the value and an example of a good one. Booleans are never numbers here
(``tol=True`` would otherwise mean ``tol=1`` and pass a 25 %-wrong gradient).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import numpy as np

from gradcheck.errors import InputError

#: Seeds accepted by numpy's legacy global RNG (``np.random.seed``).
SEED_LIMIT = 2**32


def is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def is_int(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not is_bool(value)


def is_real(value: Any) -> bool:
    """A Python or numpy real number (int or float), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not is_bool(value)


def positive_number(name: str, value: Any, example: str) -> float:
    """A finite number > 0 (``tol``, ``h``, ``loss_scale``)."""
    if not is_real(value) or not np.isfinite(float(value)) or float(value) <= 0:
        raise InputError(f"{name}={value!r} must be a finite positive number such as "
                         f"{example}.")
    return float(value)


def non_negative_number(name: str, value: Any, example: str) -> float:
    """A finite number ≥ 0 (``floor``)."""
    if not is_real(value) or not np.isfinite(float(value)) or float(value) < 0:
        raise InputError(f"{name}={value!r} must be a finite number ≥ 0 such as {example}.")
    return float(value)


def positive_int(name: str, value: Any, example: str) -> int:
    """An integer ≥ 1 (``workers``, ``batch_size``)."""
    if not is_int(value) or int(value) < 1:
        raise InputError(f"{name}={value!r} must be a positive integer such as {example}.")
    return int(value)


def seed(name: str, value: Any) -> int:
    """An integer in [0, 2³²) (``seed``, ``sample_seed``)."""
    if not is_int(value) or not 0 <= int(value) < SEED_LIMIT:
        raise InputError(f"{name}={value!r} must be an integer in [0, 2**32) such as 0.")
    return int(value)


def flag(name: str, value: Any) -> bool:
    """True or False (numpy bools too)."""
    if not is_bool(value):
        raise InputError(f"{name}={value!r} must be True or False.")
    return bool(value)


def choice(name: str, value: Any, choices: Iterable[str], explain: str = "") -> str:
    """One of ``choices`` (strings)."""
    options = list(choices)
    if not isinstance(value, str) or value not in options:
        listed = explain or ", ".join(repr(c) for c in options)
        raise InputError(f"{name}={value!r}: choose {listed}.")
    return value


def sample_spec(name: str, value: Any) -> int | float | None:
    """``None``, an int ≥ 1 (entries per tensor) or a float in (0, 1] (a fraction); ``name``
    is how the value is shown (``"sample"`` gives ``sample=1.5 …``)."""
    if value is None:
        return None
    if is_int(value):
        if int(value) < 1:
            raise InputError(f"{_shown(name, value)} must be at least 1 entry per tensor, or a "
                             "fraction in (0, 1] such as 0.1.")
        return int(value)
    if is_real(value):
        x = float(value)
        if not (np.isfinite(x) and 0 < x <= 1):
            raise InputError(f"{_shown(name, value)} is not a fraction in (0, 1]; pass e.g. 0.1 "
                             "for 10% of each tensor, or an int for a count per tensor.")
        return x
    raise InputError(f"{_shown(name, value)} is not a number; pass an int (entries per "
                     "tensor) or a float in (0, 1] (a fraction of each tensor).")


def _shown(name: str, value: Any) -> str:
    return f"{name}={value!r}" if name.isidentifier() else name


def sample(value: Any) -> Any:
    """``sample=``: a spec for every tensor, or a dict ``{tensor name: spec | [indices]}``."""
    if not isinstance(value, dict):
        return sample_spec("sample", value)
    out: dict[str, Any] = {}
    for key, spec in value.items():
        if not isinstance(key, str):
            raise InputError(f"sample={value!r} has the key {key!r}; name tensors by their "
                             "dotted names such as 'W' or 'encoder.W'.")
        if isinstance(spec, (list, tuple, np.ndarray)):
            out[key] = spec  # explicit indices, range-checked against the tensor later
            continue
        try:
            out[key] = sample_spec(f"the value {spec!r} for {key!r}", spec)
        except InputError as exc:
            raise InputError(f"sample={value!r}: {exc}") from None
    return out


def sample_keys(value: Any, names: list[str]) -> None:
    """Refuse ``sample={...}`` keys that name no tensor (a typo would silently check all)."""
    if not isinstance(value, dict):
        return
    unknown = [k for k in value if k not in names]
    if unknown:
        raise InputError(f"sample={value!r} names {', '.join(repr(k) for k in unknown)}, which "
                         f"{'is not a tensor' if len(unknown) == 1 else 'are not tensors'}; "
                         f"the tensors are {', '.join(repr(n) for n in names)}.")


def unknown_names(given: Iterable[str], known: Iterable[str]) -> str | None:
    """The sentence for misspelt option names, with the closest known name for each."""
    known = sorted(known)
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return None
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    return (f"unknown option(s) {', '.join(parts)}; valid options are "
            f"{', '.join(known)}.")

