"""Log-log plot of the h sweep: truncation and cancellation regions, best step marked."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.optional import optional_import


def plot_sweep(result: Any, path: str) -> str:
    """Draw ``result`` (a :class:`gradcheck.sweep.run.SweepResult`) to ``path`` and return it.

    Per method: the median relative error over the entries (thick) and each entry (thin);
    the complex step as a flat line; the region right of the central scheme's best step is
    shaded as truncation-dominated (error ∝ h²), left of it as cancellation-dominated
    (error ∝ ε|f|/h).
    """
    optional_import("matplotlib", "the sweep plot").use("Agg")
    plt = optional_import("matplotlib.pyplot", "the sweep plot")

    hs = result.hs
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    colors = {"central": "tab:blue", "forward": "tab:orange", "backward": "tab:green",
              "central4": "tab:purple", "richardson": "tab:brown"}
    ref = "central" if "central" in result.errors else next(iter(result.errors))
    best = result.best_h(ref)
    ax.axvspan(hs.min() / 2, best, color="tab:red", alpha=0.07)
    ax.axvspan(best, hs.max() * 2, color="tab:green", alpha=0.07)
    tiny = 1e-17
    for m, err in result.errors.items():
        c = colors.get(m, None)
        for row in err:
            ax.plot(hs, np.maximum(row, tiny), color=c, alpha=0.18, lw=0.8)
        med = np.maximum(result.median(m), tiny)
        ax.plot(hs, med, color=c, lw=2.4, marker="o", ms=3.5, label=f"{m} (median)")
        j = int(np.argmin(med))
        ax.plot(hs[j], med[j], marker="*", ms=16, color=c, mec="black", zorder=5)
        ax.annotate(f"best h = {hs[j]:.0e}\nerror {med[j]:.1e}", (hs[j], med[j]),
                    textcoords="offset points", xytext=(8, -28), fontsize=8.5)
    if result.complex_errors is not None:
        ce = max(float(np.median(result.complex_errors)), tiny)
        ax.axhline(ce, color="black", ls="--", lw=1.5,
                   label=f"complex step, h=1e-20 (median {ce:.0e})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(hs.max() * 2, hs.min() / 2)  # large h on the left, as h shrinks to the right
    ax.set_xlabel("step h")
    ax.set_ylabel("relative error |a − n| / max(|a|, |n|)")
    ax.set_title(f"h sweep: {len(result.entries)} entries, finite differences vs analytic")
    ylo, yhi = ax.get_ylim()
    ax.text(hs.max(), yhi / 3, "truncation\n(error ∝ h²)", fontsize=9, color="darkgreen",
            va="top")
    ax.text(hs.min(), yhi / 3, "cancellation\n(error ∝ ε|f|/h)", fontsize=9, color="darkred",
            va="top", ha="right")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper center", fontsize=8.5, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
