"""The one record every example uses for a planted bug."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bug:
    """A realistic mistake in a hand-written backward pass.

    Attributes
    ----------
    name : str
        Short identifier, unique within its example (the key of its registry).
    description : str
        One plain sentence saying what the code gets wrong.
    affects : frozenset of str
        Names of the parameters (or layer inputs) whose gradient the bug changes; every other
        gradient stays bit-identical.
    tags : frozenset of str
        Free labels (e.g. ``"kink"``, ``"scale"``) used by the zoo's suites.
    """

    name: str
    description: str
    affects: frozenset[str]
    tags: frozenset[str] = field(default_factory=frozenset)


def bug(name: str, description: str, affects: Iterable[str], tags: Iterable[str] = ()) -> Bug:
    """A :class:`Bug` from plain iterables."""
    return Bug(name, description, frozenset(affects), frozenset(tags))
