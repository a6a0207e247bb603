"""Adversarial check of the joint least-squares look (:mod:`gradcheck.judge.regression`).

On the f32in and f16 paths of the regime grid (:mod:`gradcheck.examples.regimes`), the
analytic gradient gets errors just above the tolerance — per entry ``a_i = g_i + r·max(|g_i|,
RMS g_T)`` on a few entries of every tensor, or a uniform ``a_T = (1 + r)·g_T`` on one tensor,
``r`` = 1e-3, 3e-3, 1e-2 for seeds 0, 1, 2 — and every entry the new look PASSES is compared
with the exact float64 gradient: an entry whose error exceeds twice its tolerance
``A_i = allow(a_i, g_i)`` must never be passed by it. Prints the counts; exits 1 on a wrong pass.

``python benchmarks/regression_adversarial.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import gradcheck as gc
from gradcheck.examples import regimes as R
from gradcheck.modes import validated as V

ERRORS = (1e-3, 3e-3, 1e-2)
#: Entries planted per tensor in the "entries" variants.
PLANTED = 3

_seen: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
_original = V._regression


def _spy(c, pos, again, out, cap, probe):
    before = out.status[again].copy()
    _original(c, pos, again, out, cap, probe)
    newly = again[(out.status[again] == V.PASS) & (before != V.PASS)]
    if newly.size:
        sub = pos[newly]
        _seen.append((c.name, c.idx[sub], c.a[sub], probe.allow))


V._regression = _spy


def planted(model: R.RegimeModel, kind: str, r: float, seed: int):
    """``forward_backward`` with the errors of the module docstring, and the tensor of the
    uniform variant."""
    rng = np.random.default_rng(seed)
    tensor = R.BUG_TENSORS[seed % len(R.BUG_TENSORS)]
    picks = {k: rng.choice(v.size, size=min(PLANTED, v.size), replace=False)
             for k, v in model.params.items()}

    def fb(p):
        loss, grads = model.forward_backward(p)
        out = {}
        for k, g in grads.items():
            g64 = g.astype(np.float64).copy()
            if kind == "uniform" and k == tensor:
                g64 *= 1.0 + r
            elif kind == "entries":
                flat = g64.reshape(-1)
                rms = float(np.sqrt(np.mean(flat ** 2))) if flat.size else 0.0
                idx = picks[k]
                flat[idx] += r * np.maximum(np.abs(flat[idx]), rms)
            out[k] = g64.astype(g.dtype)
        return loss, out
    return fb


def run(regimes) -> tuple[int, int, int, list[str]]:
    """Checks run, entries passed by the look, wrong passes (error > 2·A), examples."""
    checks = passed = wrong = 0
    examples: list[str] = []
    for regime in regimes:
        model = R.build(regime)
        exact = R.exact_gradient(regime)
        r = ERRORS[regime.seed % len(ERRORS)]
        for kind in ("entries", "uniform"):
            _seen.clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gc.check(model.forward, planted(model, kind, r, regime.seed), model.params,
                         progress=False)
            checks += 1
            for name, idx, a, allow in _seen:
                g = exact[name].reshape(-1)[idx]
                passed += idx.size
                err = np.abs(a - g)
                bad = err > 2 * allow(a, g)
                wrong += int(np.count_nonzero(bad))
                for k in np.flatnonzero(bad)[:2]:
                    if len(examples) < 10:
                        examples.append(f"{regime.label} {kind} {r:g} {name}[{idx[k]}]: "
                                        f"a={a[k]:.6g} exact={g[k]:.6g}")
    return checks, passed, wrong, examples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    scales = (1e-6, 1e-3, 1.0) if args.quick else (1e-6, 1e-4, 1e-2, 0.1, 1.0)
    regimes = R.grid(scales=scales, precisions=("f32in", "f16"), seeds=(0, 1, 2))
    t0 = time.perf_counter()
    checks, passed, wrong, examples = run(regimes)
    text = (f"{checks} checks ({len(regimes)} regimes × 2 planted variants) in "
            f"{time.perf_counter() - t0:.0f} s: {passed} entries passed by the joint look, "
            f"{wrong} of them wrong by more than twice their tolerance.")
    print(text)
    for e in examples:
        print("  " + e)
    if not args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results import machine, write_section

        write_section("regression_adversarial", (
            "## Joint least-squares look under planted errors "
            "(`benchmarks/regression_adversarial.py`)\n\n"
            f"Machine: {machine()}. f32in and f16 paths, init scales {scales}, every "
            "nonlinearity and loss scale, 3 seeds; errors of 1e-3, 3e-3, 1e-2 planted on 3 "
            "entries of every tensor, or as a uniform scale error of one tensor. Every entry "
            "the look passes is compared with the exact float64 gradient.\n\n" + text
            + "".join(f"\n- {e}" for e in examples) + "\n"))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
