"""Property tests (hypothesis) over random parameter trees, shapes and dtypes: correct gradients
pass, one wrong entry is found exactly, NaN is named, and params are never changed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck as gc
from gradcheck.params import tree as trees

DTYPES = (np.float64, np.float32, np.float16)


@st.composite
def leaf(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).uniform(-2, 2, size=shape)
    return np.asarray(values, dtype=dtype)


def trees_of(leaves):
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.dictionaries(st.sampled_from(["W", "b", "enc", "dec", "gamma"]), children,
                            min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=2).map(tuple)),
        max_leaves=5)


def model(params):
    """f = Σ_leaves c_k Σ (sin x + x²/2), computed in float64; gradient in each leaf's dtype."""
    leaves = trees.flatten(params)
    coef = [1.0 + 0.5 * k for k in range(len(leaves))]

    def forward(p):
        return float(sum(c * np.sum(np.sin(np.asarray(x, np.float64)) + np.asarray(
            x, np.float64) ** 2 / 2) for c, x in zip(coef, (lf.array for lf in trees.flatten(p)))))

    def gradient(p):
        out = [np.array(c * (np.cos(np.asarray(x, np.float64)) + np.asarray(x, np.float64)),
                        dtype=x.dtype) for c, x in zip(coef, (lf.array for lf in trees.flatten(p)))]
        return trees.replace_leaves(p, out)

    return forward, gradient


def snapshot(params):
    return [(lf.name, id(lf.array), lf.array.dtype, lf.array.tobytes())
            for lf in trees.flatten(params)]


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(params=trees_of(leaf()))
def test_correct_gradients_pass_and_params_are_untouched(params) -> None:
    forward, gradient = model(params)
    before = snapshot(params)
    report = gc.check(forward, gradient, params)
    assert report.status == "pass", str(report)
    assert snapshot(params) == before
    names = [t.name for t in report.tensors]
    assert len(set(names)) == len(names)
    assert report.counts["checked"] == sum(lf.size for lf in trees.flatten(params))


@SETTINGS
@given(params=trees_of(leaf()), which=st.integers(0, 10**6), entry=st.integers(0, 10**6),
       factor=st.sampled_from([-1.0, 0.5, 2.0, 1.6]))
def test_one_wrong_entry_is_found_exactly(params, which, entry, factor) -> None:
    forward, gradient = model(params)
    leaves = trees.flatten(params)
    k = which % len(leaves)
    i = entry % leaves[k].size

    def wrong(p):
        g = trees.flatten(gradient(p))
        arrays = [lf.array for lf in g]
        flat = arrays[k].reshape(-1)
        value = float(flat[i])
        if flat.dtype == np.float16:   # ε16 ≈ 1e-3: only a gross error is resolvable
            flat[i] = value + 1.0
        else:
            flat[i] = value * factor if abs(value) > 0.05 else value + 0.5
        return trees.replace_leaves(p, arrays)

    before = snapshot(params)
    report = gc.check(forward, wrong, params)
    assert snapshot(params) == before
    assert report.status == "fail", str(report)
    failed = report.entries("FAIL")
    assert [e.name for e in failed] == [leaves[k].element_name(i)]


@SETTINGS
@given(params=trees_of(leaf()), which=st.integers(0, 10**6))
def test_nan_in_the_analytic_gradient_is_a_named_failure(params, which) -> None:
    forward, gradient = model(params)
    leaves = trees.flatten(params)
    k = which % len(leaves)

    def with_nan(p):
        arrays = [lf.array for lf in trees.flatten(gradient(p))]
        arrays[k].reshape(-1)[0] = np.nan
        return trees.replace_leaves(p, arrays)

    report = gc.check(forward, with_nan, params)
    assert report.status == "fail"
    name = leaves[k].element_name(0)
    assert [e.name for e in report.entries("FAIL")] == [name]
    assert any(name in w for w in report.warnings)


@SETTINGS
@given(params=trees_of(leaf()), k=st.integers(1, 3), seed=st.integers(0, 100))
def test_sampled_checks_cover_every_tensor(params, k, seed) -> None:
    forward, gradient = model(params)
    report = gc.check(forward, gradient, params, sample=k, sample_seed=seed)
    assert report.status == "pass"
    for t, lf in zip(report.tensors, trees.flatten(params)):
        assert 1 <= t.checked <= lf.size
        assert 0 in t.flat_index and lf.size - 1 in t.flat_index


@SETTINGS
# When the forward raises in the float64 probe, a float16 leaf is stepped in float16, where
# h = 1e-5 rounds to a zero step: the scheme divides by zero and those entries come out
# inconclusive. Expected here; the warning is not the subject of this test.
@pytest.mark.filterwarnings("ignore:.*encountered in divide:RuntimeWarning")
@given(params=trees_of(leaf()), which=st.integers(0, 10**6), call=st.integers(1, 12),
       raise_instead=st.booleans())
def test_a_misbehaving_forward_loses_nothing(params, which, call, raise_instead) -> None:
    """A forward that writes into a parameter, or raises, on its n-th call: a clear error, and
    every array is the same object with the same bytes afterwards."""
    import pytest

    forward, gradient = model(params)
    leaves = trees.flatten(params)
    k = which % len(leaves)
    calls = {"n": 0}

    def bad_forward(p):
        calls["n"] += 1
        if calls["n"] == call:
            if raise_instead:
                raise RuntimeError("boom")
            target = trees.flatten(p)[k].array
            target.reshape(-1)[0] = target.reshape(-1)[0] + 1
        return forward(p)

    before = snapshot(params)
    total = gc.check(forward, gradient, params).evaluations   # calls of a clean check
    promotes = any(lf.array.dtype != np.float64 for lf in leaves)
    if call > total or (raise_instead and promotes and call == 1):
        # never misbehaves within the check, or raises only in the float64 probe (which
        # means "this forward does not take float64": the check then runs in low precision)
        gc.check(bad_forward, gradient, params)
    else:
        with pytest.raises(gc.GradcheckError) as info:
            gc.check(bad_forward, gradient, params)
        text = str(info.value)
        assert ("boom" in text) if raise_instead else ("modified" in text)
    assert snapshot(params) == before
