"""The analysis pipeline: load populations, compute, render, then write everything at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from netspaces.analysis import bootstrap, stats
from netspaces.analysis.baselines import check_identities, load_baselines
from netspaces.analysis.plots import render_all
from netspaces.analysis.populations import Population, load_populations, unique_labels
from netspaces.analysis.report import build_html, write_outputs
from netspaces.analysis.summary import NORM_CHOICES, Analysis, summarize
from netspaces.errors import UserError


@dataclass
class AnalyzeResult:
    populations: list[Population]
    analysis: Analysis
    written: list[Path]


def analyze(
    inputs: list[str],
    out: Path,
    labels: list[str] | None = None,
    norm: str = "flops",
    bins: int | None = None,
    n_boot: int = bootstrap.DEFAULT_N_BOOT,
    seed: int = 0,
    alpha: float = stats.DEFAULT_ALPHA,
    power: float = stats.DEFAULT_POWER,
    baselines: list[str] | None = None,
) -> AnalyzeResult:
    """Load, compute and render everything, then (only then) write it all into `out`.
    `baselines`: sweep directories or tables of trained baselines (analysis/baselines.py)."""
    if norm not in NORM_CHOICES:
        raise UserError(f"analyze: --norm {norm!r} is not one of {', '.join(NORM_CHOICES)}")
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"analyze: --out {out} is a file; give a directory")
    if labels and len(labels) != len(inputs):
        raise UserError(
            f"analyze: {len(labels)} --label value(s) for {len(inputs)} INPUT(s); give one --label per INPUT or none"
        )
    populations = [
        p for i, source in enumerate(inputs) for p in load_populations(str(source), labels[i] if labels else None)
    ]
    distinct = unique_labels([p.label for p in populations])
    renamed = [f"{p.label!r} -> {new!r}" for p, new in zip(populations, distinct) if p.label != new]
    for p, new in zip(populations, distinct):
        p.label = new
    found = load_baselines([str(b) for b in baselines]) if baselines else None
    if found is not None:
        check_identities(found, populations)
    analysis = summarize(
        populations, norm=norm, bins=bins, n_boot=n_boot, seed=seed, alpha=alpha, power=power, baselines=found
    )
    if renamed:
        analysis.notes.append("repeated labels renamed: " + ", ".join(renamed))
    plots, plot_notes = render_all(populations, analysis, found.baselines if found else None)
    analysis.notes.extend(plot_notes)
    html_text = build_html(analysis, plots, sources={p.label: p.source for p in populations}, populations=populations)
    written = write_outputs(Path(out), analysis, plots, html_text)
    return AnalyzeResult(populations=populations, analysis=analysis, written=written)
