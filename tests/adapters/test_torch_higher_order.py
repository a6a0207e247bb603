"""PyTorch adapter: order=2 (double backward), modes=("fwd",), complex inputs, named outputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradcheck.adapters.torch import check_function, check_module  # noqa: E402


def make_swish(detach: bool = False):
    """y = x·σ(x); ``detach`` drops σ's dependence on x in the backward: first order right,
    double backward wrong (torch.autograd.gradgradcheck fails it)."""

    class Swish(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * torch.sigmoid(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            s = torch.sigmoid(x)
            if detach:
                s = s.detach()
            return g * (s + x * s * (1 - s))

    return Swish.apply


def make_tanh(jvp_bug: bool = False):
    """tanh with a forward-mode rule; the bug writes 1−y for 1−y²."""

    class Tanh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.tanh(x)
            ctx.save_for_backward(y)
            ctx.save_for_forward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * (1 - y**2)

        @staticmethod
        def jvp(ctx, t):
            (y,) = ctx.saved_tensors
            return t * (1 - y) if jvp_bug else t * (1 - y**2)

    return Tanh.apply


def make_three(bug: bool = False):
    """(sin x, x², exp x); the bug writes x for 2x in output 1's backward."""

    class Three(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.sin(x), x**2, torch.exp(x)

        @staticmethod
        def backward(ctx, g0, g1, g2):
            (x,) = ctx.saved_tensors
            return g0 * torch.cos(x) + g1 * (x if bug else 2 * x) + g2 * torch.exp(x)

    return Three.apply


def make_expz(bug: bool = False):
    """exp(z)·z, holomorphic: grad = g·conj(f'(z)); the bug drops the conjugate."""

    class ExpZ(torch.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return torch.exp(z) * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            d = torch.exp(z) * (1 + z)
            return g * (d if bug else d.conj())

    return ExpZ.apply


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_order2_catches_a_detached_backward_that_first_order_passes(dtype):
    x = torch.randn(3, 4, dtype=dtype, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    assert check_function(make_swish(True), x, progress=False).status == "pass"
    assert check_function(make_swish(), x, order=2, progress=False).status == "pass"
    report = check_function(make_swish(True), x, order=2, progress=False)
    assert report.status == "fail"
    assert report.failing_tensors == ["hvp/input0"]
    assert "column input0[" in report.worst(1)[0].note


def test_order2_of_a_module():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1)).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    report = check_module(model, x, order=2, progress=False)
    assert report.status == "pass", report
    assert {t.name for t in report.tensors} >= {"hvp/0.weight", "vjp/0.weight"}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_forward_mode(dtype):
    x = torch.randn(2, 5, dtype=dtype, generator=torch.Generator().manual_seed(1))
    assert check_function(make_tanh(), x, modes=("fwd",), progress=False).status == "pass"
    assert check_function(make_tanh(True), x, modes=("fwd",), progress=False).status == "fail"
    # the backward is right, so reverse mode alone passes
    assert check_function(make_tanh(True), x, progress=False).status == "pass"
    both = check_function(make_tanh(True), x, modes=("fwd", "rev"), progress=False)
    assert both.status == "fail" and both.failing_tensors == ["jvp/input0"]


def test_three_outputs_name_the_wrong_output():
    x = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert check_function(make_three(), x, progress=False).status == "pass"
    report = check_function(make_three(True), x, output_names=["sin", "square", "exp"],
                            progress=False)
    assert report.status == "fail"
    for entry in report.entries("FAIL")[:5]:
        assert f"output square[{entry.index[0]}]" in entry.note


def test_complex_inputs_are_checked_like_torch():
    z = torch.randn(5, dtype=torch.complex128, generator=torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(make_expz(), (z.requires_grad_(True),))
    good = check_function(make_expz(), z, progress=False)
    assert good.status == "pass", good
    assert good.counts["checked"] == 10
    assert any("Wirtinger" in n for n in good.notes)
    assert check_function(make_expz(True), z, progress=False).status == "fail"


def test_unknown_mode_and_order_are_refused():
    from gradcheck.errors import InputError

    x = torch.ones(3, dtype=torch.float64)
    with pytest.raises(InputError, match="modes="):
        check_function(torch.sin, x, modes=("forward",))
    with pytest.raises(InputError, match="order="):
        check_function(torch.sin, x, order=3)


def test_float32_order2_no_false_alarm_where_gradgradcheck_has_one():
    x = torch.randn(3, 5, dtype=torch.float32, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    fn = make_swish()
    from torch.autograd.gradcheck import GradcheckError

    with pytest.raises(GradcheckError):
        torch.autograd.gradgradcheck(fn, (x,))
    assert check_function(fn, x, order=2, progress=False).status == "pass"
    assert np.isfinite(x.detach().numpy()).all()


def make_polar(bug: bool = False):
    """(r cos θ, r sin θ) with a jvp; the bug flips the sign of ∂y/∂θ in the tangent of y."""

    class Polar(torch.autograd.Function):
        @staticmethod
        def forward(ctx, r, th):
            ctx.save_for_backward(r, th)
            ctx.save_for_forward(r, th)
            return r * torch.cos(th), r * torch.sin(th)

        @staticmethod
        def backward(ctx, gx, gy):
            r, th = ctx.saved_tensors
            c, s = torch.cos(th), torch.sin(th)
            return gx * c + gy * s, -gx * r * s + gy * r * c

        @staticmethod
        def jvp(ctx, tr, tth):
            r, th = ctx.saved_tensors
            c, s = torch.cos(th), torch.sin(th)
            return tr * c - r * s * tth, tr * s + (-1 if bug else 1) * r * c * tth

    return Polar.apply


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_forward_mode_names_the_output(mode):
    gen = torch.Generator().manual_seed(4)
    r = torch.rand(4, dtype=torch.float64, generator=gen) + 0.5
    th = torch.randn(4, dtype=torch.float64, generator=gen)
    assert check_function(make_polar(), r, th, modes=("fwd",), mode=mode,
                          progress=False).status == "pass"
    report = check_function(make_polar(True), r, th, names=["r", "theta"],
                            output_names=["x", "y"], modes=("fwd",), mode=mode, progress=False)
    assert report.status == "fail"
    assert "theta" in report.failing_tensors and "r" not in report.failing_tensors
    located = [e for e in report.entries("FAIL") if e.tensor == "theta"]
    assert located
    for entry in located:
        assert f"output y[{entry.index[0]}]" in entry.note, entry.note
