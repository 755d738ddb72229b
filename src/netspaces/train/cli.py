"""`netspaces collect SWEEP_DIR`: rebuild a sweep's population table from its records."""

from __future__ import annotations

import argparse
from pathlib import Path

from netspaces.errors import UserError
from netspaces.train import records


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `collect` subcommand; its handler is `args.func` (= `run`)."""
    parser = subparsers.add_parser(
        "collect", help="rebuild population.csv/.jsonl of a sweep from its result.json records",
        description="Reads every result.json below SWEEP_DIR and writes SWEEP_DIR/population.csv "
                    "and SWEEP_DIR/population.jsonl (one row per trained model).")
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    sweep_dir: Path = args.sweep_dir
    if not sweep_dir.is_dir():
        raise UserError(f"collect: {sweep_dir} is not a directory (give a sweep directory, "
                        "e.g. outputs/sweeps/regnetx-400mf-digits-population-s0)")
    n, paths = records.write_population(sweep_dir)
    if n == 0:
        raise UserError(f"collect: no {records.RECORD} below {sweep_dir}")
    counts = {}
    for r in records.find_records(sweep_dir):
        counts[r.get("status")] = counts.get(r.get("status"), 0) + 1
    status = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
    print(f"{n} records ({status}) -> {paths[1]}, {paths[0]}")
    return 0
