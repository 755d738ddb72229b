"""`make scale-study`: the pre-declared CPU scale study (protocols/scale_study.yaml).

For each row of the study's grid (epochs x images per class), cheapest first, and each of its
confirmatory sweep seeds, trains RegNetX and AnyNetX_A populations under the base protocol's
every other choice, then exports each population's small table to docs/findings/scale/ and
regenerates docs/findings.md (scripts/findings.py). Rerunning the same command resumes: a
finished model is never trained again. The first row is the base protocol's own setting,
already run by `make reproduce-small` for its confirmatory seeds: its tables are exported
from REUSE_FROM, never retrained. Training stops before a row whose estimated cost would take
the study past its declared core-hour cap, and the row is reported as not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import populations as pop  # noqa: E402
from netspaces.errors import UserError  # noqa: E402
from netspaces.protocol import load_protocol  # noqa: E402

PROG = "scale-study"
FINDINGS = pop.REPO / "docs" / "findings" / "scale"


def row_name(row: dict) -> str:
    return f"e{row['epochs']}-pc{row['per_class']}"


def setups(study, base, row: dict, seeds, a) -> list[pop.Setup]:
    return [
        pop.Setup(
            tuple(study["spaces"]),
            int(study["models_per_space"]),
            int(row["epochs"]),
            str(base["regime"]),
            int(row["per_class"]),
            a.data_root.resolve(),
            a.out.resolve(),
            int(seed),
            "joblib",
            a.jobs,
            stem=str(base["stem"]),
            draw=str(base["draw"]),
            protocol=study.hash,
        )
        for seed in seeds
    ]


def spent_core_seconds(sweep_dirs: list[Path]) -> tuple[float, float]:
    """(core-seconds trained, image-epochs trained) over the study's records so far: each
    fit's process CPU time (train_cpu_s; wall time for a record made before it existed)."""
    from netspaces.record import find_records

    seconds = work = 0.0
    for d in sweep_dirs:
        for r in find_records(d) if d.is_dir() else []:
            seconds += float(r.get("train_cpu_s") or r.get("train_time_s") or 0)
            cfg = r.get("config") or {}
            work += float(r.get("epochs") or 0) * float((cfg.get("data") or {}).get("limit_per_class") or 0)
    return seconds, work


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=Path(pop._env("DATA_ROOT", str(pop.DEFAULT_DATA))))
    p.add_argument("--out", type=Path, default=Path(pop._env("OUT", str(pop.REPO / "outputs/paper/scale_study"))))
    p.add_argument(
        "--reuse-from",
        type=Path,
        default=Path(pop._env("REUSE_FROM", str(pop.REPO / "outputs/paper/reproduce_small"))),
        help="the `make reproduce-small` output holding the base protocol's confirmatory sweeps (first row)",
    )
    p.add_argument("--jobs", type=int, default=int(pop._env("JOBS", str(len(os.sched_getaffinity(0))))))
    p.add_argument("--plan", action="store_true", help="print the rows, seeds and cost estimate; train nothing")
    p.add_argument("--no-train", action="store_true", help="export the tables of what has run and rebuild findings")
    a = p.parse_args(argv)
    try:
        study = load_protocol("scale_study")
        base = load_protocol(study["base"])
        if not a.plan and study.is_committed() is False:
            raise UserError(f"{study.path} differs from its committed version; the study runs only as committed")
        if a.jobs < 1:
            raise UserError(f"JOBS must be >= 1; got {a.jobs}")
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    first, *rows = study["grid"]
    cap = float(study["cpu_hours_cap"]) * 3600
    print(f"study {study.label} over {base.label}; cap {cap / 3600:g} core-hours", flush=True)

    # first row: the base protocol's confirmatory sweeps, as run
    reuse = pop.Setup(
        tuple(study["spaces"]), int(base["models_per_space"]), int(first["epochs"]), str(base["regime"]),
        int(first["per_class"]), a.data_root.resolve(), a.reuse_from.resolve(), 0, "joblib", a.jobs,
        stem=str(base["stem"]), draw=str(base["draw"]),
    )  # fmt: skip
    for seed in base["confirmatory_seeds"]:
        for space in study["spaces"]:
            src = replace(reuse, seed=int(seed)).sweep_dir(space)
            dest = FINDINGS / f"{row_name(first)}-s{seed}-{space}.csv"
            if a.plan:
                print(f"  {row_name(first)} seed {seed} {space}: reused from {src}")
            elif src.is_dir():
                print(f"{dest.name}: {pop.export(src, dest, base.hash)} models (reused: {src})", flush=True)
            elif not dest.is_file():
                print(f"WARNING: {src} is missing: row {row_name(first)} seed {seed} {space} has no table", flush=True)

    all_dirs = [
        s.sweep_dir(sp)
        for row in rows
        for s in setups(study, base, row, study["confirmatory_seeds"], a)
        for sp in s.spaces
    ]
    per_model = 37.0 / (5 * 500)  # core-seconds per image-epoch-per-class, measured (the study file's estimate)
    not_run = []
    for row in rows:
        group = setups(study, base, row, study["confirmatory_seeds"], a)
        spent, work = spent_core_seconds(all_dirs)
        rate = spent / work if work > 0 else per_model
        n_models = len(group) * len(study["spaces"]) * int(study["models_per_space"])
        done_work = spent_core_seconds([s.sweep_dir(sp) for s in group for sp in s.spaces])[1]
        left = max(0.0, n_models * row["epochs"] * row["per_class"] - done_work) * rate
        line = f"row {row_name(row)}: ~{left / 3600:.2f} core-h left; study so far {spent / 3600:.2f} of {cap / 3600:g}"
        print(line, flush=True)
        if a.plan:
            continue
        if a.no_train:
            for s in group:
                for space in (sp for sp in s.spaces if s.sweep_dir(sp).is_dir()):
                    dest = FINDINGS / f"{row_name(row)}-s{s.seed}-{space}.csv"
                    print(f"{dest.name}: {pop.export(s.sweep_dir(space), dest, study.hash)} models so far", flush=True)
            continue
        if spent + left > cap:
            print(f"CAP: row {row_name(row)} would take the study past {cap / 3600:g} core-hours: not run", flush=True)
            not_run.append(row_name(row))
            continue
        for s in group:
            for space in s.spaces:
                pop.step(f"{row_name(row)} seed {s.seed}: train {space}")
                dest = FINDINGS / f"{row_name(row)}-s{s.seed}-{space}.csv"
                pop.train_and_export(s, space, dest, study.hash, {"row": row_name(row), "seed": s.seed, "space": space})
    if a.plan:
        return 0
    if not_run:
        (FINDINGS / "not_run.json").write_text(json.dumps(not_run) + "\n")
    import findings

    return findings.main([])


if __name__ == "__main__":
    raise SystemExit(main())
