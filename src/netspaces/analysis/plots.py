"""PNG plots, rendered in memory (so nothing is written before everything is computed).

Uses matplotlib's object API with the Agg canvas: no pyplot, no global backend switch.
"""

from __future__ import annotations

import io
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter
from scipy import stats as scipy_stats

from netspaces.analysis.baselines import Baseline
from netspaces.analysis.edf import weighted_edf
from netspaces.analysis.populations import Population, safe_name
from netspaces.analysis.summary import Analysis
from netspaces.space.fit import fit_quantized_linear, per_block

MAX_WIDTH_MODELS = 5
# below this many models a fitted complexity exponent is mostly noise (3 models in a narrow
# regime window gave params ∝ flops^43.69): no line, no exponent, the legend says why
MIN_FIT_POINTS = 10
# log-axis ticks at 1, 2 and 5 per decade over a wide range; a range of less than a decade
# (a regime window's flops, a model's widths) gets about five evenly spaced round ticks instead,
# so every axis shows several labels (the width axis once labelled only "100")
LOG_TICKS = (1.0, 2.0, 5.0)
NARROW_SPAN = 10.0
BASELINE_STYLES = [("black", "--"), ("tab:gray", "-."), ("tab:brown", ":"), ("tab:olive", "--"), ("tab:pink", "-.")]


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _legend_label(p: Population) -> str:
    e = p.errors
    return f"{p.label} (n={len(e)}, min={e.min():.2f}, mean={e.mean():.2f})"


def _baseline_lines(ax, baselines: list[Baseline]) -> None:
    """Each baseline as a vertical line at its error, labelled along the line and in the legend;
    labels of lines that (nearly) coincide are staggered down the line so they stay legible."""
    colors = {}
    for i, b in enumerate(baselines):
        color, style = BASELINE_STYLES[i % len(BASELINE_STYLES)]
        flops = "" if b.flops is None else f", {b.flops / 1e6:.0f} MF"
        ax.axvline(b.error, color=color, linestyle=style, linewidth=1.3, label=f"{b.name} ({b.error:.2f}%{flops})")
        colors[b.name] = color
    lo, hi = ax.get_xlim()
    level, last = 0, None
    for b in sorted(baselines, key=lambda b: b.error):
        level = (level + 1) % 3 if last is not None and b.error - last < 0.03 * (hi - lo) else 0
        last = b.error
        ax.text(
            b.error,
            0.98 - 0.3 * level,
            f" {b.name}",
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
            color=colors[b.name],
        )


def edf_plot(
    populations: list[Population],
    weights: dict[str, np.ndarray] | None,
    title: str,
    baselines: list[Baseline] | None = None,
) -> bytes:
    """All populations' error EDFs on one axis (weighted when `weights` is given), and each
    baseline as a labelled vertical line at its error."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for p in populations:
        e = np.sort(p.errors)
        w = np.full(len(e), 1.0 / len(e)) if weights is None else weights[p.label]
        # Fraction of models with error ≤ x: the right-continuous step drawn by ax.step(post).
        x = np.concatenate([[e[0]], e])
        y = np.concatenate([[0.0], weighted_edf(p.errors, w, e, inclusive=True)])
        (line,) = ax.step(x, y, where="post", linewidth=2, label=_legend_label(p))
        noise = p.seed_noise()
        if noise is not None:  # seed noise floor: the EDF shifted by ±σ_seed along the error axis
            sigma = noise["seed_sigma"]
            ax.fill_betweenx(
                y,
                x - sigma,
                x + sigma,
                step="post",
                color=line.get_color(),
                alpha=0.18,
                linewidth=0,
                label=f"{p.label} ± seed σ {sigma:.2f} ({noise['models']} models x {noise['seeds_per_model']:g} seeds)",
            )
    _baseline_lines(ax, baselines or [])
    ax.set_xlabel("top-1 error (%)")
    ax.set_ylabel("cumulative prob." if weights is None else "cumulative prob. (normalized)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=9)
    return _png(figure)


def _natural_log_axis(values: np.ndarray) -> bool:
    """Log x for positive parameters spanning at least a factor of 4 (widths, group widths)."""
    values = values[~np.isnan(values)]
    return len(values) > 0 and values.min() > 0 and values.max() / values.min() >= 4


def params_plot(p: Population, good_ranges: dict[str, dict[str, float]]) -> bytes | None:
    """Error vs each varying design parameter, the bootstrap good range shaded, median dashed."""
    params = [c for c in p.param_columns if pd.to_numeric(p.table[c], errors="coerce").nunique() > 1]
    if not params:
        return None
    cols = min(3, len(params))
    rows = int(np.ceil(len(params) / cols))
    figure = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    for i, param in enumerate(params):
        ax = figure.add_subplot(rows, cols, i + 1)
        values = pd.to_numeric(p.table[param], errors="coerce").to_numpy(dtype=float)
        ax.scatter(values, p.errors, s=14, alpha=0.7, color="tab:blue")
        good = good_ranges.get(param)
        if good and not np.isnan(good["lo"]):
            ax.axvspan(
                good["lo"],
                good["hi"],
                color="tab:green",
                alpha=0.18,
                label=f"95% good range [{good['lo']:.3g}, {good['hi']:.3g}]",
            )
            ax.axvline(good["median"], color="tab:green", linestyle="--", label=f"median {good['median']:.3g}")
            ax.legend(fontsize=7, loc="upper right")
        if _natural_log_axis(values):
            ax.set_xscale("log")
            # Plain numbers (32, 100) on the main ticks and none on the crowded minor ones.
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(param)
        ax.set_ylabel("top-1 error (%)")
        ax.grid(alpha=0.3)
    figure.suptitle(f"{p.label}: error vs design parameters (n={len(p.errors)})")
    return _png(figure)


def _readable_log_axis(axis, values: np.ndarray, formatter) -> None:
    """Several labelled ticks on a log axis whatever the data's span, none of them crowded."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    span = values.max() / values.min() if len(values) else 1.0
    if span < NARROW_SPAN:
        axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    else:  # 1-2-5 per decade; over three decades and more the decades alone
        axis.set_major_locator(LogLocator(subs=LOG_TICKS if span < NARROW_SPAN**3 else (1.0,)))
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(NullFormatter())


def _width_axis_labels(axis, widths: np.ndarray) -> None:
    """Plain channel counts (20, 50, 100, 200), not 2×10¹ or one lone "100"."""
    _readable_log_axis(axis, widths, ScalarFormatter())


def widths_plot(p: Population) -> bytes | None:
    """Per-block widths of the best models with their quantized-linear fits."""
    if "ws" not in p.table or "ds" not in p.table:
        return None
    ranked = p.table.assign(_err=p.errors).sort_values("_err", kind="stable")
    ranked = ranked[
        ranked["ws"].map(lambda v: isinstance(v, list) and len(v) > 0)
        & ranked["ds"].map(lambda v: isinstance(v, list) and len(v) > 0)
    ]
    if ranked.empty:
        return None
    figure = Figure(figsize=(10.5, 4.8), layout="constrained")
    ax = figure.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for rank, (_, row) in enumerate(ranked.head(MAX_WIDTH_MODELS).iterrows()):
        widths = np.asarray(per_block(row["ws"], row["ds"]), dtype=float)
        fit = fit_quantized_linear(widths)
        index = np.arange(len(widths))
        color = colors[rank % len(colors)]
        ax.plot(index, widths, "o-", color=color, markersize=4, label=f"#{rank + 1} err={row['_err']:.2f}")
        ax.plot(
            index,
            np.asarray(fit.widths, dtype=float),
            "--",
            color=color,
            label=f"fit w0={fit.w0:.0f} wa={fit.wa:.1f} wm={fit.wm:.2f} e_fit={fit.e_fit:.3f}",
        )
    ax.set_yscale("log")
    shown = [w for _, row in ranked.head(MAX_WIDTH_MODELS).iterrows() for w in per_block(row["ws"], row["ds"])]
    _width_axis_labels(ax.yaxis, np.asarray(shown, dtype=float))
    ax.set_xlabel("block index")
    ax.set_ylabel("width (channels)")
    ax.set_title(f"{p.label}: per-block widths of the best models, quantized-linear fits")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(figure)


class PowerLaw(NamedTuple):
    exponent: float  # b in y ≈ a·x^b
    coefficient: float  # a
    lo: float  # 95% confidence interval of b (t distribution of the log-log slope)
    hi: float
    n: int  # the points the fit rests on


def power_law_fit(x: np.ndarray, y: np.ndarray, min_points: int = MIN_FIT_POINTS) -> PowerLaw | None:
    """y ≈ a·x^b by least squares in log-log space, with the 95% CI of b; None with fewer than
    `min_points` positive points (and at least 3, for a CI) or fewer than two distinct x."""
    keep = (x > 0) & (y > 0)
    n = int(keep.sum())
    if n < max(3, min_points) or np.unique(x[keep]).size < 2:
        return None
    lx, ly = np.log(x[keep]), np.log(y[keep])
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (slope * lx + intercept)
    se = np.sqrt(np.sum(residual**2) / (n - 2) / np.sum((lx - lx.mean()) ** 2))
    half = float(scipy_stats.t.ppf(0.975, n - 2) * se)
    return PowerLaw(float(slope), float(np.exp(intercept)), float(slope) - half, float(slope) + half, n)


def _log_axis_labels(axis, values: np.ndarray) -> None:
    """Ticks in engineering notation (200M, 500M, 1G): readable and never overlapping."""
    _readable_log_axis(axis, values, EngFormatter(sep=""))


def complexity_plot(populations: list[Population]) -> bytes | None:
    """params and acts vs flops, log-log, one colour per population; the fitted exponent and its
    95% CI in the legend only for a population of at least MIN_FIT_POINTS models."""
    panels = [
        c
        for c in ("params", "acts")
        if any(p.complexity("flops") is not None and p.complexity(c) is not None for p in populations)
    ]
    if not panels:
        return None
    figure = Figure(figsize=(5.2 * len(panels), 4.3), layout="constrained")
    for i, column in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), i + 1)
        for p in populations:
            flops, other = p.complexity("flops"), p.complexity(column)
            if flops is None or other is None:
                continue
            fit = power_law_fit(flops, other)
            text = (
                f" (n={len(flops)}: too few models for a fit, {MIN_FIT_POINTS} needed)"
                if fit is None
                else f": {column} ∝ flops^{fit.exponent:.2f} [95% CI {fit.lo:.2f}, {fit.hi:.2f}], n={fit.n}"
            )
            points = ax.scatter(flops, other, s=14, alpha=0.7, label=f"{p.label}{text}")
            if fit is not None:
                x = np.geomspace(flops[flops > 0].min(), flops.max(), 20)
                ax.plot(x, fit.coefficient * x**fit.exponent, "--", linewidth=1, color=points.get_facecolor()[0][:3])
        ax.set_xscale("log")
        ax.set_yscale("log")
        shown = [(p.complexity("flops"), p.complexity(column)) for p in populations]
        shown = [pair for pair in shown if pair[0] is not None and pair[1] is not None]
        _log_axis_labels(ax.xaxis, np.concatenate([x for x, _ in shown]))
        _log_axis_labels(ax.yaxis, np.concatenate([y for _, y in shown]))
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_xlabel("flops")
        ax.set_ylabel(column)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    figure.suptitle("complexity")
    return _png(figure)


def render_all(
    populations: list[Population], analysis: Analysis, baselines: list[Baseline] | None = None
) -> tuple[dict[str, bytes], list[str]]:
    """Every plot as {file name: PNG bytes}, plus notes on the plots that were skipped."""
    plots = {
        "edf.png": edf_plot(populations, None, "error EDF", baselines),
        "edf_norm.png": edf_plot(populations, analysis.weights, "normalized error EDF", baselines),
    }
    notes: list[str] = []
    for p in populations:
        name = safe_name(p.label)
        if p.param_columns:
            png = params_plot(p, analysis.summary["bootstrap"][p.label])
            if png is None:
                notes.append(f"{p.label}: every design parameter is constant; parameter plot skipped")
            else:
                plots[f"params_{name}.png"] = png
        try:
            png = widths_plot(p)
        except Exception as exc:  # a table's odd widths must not sink the rest of the analysis
            notes.append(f"{p.label}: width plot skipped: {type(exc).__name__}: {exc}")
            continue
        if png is None:
            notes.append(f"{p.label}: no per-stage ws/ds columns; width plot skipped")
        else:
            plots[f"widths_{name}.png"] = png
    png = complexity_plot(populations)
    if png is None:
        notes.append("complexity plot skipped: no population has flops with params or acts")
    else:
        plots["complexity.png"] = png
    return plots, notes
