"""Layer checks and framework adapters: what is caught, what is explained, how long it takes.

* every reference layer of ``gradcheck.examples.layers`` (correct, and each bug variant)
  through ``check_layer``: verdict, whether exactly the bug's inputs fail, whether a confident
  diagnosis is given, wall time;
* custom ``torch.autograd.Function``s (correct / buggy, float64 and float32) through
  ``gradcheck.adapters.torch.check_function`` next to ``torch.autograd.gradcheck``;
* ``jax.custom_vjp`` functions through ``gradcheck.adapters.jax.check_function`` next to
  ``jax.test_util.check_grads``.

Run: .venv/bin/python benchmarks/layers_adapters.py
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from gradcheck.examples.layers import LAYERS, check_reference_layer

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from the benchmarks folder
    from results import machine, write_section  # type: ignore[no-redef]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def layers_section() -> str:
    rows = []
    totals = {"bugs": 0, "exact": 0, "diagnosed": 0, "time": 0.0}
    for name, spec in LAYERS.items():
        report, wall = timed(lambda name=name: check_reference_layer(name, progress=False))
        exact = diagnosed = 0
        for bug, info in spec.bugs.items():
            r, w = timed(lambda name=name, bug=bug: check_reference_layer(name, bug,
                                                                          progress=False))
            wall += w
            exact += set(r.failing_tensors) == set(info.affects)
            diagnosed += any(t.diagnosis for t in r.tensors)
        totals["bugs"] += len(spec.bugs)
        totals["exact"] += exact
        totals["diagnosed"] += diagnosed
        totals["time"] += wall
        rows.append(f"| {name} | {report.counts['checked']} | {report.status} | "
                    f"{exact}/{len(spec.bugs)} | {diagnosed}/{len(spec.bugs)} | {wall:.3f} |")
    head = ("| layer | entries | correct layer | bugs failing exactly their inputs | bugs with "
            "a confident diagnosis | wall time, all variants (s) |\n|---|---:|---|---:|---:|---:|")
    total = (f"| **all {len(LAYERS)}** | | | **{totals['exact']}/{totals['bugs']}** | "
             f"**{totals['diagnosed']}/{totals['bugs']}** | **{totals['time']:.2f}** |")
    return "\n".join([head, *rows, total])


def torch_section() -> str:
    import torch

    from gradcheck.adapters.torch import check_function

    def mulsin(bug):
        class MulSin(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, w):
                ctx.save_for_backward(x, w)
                return x * torch.sin(w)

            @staticmethod
            def backward(ctx, g):
                x, w = ctx.saved_tensors
                gw = g * x * torch.cos(w)
                return g * torch.sin(w) * (1.001 if bug == "rel_1e-3" else 1.0), \
                    -gw if bug == "sign" else gw

        return MulSin.apply

    rows = []
    for dtype in (torch.float64, torch.float32):
        for bug in (None, "sign", "rel_1e-3"):
            gen = torch.Generator().manual_seed(0)
            xs = [torch.randn(8, 8, generator=gen, dtype=dtype).requires_grad_(True)
                  for _ in range(2)]
            fn = mulsin(bug)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok, t_torch = timed(lambda fn=fn, xs=xs: torch.autograd.gradcheck(
                    fn, tuple(xs), raise_exception=False))
            report, t_gc = timed(lambda fn=fn, xs=xs: check_function(fn, *xs, names=["x", "w"],
                                                                     progress=False))
            worst = report.worst(1)[0]
            why = next((t.likely_bug.kind for t in report.tensors if t.likely_bug), "-")
            rows.append(f"| {str(dtype).replace('torch.', '')} | {bug or 'correct'} | "
                        f"{'pass' if ok else 'FAIL'} | {t_torch * 1e3:.0f} | {report.status} | "
                        f"{worst.name if report.status == 'fail' else '-'} | {why} | "
                        f"{t_gc * 1e3:.0f} |")
    head = ("| dtype | Function | torch.autograd.gradcheck | torch ms | gradcheck | worst entry "
            "| likely bug | gradcheck ms |\n|---|---|---|---:|---|---|---|---:|")
    return "\n".join([head, *rows])


def jax_section() -> str:
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    from gradcheck.adapters.jax import check_function

    def mulsin(bug):
        @jax.custom_vjp
        def f(x, w):
            return x * jnp.sin(w)

        def fwd(x, w):
            return f(x, w), (x, w)

        def bwd(res, g):
            x, w = res
            gw = g * x * jnp.cos(w)
            return g * jnp.sin(w) * (1.001 if bug == "rel_1e-3" else 1.0), \
                -gw if bug == "sign" else gw

        f.defvjp(fwd, bwd)
        return f

    rows = []
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        args = [rng.normal(size=(8, 8)).astype(dtype) for _ in range(2)]
        for bug in (None, "sign", "rel_1e-3"):
            fn = mulsin(bug)

            def jax_verdict(fn=fn, args=args, dtype=dtype):
                with jax.enable_x64(dtype == np.float64):
                    try:
                        check_grads(fn, tuple(jnp.asarray(a) for a in args), order=1,
                                    modes=["rev"])
                    except AssertionError:
                        return False
                return True

            ok, t_jax = timed(jax_verdict)
            report, t_gc = timed(lambda fn=fn, args=args: check_function(
                fn, *args, names=["x", "w"], progress=False))
            rows.append(f"| {np.dtype(dtype).name} | {bug or 'correct'} | "
                        f"{'pass' if ok else 'FAIL'} | {t_jax * 1e3:.0f} | {report.status} | "
                        f"{', '.join(report.failing_tensors) or '-'} | {t_gc * 1e3:.0f} |")
    head = ("| dtype | custom_vjp | jax check_grads | jax ms | gradcheck | failing tensors | "
            "gradcheck ms |\n|---|---|---|---:|---|---|---:|")
    return "\n".join([head, *rows])


def main() -> None:
    parts = ["## Layer checks and adapters (`benchmarks/layers_adapters.py`)", "",
             f"Machine: {machine()}. Defaults everywhere (central, h=1e-5, tol=1e-5).", "",
             "### Reference layers through `check_layer`", "", layers_section()]
    try:
        parts += ["", "### PyTorch custom Functions (8×8 inputs; `rel_1e-3` scales dx by "
                  "1.001)", "", torch_section()]
    except ImportError:
        parts += ["", "(torch not installed)"]
    try:
        parts += ["", "### JAX custom_vjp (8×8 inputs; first call includes compilation)", "",
                  jax_section()]
    except ImportError:
        parts += ["", "(jax not installed)"]
    body = "\n".join(parts)
    write_section("layers_adapters", body)
    print(body)


if __name__ == "__main__":
    main()
