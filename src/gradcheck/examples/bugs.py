"""The one record every example uses for a planted bug."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace


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
    expected : frozenset of str
        The diagnosis kinds (``gradcheck.diagnose.evidence.KINDS``) whose sentence names this
        bug rightly; empty when none is expected. ``benchmarks/diagnosis_coverage.py`` and
        the diagnosis tests hold the diagnosis to it.
    """

    name: str
    description: str
    affects: frozenset[str]
    tags: frozenset[str] = field(default_factory=frozenset)
    expected: frozenset[str] = field(default_factory=frozenset)


def bug(name: str, description: str, affects: Iterable[str], tags: Iterable[str] = (),
        expected: Iterable[str] = ()) -> Bug:
    """A :class:`Bug` from plain iterables."""
    return Bug(name, description, frozenset(affects), frozenset(tags), frozenset(expected))


def with_expected(bugs: dict[str, Bug], expected: dict[str, str]) -> dict[str, Bug]:
    """``bugs`` with the expected diagnosis kinds set, ``{bug name: "kind kind ..."}``."""
    return {name: replace(b, expected=frozenset(expected.get(name, "").split()))
            for name, b in bugs.items()}
