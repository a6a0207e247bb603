"""Complex parameters in gc.check: (real, imaginary) pairs, PyTorch's conjugate Wirtinger
gradient; a gradient returned in a lower precision than its parameter (note / strict FAIL)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.errors import InputError
from gradcheck.params.complexview import as_complex, as_real, inspect

Z = np.array([1 + 2j, -0.5 + 0.3j, 0.7 - 1.1j])


def quartic(p):
    """L = Σ|z|⁴, gradient (PyTorch convention) 4z|z|²."""
    return float(np.sum(np.abs(p) ** 4))


def quartic_grad(p):
    return 4 * p * np.abs(p) ** 2


def test_real_view_shares_memory_and_round_trips():
    z = Z.copy()
    r = as_real(z, "z")
    assert r.shape == (3, 2) and np.shares_memory(r, z)
    r[1, 1] += 1.0
    assert z[1] == -0.5 + 1.3j
    assert np.array_equal(as_complex(r), z)
    zero_d = np.array(1 + 1j)
    assert as_real(zero_d, "s").shape == (2,)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("method", ["central", "central4", "auto"])
def test_check_complex_params(dtype, method):
    z = Z.astype(dtype)
    before = z.copy()
    report = gc.check(quartic, quartic_grad, z, method=method, progress=False)
    assert report.status == "pass", report
    assert report.counts["checked"] == 6
    assert any("Wirtinger" in n for n in report.notes)
    assert z.tobytes() == before.tobytes()


def test_conjugated_gradient_fails_on_the_imaginary_parts():
    report = gc.check(quartic, lambda p: np.conj(quartic_grad(p)), Z.copy(), progress=False)
    assert report.status == "fail"
    assert {e.index[-1] for e in report.entries("FAIL")} == {1}


def test_real_gradient_for_a_complex_parameter_fails_where_the_imaginary_part_matters():
    report = gc.check(quartic, lambda p: quartic_grad(p).real, Z.copy(), progress=False)
    assert report.status == "fail"


def test_complex_step_refused_and_mixed_trees():
    with pytest.raises(InputError, match="complex parameters"):
        gc.check(quartic, quartic_grad, Z.copy(), method="complex")
    params = {"z": Z.copy(), "w": np.array([0.5, -1.0])}
    view = inspect(params)
    assert view.complex_mask == (True, False)

    def f(p):
        return quartic(p["z"]) + float(np.sum(p["w"] ** 2))

    def fb(p):
        return {"z": quartic_grad(p["z"]), "w": 2 * p["w"]}

    assert gc.check(f, fb, params, progress=False).status == "pass"


def test_non_contiguous_complex_param_is_refused():
    z = np.zeros(6, complex)[::2]
    with pytest.raises(InputError, match="contiguous"):
        gc.check(quartic, quartic_grad, z)


@pytest.mark.parametrize("strict", [False, True])
def test_lower_precision_gradient_is_a_note_or_a_failure(strict):
    x = np.random.default_rng(0).normal(size=4)
    report = gc.check(lambda p: float(np.sum(p**3)), lambda p: (3 * p**2).astype(np.float32),
                      x, strict=strict, progress=False)
    text = report.warnings if strict else report.notes
    assert any("float32 while the parameter is float64" in t for t in text)
    assert report.status == ("fail" if strict else "pass")
    same = gc.check(lambda p: float(np.sum(p**3)), lambda p: 3 * p**2, x, strict=strict,
                    progress=False)
    assert same.status == "pass"


def test_lower_precision_gradients_of_several_tensors_make_one_note() -> None:
    p = {"a": np.ones(3), "b": np.ones(2)}
    report = gc.check(lambda q: float(np.sum(q["a"] ** 2) + np.sum(q["b"] ** 2)),
                      lambda q: {k: (2 * v).astype(np.float32) for k, v in q.items()}, p,
                      progress=False)
    notes = [n for n in report.notes if "float32 while the parameters are float64" in n]
    assert len(notes) == 1 and "'a', 'b'" in notes[0]
