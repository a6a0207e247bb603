"""Tests of :mod:`gradcheck.diagnose.patterns`: every bug pattern is recognised, noise is not."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcheck.diagnose.patterns import KINDS, Diagnosis, diagnose, diagnose_tensor

NAME = "encoder.W"
SHAPES = [(12,), (4, 5), (6, 6), (3, 4, 5)]
NUM_NOISE = 1e-9          # error bar of the synthetic "numerical" gradients


def _numeric(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """``n`` plus numerical-gradient-like noise of size NUM_NOISE."""
    return n + NUM_NOISE * rng.normal(size=n.shape)


def _slab(a: np.ndarray, axis: int, index: int) -> tuple:
    sl = [slice(None)] * a.ndim
    sl[axis] = index
    return tuple(sl)


# ---------------------------------------------------------------------------------------------
# one builder per bug: (rng, shape) -> (analytic, true gradient, kwargs, expected factor)


def _sign(rng, shape):
    n = rng.normal(size=shape)
    return -n, n, {}, -1.0


def _double(rng, shape):
    n = rng.normal(size=shape)
    return 2 * n, n, {}, 2.0


def _half(rng, shape):
    n = rng.normal(size=shape)
    return 0.5 * n, n, {}, 0.5


def _batch(rng, shape):
    n = rng.normal(size=shape)
    return 32 * n, n, {"batch_size": 32}, 32.0


def _inv_batch(rng, shape):
    n = rng.normal(size=shape)
    return n / 32, n, {"batch_size": 32}, 1 / 32


def _seq(rng, shape):
    n = rng.normal(size=shape)
    return 7 * n, n, {"seq_len": 7, "batch_size": 4}, 7.0


def _inv_seq(rng, shape):
    n = rng.normal(size=shape)
    return n / 7, n, {"seq_len": 7}, 1 / 7


def _other_constant(rng, shape):
    n = rng.normal(size=shape)
    return 3.3 * n, n, {}, 3.3


def _transpose(rng, shape):
    k = shape[-1]
    n = rng.normal(size=shape[:-2] + (k, k)) if len(shape) >= 2 else rng.normal(size=(k, k))
    return np.swapaxes(n, -1, -2).copy(), n, {}, None


def _swapped(rng, shape):
    n = rng.normal(size=shape)
    u = rng.normal(size=shape)
    others = {"decoder.U": (n.copy(), u), "b": (rng.normal(size=3), rng.normal(size=3))}
    return u.copy(), n, {"others": others}, None


def _zero(rng, shape):
    n = rng.normal(size=shape)
    return np.zeros(shape), n, {}, None


def _zero_row(rng, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    a[1] = 0.0
    a[-2] = 0.0
    return a, n, {}, None


def _edges(rng, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    axis = int(np.argmax(shape))            # an axis with at least 4 entries
    for i in (0, -1):
        a[_slab(a, axis, i)] += rng.normal(size=a[_slab(a, axis, i)].shape)
    return a, n, {}, None


def _first_step(rng, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    a[0] = 0.3 * a[0] + rng.normal(size=a[0].shape)
    return a, n, {}, None


def _last_step(rng, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    a[-1] *= 0.5
    return a, n, {"time_axis": 0}, None


def _repeated_rows(rng, shape):
    n = rng.normal(size=shape)
    rows = np.zeros(shape[0], dtype=bool)
    rows[[1, 2]] = True
    a = n.copy()
    a[rows] /= 3.0                          # only the last of three occurrences kept
    return a, n, {"repeated_rows": rows}, None


def _small_term(rng, shape):
    n = rng.normal(size=shape)
    return n * (1 + 3e-3), n, {}, 1 + 3e-3


def _small_term_value(rng, shape):
    n = rng.normal(size=shape)
    w = rng.normal(size=shape)
    return n - 1e-3 * w, n, {"value": w}, None


def _nan(rng, shape):
    n = rng.normal(size=shape)
    a = n.copy()
    a.flat[1] = np.nan
    return a, n, {}, None


BUGS = {
    "sign": ("sign", _sign),
    "factor 2": ("scale", _double),
    "factor 1/2": ("scale", _half),
    "batch size": ("scale", _batch),
    "1/batch size": ("scale", _inv_batch),
    "seq len": ("scale", _seq),
    "1/seq len": ("scale", _inv_seq),
    "other constant": ("scale", _other_constant),
    "transpose": ("transpose", _transpose),
    "swapped": ("swapped", _swapped),
    "zero": ("zero", _zero),
    "zero rows": ("zero", _zero_row),
    "edges": ("edges", _edges),
    "first step": ("first_step", _first_step),
    "last step": ("last_step", _last_step),
    "repeated rows": ("repeated_rows", _repeated_rows),
    "small term": ("small_term", _small_term),
    "small term (value)": ("small_term", _small_term_value),
    "nan": ("nan", _nan),
}


def _check_sentence(d: Diagnosis, name: str = NAME) -> None:
    assert name in d.sentence
    assert d.sentence[0].isupper()
    assert d.sentence.endswith((".", "?"))
    assert "\n" not in d.sentence


@pytest.mark.parametrize("with_noise", [False, True], ids=["no-error-bar", "error-bar"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("bug", list(BUGS))
def test_each_bug_is_recognised(bug, shape, with_noise):
    kind, build = BUGS[bug]
    rng = np.random.default_rng(zlib.crc32(repr((bug, shape)).encode()))
    a, n, kwargs, factor = build(rng, shape)
    if with_noise:
        kwargs["noise"] = NUM_NOISE
    d = diagnose_tensor(NAME, a, _numeric(rng, n), **kwargs)
    assert d is not None, bug
    assert d.kind == kind, (bug, d)
    assert d.confidence >= 0.7, (bug, d)
    assert 0.0 <= d.confidence <= 1.0
    _check_sentence(d)
    if factor is not None:
        assert d.factor == pytest.approx(factor, rel=1e-6)


def test_sentences_name_the_mistake():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(5, 5))
    assert "sign flip" in diagnose_tensor("W", -n, n).sentence
    assert ".T" in diagnose_tensor("W", n.T.copy(), n).sentence
    assert "batch size (32)" in diagnose_tensor("W", 32 * n, n, batch_size=32).sentence
    assert "sequence length (7)" in diagnose_tensor("W", n / 7, n, seq_len=7).sentence
    assert "3.3" in diagnose_tensor("W", 3.3 * n, n).sentence
    rows = np.array([False, True, False, True, False])
    a = n.copy()
    a[rows] *= 0.5
    assert "np.add.at" in diagnose_tensor("W", a, n, repeated_rows=rows).sentence
    a = n.copy()
    a[:, 2] = 0
    assert "column 2" in diagnose_tensor("W", a, n).sentence


def test_sign_with_a_factor_is_a_sign_flip():
    n = np.random.default_rng(1).normal(size=(4, 6))
    d = diagnose_tensor("W", -8 * n, n, batch_size=8)
    assert d.kind == "sign" and d.factor == pytest.approx(-8)
    assert "batch size" in d.sentence


def test_transpose_needs_the_transpose_to_fit_better_than_n():
    n = np.random.default_rng(2).normal(size=(5, 5))
    sym = n + n.T                           # transposing changes nothing
    d = diagnose_tensor("W", sym + np.random.default_rng(3).normal(size=(5, 5)), sym)
    assert d is None or d.kind != "transpose"
    d = diagnose_tensor("W", n.T, n.copy())
    assert d.kind == "transpose"


def test_transposed_shape():
    n = np.random.default_rng(4).normal(size=(3, 5))
    d = diagnose_tensor("W", n.T, n)
    assert d.kind == "transpose" and d.confidence >= 0.7


def test_shape_mismatch_is_reported():
    d = diagnose_tensor("W", np.zeros(7), np.ones((2, 3)))
    assert d.kind == "unknown" and "shape" in d.sentence


def test_swap_one_way_and_two_ways():
    rng = np.random.default_rng(5)
    n, u = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    mutual = diagnose_tensor("W", u, n, others={"U": (n, u)})
    one_way = diagnose_tensor("W", u, n, others={"U": (rng.normal(size=(4, 4)), u)})
    assert mutual.kind == one_way.kind == "swapped"
    assert "vice versa" in mutual.sentence and "vice versa" not in one_way.sentence
    assert "U" in mutual.sentence


@pytest.mark.parametrize("c", [-1.0, 2.0, 0.5, 3.3, -0.25])
@pytest.mark.parametrize("shape", [(10,), (6, 7), (3, 4, 5)], ids=str)
def test_constant_fit_is_robust_to_zeros_in_n(c, shape):
    rng = np.random.default_rng(6)
    n = rng.normal(size=shape)
    n[rng.random(shape) < 0.3] = 0.0        # e.g. dead ReLUs
    n.flat[0] = 0.0
    d = diagnose_tensor("W", c * n, _numeric(rng, n), noise=NUM_NOISE)
    assert d is not None and d.kind in ("sign", "scale")
    assert d.factor == pytest.approx(c, rel=1e-6)
    assert d.confidence >= 0.7


@pytest.mark.parametrize("pass_noise", [False, True])
@pytest.mark.parametrize("seed", range(5))
def test_few_edge_errors_plus_noise_is_edges(seed, pass_noise):
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(8, 10))
    sigma = 1e-4
    a = n + sigma * rng.normal(size=n.shape)
    cols = rng.choice(10, size=3, replace=False)
    a[0, cols] += rng.choice([-1, 1], size=3) * rng.uniform(0.3, 1.0, size=3)
    a[-1, cols[:2]] += 0.5
    d = diagnose_tensor("W", a, n, noise=sigma if pass_noise else None)
    assert d is not None and d.kind == "edges" and d.confidence >= 0.7
    assert "first and last row" in d.sentence


def test_border_errors_are_edges():
    rng = np.random.default_rng(7)
    n = rng.normal(size=(9, 9))
    a = _numeric(rng, n)
    a[0, 3] += 1
    a[4, 0] -= 1
    a[8, 5] += 1
    a[2, 8] += 1
    d = diagnose_tensor("W", a, n)
    assert d.kind == "edges" and "border" in d.sentence


def test_spatial_border_of_an_image_gradient_is_edges():
    rng = np.random.default_rng(15)
    dx = rng.normal(size=(2, 3, 6, 6))      # (batch, channel, height, width)
    a = _numeric(rng, dx)
    border = np.zeros((6, 6), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    a[:, :, border] += 0.3 * rng.normal(size=a[:, :, border].shape)
    d = diagnose_tensor("dx", a, dx)
    assert d.kind == "edges" and "axes 2 and 3" in d.sentence


def test_repeated_rows_as_indices():
    rng = np.random.default_rng(16)
    e = rng.normal(size=(7, 3))
    a = e.copy()
    a[[2, 5]] *= 0.25
    d = diagnose_tensor("emb", a, e, repeated_rows=np.array([5, 2]))
    assert d.kind == "repeated_rows" and "rows 2 and 5" in d.sentence


def test_flat_sample_skips_positional_patterns():
    rng = np.random.default_rng(17)
    n = rng.normal(size=40)
    a = n.copy()
    a[0] += 1.0                              # "first step" only in the flat order
    assert diagnose_tensor("W", a, n).kind == "first_step"
    assert diagnose_tensor("W", a, n, layout=False) is None
    assert diagnose_tensor("W", -n, n, layout=False).kind == "sign"
    a = n.copy()
    a[[3, 9]] = 0.0
    d = diagnose_tensor("W", a, n, layout=False)
    assert d.kind == "zero" and "2 entries" in d.sentence


def test_time_axis():
    rng = np.random.default_rng(8)
    h = rng.normal(size=(4, 9, 3))          # (batch, time, hidden)
    a = h.copy()
    a[:, 0] += 1.0
    d = diagnose_tensor("h", a, h, time_axis=1)
    assert d.kind == "first_step" and "axis 1" in d.sentence
    a = h.copy()
    a[:, -1] = 0.0
    d = diagnose_tensor("h", a, h, time_axis=-2)
    assert d.kind == "last_step" and "zero" in d.sentence
    with pytest.raises(ValueError):
        diagnose_tensor("h", a, h, time_axis=3)


def test_partial_zero_in_the_middle():
    rng = np.random.default_rng(9)
    n = rng.normal(size=(6, 5))
    a = n.copy()
    a[[1, 2, 4], [0, 3, 2]] = 0.0            # scattered, not a whole row
    d = diagnose_tensor("W", a, n)
    assert d.kind == "zero" and "3 entries" in d.sentence


def test_errors_on_rows_that_are_not_repeated_are_not_repeated_rows():
    rng = np.random.default_rng(10)
    n = rng.normal(size=(8, 4))
    rows = np.zeros(8, dtype=bool)
    rows[[2, 5]] = True
    a = n.copy()
    a[[3, 6]] *= 0.5
    d = diagnose_tensor("W", a, n, repeated_rows=rows)
    assert d is None or d.kind != "repeated_rows"


def test_nan_and_inf():
    n = np.ones((3, 3))
    a = n.copy()
    a[0, 0], a[1, 1] = np.nan, np.inf
    d = diagnose_tensor("W", a, n)
    assert d.kind == "nan" and "NaN and Inf" in d.sentence and d.confidence >= 0.9
    d = diagnose_tensor("W", n, n * np.nan)
    assert d.kind == "nan" and "numerical" in d.sentence


def test_within_the_error_bar_is_not_diagnosed():
    rng = np.random.default_rng(11)
    n = rng.normal(size=(5, 5))
    assert diagnose_tensor("W", n + 1e-3 * rng.normal(size=n.shape), n, noise=1e-3) is None
    assert diagnose_tensor("W", n.copy(), n) is None
    assert diagnose_tensor("W", np.zeros(4), np.zeros(4)) is None


def test_failed_entries_outside_a_region_rule_it_out():
    rng = np.random.default_rng(12)
    n = rng.normal(size=(6, 6))
    a = n.copy()
    a[0] += 1.0
    a[3, 3] += 1e-3
    failed = np.abs(a - n) > 1e-5
    assert diagnose_tensor("W", a, n).kind == "first_step"     # 1e-3 is small next to 1
    d = diagnose_tensor("W", a, n, failed=failed)
    assert d is None or d.kind != "first_step"


def test_bad_context_shapes_raise():
    n = np.ones((3, 4))
    with pytest.raises(ValueError):
        diagnose_tensor("W", 2 * n, n, failed=np.ones(3, dtype=bool))
    with pytest.raises(ValueError):
        diagnose_tensor("W", 2 * n, n, noise=np.ones(5))
    with pytest.raises(ValueError):
        a = n.copy()
        a[0] = 0
        diagnose_tensor("W", a, n, repeated_rows=np.ones(2, dtype=bool))


def test_diagnosis_is_frozen_and_kinds_are_known():
    d = diagnose_tensor("W", -np.arange(1.0, 7.0), np.arange(1.0, 7.0))
    assert d.kind in KINDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.kind = "scale"


def test_diagnose_all_tensors():
    rng = np.random.default_rng(13)
    w, u, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=5)
    c = rng.normal(size=(6, 2))
    failing = {
        "W": (u.copy(), w),                 # swapped with U
        "U": (w.copy(), u),
        "b": (-b, b),
        "c": (c + rng.normal(size=c.shape), c),     # no pattern
    }
    every = dict(failing, extra=(np.ones(7), np.ones(7)))
    out = diagnose(failing, all_tensors=every, noise={"b": 1e-9}, batch_size=4)
    assert list(out) == ["W", "U", "b", "c"]
    assert out["W"].kind == "swapped" and "U" in out["W"].sentence
    assert out["U"].kind == "swapped" and "W" in out["U"].sentence
    assert out["b"].kind == "sign"
    assert out["c"].kind == "unknown" and out["c"].confidence < 0.5
    for name, d in out.items():
        assert d.tensor == name
        _check_sentence(d, name)


def test_diagnose_per_tensor_context():
    rng = np.random.default_rng(14)
    e = rng.normal(size=(6, 3))
    a = e.copy()
    a[[0, 4]] *= 0.5
    rows = np.array([True, False, False, False, True, False])
    out = diagnose({"emb": (a, e)}, repeated_rows={"emb": rows})
    assert out["emb"].kind == "repeated_rows"


# ---------------------------------------------------------------------------------------------
# no confident diagnosis on noise

PROP_SHAPES = [(1,), (2,), (3,), (5,), (8,), (20,), (1, 1), (1, 4), (2, 2), (2, 3), (3, 3),
               (4, 4), (5, 7), (10, 10), (2, 2, 2), (3, 4, 5)]


def _random_gradient(rng: np.random.Generator, shape: tuple, heavy: int) -> np.ndarray:
    if heavy == 0:
        return rng.normal(size=shape)
    if heavy == 1:
        return rng.standard_t(2, size=shape)
    return rng.normal(size=shape) * np.exp(2 * rng.normal(size=shape))   # wide range


def _assert_not_confident(d: Diagnosis | None) -> None:
    assert d is None or d.kind == "unknown" or d.confidence < 0.7, d


def _context(rng: np.random.Generator, data, a: np.ndarray, n: np.ndarray) -> dict:
    """Random, honest context: batch size, sequence length, masks, a checker's failures."""
    shape = n.shape
    kw: dict = {}
    if data.draw(st.booleans(), label="batch"):
        kw["batch_size"] = data.draw(st.integers(2, 64), label="batch_size")
    if data.draw(st.booleans(), label="seq"):
        kw["seq_len"] = data.draw(st.integers(2, 20), label="seq_len")
    if data.draw(st.booleans(), label="repeated"):
        kw["repeated_rows"] = rng.random(shape[0]) < 0.5
    if data.draw(st.booleans(), label="value"):
        kw["value"] = rng.normal(size=shape)
    if data.draw(st.booleans(), label="failed"):
        rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-8)
        kw["failed"] = rel > np.quantile(rel, data.draw(st.floats(0, 0.95), label="q"))
    return kw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(PROP_SHAPES), seed=st.integers(0, 2**32 - 1),
       log_eps=st.floats(-3, 0), model=st.sampled_from(["global", "entrywise", "mixed"]),
       heavy=st.integers(0, 2), pass_noise=st.booleans(), data=st.data())
def test_noise_gets_no_confident_diagnosis(shape, seed, log_eps, model, heavy, pass_noise,
                                           data):
    rng = np.random.default_rng(seed)
    n = _random_gradient(rng, shape, heavy)
    eps = 10.0 ** log_eps
    scale = float(np.sqrt(np.mean(n ** 2)))
    if model == "global":             # the same absolute error bar everywhere
        sigma = eps * scale * np.ones(shape)
        g = rng.normal(size=shape)
    elif model == "entrywise":        # relative to each entry
        sigma = eps * np.abs(n)
        g = rng.normal(size=shape)
    else:                             # both, heavy-tailed
        sigma = eps * (np.abs(n) + scale)
        g = rng.standard_t(3, size=shape) / np.sqrt(3.0)
    noise = sigma * g
    # genuinely patternless: no entry, row or column of the noise is exactly zero
    assume(np.all(noise != 0))
    a = n + noise
    kw = _context(rng, data, a, n)
    if pass_noise:
        kw["noise"] = sigma
    _assert_not_confident(diagnose_tensor("W", a, n, **kw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(PROP_SHAPES), seed=st.integers(0, 2**32 - 1),
       log_size=st.floats(-1, 1), heavy=st.integers(0, 2), data=st.data())
def test_unrelated_array_gets_no_confident_diagnosis(shape, seed, log_size, heavy, data):
    rng = np.random.default_rng(seed)
    n = _random_gradient(rng, shape, heavy)
    a = 10.0 ** log_size * float(np.sqrt(np.mean(n ** 2))) * rng.normal(size=shape)
    kw = _context(rng, data, a, n)
    others = {"U": (rng.normal(size=shape), rng.normal(size=shape))}
    _assert_not_confident(diagnose_tensor("W", a, n, others=others, **kw))


@settings(max_examples=100, deadline=None)
@given(shape=st.sampled_from(PROP_SHAPES), seed=st.integers(0, 2**32 - 1),
       log_eps=st.floats(-3, 0))
def test_diagnose_on_noise_reports_unknown_or_weak(shape, seed, log_eps):
    rng = np.random.default_rng(seed)
    n = rng.normal(size=shape)
    a = n + 10.0 ** log_eps * rng.normal(size=shape)
    out = diagnose({"W": (a, n)})
    assert set(out) == {"W"}
    _assert_not_confident(out["W"])
