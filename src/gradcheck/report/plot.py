"""Figures of a report (optional matplotlib): where in each tensor the errors are, and how big.

One heatmap per tensor shows ``log10`` of each checked entry's error at its place in the
tensor, on a colour scale that turns from blue to red at the tolerance, so a wrong row, a
wrong column, a transposed block or a single bad element stands out. Failed entries are
crossed. A histogram of ``log10`` errors of all checked entries, stacked by tensor, marks the
tolerance: a correct model sits far left of the line, a buggy tensor forms its own hump to
the right. (Warp's ``plot_relative_error`` heatmaps are the model; the histogram follows the
CS231n notes' reading of relative errors by order of magnitude.)
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.judge.verdict import FAIL, INCONCLUSIVE, SKIPPED
from gradcheck.optional import optional_import

if TYPE_CHECKING:
    from gradcheck.report.results import Report, TensorReport

#: Errors below this are drawn at this value (log10 of 0 is -inf).
FLOOR_LOG10 = -16.0


def _matplotlib() -> Any:
    return optional_import("matplotlib", "report.plot()")


def log_errors(errors: np.ndarray) -> np.ndarray:
    """``log10(error)``, with 0 mapped to :data:`FLOOR_LOG10` and NaN kept as NaN."""
    e = np.asarray(errors, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(np.maximum(e, 10.0**FLOOR_LOG10))
    out[np.isnan(e)] = np.nan
    return out


def as_grid(t: TensorReport) -> tuple[np.ndarray, np.ndarray, str]:
    """The tensor's log10 errors laid out in 2-D (NaN where unchecked), its status grid, and a
    label for the rows.

    0-d → 1×1, 1-d → 1×n, 2-d as is, k-d → (product of the leading axes) × last axis.
    """
    shape = t.shape
    if len(shape) == 0:
        rows, cols, label = 1, 1, ""
    elif len(shape) == 1:
        rows, cols, label = 1, shape[0], ""
    elif len(shape) == 2:
        rows, cols, label = shape[0], shape[1], "row"
    else:
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        label = "×".join(map(str, shape[:-1])) + " (flattened)"
    values = np.full(rows * cols, np.nan)
    status = np.full(rows * cols, SKIPPED, dtype=np.int8)
    checked = t.status != SKIPPED
    idx = np.asarray(t.flat_index)[checked]
    values[idx] = log_errors(t.error[checked])
    status[idx] = t.status[checked]
    return values.reshape(rows, cols), status.reshape(rows, cols), label


def _order(report: Report, max_tensors: int) -> list[TensorReport]:
    """Failing tensors first (report order otherwise), at most ``max_tensors``."""
    ranked = sorted(report.tensors, key=lambda t: (t.verdict != "FAIL", 0))
    return ranked[:max_tensors]


def plot_report(report: Report, path: str | None = None, *, max_tensors: int = 12,
                cols: int = 4, dpi: int = 110, cmap: str = "RdYlBu_r") -> Any:
    """Draw the report: per-tensor heatmaps of log10 error and a histogram with the tolerance.

    Parameters
    ----------
    report : a :class:`~gradcheck.report.results.Report`.
    path : write the figure there (PNG, PDF, SVG... by extension) and return it; without a
        path the figure is made with pyplot so notebooks show it.
    max_tensors : at most this many heatmaps (failing tensors first).
    cols : heatmaps per row.
    dpi, cmap : resolution, and a diverging colormap (its middle sits at the tolerance).

    Returns
    -------
    matplotlib.figure.Figure
    """
    mpl = _matplotlib()
    from matplotlib.colors import TwoSlopeNorm

    tensors = _order(report, max_tensors)
    tol = float(report.options.get("tol", 1e-5))
    measure = "relative" if report.options.get("measure", "relative") == "relative" else "absolute"
    log_tol = math.log10(tol)
    all_logs = [log_errors(t.error[t.status != SKIPPED]) for t in report.tensors]
    finite = np.concatenate([v[np.isfinite(v)] for v in all_logs] + [np.zeros(0)])
    vmin = min(FLOOR_LOG10, float(finite.min())) if finite.size else FLOOR_LOG10
    vmax = max(log_tol + 2.0, float(finite.max()) if finite.size else log_tol + 2.0)
    norm = TwoSlopeNorm(vmin=vmin, vcenter=log_tol, vmax=vmax)

    ncols = max(1, min(cols, len(tensors)))
    nrows = math.ceil(len(tensors) / ncols) if tensors else 0
    width = max(3.4 * ncols + 1.2, 8.5)           # room for the title and the legend
    height = 2.9 * nrows + 3.2
    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(width, height), dpi=dpi, layout="constrained")
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[2.9] * nrows + [2.6])
    headline = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}[report.status]
    c = report.counts
    fig.suptitle(f"gradcheck: {headline} — {c['checked']} entries checked, {c['failed']} "
                 f"failed; {measure} error, tol = {tol:g}", fontsize=12, fontweight="bold")

    image = None
    for k, t in enumerate(tensors):
        ax = fig.add_subplot(grid[k // ncols, k % ncols])
        image = _heatmap(ax, t, norm, mpl.colormaps[cmap])
    if image is not None:
        axes = [a for a in fig.axes]
        bar = fig.colorbar(image, ax=axes, shrink=0.9, pad=0.01)
        bar.set_label(f"log10 {measure} error")
        ticks = sorted(set(np.arange(math.ceil(vmin / 4) * 4, vmax + 1e-9, 4).tolist())
                       | {log_tol})
        bar.set_ticks(ticks)
        bar.set_ticklabels([f"tol {tol:g}" if x == log_tol else f"{x:g}" for x in ticks])
        bar.ax.axhline(log_tol, color="black", lw=1.2)

    hist = fig.add_subplot(grid[nrows, :])
    _histogram(hist, report, all_logs, vmin, vmax, log_tol, tol, measure)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def _heatmap(ax: Any, t: TensorReport, norm: Any, cmap: Any) -> Any:
    values, status, label = as_grid(t)
    cmap = cmap.with_extremes(bad="#d9d9d9")  # unchecked (sampled out) entries are grey
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, aspect="auto",
                      interpolation="nearest")
    rows, cols = values.shape
    if t.checked == 0:
        how = ("passed the directional test" if getattr(t, "directional", None) is not None
               else "no entry checked")
        ax.text(0.5, 0.5, how, transform=ax.transAxes, ha="center", va="center", fontsize=8,
                color="#404040")
    if 0 < t.failed <= min(64, t.checked // 2):   # mark isolated failures; masses are red
        fy, fx = np.nonzero(status == FAIL)
        ax.scatter(fx, fy, marker="x", s=min(40.0, 2400.0 / max(rows, cols) ** 1.3),
                   c="black", linewidths=0.8)
        iy, ix = np.nonzero(status == INCONCLUSIVE)
        ax.scatter(ix, iy, marker="+", s=30, c="dimgray", linewidths=0.8)
    shape = "×".join(map(str, t.shape)) or "scalar"
    color = {"FAIL": "#b2182b", "inconclusive": "#8c6d1f"}.get(t.verdict, "#1a6e2e")
    ax.set_title(f"{t.name}  [{shape}]  {t.verdict}"
                 + (f" ({t.failed}/{t.checked})" if t.failed else ""),
                 fontsize=10, color=color, fontweight="bold" if t.failed else "normal")
    if t.diagnosis:
        lines = textwrap.wrap(t.diagnosis, 56)
        if len(lines) > 5:
            lines = lines[:4] + [lines[4].rstrip(".,;:") + " …"]
        ax.set_xlabel("\n".join(lines), fontsize=7, color="#b2182b")
    elif rows == 1:
        ax.set_xlabel("index", fontsize=8)
    else:
        ax.set_xlabel("column", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if rows == 1:
        ax.set_yticks([])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label, fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def _histogram(ax: Any, report: Report, logs: list[np.ndarray], vmin: float, vmax: float,
               log_tol: float, tol: float, measure: str) -> None:
    bins = np.linspace(math.floor(vmin), math.ceil(vmax), int(2 * (math.ceil(vmax)
                                                                   - math.floor(vmin))) + 1)
    data = [v[np.isfinite(v)] for v in logs]
    labels = [f"{t.name} ({t.verdict})" for t in report.tensors]
    keep = [i for i, d in enumerate(data) if d.size]
    if len(keep) > 10:                         # too many for a legend: one grey histogram
        ax.hist(np.concatenate([data[i] for i in keep]), bins=bins, color="#4575b4",
                label="all tensors")
    elif keep:
        ax.hist([data[i] for i in keep], bins=bins, stacked=True,
                label=[labels[i] for i in keep])
    ax.axvline(log_tol, color="black", ls="--", lw=1.5)
    ax.axvspan(log_tol, bins[-1], color="#b2182b", alpha=0.07)
    ax.text(log_tol, 0.97, f"  tol = {tol:g}  (above: would fail)",
            transform=ax.get_xaxis_transform(), va="top", ha="left", fontsize=8.5)
    ax.set_xlabel(f"log10 {measure} error per checked entry")
    ax.set_ylabel("entries")
    ax.set_xlim(bins[0], bins[-1])
    if keep:
        ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False,
                  title="tensor", title_fontsize=8)
