"""PyTorch adapter: same verdicts as torch.autograd.gradcheck, plus names and float32."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gradcheck.adapters.torch import check_function, check_module  # noqa: E402


def make_mulsin(bug: str | None = None):
    """y = x · sin(w): ∂/∂x = sin(w)·g, ∂/∂w = x·cos(w)·g; bugs flip or drop terms."""

    class MulSin(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * torch.sin(w)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            gx = g * torch.sin(w)
            gw = g * x * torch.cos(w)
            if bug == "sign":
                gw = -gw
            if bug == "double_x":
                gx = 2 * gx
            return gx, gw

    return MulSin.apply


def make_matmul(bug: str | None = None):
    """Y = A @ B: dA = G Bᵀ, dB = Aᵀ G; bug 'transpose' forgets the transpose in dA."""

    class MatMul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            da = g @ (b if bug == "transpose" else b.T)
            return da, a.T @ g

    return MatMul.apply


def make_rowsum(bug: str | None = None):
    """y = mean over rows of x: dx = g / N broadcast; bug 'no_mean' forgets the 1/N."""

    class RowMean(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.n = x.shape[0]
            return x.mean(dim=0)

        @staticmethod
        def backward(ctx, g):
            scale = 1.0 if bug == "no_mean" else 1.0 / ctx.n
            return g.expand(ctx.n, -1) * scale

    return RowMean.apply


CASES = [
    (make_mulsin, None, set()),
    (make_mulsin, "sign", {"w"}),
    (make_mulsin, "double_x", {"x"}),
    (make_matmul, None, set()),
    (make_matmul, "transpose", {"a"}),
    (make_rowsum, None, set()),
    (make_rowsum, "no_mean", {"x"}),
]


def _inputs(factory, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    if factory is make_rowsum:
        shapes, names = [(4, 3)], ["x"]
    elif factory is make_matmul:
        shapes, names = [(3, 3), (3, 3)], ["a", "b"]
    else:
        shapes, names = [(2, 3), (2, 3)], ["x", "w"]
    xs = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_(True) for s in shapes]
    return xs, names


@pytest.mark.parametrize(("factory", "bug", "bad"), CASES)
def test_same_verdict_as_torch_gradcheck(factory, bug, bad) -> None:
    fn = factory(bug)
    xs, names = _inputs(factory)
    torch_ok = torch.autograd.gradcheck(fn, tuple(xs), raise_exception=False)
    report = check_function(fn, *xs, names=names)
    assert (report.status == "pass") == torch_ok, report
    assert set(report.failing_tensors) == bad, report
    if bad:
        worst = report.worst(1)[0]
        assert worst.status == "FAIL" and worst.tensor in bad and "[" in worst.name
    if bug == "sign":                       # torch says "Jacobian mismatch"; we say why
        assert report.tensor("w").likely_bug.kind == "sign", report
    if bug in ("double_x", "no_mean"):      # factor 2, and N = 4 rows not divided out
        assert report.tensor("x").likely_bug.kind == "scale", report


def test_float32_function_checks_in_float64() -> None:
    xs, names = _inputs(make_mulsin, torch.float32)
    good = check_function(make_mulsin(), *xs, names=names)
    assert good.status == "pass", good
    assert any("float64" in n for n in good.notes)
    bad = check_function(make_mulsin("sign"), *xs, names=names)
    assert bad.failing_tensors == ["w"]


def test_module_parameters_and_inputs() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    x = torch.randn(3, 4, requires_grad=True)
    report = check_module(model, x, loss_fn=lambda out: (out**2).mean())
    assert report.status == "pass", report
    assert [t.name for t in report.tensors] == ["0.weight", "0.bias", "2.weight", "2.bias",
                                                "input0"]
    assert any("float64" in n for n in report.notes)      # float32 module, float64 numerics


def test_module_with_a_buggy_custom_function_inside() -> None:
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.linspace(0.1, 1.0, 6, dtype=torch.float64)
                                        .reshape(2, 3))
            self.op = make_mulsin("sign")

        def forward(self, x):
            return self.op(x, self.w)

    report = check_module(Net(), torch.ones(2, 3, dtype=torch.float64))
    assert report.failing_tensors == ["w"]


def test_dropout_needs_seed() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Dropout(0.5)).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    assert check_module(model, x).status == "inconclusive"
    assert check_module(model, x, seed=0).status == "pass"


def test_params_are_untouched() -> None:
    model = torch.nn.Linear(3, 2).double()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    check_module(model, torch.ones(1, 3, dtype=torch.float64))
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])


def test_batchnorm_in_train_mode_leaves_running_stats_alone() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    stats = {n: b.clone() for n, b in model.named_buffers()}
    report = check_module(model, torch.randn(5, 3, dtype=torch.float64))
    assert report.status == "pass", report
    for n, b in model.named_buffers():
        assert torch.equal(b, stats[n]), n


def test_complex_step_through_a_function_and_a_module() -> None:
    xs, names = _inputs(make_mulsin)
    report = check_function(make_mulsin(), *xs, names=names, method="complex")
    assert report.status == "pass" and report.tensors[0].max_error < 1e-12
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()).double()
    x = torch.linspace(0, 1, 6, dtype=torch.float64).reshape(2, 3)
    assert check_module(model, x, method="complex").status == "pass"


def test_module_parameters_are_checked_in_place_without_copies() -> None:
    """A float64 module above the copy limit: no numpy copy of its parameters (numpy's
    allocations are what tracemalloc sees; the check's own buffer is one parameter's size)."""
    import tracemalloc

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(2000, 1500, bias=True).double()   # 3e6 parameters, 24 MB
    x = torch.randn(3, 2000, dtype=torch.float64)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    weight_bytes = model.weight.numel() * 8
    tracemalloc.start()
    try:
        report = check_module(model, x, mode="directional", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.status == "pass"
    assert peak <= 1.2 * weight_bytes
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n])


def test_the_same_tensor_twice_is_two_parameters() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    report = check_function(lambda a, b: (a * b.sin()).sum(), x, x)
    assert report.status == "pass"
