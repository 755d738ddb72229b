"""`netspaces analyze INPUT... --out DIR`: compare populations, write tables, plots, a report.

The main CLI calls `register(subparsers)`; the chosen subcommand's `run(args)` returns the
exit code. Bad input raises UserError, which the main CLI prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Heavy modules (pandas, scipy, matplotlib) load in run(), so `netspaces describe` stays fast.
NORM_CHOICES = ("flops", "params", "acts", "none")
DEFAULT_N_BOOT = 10_000


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
    parser.add_argument("--n-boot", type=_positive_int, default=DEFAULT_N_BOOT,
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


def run(args: argparse.Namespace) -> int:
    """Handler of `netspaces analyze`: analyze, print a compact summary and the files written."""
    from netspaces.analysis.pipeline import analyze
    from netspaces.analysis.summary import format_summary

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
