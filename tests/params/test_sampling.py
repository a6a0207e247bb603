"""Subsets (seed §4): k per tensor or a fraction, every tensor represented, edges always in,
reproducible with sample_seed; explicit per-tensor index lists."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck as gc
from gradcheck.params.sampling import corner_indices, select


def test_corners_are_first_and_last_along_every_axis() -> None:
    assert corner_indices(()).tolist() == [0]
    assert corner_indices((5,)).tolist() == [0, 4]
    assert corner_indices((1,)).tolist() == [0]
    assert corner_indices((3, 4)).tolist() == [0, 3, 8, 11]
    assert len(corner_indices((2, 3, 4))) == 8


def test_select_all_k_and_fraction() -> None:
    rng = np.random.default_rng(0)
    assert select((3, 4), None, rng).tolist() == list(range(12))
    assert len(select((10, 10), 10, rng)) == 10
    assert len(select((10, 10), 0.25, rng)) == 25
    assert len(select((10, 10), 0.001, rng)) == 4        # at least one, corners always in
    assert len(select((10, 10), 1000, rng)) == 100
    assert select((), 3, rng).tolist() == [0]


@pytest.mark.parametrize("bad", [0, -1, 0.0, 1.5, "3", True])
def test_bad_sample_values(bad) -> None:
    with pytest.raises(gc.InputError, match="sample"):
        select((4,), bad, np.random.default_rng(0))


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=0, max_size=4),
       k=st.one_of(st.integers(1, 50), st.floats(0.01, 1.0)), seed=st.integers(0, 2**16))
def test_select_properties(shape, k, seed) -> None:
    shape = tuple(shape)
    size = int(np.prod(shape, dtype=np.int64))
    idx = select(shape, k, np.random.default_rng(seed))
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)        # sorted, unique
    assert idx.min() >= 0 and idx.max() < size
    assert set(corner_indices(shape).tolist()) <= set(idx.tolist())   # edges always in
    want = k if isinstance(k, int) else max(1, int(round(k * size)))
    assert len(idx) == min(size, max(want, len(corner_indices(shape))))
    again = select(shape, k, np.random.default_rng(seed))
    assert idx.tolist() == again.tolist()                              # reproducible


def two_tensor_model(bug_at=None):
    rng = np.random.default_rng(4)
    params = {"W": rng.normal(size=(20, 30)), "b": rng.normal(size=30)}

    def forward(p):
        return float(np.sum(np.sin(p["W"])) + np.sum(p["b"] ** 3))

    def forward_backward(p):
        gW = np.cos(p["W"])
        if bug_at is not None:
            gW = gW.copy()
            gW[bug_at] *= -1
        return {"W": gW, "b": 3 * p["b"] ** 2}

    return forward, forward_backward, params


def test_every_tensor_is_represented_and_reproducible() -> None:
    f, fb, p = two_tensor_model()
    r1 = gc.check(f, fb, p, sample=5, sample_seed=3)
    r2 = gc.check(f, fb, p, sample=5, sample_seed=3)
    r3 = gc.check(f, fb, p, sample=5, sample_seed=4)
    assert [t.checked for t in r1.tensors] == [5, 5]
    assert r1.tensor("W").flat_index.tolist() == r2.tensor("W").flat_index.tolist()
    assert r1.tensor("W").flat_index.tolist() != r3.tensor("W").flat_index.tolist()
    # base twice, the loss's noise measured once (issue #10), two per entry
    assert r1.evaluations == 2 + r1.decisions["noise_evaluations"] + 2 * 10
    frac = gc.check(f, fb, p, sample=0.01)
    assert [t.checked for t in frac.tensors] == [6, 2]        # 1% of 600 is 6; b: its 2 edges


@pytest.mark.parametrize("where", [(0, 0), (19, 29), (0, 29), (19, 0)])
def test_an_off_by_one_at_an_edge_is_caught_by_the_smallest_sample(where) -> None:
    f, fb, p = two_tensor_model(bug_at=where)
    report = gc.check(f, fb, p, sample=1)
    assert report.status == "fail" and report.failing_tensors == ["W"]
    assert report.entries("FAIL")[0].index == where


def test_explicit_indices_per_tensor() -> None:
    f, fb, p = two_tensor_model(bug_at=(7, 8))
    report = gc.check(f, fb, p, sample={"W": [(7, 8), (1, 2)], "b": 3})
    W = report.tensor("W")
    assert sorted(W.flat_index.tolist()) == [1 * 30 + 2, 7 * 30 + 8]
    assert report.tensor("b").checked == 3
    assert report.status == "fail" and report.entries("FAIL")[0].name == "W[7,8]"
    only_w = gc.check(f, fb, p, sample={"W": 4})
    assert only_w.tensor("b").checked == 30                   # not named: checked in full
    with pytest.raises(gc.InputError, match="not an index"):
        gc.check(f, fb, p, sample={"W": [(20, 0)]})
    with pytest.raises(gc.InputError, match="empty"):
        gc.check(f, fb, p, sample={"W": []})
