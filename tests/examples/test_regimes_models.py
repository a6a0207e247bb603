"""The regime models' analytic gradients are exact (checked in float64 against a careful
estimate: central differences at several steps, the best agreement per entry)."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.examples import regimes as R


def careful_error(model: R.RegimeModel) -> float:
    """Worst over entries (relative, floor 1e-3 of the RMS gradient) of the best
    disagreement over steps 1e-3 … 1e-9 (a kink within 1e-7 needs the small ones)."""
    _, grads = model.forward_backward(model.params)
    floor = 1e-3 * np.sqrt(np.mean(np.concatenate([g.ravel() for g in grads.values()]) ** 2))
    worst = 0.0
    for name, v in model.params.items():
        a = grads[name].reshape(-1)
        flat = v.reshape(-1)
        for i in range(flat.size):
            best = np.inf
            for h in (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9):
                old = flat[i]
                flat[i] = old + h
                fp = model.forward(model.params)
                flat[i] = old - h
                fm = model.forward(model.params)
                flat[i] = old
                n = (fp - fm) / (2 * h)
                best = min(best, abs(n - a[i]) / max(abs(a[i]), abs(n), floor))
            worst = max(worst, best)
    return worst


@pytest.mark.parametrize("nonlinearity", R.NONLINEARITIES)
@pytest.mark.parametrize("scale,seed", [(1.0, 0), (0.1, 1)])
def test_float64_gradient_is_exact(nonlinearity: str, scale: float, seed: int) -> None:
    model = R.build(R.Regime(scale, nonlinearity, "f64", 1.0, seed))
    assert careful_error(model) < 1e-6


@pytest.mark.parametrize("precision", R.PRECISIONS)
def test_precision_paths_have_their_dtypes(precision: str) -> None:
    m = R.build(R.Regime(0.1, "tanh", precision, 1.0, 0))
    loss, grads = m.forward_backward(m.params)
    want_param = {"f64": np.float64, "f32": np.float32, "f32in": np.float64,
                  "f16": np.float16}[precision]
    want_grad = {"f64": np.float64, "f32": np.float32, "f32in": np.float32,
                 "f16": np.float32}[precision]
    assert all(v.dtype == want_param for v in m.params.values())
    assert all(g.dtype == want_grad for g in grads.values())
    assert (type(m.forward(m.params)) is float) == (precision in ("f64", "f32in"))


@pytest.mark.parametrize("size", [1e-3, 1e-6])
def test_bug_has_the_relative_size_asked_for(size: float) -> None:
    regime = R.Regime(1e-2, "relu", "f64", 1.0, 2)
    good = R.build(regime).forward_backward
    bad = R.build(regime, size)
    g, b = good(bad.params)[1], bad.forward_backward(bad.params)[1]
    diff = np.sqrt(sum(np.sum((g[k] - b[k]) ** 2) for k in g))
    norm = np.sqrt(sum(np.sum(g[k] ** 2) for k in g))
    assert diff / norm == pytest.approx(size, rel=1e-6)
    assert [k for k in g if not np.array_equal(g[k], b[k])] == [bad.bug_tensor]


@pytest.mark.parametrize("size", [1e-3, 1e-6])
@pytest.mark.parametrize("seed", range(4))
def test_a_scattered_bug_has_the_size_asked_for_and_is_nearly_orthogonal(size: float,
                                                                        seed: int) -> None:
    regime = R.Regime(1e-2, "tanh", "f64", 1.0, seed)
    good = R.build(regime).forward_backward
    bad = R.build(regime, size, pattern="scattered")
    g, b = good(bad.params)[1], bad.forward_backward(bad.params)[1]
    diff = np.sqrt(sum(np.sum((g[k] - b[k]) ** 2) for k in g))
    norm = np.sqrt(sum(np.sum(g[k] ** 2) for k in g))
    assert diff / norm == pytest.approx(size, rel=1e-6)
    assert [k for k in g if not np.array_equal(g[k], b[k])] == [bad.bug_tensor]
    t = bad.bug_tensor
    e = (b[t] - g[t]).ravel()
    cosine = abs(e @ g[t].ravel()) / (np.linalg.norm(e) * np.linalg.norm(g[t]))
    assert cosine < 0.9   # not a scale error (for 3 entries, b2, only loosely orthogonal)


def test_an_unknown_bug_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="pattern"):
        R.build(R.Regime(), 1e-3, pattern="diagonal")
