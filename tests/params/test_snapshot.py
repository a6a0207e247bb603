"""Snapshots of the params: copies while small, chunk fingerprints when large."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.params import snapshot as snap


def arrays():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 500))
    a[3, 4] = np.nan
    return [a, rng.normal(size=7).astype(np.float32), np.asarray(2.5)]


@pytest.mark.parametrize("limit", [snap.COPY_LIMIT, 0])
def test_unchanged_arrays_are_unchanged(limit) -> None:
    xs = arrays()
    s = snap.take(xs, copy_limit=limit)
    assert s.exact == (limit > 0)
    assert snap.changed(xs, s) == []


@pytest.mark.parametrize("limit", [snap.COPY_LIMIT, 0])
@pytest.mark.parametrize("where", [(0, 0), (299, 499), (150, 1)])
def test_a_one_bit_change_anywhere_is_detected(limit, where) -> None:
    xs = arrays()
    s = snap.take(xs, copy_limit=limit)
    bits = xs[0].view(np.uint64)
    bits[where] ^= np.uint64(1)                   # the last bit of one float64
    assert snap.changed(xs, s) == [0]
    restored = snap.restore(xs, s, [0])
    assert restored == s.exact
    if s.exact:
        assert snap.changed(xs, s) == []


def test_nan_payloads_and_signed_zeros_count() -> None:
    xs = [np.array([0.0, np.nan])]
    s = snap.take(xs, copy_limit=0)
    xs[0][0] = -0.0
    assert snap.changed(xs, s) == [0]


def test_non_contiguous_arrays_are_fingerprinted_in_c_order() -> None:
    base = np.random.default_rng(1).normal(size=(2000, 3000))
    view = base[::2, ::3]
    s = snap.take([view], copy_limit=0)
    base[1, 0] = 99.0                             # outside the view
    assert snap.changed([view], s) == []
    base[2, 3] = 99.0                             # inside it
    assert snap.changed([view], s) == [0]


def test_equal_bits_and_promoted_copies() -> None:
    x = np.random.default_rng(2).normal(size=(1500, 1000)).astype(np.float32)
    work = x.astype(np.float64)
    assert snap.equal_promoted(work, x)
    assert snap.equal_bits(work, work.copy())
    work[1000, 999] += 1e-12
    assert not snap.equal_promoted(work, x)
    assert not snap.equal_bits(work, x.astype(np.float64))
    assert not snap.equal_bits(work, work[:10])
