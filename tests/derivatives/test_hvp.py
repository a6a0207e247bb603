"""check_hvp: Hessian-vector products against central differences of the gradient."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck.derivatives.hvp import check_hvp, symmetry_test


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def swish_problem(dtype=np.float64, bug: str | None = None):
    """f = Σ x·σ(x): f' = s + x·s(1−s), f'' = s(1−s)(2 + x(1−2s)). Bug 'detach' treats s as a
    constant in the double backward (what ``.detach()`` in a backward does): s(1−s) only."""
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(dtype)

    def forward_backward(p):
        s = sigmoid(p)
        return float(np.sum(p * s)), (s + p * s * (1 - s)).astype(p.dtype)

    def hvp(p, v):
        s = sigmoid(p)
        d2 = s * (1 - s) if bug == "detach" else s * (1 - s) * (2 + p * (1 - 2 * s))
        return (d2 * v).astype(p.dtype)

    return forward_backward, hvp, x


def quadratic_problem(bug: tuple[int, int] | None = None):
    """f = ½ xᵀAx + Σ sin(y)·x[:3]² with A symmetric; bug adds δ to H[i, j] only (not H[j, i])."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    a = a + a.T
    params = {"x": rng.normal(size=4), "y": rng.normal(size=3)}

    def forward_backward(p):
        x, y = p["x"], p["y"]
        gx = a @ x
        gx[:3] += 2 * x[:3] * np.sin(y)
        return {"x": gx, "y": np.cos(y) * x[:3] ** 2}

    def hvp(p, v):
        x, y, vx, vy = p["x"], p["y"], v["x"], v["y"]
        hx = a @ vx
        hx[:3] += 2 * np.sin(y) * vx[:3] + 2 * x[:3] * np.cos(y) * vy
        hy = 2 * x[:3] * np.cos(y) * vx[:3] - np.sin(y) * x[:3] ** 2 * vy
        if bug is not None:
            i, j = bug
            hx[i] += 0.3 * vx[j]
        return {"x": hx, "y": hy}

    return forward_backward, hvp, params


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_swish_correct_passes_and_detached_backward_fails(mode, dtype):
    fb, hvp, x = swish_problem(dtype)
    assert check_hvp(fb, hvp, x, mode=mode, progress=False).status == "pass"
    fb, hvp, x = swish_problem(dtype, "detach")
    report = check_hvp(fb, hvp, x, mode=mode, progress=False)
    assert report.status == "fail"
    assert report.tensors[0].failed >= 1


def test_float32_gradient_without_promotion_is_not_a_false_alarm():
    """A float32 forward_backward that ignores float64 inputs: numerics in float32."""
    fb, hvp, x = swish_problem(np.float32)

    def fb32(p):
        loss, g = fb(np.asarray(p, np.float32))
        return loss, g

    report = check_hvp(fb32, lambda p, v: hvp(np.asarray(p, np.float32), v), x, progress=False)
    assert report.status in ("pass", "inconclusive")


def test_every_entry_checked_with_one_hvp_call_in_elementwise_mode():
    fb, hvp, params = quadratic_problem()
    calls = {"n": 0}

    def counted(p, v):
        calls["n"] += 1
        return hvp(p, v)

    report = check_hvp(fb, counted, params, progress=False)
    assert report.status == "pass"
    assert report.counts["checked"] == 7
    assert calls["n"] == 2          # H·v for the check, H·w for the symmetry test
    assert "symmetric" in " ".join(report.notes)


@pytest.mark.parametrize("row,col", [(0, 2), (3, 1), (2, 2)])
def test_wrong_hessian_entry_is_named_by_row_and_column(row, col):
    fb, hvp, params = quadratic_problem((row, col))
    report = check_hvp(fb, hvp, params, progress=False)
    assert report.status == "fail"
    failing = [e for e in report.entries("FAIL")]
    assert [e.name for e in failing] == [f"x[{row}]"]
    assert f"column x[{col}]" in failing[0].note
    assert any(f"∂x[{row}]∂x[{col}]" in n for n in report.notes)


def test_asymmetric_hvp_fails_the_symmetry_test():
    fb, hvp, params = quadratic_problem((0, 2))
    report = check_hvp(fb, hvp, params, progress=False)
    assert any("not symmetric" in w for w in report.warnings)


@pytest.mark.parametrize(("delta", "symmetric"), [(0.0, True), (1e-9, True), (1e-2, False),
                                                   (1.0, False)])
def test_symmetry_test_tolerates_rounding_and_tol_only(delta, symmetric):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6))
    a = a + a.T
    a[0, 1] += delta
    v, w = [rng.normal(size=6)], [rng.normal(size=6)]
    ok, sentence = symmetry_test(v, w, [a @ v[0]], [a @ w[0]])
    assert ok == symmetric
    assert ("not symmetric" in sentence) == (not symmetric)


def quartic_complex(bug: bool = False):
    """L = Σ|z|⁴: grad (PyTorch convention) 4z|z|²; H·v = 4v|z|² + 8z·Re(z̄v).
    Bug: the second term dropped."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=5) + 1j * rng.normal(size=5)

    def fb(p):
        return float(np.sum(np.abs(p) ** 4)), 4 * p * np.abs(p) ** 2

    def hvp(p, v):
        out = 4 * v * np.abs(p) ** 2
        return out if bug else out + 8 * p * np.real(np.conj(p) * v)

    return fb, hvp, z


def test_complex_parameters_use_the_conjugate_wirtinger_convention():
    fb, hvp, z = quartic_complex()
    before = z.copy()
    report = check_hvp(fb, hvp, z, progress=False)
    assert report.status == "pass"
    assert report.counts["checked"] == 10   # (real, imaginary) per entry
    assert any("Wirtinger" in n for n in report.notes)
    assert np.array_equal(z, before)
    fb, hvp, z = quartic_complex(bug=True)
    assert check_hvp(fb, hvp, z, progress=False).status == "fail"


def test_params_are_bit_identical_afterwards():
    fb, hvp, params = quadratic_problem((1, 1))
    snapshot = {k: v.copy() for k, v in params.items()}
    check_hvp(fb, hvp, params, progress=False)
    for k in params:
        assert params[k].tobytes() == snapshot[k].tobytes()


def test_complex_step_is_refused_for_complex_params():
    from gradcheck.errors import InputError

    fb, hvp, z = quartic_complex()
    with pytest.raises(InputError, match="complex parameters"):
        check_hvp(fb, hvp, z, method="complex", progress=False)


def test_batched_forward_is_refused():
    from gradcheck.errors import InputError

    fb, hvp, params = quadratic_problem()
    with pytest.raises(InputError, match="batched_forward"):
        check_hvp(fb, hvp, params, batched_forward=lambda p: p)


def test_workers_give_the_same_verdicts():
    fb, hvp, params = quadratic_problem((0, 2))
    serial = check_hvp(fb, hvp, params, progress=False)
    parallel = check_hvp(fb, hvp, params, workers=2, progress=False)
    assert parallel.status == serial.status == "fail"
    assert [e.name for e in parallel.entries("FAIL")] == [e.name for e in serial.entries("FAIL")]
