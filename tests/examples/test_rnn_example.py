"""Tests of the RNN example (``gradcheck.examples.rnn`` / ``.text``), independent of the checker."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.examples import rnn, text
from gradcheck.examples.rnn import BUGS, PARAM_NAMES

REQUIRED_BUGS = {"transpose", "sign", "no_dh_next", "tanh_prime", "bias_one_step", "batch_scale"}

# Problems on which every property is checked: the default one, a small untrained one,
# and an odd-sized one with another seed.
CONFIGS = [
    {},
    {"hidden": 5, "seq_len": 4, "batch": 2, "train_steps": 0, "seed": 3},
    {"hidden": 9, "seq_len": 7, "batch": 3, "train_steps": 5, "seed": 11},
]
CONFIG_IDS = ["default", "small-untrained", "odd-seed11"]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Norm-wise relative error ``||a - b|| / (||a|| + ||b||)`` (0 if both are 0)."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def central_fd(f, params: dict, h: float = 1e-6) -> dict:
    """Central finite differences ``(f(p + h e_i) - f(p - h e_i)) / 2h`` for every entry."""
    grads = {}
    for name, value in params.items():
        work = dict(params)
        arr = value.copy()
        work[name] = arr
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            orig = arr[idx]
            arr[idx] = orig + h
            fp = f(work)
            arr[idx] = orig - h
            fm = f(work)
            arr[idx] = orig
            g[idx] = (fp - fm) / (2 * h)
        grads[name] = g
    return grads


@pytest.fixture(scope="module", params=CONFIGS, ids=CONFIG_IDS)
def problem(request) -> rnn.RNNProblem:
    return rnn.make_problem(**request.param)


@pytest.fixture(scope="module")
def fd_grads(problem) -> dict:
    return central_fd(problem.forward, problem.params)


# ------------------------------------------------------------------------------------------
# text.py
# ------------------------------------------------------------------------------------------


def test_vocab_small_sorted_and_covers_text():
    assert 20 <= text.VOCAB_SIZE <= 30
    assert list(text.VOCAB) == sorted(set(text.TEXT))
    assert 300 <= len(text.TEXT)
    assert text.TEXT == text.TEXT.lower()


def test_encode_decode_roundtrip_and_unknown_char():
    ids = text.encode(text.TEXT[:50])
    assert ids.dtype == np.int64
    assert text.decode(ids) == text.TEXT[:50]
    with pytest.raises(ValueError, match="vocabulary"):
        text.encode("A!")


def test_one_hot():
    ids = np.array([[0, 2], [1, 1]])
    oh = text.one_hot(ids, 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float64
    np.testing.assert_array_equal(oh.argmax(-1), ids)
    np.testing.assert_array_equal(oh.sum(-1), 1.0)
    with pytest.raises(ValueError):
        text.one_hot(np.array([3]), 3)


def test_fixed_batch_shapes_targets_and_determinism():
    x, y = text.fixed_batch(5, 12, seed=7)
    assert x.shape == (5, 12, text.VOCAB_SIZE) and x.dtype == np.float64
    assert y.shape == (5, 12) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(-1), 1.0)
    # y[:, t] is the character after x[:, t], i.e. the input at t + 1.
    np.testing.assert_array_equal(x.argmax(-1)[:, 1:], y[:, :-1])
    x2, y2 = text.fixed_batch(5, 12, seed=7)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = text.fixed_batch(5, 12, seed=8)
    assert not np.array_equal(x, x3)


def test_fixed_batch_wraps_for_long_sequences():
    x, y = text.fixed_batch(2, len(text.TEXT) + 5, seed=0)
    assert x.shape[1] == len(text.TEXT) + 5
    np.testing.assert_array_equal(x.argmax(-1)[:, 1:], y[:, :-1])


# ------------------------------------------------------------------------------------------
# Model: correct gradient, dtypes, shapes
# ------------------------------------------------------------------------------------------


def test_default_problem_size():
    p = rnn.make_problem()
    assert 500 <= p.n_params <= 1500
    assert p.params["W"].shape[0] == p.params["W"].shape[1]
    assert p.params["U"].shape == (16, text.VOCAB_SIZE)
    assert p.params["V"].shape == (text.VOCAB_SIZE, 16)
    assert p.params["b"].shape == (16,) and p.params["c"].shape == (text.VOCAB_SIZE,)
    assert p.x.shape == (4, 10, text.VOCAB_SIZE) and p.y.shape == (4, 10) and p.h0.shape == (4, 16)
    assert p.bug is None and p.expected_bad == frozenset()


def test_correct_gradient_matches_central_fd(problem, fd_grads):
    _, grads = problem.forward_backward(problem.params)
    assert set(grads) == set(PARAM_NAMES)
    for name in PARAM_NAMES:
        assert grads[name].shape == problem.params[name].shape
        assert rel_err(grads[name], fd_grads[name]) < 1e-6, name


def test_forward_backward_loss_equals_forward(problem):
    loss, _ = problem.forward_backward(problem.params)
    assert isinstance(loss, float)
    assert loss == problem.forward(problem.params)
    assert loss == rnn.forward_loss(problem.h0, problem.x, problem.y, problem.params)


def test_forward_is_mean_over_batch_of_per_sequence_sums(problem):
    per_seq = [
        rnn.forward_loss(
            problem.h0[i : i + 1], problem.x[i : i + 1], problem.y[i : i + 1], problem.params
        )
        for i in range(problem.y.shape[0])
    ]
    assert problem.forward(problem.params) == pytest.approx(np.mean(per_seq), rel=1e-13)


def test_float32_forward_runs_in_float32():
    p = rnn.make_problem()
    p32 = {k: v.astype(np.float32) for k, v in p.params.items()}
    arr = rnn._loss_array(p.h0, p.x, p.y, p32)
    assert arr.dtype == np.float32
    out = p.forward(p32)
    assert type(out) is float
    ref = p.forward(p.params)
    assert out == pytest.approx(ref, rel=1e-5)
    assert out != ref  # really computed in single precision
    _, g32 = p.forward_backward(p32)
    assert all(g32[k].dtype == np.float32 for k in PARAM_NAMES)


def test_complex_step_matches_gradient(problem):
    """Im f(p + i h e_k) / h equals the analytic gradient (complex-analytic forward)."""
    eps = 1e-20
    _, grads = problem.forward_backward(problem.params)
    cparams = {k: v.astype(np.complex128) for k, v in problem.params.items()}
    base = problem.forward(cparams)
    assert type(base) is complex
    assert base.real == pytest.approx(problem.forward(problem.params), rel=1e-14)
    assert base.imag == 0.0
    rng = np.random.default_rng(0)
    for name in PARAM_NAMES:
        arr = cparams[name]
        flat_idx = rng.choice(arr.size, size=min(arr.size, 8), replace=False)
        for i in flat_idx:
            idx = np.unravel_index(i, arr.shape)
            arr[idx] += 1j * eps
            cs = problem.forward(cparams).imag / eps
            arr[idx] -= 1j * eps
            assert cs == pytest.approx(grads[name][idx], rel=1e-10, abs=1e-13), (name, idx)


def test_complex_step_full_gradient_default():
    p = rnn.make_problem()
    _, grads = p.forward_backward(p.params)
    stacked = {}
    n = p.n_params
    # All complex steps at once through the batched forward: K = n_params.
    offset = 0
    for name in PARAM_NAMES:
        a = p.params[name].astype(np.complex128)
        block = np.broadcast_to(a, (n,) + a.shape).copy()
        block.reshape(n, -1)[offset + np.arange(a.size), np.arange(a.size)] += 1e-20j
        stacked[name] = block
        offset += a.size
    cs = p.batched_forward(stacked).imag / 1e-20
    flat = np.concatenate([grads[k].ravel() for k in PARAM_NAMES])
    assert rel_err(cs, flat) < 1e-12


# ------------------------------------------------------------------------------------------
# Bugs
# ------------------------------------------------------------------------------------------


def test_bug_catalogue():
    assert REQUIRED_BUGS <= set(BUGS)
    for name, bug in BUGS.items():
        assert bug.name == name
        assert isinstance(bug.affects, frozenset) and bug.affects
        assert bug.affects <= set(PARAM_NAMES)
        assert bug.description.endswith(".") and bug.description.count(". ") == 0
    assert BUGS["transpose"].affects == {"W"}
    assert len(BUGS["sign"].affects) == 1
    assert BUGS["no_dh_next"].affects == {"U", "W", "b"}
    assert BUGS["tanh_prime"].affects == {"U", "W", "b"}
    assert BUGS["bias_one_step"].affects in ({"b"}, {"c"})
    with pytest.raises(AttributeError):
        BUGS["sign"].name = "x"  # frozen


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_bug_changes_exactly_its_tensors(problem, bug):
    loss, good = problem.forward_backward(problem.params)
    bad_loss, bad = rnn.forward_backward(problem.h0, problem.x, problem.y, problem.params, bug=bug)
    assert bad_loss == loss
    for name in PARAM_NAMES:
        assert bad[name].shape == good[name].shape
        if name in BUGS[bug].affects:
            assert rel_err(bad[name], good[name]) > 1e-2, name
        else:
            np.testing.assert_array_equal(bad[name], good[name], err_msg=name)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_problem_with_bug(bug):
    p = rnn.make_problem(bug)
    assert p.bug == bug
    assert p.expected_bad == BUGS[bug].affects
    # Trained with the correct gradient: same point as the bug-free problem.
    ref = rnn.make_problem()
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(p.params[name], ref.params[name])
    _, via_problem = p.forward_backward(p.params)
    _, via_factory = rnn.make_forward_backward(bug)(p.h0, p.x, p.y, p.params)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(via_problem[name], via_factory[name])


def test_bug_scales_are_what_they_claim():
    p = rnn.make_problem()
    _, good = p.forward_backward(p.params)

    def grads(bug):
        return rnn.forward_backward(p.h0, p.x, p.y, p.params, bug=bug)[1]

    np.testing.assert_allclose(grads("sign")["V"], -good["V"], rtol=1e-13)
    batch = p.y.shape[0]
    np.testing.assert_allclose(grads("batch_scale")["V"], batch * good["V"], rtol=1e-12)
    np.testing.assert_allclose(grads("batch_scale")["c"], batch * good["c"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads("transpose")["W"], good["W"].T, rtol=1e-13)


@pytest.mark.parametrize(
    "call",
    [
        lambda: rnn.make_problem("nope"),
        lambda: rnn.make_forward_backward("nope"),
        lambda: rnn.forward_backward(*_small_args(), bug="nope"),
        lambda: rnn.RNNProblem(*_small_args(), bug="nope"),
    ],
)
def test_unknown_bug_raises_listing_names(call):
    with pytest.raises(ValueError) as info:
        call()
    for name in BUGS:
        assert name in str(info.value)


def _small_args():
    p = rnn.make_problem(hidden=3, seq_len=2, batch=1, train_steps=0)
    return p.params, p.h0, p.x, p.y


def test_forward_backward_positional_order():
    params, h0, x, y = _small_args()
    loss, _ = rnn.forward_backward(h0, x, y, params)
    assert loss == rnn.forward_loss(h0, x, y, params)


# ------------------------------------------------------------------------------------------
# Batched forward, determinism, training
# ------------------------------------------------------------------------------------------


def test_batched_forward_equals_loop(problem):
    rng = np.random.default_rng(1)
    K = 6
    stacked = {
        k: v[None] + 0.05 * rng.standard_normal((K,) + v.shape) for k, v in problem.params.items()
    }
    out = problem.batched_forward(stacked)
    assert out.shape == (K,)
    loop = np.array([problem.forward({k: v[i] for k, v in stacked.items()}) for i in range(K)])
    np.testing.assert_allclose(out, loop, rtol=1e-13, atol=0)


def test_batched_forward_k1_and_float32():
    p = rnn.make_problem()
    one = p.batched_forward({k: v[None] for k, v in p.params.items()})
    assert one[0] == pytest.approx(p.forward(p.params), rel=1e-14)
    st32 = {k: np.repeat(v[None], 3, 0).astype(np.float32) for k, v in p.params.items()}
    out32 = p.batched_forward(st32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, p.forward(p.params), rtol=1e-5)


def test_batched_forward_rejects_bad_shapes():
    p = rnn.make_problem()
    st = {k: np.repeat(v[None], 3, 0) for k, v in p.params.items()}
    st["b"] = st["b"][:2]
    with pytest.raises(ValueError, match="leading axis"):
        p.batched_forward(st)
    st = {k: np.repeat(v[None], 3, 0) for k, v in p.params.items()}
    st["W"] = st["W"][:, :, :3]
    with pytest.raises(ValueError, match="'W'"):
        p.batched_forward(st)


def test_batched_forward_is_not_a_python_loop(monkeypatch):
    p = rnn.make_problem()
    calls = []
    real_tanh = np.tanh

    def counting_tanh(a):
        calls.append(1)
        return real_tanh(a)

    monkeypatch.setattr(rnn.np, "tanh", counting_tanh)
    p.batched_forward({k: np.repeat(v[None], 50, 0) for k, v in p.params.items()})
    assert len(calls) == p.y.shape[1]  # one tanh per time step, independent of K


def test_determinism():
    a, b = rnn.make_problem(), rnn.make_problem()
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    for attr in ("h0", "x", "y"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert a.forward(a.params) == b.forward(b.params) == a.forward(a.params)
    c = rnn.make_problem(seed=1)
    assert not np.array_equal(a.params["W"], c.params["W"])
    np.testing.assert_array_equal(rnn.init_params(27, 8, 5)["U"], rnn.init_params(27, 8, 5)["U"])


def test_init_params():
    p = rnn.init_params(text.VOCAB_SIZE, 7, seed=0)
    assert set(p) == set(PARAM_NAMES)
    assert all(v.dtype == np.float64 for v in p.values())
    assert p["U"].shape == (7, text.VOCAB_SIZE) and p["W"].shape == (7, 7)
    assert 0.05 < p["U"].std() < 0.2


def test_train_decreases_loss_and_does_not_mutate():
    p0 = rnn.init_params(text.VOCAB_SIZE, 16, seed=0)
    copy = {k: v.copy() for k, v in p0.items()}
    p1 = rnn.train(p0, 30, 0.05, 4, 10, 1)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(p0[name], copy[name])
        assert p1[name] is not p0[name]
    x, y = text.fixed_batch(4, 10, 1)  # first training batch
    h0 = np.zeros((4, 16))
    assert rnn.forward_loss(h0, x, y, p1) < rnn.forward_loss(h0, x, y, p0) - 1.0
    p2 = rnn.train(p0, 30, 0.05, 4, 10, 1)
    np.testing.assert_array_equal(p1["W"], p2["W"])


@pytest.mark.parametrize("hidden", [40, 130])
def test_larger_sizes(hidden):
    p = rnn.make_problem(hidden=hidden, train_steps=2)
    assert p.n_params == 2 * hidden * text.VOCAB_SIZE + hidden * hidden + hidden + text.VOCAB_SIZE
    loss, grads = p.forward_backward(p.params)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())


# ------------------------------------------------------------------------------------------
# Torch twin
# ------------------------------------------------------------------------------------------


def test_torch_twin_same_loss_and_grads(problem):
    torch = pytest.importorskip("torch")
    fn, tensors = rnn.torch_twin(problem)
    assert len(tensors) == 5
    assert all(t.dtype == torch.float64 and t.requires_grad for t in tensors)
    loss_t = fn(*tensors)
    loss, grads = problem.forward_backward(problem.params)
    assert float(loss_t.detach()) == pytest.approx(loss, rel=1e-13)
    auto = torch.autograd.grad(loss_t, tensors)
    for name, g in zip(PARAM_NAMES, auto):
        assert g.shape == tuple(problem.params[name].shape)
        np.testing.assert_allclose(g.numpy(), grads[name], rtol=1e-10, atol=1e-13, err_msg=name)


def test_torch_twin_passes_torch_gradcheck():
    torch = pytest.importorskip("torch")
    p = rnn.make_problem(hidden=4, seq_len=3, batch=2, train_steps=3)
    fn, tensors = rnn.torch_twin(p)
    assert torch.autograd.gradcheck(fn, tensors)
