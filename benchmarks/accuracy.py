"""Accuracy benchmark: every scheme against exactly known gradients, beside numdifftools and
scipy.optimize.approx_fprime. Writes the ``accuracy`` section of benchmarks/RESULTS.md.

Run: ``.venv/bin/python benchmarks/accuracy.py``. Relative error per entry is
``|n - g| / max(|n|, |g|)`` (0 when both are 0); "evals/entry" counts every forward call the
method made (for gradcheck: base values and the complex-safety probe included), divided by the
number of entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

import gradcheck as gc
from gradcheck.examples import rnn

try:
    from benchmarks.results import machine, write_section
except ImportError:  # run as a script from benchmarks/
    from results import machine, write_section  # type: ignore[no-redef]

SCHEMES = ("forward", "central", "central4", "richardson", "complex", "auto",
           "forward h=auto", "central h=auto", "central4 h=auto")


class Problem:
    """A vector function f(x) with its exact gradient; ``complex_ok`` if analytic."""

    def __init__(self, name: str, f: Callable, exact: np.ndarray, x: np.ndarray,
                 note: str) -> None:
        self.name, self.f, self.exact, self.x, self.note = name, f, exact, x, note


def problems() -> list[Problem]:
    rng = np.random.default_rng(0)
    out = []
    # 1. The lecture's RNN; exact = the analytic BPTT gradient (cross-checked by complex step).
    p = rnn.make_problem()
    names = list(p.params)
    shapes = [p.params[k].shape for k in names]
    sizes = [p.params[k].size for k in names]

    def unflat(v):
        parts = np.split(v, np.cumsum(sizes)[:-1])
        return {k: a.reshape(s) for k, a, s in zip(names, parts, shapes)}

    x0 = np.concatenate([p.params[k].ravel() for k in names])
    _, g = p.forward_backward(p.params)
    exact = np.concatenate([g[k].ravel() for k in names])
    out.append(Problem("RNN (1163 params)", lambda v: p.forward(unflat(v)), exact, x0,
                       "analytic BPTT of the correct model"))
    # 2. Rosenbrock, 30 variables.
    x = rng.uniform(-1.5, 1.5, 30)

    def rosen(v):
        return np.sum(100.0 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)

    gr = np.zeros_like(x)
    gr[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    gr[1:] += 200 * (x[1:] - x[:-1] ** 2)
    out.append(Problem("Rosenbrock (30)", rosen, gr, x, "polynomial"))
    # 3. Logistic regression loss, 40 weights.
    A = rng.normal(size=(64, 40))
    y = rng.integers(0, 2, 64)
    w = 0.3 * rng.normal(size=40)

    def logreg(v):
        z = A @ v
        return np.mean(np.log1p(np.exp(-z)) + (1 - y) * z)

    s = 1 / (1 + np.exp(-(A @ w)))
    out.append(Problem("logistic loss (40)", logreg, A.T @ (s - y) / 64, w, "exp, log1p"))
    # 4. exp·sin with a wide range of scales.
    x = np.linspace(-3, 3, 25)
    out.append(Problem("Σ eˣ sin x (25)", lambda v: np.sum(np.exp(v) * np.sin(v)),
                       np.exp(x) * (np.sin(x) + np.cos(x)), x, "entries 0.05 … 27"))
    # 5. Not complex-analytic: x·|x| + x³ (abs).
    x = rng.uniform(0.2, 2.0, 20) * rng.choice([-1, 1], 20)
    out.append(Problem("Σ x·abs(x) + x³ (20)", lambda v: np.sum(v * np.abs(v) + v**3),
                       2 * np.abs(x) + 3 * x**2, x, "abs: complex step unsafe"))
    return out


def relerr(n: np.ndarray, g: np.ndarray) -> np.ndarray:
    z = np.maximum(np.abs(n), np.abs(g))
    return np.where(z == 0, 0.0, np.abs(n - g) / np.where(z == 0, 1.0, z))


def run_gradcheck(pr: Problem, label: str) -> tuple[np.ndarray | None, float, float]:
    method, _, step = label.partition(" h=")
    extra = {"h": step} if step else {}
    calls = [0]

    def f(d):
        calls[0] += 1
        return pr.f(d["x"])

    t = time.perf_counter()
    try:
        r = gc.check(f, lambda d: {"x": pr.exact}, {"x": pr.x.copy()}, method=method,
                     second_look=False, progress=False, diagnose=False, **extra)
    except gc.InputError:
        return None, float("nan"), float("nan")
    return r.tensors[0].numeric, calls[0] / pr.x.size, time.perf_counter() - t


def run_numdifftools(pr: Problem) -> tuple[np.ndarray, float, float]:
    import numdifftools as nd

    calls = [0]

    def f(v):
        calls[0] += 1
        return pr.f(v)

    t = time.perf_counter()
    n = nd.Gradient(f)(pr.x.copy())
    return np.asarray(n), calls[0] / pr.x.size, time.perf_counter() - t


def run_scipy(pr: Problem) -> tuple[np.ndarray, float, float]:
    from scipy.optimize import approx_fprime

    calls = [0]

    def f(v):
        calls[0] += 1
        return pr.f(v)

    t = time.perf_counter()
    n = approx_fprime(pr.x.copy(), f)
    return n, calls[0] / pr.x.size, time.perf_counter() - t


def main() -> None:
    rows = []
    for pr in problems():
        runs = {m: run_gradcheck(pr, m) for m in SCHEMES}
        runs["numdifftools.Gradient"] = run_numdifftools(pr)
        runs["scipy approx_fprime"] = run_scipy(pr)
        for name, (n, evals, secs) in runs.items():
            if n is None:
                rows.append(f"| {pr.name} | {name} | refused (not complex-safe) | | | |")
                continue
            e = relerr(np.asarray(n, dtype=np.float64), pr.exact)
            rows.append(f"| {pr.name} | {name} | {np.median(e):.1e} | {np.max(e):.1e} | "
                        f"{evals:.1f} | {secs:.2f} |")
            print(rows[-1], flush=True)
    cs, _, _ = run_gradcheck(problems()[0], "complex")
    ri, _, _ = run_gradcheck(problems()[0], "richardson")
    cross = float(np.median(relerr(cs, ri)))
    body = "\n".join([
        "## Accuracy of the numeric gradient (benchmarks/accuracy.py)",
        "",
        f"Measured on {machine()}. Relative error `|n − g| / max(|n|, |g|)` against the exact "
        "gradient, over all entries; evals/entry counts every forward call (gradcheck: base "
        "values and the complex-safety probe included). Default steps: forward/central 1e-5, "
        "central4 3e-3, richardson 2e-2, complex 1e-20; `auto` = complex step when the probe "
        "finds it safe, else central4; `h=auto` = a step per entry from the truncation "
        "measured at a pilot step and its double (gradcheck.estimate.steps.auto_estimate). "
        "numdifftools 0.11 `Gradient` and scipy "
        "`approx_fprime` with their defaults. RNN 'exact' = the analytic BPTT gradient of the "
        "correct model; complex step and Richardson agree with each other to a median "
        f"{cross:.1e}.",
        "",
        "| function | method | median rel. error | max rel. error | evals/entry | seconds |",
        "|---|---|---|---|---|---|",
        *rows,
    ])
    write_section("accuracy", body)
    print(body)


if __name__ == "__main__":
    main()
