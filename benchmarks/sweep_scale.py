"""sweep_scale: the bookkeeping of thousand-model sweeps, shown to scale where training cannot
(a stub training function stands in for it; the record and table code is the real one).

The in-process parts run in a memory file system (/dev/shm) where there is one (`memory_dir`),
and their ratios are of CPU seconds (time.process_time: what the code costs, whatever else
shares the machine); wall seconds are in the details.

- `sweep_scale_collect`: `netspaces collect` (a full rebuild of the table from the records) of
  10,000 records against 10 x that of 1,000: R >= 1 when it grows at most linearly.
- `sweep_scale_job_finish`: what a finishing job adds to its run (write its record, add its row
  to the table: `sweep.refresh_population`) with 10,000 siblings against 100: R ~ 1 is O(1).
  Before this benchmark every job rebuilt the whole table: that cost at both sizes is in
  details (`full_rebuild_s`).
- `sweep_scale_stub_sweep`: a 10,000-model sweep in-process: each job writes its record and
  adds its row, as a sweep's job does; R = seconds per job of the first 1,000 jobs / the last
  1,000 (~1: no job pays for its predecessors). Details: files created, and whether the table
  the jobs left equals a rebuild from the records.
- `sweep_scale_launcher`: `train.py -m` through Hydra's basic launcher with training stubbed
  out (a subprocess; the sweep callback, identity, record and table code are the real ones):
  seconds per job of a 200-job sweep against a 20-job one; details: files created per job and
  the table's correctness.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, Result, compose_train, main, median, worker_env

# per mode: (big sweep, small collect, few siblings, finishing jobs timed, launcher jobs big/small, repeats)
PLAN = {
    "full": (10_000, 1_000, 100, 40, (200, 20), 5),
    "quick": (2_000, 200, 100, 20, (50, 10), 1),
    "toy": (40, 4, 4, 3, (3, 1), 1),
}
IDENTITY = "0" * 64
OVERRIDES = ["space=regnetx", "regime=400mf", "schedule=population", "sweep.n=10000"]


def template() -> dict:
    """A realistic record (the real config, a 10-epoch history, a RegNet's arch) to copy."""
    from netspaces.record import Record

    cfg = compose_train([*OVERRIDES, "paths.run_dir=/nonexistent"])
    from omegaconf import OmegaConf

    history = [
        {"epoch": e, "train_loss": 2.0 / e, "lr": 0.1, "epoch_time_s": 12.3, "top1_err": 60.0 - e} for e in range(1, 11)
    ]
    arch = {"ws": [24, 56, 152, 368], "ds": [1, 3, 7, 12], "gs": [8, 8, 8, 8], "bs": [1, 1, 1, 1]}
    arch.update({"block": "x", "d": 23, "w0": 24, "wa": 36.44, "wm": 2.49, "b": 1.0, "g": 8})
    return Record(
        status="ok",
        name="regnetx-400mf-s0",
        space="regnetx",
        regime="400mf",
        block="x",
        sweep_seed=0,
        seed=0,
        model="sampled",
        arch=arch,
        flops=399_000_000,
        params=5_100_000,
        acts=6_200_000,
        top1_err=41.2,
        top1_err_best=40.9,
        top5_err=18.0,
        epochs=10,
        epochs_planned=10,
        train_time_s=1234.5,
        identity=IDENTITY,
        history=history,
        config=OmegaConf.to_container(cfg, resolve=False),
    ).to_dict()


def start_sweep(sweep_dir: Path) -> None:
    """What a sweep does before its jobs: the directory's identity, its table, its counts."""
    from netspaces import record

    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / record.IDENTITY_FILE).write_text(json.dumps({"hash": IDENTITY}))
    record.write_population(sweep_dir)
    record.start_progress(sweep_dir, "2026-01-01T00:00:00+00:00")


def finish_job(sweep_dir: Path, base: dict, sample: int) -> tuple[float, float]:
    """One job's end after its (stubbed) training, as hydra_job does it: wall and CPU seconds."""
    from netspaces import record
    from netspaces.train.sweep import refresh_population

    t0, c0 = time.perf_counter(), time.process_time()
    run_dir = sweep_dir / f"sample_{sample:05d}"
    rec = copy.deepcopy(base)
    rec.update(sample=sample, run_dir=str(run_dir), top1_err=40.0 + (sample % 97) / 10)
    rec["finished_at"] = f"2026-01-02T{sample // 3600 % 24:02d}:{sample // 60 % 60:02d}:{sample % 60:02d}+00:00"
    prior = record.read_record(run_dir)
    record.write_record(run_dir, record.Record(**rec))
    refresh_population(sweep_dir, rec, prior)
    return time.perf_counter() - t0, time.process_time() - c0


def stub_sweep(sweep_dir: Path, base: dict, n: int) -> list[tuple[float, float]]:
    start_sweep(sweep_dir)
    return [finish_job(sweep_dir, base, i) for i in range(n)]


def table_matches_rebuild(sweep_dir: Path) -> bool:
    """The table the jobs left (rows in the order they ended) holds the rows a rebuild from
    the records writes (in sample order)."""
    import csv

    from netspaces import record

    def rows() -> tuple[list, list]:
        jsonl = [json.loads(line) for line in (sweep_dir / record.TABLE_JSONL).read_text().splitlines()]
        with open(sweep_dir / record.TABLE_CSV, newline="") as f:
            table = list(csv.DictReader(f))
        key = lambda r: int(r["sample"])  # noqa: E731
        return sorted(jsonl, key=key), sorted(table, key=key)

    incremental = rows()
    record.write_population(sweep_dir)
    return incremental == rows()


def files_below(d: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(d))


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of fn()."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def launcher_sweep(out: Path, n: int) -> tuple[float, dict]:
    """`train.py -m sweep.n=N` with the training stubbed (this file, --stub-sweep): wall seconds
    and what it left."""
    from netspaces import record

    args = ["-m", *OVERRIDES[:-1], f"sweep.n={n}", "data=digits", f"paths.output={out}", "logger=csv"]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--stub-sweep", *args],
        cwd=REPO,
        env=worker_env(WANDB_MODE="offline", OMP_WAIT_POLICY="PASSIVE"),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"stub sweep failed:\n{done.stderr[-2000:]}")
    (sweep_dir,) = (out / "sweeps").iterdir()
    table = [json.loads(line) for line in (sweep_dir / record.TABLE_JSONL).read_text().splitlines()]
    records = record.find_records(sweep_dir)
    correct = [r["sample"] for r in table] == list(range(n)) and all(r["status"] == "ok" for r in table)
    correct = correct and [r["top1_err"] for r in table] == [r["top1_err"] for r in records]
    return seconds, {"jobs": n, "files": files_below(out), "table_correct": correct}


def memory_dir() -> str | None:
    """Where the in-process sweeps live: a memory file system when there is one, so that what
    is measured is the bookkeeping's scaling, not the disk's fsync latency (a constant per job,
    ~4 ms here and up to ~15 ms when other processes write; the launcher part runs on disk)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def run(mode: str = "full") -> list[Result]:
    big, small, few, timed_jobs, (l_big, l_small), repeats = PLAN[mode]
    base = template()
    results = []
    with tempfile.TemporaryDirectory(dir=memory_dir()) as tmp:
        root = Path(tmp)
        # a sweep of `big` models, in-process
        per_job = stub_sweep(root / "big", base, big)
        block = max(1, big // 10)
        first, last = per_job[:block], per_job[-block:]
        correct = table_matches_rebuild(root / "big")
        results.append(
            Result(
                "sweep_scale_stub_sweep",
                mean(c for _, c in last),
                mean(c for _, c in first),
                "cpu_s/job",
                higher_is_better=False,
                target=0.8,
                details={
                    "jobs": big,
                    "wall_s": round(sum(w for w, _ in per_job), 2),
                    "first_jobs_wall_s_per_job": mean(w for w, _ in first),
                    "last_jobs_wall_s_per_job": mean(w for w, _ in last),
                    "block": block,
                    "files": files_below(root / "big"),
                    "table_correct": correct,
                    "where": tmp,
                },
            )
        )
        # collect: big against small
        stub_sweep(root / "small", base, small)
        from netspaces import record

        t_big, t_small = [], []
        for i in range(repeats):
            pair = [(root / "big", t_big), (root / "small", t_small)]
            for d, out in pair[:: 1 if i % 2 == 0 else -1]:
                out.append(timed(lambda d=d: record.write_population(d)))
        cpu = median([c for _, c in t_big]), median([c for _, c in t_small])
        wall = median([w for w, _ in t_big]), median([w for w, _ in t_small])
        results.append(
            Result(
                "sweep_scale_collect",
                cpu[0],
                cpu[1] * big / small,
                "cpu_s",
                higher_is_better=False,
                target=0.8,
                details={
                    "records": [big, small],
                    "cpu_s": list(cpu),
                    "wall_s": list(wall),
                    "ratio": cpu[0] / cpu[1],
                    "wall_ratio": wall[0] / wall[1],
                },
            )
        )
        # a finishing job with `big` siblings against `few`
        stub_sweep(root / "few", base, few)
        j_big, j_few = [], []
        for k in range(timed_jobs):
            pair = [(root / "big", j_big, big), (root / "few", j_few, few)]
            for d, out, n in pair[:: 1 if k % 2 == 0 else -1]:
                out.append(finish_job(d, base, n + k))
        rebuild = {
            n: timed(lambda d=d: record.write_population(d))[0] for n, d in ((big, root / "big"), (few, root / "few"))
        }
        results.append(
            Result(
                "sweep_scale_job_finish",
                median([c for _, c in j_big]),
                median([c for _, c in j_few]),
                "cpu_s",
                higher_is_better=False,
                target=0.8,
                details={
                    "siblings": [big, few],
                    "jobs_timed": timed_jobs,
                    "wall_s": [median([w for w, _ in j_big]), median([w for w, _ in j_few])],
                    "full_rebuild_wall_s": rebuild,
                },
            )
        )
    # the real launcher
    with tempfile.TemporaryDirectory() as tmp:
        s_big, d_big = launcher_sweep(Path(tmp) / "big", l_big)
        s_small, d_small = launcher_sweep(Path(tmp) / "small", l_small)
    results.append(
        Result(
            "sweep_scale_launcher",
            s_big / l_big,
            s_small / l_small,
            "s/job",
            higher_is_better=False,
            details={
                "big": {**d_big, "seconds": s_big},
                "small": {**d_small, "seconds": s_small},
                "table_correct": d_big["table_correct"] and d_small["table_correct"],
            },
        )
    )
    return results


def _stub_train(cfg, *, in_sweep: bool = False) -> dict:
    """In place of training: the record a run would write (real settings, identity and record
    code; a fixed history)."""
    from netspaces import record
    from netspaces.train import identity
    from netspaces.train.results import make_record, network_stub
    from netspaces.train.settings import run_settings

    s = run_settings(cfg)
    ident, _ = identity.of(cfg)
    history = [{"epoch": e, "train_loss": 1.0, "top1_err": 50.0 - e} for e in range(1, 11)]
    info = {**network_stub(s), "name": f"stub-{s.model.sample}", "flops": 1, "params": 1, "acts": 1}
    rec = make_record(s, cfg, info, "ok", identity=ident, history=history, train_time_s=0.0)
    record.write_record(s.run_dir, rec)
    return rec.to_dict()


if __name__ == "__main__" and sys.argv[1:2] == ["--stub-sweep"]:
    import runpy

    import netspaces.train.run

    netspaces.train.run.train = _stub_train
    sys.argv = [str(REPO / "train.py"), *sys.argv[2:]]
    runpy.run_path(str(REPO / "train.py"), run_name="__main__")
elif __name__ == "__main__":
    main(run, __doc__)
