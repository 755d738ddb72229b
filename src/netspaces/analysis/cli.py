"""`netspaces analyze INPUT... --out DIR`: compare populations, write tables, plots, a report.

The main CLI calls `register(subparsers)`; the chosen subcommand's `run(args)` returns the
exit code. Bad input raises UserError, which the main CLI prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from netspaces.analysis import bootstrap
from netspaces.analysis.plots import render_all
from netspaces.analysis.report import build_html, write_outputs
from netspaces.analysis.summary import NORM_CHOICES, Analysis, format_summary, summarize
from netspaces.analysis.tables import Population, load_population, unique_labels
from netspaces.errors import UserError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `analyze` subcommand; its handler is `args.func` (= `run`)."""
    parser = subparsers.add_parser(
        "analyze", help="compare populations: EDFs, KS, bootstrap, plots, HTML report",
        description="Each INPUT is one population: a sweep directory, a CSV/JSONL table with "
                    "one row per model and a top1_err column, or wandb://entity/project/group.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="directory for summary.json, edf.csv, plots and report.html")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="population label, once per INPUT in order "
                             "(default: the table's space, else the file/dir name)")
    parser.add_argument("--norm", choices=NORM_CHOICES, default="flops",
                        help="complexity used by the normalized EDF (default: flops)")
    parser.add_argument("--bins", type=_positive_int, default=None, metavar="K",
                        help="complexity bins of the normalized EDF "
                             "(default: min(10, floor(sqrt(n))) for the smallest population)")
    parser.add_argument("--n-boot", type=_positive_int, default=bootstrap.DEFAULT_N_BOOT,
                        metavar="N", help="bootstrap repeats (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the table and plots to W&B (offline without a key; run "
                             "files go under WANDB_DIR, else under --out)")
    parser.add_argument("--wandb-project", default="netspaces", metavar="NAME")
    parser.add_argument("--wandb-group", default=None, metavar="NAME",
                        help="W&B group (default: the first INPUT's sweep/file name)")
    parser.set_defaults(func=run)
    return parser


@dataclass
class AnalyzeResult:
    populations: list[Population]
    analysis: Analysis
    written: list[Path]


def analyze(inputs: list[str], out: Path, labels: list[str] | None = None, norm: str = "flops",
            bins: int | None = None, n_boot: int = bootstrap.DEFAULT_N_BOOT,
            seed: int = 0) -> AnalyzeResult:
    """Load, compute and render everything, then (only then) write it all into `out`."""
    if norm not in NORM_CHOICES:
        raise UserError(f"analyze: --norm {norm!r} is not one of {', '.join(NORM_CHOICES)}")
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"analyze: --out {out} is a file; give a directory")
    if labels and len(labels) != len(inputs):
        raise UserError(f"analyze: {len(labels)} --label value(s) for {len(inputs)} INPUT(s); "
                        "give one --label per INPUT or none")
    populations = [load_population(str(source), labels[i] if labels else None)
                   for i, source in enumerate(inputs)]
    distinct = unique_labels([p.label for p in populations])
    renamed = [f"{p.label!r} -> {new!r}" for p, new in zip(populations, distinct) if p.label != new]
    for p, new in zip(populations, distinct):
        p.label = new
    analysis = summarize(populations, norm=norm, bins=bins, n_boot=n_boot, seed=seed)
    if renamed:
        analysis.notes.append("repeated labels renamed: " + ", ".join(renamed))
    plots, plot_notes = render_all(populations, analysis)
    analysis.notes.extend(plot_notes)
    html_text = build_html(analysis, plots, sources={p.label: p.source for p in populations})
    written = write_outputs(Path(out), analysis, plots, html_text)
    return AnalyzeResult(populations=populations, analysis=analysis, written=written)


def run(args: argparse.Namespace) -> int:
    """Handler of `netspaces analyze`: analyze, print a compact summary and the files written."""
    result = analyze(args.inputs, args.out, labels=args.label, norm=args.norm, bins=args.bins,
                     n_boot=args.n_boot, seed=args.seed)
    print(format_summary(result.analysis))
    print(f"wrote {len(result.written)} files in {args.out}:")
    for path in result.written:
        print(f"  {path}")
    if getattr(args, "wandb", False):
        from netspaces.analysis.wandb_log import log_to_wandb

        group = args.wandb_group or _default_group(args.inputs[0])
        run_dir = log_to_wandb({p.label: p.table for p in result.populations},
                               result.analysis.summary,
                               {p.name: p for p in result.written if p.suffix == ".png"},
                               project=args.wandb_project, group=group,
                               run_dir=Path(os.environ.get("WANDB_DIR") or args.out))
        if run_dir is not None:
            print(f"W&B run (group {group}): {run_dir}")
    return 0


def _default_group(source: str) -> str:
    """A sweep's W&B group is its name: the directory (or the table's parent for population.*)."""
    if source.startswith("wandb://"):
        return source.rstrip("/").split("/")[-1]
    path = Path(source)
    if path.is_dir():
        return path.resolve().name
    return path.parent.resolve().name if path.stem == "population" else path.stem
