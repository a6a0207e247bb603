"""batched_forward=: all perturbations evaluated in stacks, results as the serial check."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate.batched import BatchedEvaluator
from gradcheck.evaluate.serial import SerialEvaluator
from gradcheck.examples import rnn

A = np.random.default_rng(0).normal(size=(6, 4))


def forward(p):
    """f(W, b) = Σ tanh(A W + b)² / 2 + Σ W⁴ / 4."""
    z = np.tanh(A @ p["W"] + p["b"])
    return float(0.5 * np.sum(z**2) + 0.25 * np.sum(p["W"] ** 4))


def batched(p):
    """The same loss for a stack: W (K, 4, 3), b (K, 3) -> (K,)."""
    z = np.tanh(np.einsum("ij,kjl->kil", A, p["W"]) + p["b"][:, None, :])
    return 0.5 * np.sum(z**2, axis=(1, 2)) + 0.25 * np.sum(p["W"] ** 4, axis=(1, 2))


def gradient(p):
    z = np.tanh(A @ p["W"] + p["b"])
    dz = z * (1 - z**2)
    return {"W": A.T @ dz + p["W"] ** 3, "b": dz.sum(axis=0)}


def params():
    rng = np.random.default_rng(2)
    return {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}


@pytest.mark.parametrize("batch_size", [None, 1, 5])
def test_batched_matches_serial(batch_size) -> None:
    p = params()
    serial = gc.check(forward, gradient, p)
    fast = gc.check(forward, gradient, p, batched_forward=batched, batch_size=batch_size)
    assert fast.status == serial.status == "pass"
    assert fast.evaluations == serial.evaluations
    for s, f in zip(serial.tensors, fast.tensors):
        np.testing.assert_allclose(f.numeric, s.numeric, rtol=4e-9)  # rounding / h


def test_entries_and_directions_equal_a_loop_of_forwards() -> None:
    p = params()
    arrays = [p["W"], p["b"]]
    serial = SerialEvaluator(forward, p, arrays, ["W", "b"])
    batch = BatchedEvaluator(batched, p, arrays, ["W", "b"], batch_size=4)
    idx = np.array([0, 5, 11])
    values = p["W"].reshape(-1)[idx, None] + np.array([[1e-3, -1e-3, 0.5]])
    np.testing.assert_allclose(batch.entries(0, idx, values), serial.entries(0, idx, values),
                               rtol=1e-13)
    moves = [(1, np.arange(3), p["b"] + 0.1), (0, np.array([2, 3]), np.array([1.0, 2.0])),
             (0, np.arange(12), p["W"].reshape(-1) * 2)]
    np.testing.assert_allclose(batch.directions(moves), serial.directions(moves), rtol=1e-13)
    assert batch.count == serial.count == 3 * 3 + 3
    assert np.array_equal(p["W"], params()["W"]) and np.array_equal(p["b"], params()["b"])


def test_rnn_hand_vectorised_forward_finds_the_same_bug() -> None:
    problem = rnn.make_problem("bias_one_step", hidden=8)
    serial = gc.check(problem.forward, problem.forward_backward, problem.params)
    fast = gc.check(problem.forward, problem.forward_backward, problem.params,
                    batched_forward=problem.batched_forward)
    assert fast.failing_tensors == serial.failing_tensors == ["b"]
    for s, f in zip(serial.tensors, fast.tensors):
        assert np.array_equal(s.status, f.status)
        np.testing.assert_allclose(f.numeric, s.numeric, rtol=4e-7, atol=4e-12)  # rounding / h


def test_batched_directional_mode() -> None:
    problem = rnn.make_problem("sign", hidden=8)
    report = gc.check(problem.forward, problem.forward_backward, problem.params,
                      mode="directional", batched_forward=problem.batched_forward)
    assert report.failing_tensors == ["V"]


def test_batched_forward_with_the_wrong_output_shape_says_what_to_return() -> None:
    with pytest.raises(InputError, match=r"one loss per set, shape \("):
        gc.check(forward, gradient, params(), batched_forward=lambda p: batched(p).sum())


def test_batched_forward_that_raises_is_the_forwards_error_and_params_are_restored() -> None:
    p = params()
    before = {k: v.copy() for k, v in p.items()}

    def broken(q):
        if q["W"].shape[0] > 1:
            raise RuntimeError("boom")
        return batched(q)

    with pytest.raises(ForwardError, match="batched_forward raised RuntimeError: boom"):
        gc.check(forward, gradient, p, batched_forward=broken)
    assert all(np.array_equal(before[k], p[k]) for k in p)


def test_bad_batch_options() -> None:
    with pytest.raises(InputError, match="batch_size"):
        gc.check(forward, gradient, params(), batched_forward=batched, batch_size=0)
    with pytest.raises(InputError, match="not callable"):
        gc.check(forward, gradient, params(), batched_forward=3)


def test_automatic_batch_size_is_timed_and_kept_per_leaf() -> None:
    from gradcheck.evaluate import batched as mod

    rng = np.random.default_rng(5)
    p = {"W": rng.normal(size=(40, 30)), "b": rng.normal(size=3)}
    arrays = [p["W"], p["b"]]

    def stacked(q):
        return np.sum(q["W"] ** 2, axis=(1, 2)) + np.sum(q["b"], axis=1)

    fast = BatchedEvaluator(stacked, p, arrays, ["W", "b"])
    serial = SerialEvaluator(lambda q: float(np.sum(q["W"] ** 2) + np.sum(q["b"])), p, arrays,
                             ["W", "b"])
    idx = np.arange(1200)
    values = p["W"].reshape(-1)[idx, None] + np.array([[1e-3, -1e-3]])
    np.testing.assert_allclose(fast.entries(0, idx, values), serial.entries(0, idx, values),
                               rtol=1e-13)
    assert fast.tuned[0] in mod.CANDIDATES        # 2400 rows: enough to time every size
    assert 1 not in fast.tuned                    # b was never moved
    few = np.arange(3)
    fast.entries(1, few, p["b"][few, None] + np.array([[1e-3, -1e-3]]))
    assert 1 not in fast.tuned                    # 6 rows: too few to time anything
    assert np.array_equal(p["W"], np.random.default_rng(5).normal(size=(40, 30)))


def test_stacked_rnn_products_equal_numpys() -> None:
    """The RNN demo's x @ Mᵀ for a stack of matrices that differ in a few entries (one BLAS
    product with the first plus corrections) equals numpy's stacked matmul."""
    from gradcheck.examples.rnn import _times_transposed

    rng = np.random.default_rng(1)
    M = np.repeat(rng.normal(size=(7, 5))[None], 6, axis=0)
    M[2, 3, 4] += 1e-5
    M[0, 1, 1] -= 2e-5                      # the first matrix is moved too
    x = rng.normal(size=(6, 4, 5))
    expected = x @ np.swapaxes(M, -1, -2)
    np.testing.assert_allclose(_times_transposed(M)(x), expected, rtol=1e-13, atol=1e-15)
    shared = np.broadcast_to(M[3], M.shape)
    np.testing.assert_allclose(_times_transposed(shared)(x),
                               x @ np.swapaxes(shared, -1, -2), rtol=1e-13)
    dense = rng.normal(size=(6, 7, 5))      # matrices with nothing in common
    np.testing.assert_allclose(_times_transposed(dense)(x), x @ np.swapaxes(dense, -1, -2),
                               rtol=1e-13)
