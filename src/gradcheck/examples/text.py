"""A tiny built-in character dataset for the RNN example.

The corpus is one short English paragraph, lower-cased, with every character outside
``a-z``, space, comma and full stop removed, so the vocabulary stays small (about 25-30
symbols). Characters are mapped to integer ids by their rank in the sorted vocabulary.

Unlike a streaming data loader that draws a new batch on every call, :func:`fixed_batch`
is a pure function of its arguments: the same ``(batch_size, seq_len, seed)`` always returns
the same arrays. A gradient check needs exactly that, because the loss must be the same
function every time it is evaluated.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RAW_TEXT",
    "TEXT",
    "VOCAB",
    "VOCAB_SIZE",
    "decode",
    "encode",
    "fixed_batch",
    "one_hot",
]

RAW_TEXT: str = (
    "A recurrent network reads a sentence one letter at a time. At every step it mixes "
    "the new letter with a small hidden state, squashes the sum through a tanh, and then "
    "guesses which letter comes next. Training compares that guess with the true letter "
    "and pushes the error back through all the steps it has seen, which is why the method "
    "is called backpropagation through time. The chain of products is long, so a single "
    "wrong sign, a missing transpose, or a forgotten term from the next step can hide in "
    "the code for weeks. The loss still goes down a little, the samples still look like "
    "words, and nobody notices. A careful check compares each derivative with a slope "
    "measured by nudging one weight up and down by a tiny amount, and it tells you which "
    "matrix is wrong before you waste a night of training."
)
"""The paragraph as written, before normalisation."""

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz ,.")


def _normalise(text: str) -> str:
    """Lower-case ``text`` and drop every character outside ``a-z``, space, ``,`` and ``.``."""
    return "".join(ch for ch in text.lower() if ch in _ALLOWED)


TEXT: str = _normalise(RAW_TEXT)
"""The normalised corpus (lower case, only letters, space, comma and full stop)."""

VOCAB: tuple[str, ...] = tuple(sorted(set(TEXT)))
"""Sorted unique characters of :data:`TEXT`; the id of a character is its index here."""

VOCAB_SIZE: int = len(VOCAB)
"""Number of symbols in :data:`VOCAB`."""

_CHAR_TO_ID: dict[str, int] = {ch: i for i, ch in enumerate(VOCAB)}
_IDS: np.ndarray = np.array([_CHAR_TO_ID[ch] for ch in TEXT], dtype=np.int64)


def encode(text: str) -> np.ndarray:
    """Map a string to an ``int64`` array of vocabulary ids.

    Parameters
    ----------
    text : str
        Characters that all belong to :data:`VOCAB`.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(text),)``, dtype ``int64``.

    Raises
    ------
    ValueError
        If a character is not in the vocabulary.
    """
    try:
        return np.array([_CHAR_TO_ID[ch] for ch in text], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the vocabulary") from None


def decode(ids: np.ndarray | list[int]) -> str:
    """Map a sequence of vocabulary ids back to a string (inverse of :func:`encode`)."""
    return "".join(VOCAB[int(i)] for i in np.asarray(ids).ravel())


def one_hot(ids: np.ndarray, vocab_size: int = VOCAB_SIZE) -> np.ndarray:
    """One-hot encode integer ids.

    ``out[..., k] = 1.0`` if ``ids[...] == k`` else ``0.0``.

    Parameters
    ----------
    ids : numpy.ndarray
        Integer array of any shape with values in ``[0, vocab_size)``.
    vocab_size : int
        Length of the last axis of the result.

    Returns
    -------
    numpy.ndarray
        Shape ``ids.shape + (vocab_size,)``, dtype ``float64``.
    """
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}), got range [{ids.min()}, {ids.max()}]")
    return (ids[..., None] == np.arange(vocab_size)).astype(np.float64)


def fixed_batch(batch_size: int, seq_len: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return a deterministic batch of input/target character sequences.

    Start positions ``s_1, ..., s_B`` are drawn with ``numpy.random.default_rng(seed)``.
    Row ``i`` reads the corpus cyclically (it wraps around at the end, so any ``seq_len``
    works): inputs are the characters at positions ``s_i, ..., s_i + T - 1`` and targets are
    the next characters, at positions ``s_i + 1, ..., s_i + T``, i.e. ``y[i, t]`` is the
    character that follows ``x[i, t]``.

    Parameters
    ----------
    batch_size : int
        Number of sequences ``B`` (>= 1).
    seq_len : int
        Number of time steps ``T`` (>= 1).
    seed : int
        Seed of the start positions. Same arguments give identical arrays.

    Returns
    -------
    x : numpy.ndarray
        One-hot inputs, shape ``(B, T, V)``, dtype ``float64``, ``V = VOCAB_SIZE``.
    y : numpy.ndarray
        Target ids, shape ``(B, T)``, dtype ``int64``.
    """
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(_IDS), size=batch_size)
    positions = (starts[:, None] + np.arange(seq_len + 1)[None, :]) % len(_IDS)
    ids = _IDS[positions]
    return one_hot(ids[:, :-1]), ids[:, 1:].copy()
