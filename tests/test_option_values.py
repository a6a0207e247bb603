"""Bad option values and bad inputs to gc.check: one plain sentence, the right exception, and
the user's params the same objects, bit-identical, afterwards (nothing lost)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import ForwardError, GradcheckError, InputError

NAN, INF = float("nan"), float("inf")


def make_params() -> dict[str, np.ndarray]:
    return {"W": np.arange(6.0).reshape(2, 3) / 7, "b": np.array([0.5, -0.2, 0.1])}


def forward(p):
    """f = ΣW² + Σb³."""
    return float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 3))


def grads(p):
    return {"W": 2 * p["W"], "b": 3 * p["b"] ** 2}


def wrong_grads(p):
    """b's gradient 25 % too large: must never pass."""
    return {"W": 2 * p["W"], "b": 1.25 * 3 * p["b"] ** 2}


def snapshot(params: dict[str, np.ndarray]) -> dict[str, tuple[object, bytes]]:
    return {k: (v, np.asarray(v).tobytes()) for k, v in params.items()}


def assert_untouched(params: dict[str, np.ndarray], before) -> None:
    assert list(params) == list(before)
    for k, (obj, data) in before.items():
        assert params[k] is obj, k
        assert np.asarray(params[k]).tobytes() == data, k


def assert_one_sentence(message: str, *needles: str) -> None:
    assert "\n" not in message, message
    assert message.count(". ") <= 1 and message.rstrip().endswith((".", ")")), message
    assert "dtype('" not in message and "ufunc" not in message, message  # no raw numpy errors
    for needle in needles:
        assert needle in message, (needle, message)


def refuse(exc_type, needles, fb=grads, params=None, **options) -> str:
    params = make_params() if params is None else params
    before = snapshot(params)
    with pytest.raises(exc_type) as info:
        gc.check(forward, fb, params, **options)
    assert_untouched(params, before)
    assert_one_sentence(str(info.value), *needles)
    return str(info.value)


# ----------------------------------------------------------------- option values (InputError)

BAD_VALUES = [
    ("sample", NAN), ("sample", INF), ("sample", -1), ("sample", 0), ("sample", 1.5),
    ("sample", "x"), ("sample", True), ("sample", {"typo": 2}), ("sample", {"W": "x"}),
    ("sample", {"W": NAN}),
    ("sample_seed", -1), ("sample_seed", "x"), ("sample_seed", 1.5), ("sample_seed", True),
    ("seed", -1), ("seed", "x"), ("seed", 1.5), ("seed", True),
    ("floor", "x"), ("floor", -1.0), ("floor", NAN), ("floor", INF), ("floor", True),
    ("tol", True), ("tol", INF), ("tol", NAN), ("tol", -1e-5), ("tol", 0), ("tol", "x"),
    ("tol", None),
    ("h", True), ("h", 0), ("h", -1e-5), ("h", NAN), ("h", INF), ("h", "x"),
    ("workers", True), ("workers", 0), ("workers", 1.5), ("workers", "2"),
    ("batch_size", True), ("batch_size", 0), ("batch_size", 2.5),
    ("promote", "no"), ("promote", 1), ("relative_step", "yes"), ("second_look", "no"),
    ("progress", "no"), ("diagnose", 0),
    ("loss_scale", INF), ("loss_scale", NAN), ("loss_scale", 0), ("loss_scale", True),
    ("loss_scale", "x"),
    ("method", "bogus"), ("method", None), ("measure", "x"), ("denominator", "x"),
    ("mode", "x"), ("reset", 5), ("executor", 5), ("context", 5),
]


@pytest.mark.parametrize("key,value", BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_bad_option_value_is_one_sentence(key, value) -> None:
    refuse(InputError, [f"{key}="], **{key: value})


@pytest.mark.parametrize("key,value", [("tol", True), ("floor", INF), ("tol", INF),
                                       ("h", True)])
def test_options_that_would_pass_a_wrong_gradient_are_refused(key, value) -> None:
    refuse(InputError, [f"{key}="], fb=wrong_grads, **{key: value})


NUMPY_SCALARS = [
    ("h", np.float32(1e-3)), ("h", np.float64(1e-5)), ("tol", np.float64(1e-5)),
    ("tol", np.float32(1e-5)), ("floor", np.float32(1e-8)), ("workers", np.int64(2)),
    ("sample", np.int64(3)), ("sample", np.float64(0.5)), ("sample_seed", np.int64(1)),
    ("seed", np.int32(0)), ("batch_size", np.int64(4)), ("loss_scale", np.float64(2.0)),
    ("promote", np.bool_(False)), ("second_look", np.bool_(True)),
]


@pytest.mark.parametrize("key,value", NUMPY_SCALARS,
                         ids=[f"{k}={v!r}" for k, v in NUMPY_SCALARS])
def test_numpy_scalars_are_accepted(key, value) -> None:
    params = make_params()
    before = snapshot(params)
    report = gc.check(forward, grads, params, progress=False, **{key: value})
    assert report.status == "pass", report
    assert_untouched(params, before)


def test_misspelt_option_name_is_a_type_error_that_suggests_the_name() -> None:
    msg = refuse(TypeError, ["tl", "tol"], tl=1e-5)
    assert "did you mean" in msg


def test_unknown_sample_key_names_the_tensors() -> None:
    msg = refuse(InputError, ["typo", "W", "b"], sample={"typo": 2})
    assert "sample" in msg


def test_overflowing_loss_scale_is_blamed_on_loss_scale() -> None:
    params = make_params()
    before = snapshot(params)
    with pytest.raises(InputError) as info:
        gc.check(lambda p: 1e10 * forward(p), lambda p: {k: 1e10 * v for k, v in
                                                         grads(p).items()},
                 params, loss_scale=1e300)
    assert_untouched(params, before)
    assert_one_sentence(str(info.value), "loss_scale=")
    assert "forward and the data" not in str(info.value)


# ----------------------------------------------------------------- what forward_backward returns

def test_misspelt_gradient_key_says_what_was_given() -> None:
    def fb(p):
        return {"W": 2 * p["W"], "bias": 3 * p["b"] ** 2}

    refuse(InputError, ["'b'", "'bias'"], fb=fb)


def test_grads_then_loss_is_named() -> None:
    refuse(InputError, ["(grads, loss)", "(loss, grads)"], fb=lambda p: (grads(p), forward(p)))


def test_loss_as_one_element_array_is_accepted() -> None:
    params = make_params()
    report = gc.check(forward, lambda p: (np.array([forward(p)]), grads(p)), params)
    assert report.status == "pass"


def test_swapped_functions_are_named() -> None:
    params = make_params()
    before = snapshot(params)
    with pytest.raises(InputError) as info:
        gc.check(grads, forward, params)
    assert_untouched(params, before)
    assert_one_sentence(str(info.value), "swapped")


# ----------------------------------------------------------------- params

def test_nan_in_params_names_the_entry() -> None:
    params = make_params()
    params["W"][1, 2] = NAN
    before = snapshot(params)
    with pytest.raises(GradcheckError) as info:
        gc.check(forward, grads, params)
    assert_untouched(params, before)
    assert_one_sentence(str(info.value), "W[1,2]")


def test_nan_in_an_unused_entry_is_not_modified_in_place() -> None:
    params = make_params()
    params["u"] = np.array([NAN, 1.0])
    before = snapshot(params)
    report = gc.check(forward, lambda p: {**grads(p), "u": np.zeros(2)}, params)
    assert report.status == "pass", report
    assert_untouched(params, before)


def test_longdouble_params_are_not_modified_in_place() -> None:
    params = make_params()
    params["u"] = np.array([1.0, 2.0], dtype=np.longdouble)
    before = snapshot(params)

    def f(p):
        return forward(p) + float(np.sum(p["u"] ** 2))

    report = gc.check(f, lambda p: {**grads(p), "u": 2 * p["u"]}, params)
    assert report.status == "pass", report
    assert_untouched(params, before)


@pytest.mark.parametrize("params,name", [([1.0, 2.0], "params"), ({"w": [1.0, 2.0]}, "w"),
                                         (1.5, "params"), ({"w": 0.5}, "w")])
def test_lists_and_floats_name_the_tensor(params, name) -> None:
    with pytest.raises(InputError) as info:
        gc.check(lambda p: 0.0, lambda p: p, params)
    assert_one_sentence(str(info.value), f"'{name}'", "np.asarray")


def test_masked_arrays_keep_their_data_and_mask() -> None:
    x = np.ma.masked_array(np.array([1.0, 2.0, 3.0]), mask=[False, True, False])
    data, mask = x.data.tobytes(), x.mask.copy()
    try:
        gc.check(lambda p: float(np.sum(p ** 2)), lambda p: 2 * p, x)
    except InputError as exc:
        assert_one_sentence(str(exc), "mask")
    assert x.data.tobytes() == data
    assert np.array_equal(x.mask, mask)


@pytest.mark.parametrize("edit", ["pop", "replace", "add"])
def test_forward_that_edits_the_dict_then_raises_loses_nothing(edit) -> None:
    def bad(p):
        if edit == "pop":
            p.pop("b")
        elif edit == "replace":
            p["b"] = np.zeros(3)
        else:
            p["extra"] = np.zeros(1)
        raise RuntimeError("after editing the dict")

    params = make_params()
    before = snapshot(params)
    with pytest.raises(ForwardError):
        gc.check(bad, grads, params)
    assert_untouched(params, before)


def test_deep_nesting_is_one_sentence() -> None:
    x = np.array([1.0, 2.0])
    params: object = x
    for _ in range(1200):
        params = [params]
    with pytest.raises(InputError) as info:
        gc.check(lambda p: 0.0, lambda p: p, params)
    assert_one_sentence(str(info.value), "nest")
    assert x.tobytes() == np.array([1.0, 2.0]).tobytes()


# ----------------------------------------------------------------- workers

def test_workers_with_a_closure_and_a_lambda() -> None:
    import time

    scale = 3.0
    params = make_params()

    def f(p):  # a closure over `scale`, slow enough (~1.5 s serially) to use the workers
        time.sleep(0.07)
        return scale * forward(p)

    report = gc.check(f, lambda p: {k: scale * v for k, v in grads(p).items()}, params,
                      workers=2, progress=False)
    assert report.status == "pass", report
    assert not any("serially" in n for n in report.notes), report.notes


def test_a_short_check_with_workers_runs_serially_and_says_so() -> None:
    report = gc.check(forward, grads, make_params(), workers=2, progress=False)
    assert report.status == "pass"
    assert any("serially" in n for n in report.notes), report.notes
