"""Large params: directional memory within one parameter-sized buffer, writes still caught.

Above ``snapshot.COPY_LIMIT`` (16 MiB) the check keeps no copy of the params or of the
gradient; numpy reports its allocations to ``tracemalloc``, so the peak of a check's
allocations is measured here directly (the benchmark measures resident memory).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import InputError
from gradcheck.params import snapshot

BYTES = 24_000_000     # of params: above the copy limit (16 MiB)
N = BYTES // 8
CHUNK = 1 << 13


def model(n: int, dtype, seed: int = 0):
    """``f(w) = Σ c·w + ½Σw²`` evaluated in chunks (no N-sized temporaries)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.5, 1.5, n).astype(dtype)
    w = rng.uniform(0.5, 1.5, n).astype(dtype)
    grad = (c.astype(np.float64) + w).astype(dtype)

    def forward(p):
        x = p["w"]
        return math.fsum(float(np.dot(c[i:i + CHUNK].astype(x.dtype), x[i:i + CHUNK]))
                         + 0.5 * float(np.dot(x[i:i + CHUNK], x[i:i + CHUNK]))
                         for i in range(0, n, CHUNK))

    return forward, w, grad


def peak_of(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype,budget", [(np.float64, 1.2), (np.float32, 2.2)])
@pytest.mark.parametrize("bad", [None, 1_234_567])
def test_directional_peak_is_one_buffer_and_a_bug_is_still_located(dtype, budget, bad) -> None:
    forward, w, grad = model(BYTES // np.dtype(dtype).itemsize, dtype)
    if bad is not None:
        grad[bad] += 5.0
    before = w.copy()
    out = {}

    def run():
        out["report"] = gc.check(forward, lambda p: {"w": grad}, {"w": w},
                                 mode="directional", progress=False)

    peak = peak_of(run)
    report = out["report"]
    assert peak <= budget * w.nbytes, f"{peak / w.nbytes:.2f}× the parameter bytes"
    assert np.array_equal(w.view(np.uint8), before.view(np.uint8))
    t = report.tensor("w")
    if bad is None:
        # (float32: the gradient's own rounding summed over 3·10⁶ entries hides an error of
        # √ε32 on one entry; the test resolves errors of norm √ε32·‖g‖ instead)
        assert report.status == "pass"
    else:
        assert report.status == "fail"
        assert t.flat_index[t.status == 1].tolist() == [bad]


def test_sampled_elementwise_allocates_for_the_sample_only() -> None:
    forward, w, grad = model(N, np.float64)

    def run():
        gc.check(forward, lambda p: {"w": grad}, {"w": w}, sample=8, progress=False)

    run()                                   # imports and caches of a first check
    peak = peak_of(run)
    assert peak <= 2**20 + 0.02 * w.nbytes  # chunk temporaries, not a multiple of N


def test_a_forward_writing_into_large_params_is_named() -> None:
    forward, w, grad = model(N, np.float64)

    def writing(p):
        p["w"][-1] += 1.0   # far from any single entry the check moves
        return forward(p)

    with pytest.raises(InputError, match="forward modified the parameter") as caught:
        gc.check(writing, lambda p: {"w": grad}, {"w": w}, mode="directional",
                 progress=False)
    assert "could not be undone" in " ".join(getattr(caught.value, "__notes__", []))


def test_a_gradient_overwritten_by_the_forward_is_named_when_large() -> None:
    forward, w, grad = model(N, np.float64)
    buffer = grad.copy()

    def forward_backward(p):
        buffer[...] = grad
        return {"w": buffer}

    def scribbling(p):
        buffer[0] = 0.0     # a workspace shared with the backward
        return forward(p)

    with pytest.raises(InputError, match="share a buffer"):
        gc.check(scribbling, forward_backward, {"w": w}, mode="directional", progress=False)


def test_a_gradient_that_is_the_parameter_itself_is_copied() -> None:
    """``∇(½Σw²) = w``: returning ``w`` itself must not let the moves change the gradient."""
    w = np.random.default_rng(3).normal(size=N)

    def forward(p):
        x = p["w"]
        return math.fsum(0.5 * float(np.dot(x[i:i + CHUNK], x[i:i + CHUNK]))
                         for i in range(0, N, CHUNK))

    report = gc.check(forward, lambda p: {"w": p["w"]}, {"w": w}, mode="directional",
                      progress=False)
    assert report.status == "pass"


def test_the_limit_is_what_switches_copies_to_fingerprints() -> None:
    small = [np.zeros(10)]
    assert snapshot.take(small).exact
    assert not snapshot.take(small, copy_limit=0).exact
