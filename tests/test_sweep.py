"""Population sweeps through train.py -m: records, the table, kill + rerun, launchers, DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, run_train, subprocess_env

SWEEP = "regnetx-400mf-digits-quick-s0"


def _records(sweep_dir: Path) -> dict[str, dict]:
    """Records by sample directory (sample_NNN, without the run's extra overrides)."""
    return {p.parent.name.split(",")[0]: json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/result.json"))}


def _table(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "population.csv") as f:
        return list(csv.DictReader(f))


def _only_this_sweep(root: Path) -> None:
    """A DDP rank or launcher that re-ran the command would leave other run/sweep dirs."""
    assert [p.name for p in (root / "sweeps").iterdir()] == [SWEEP]
    assert not (root / "runs").exists()


def test_killed_sweep_rerun_finishes_without_retraining(tmp_path):
    # 2 samples of 3 epochs; SIGKILL while sample 1 is between epochs, then the same command again
    args = [
        "-m",
        "sweep.n=2",
        "schedule=quick",
        "schedule.epochs=3",
        "trainer.threads=1",
        "trainer.limit_val_batches=1",
        f"paths.output={tmp_path}",
    ]
    sweep_dir = tmp_path / "sweeps" / SWEEP
    run_dir = {i: sweep_dir / f"sample_00{i},schedule.epochs=3,trainer.limit_val_batches=1" for i in (0, 1)}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (run_dir[1] / "checkpoints" / "last.ckpt").is_file():
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (run_dir[1] / "checkpoints" / "last.ckpt").is_file(), proc.stdout.read()[-3000:]
    assert set(_records(sweep_dir)) == {"sample_000"}, "sample 1 finished before the kill"
    assert _records(sweep_dir)["sample_000"]["status"] == "ok"
    first = run_dir[0] / "result.json"
    first_stat, first_text = first.stat().st_mtime_ns, first.read_text()

    out = run_train(args, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = _records(sweep_dir)
    assert set(recs) == {"sample_000", "sample_001"}  # exactly 2 records
    assert first.stat().st_mtime_ns == first_stat and first.read_text() == first_text  # not retrained
    assert "already has a record" in out.stderr + out.stdout
    assert recs["sample_001"]["status"] == "ok" and recs["sample_001"]["resumed_from_epoch"] >= 1
    assert recs["sample_001"]["epochs"] == 3 and recs["sample_001"]["sample"] == 1
    rows = _table(sweep_dir)
    assert [int(r["sample"]) for r in rows] == [0, 1]
    assert [float(r["top1_err"]) for r in rows] == [recs["sample_000"]["top1_err"], recs["sample_001"]["top1_err"]]
    assert len((sweep_dir / "population.jsonl").read_text().splitlines()) == 2
    assert not list(sweep_dir.glob("*/checkpoints"))  # sweeps drop checkpoints once recorded
    _only_this_sweep(tmp_path)


def test_joblib_runs_two_jobs_in_parallel_without_corrupting_records(tmp_path):
    out = run_train(
        ["-m", "sweep.n=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, f"paths.output={tmp_path}"],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / SWEEP
    recs = _records(sweep_dir)
    assert len(recs) == 2 and {r["sample"] for r in recs.values()} == {0, 1}
    assert all(r["status"] == "ok" for r in recs.values())
    assert len({r["config"]["sample"] for r in recs.values()}) == 2  # each record holds its own job
    assert len(_table(sweep_dir)) == 2
    assert not list(sweep_dir.rglob(".*.tmp"))


def test_submitit_local_runs_a_two_job_multirun(tmp_path):
    out = run_train(
        [
            "-m",
            "sweep.n=2",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            *TINY,
            f"paths.output={tmp_path}",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / SWEEP
    recs = _records(sweep_dir)
    assert sorted(r["sample"] for r in recs.values()) == [0, 1]
    assert all(r["status"] == "ok" for r in recs.values())
    assert (sweep_dir / ".submitit").is_dir() and len(_table(sweep_dir)) == 2


def test_ddp_two_cpu_processes_under_multirun(tmp_path):
    # Lightning's own DDP launcher would re-run `train.py -m ...` in the second rank
    out = run_train(
        [
            "-m",
            "sweep.n=1",
            "trainer=ddp",
            "trainer.devices=2",
            "trainer.accelerator=cpu",
            *TINY,
            f"paths.output={tmp_path}",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    recs = _records(tmp_path / "sweeps" / SWEEP)
    assert list(recs) == ["sample_000"]
    record = recs["sample_000"]
    assert record["status"] == "ok" and record["world_size"] == 2 and record["global_batch"] == 128
    assert record["lr"] == pytest.approx(0.1)  # 0.1 · (64 · 2) / 128
    assert 0 <= record["top1_err"] <= 100
    assert out.stdout.count("top-1 error") == 1  # one metric, reported once (rank 0)
    assert not list((tmp_path / "sweeps").rglob(".ddp"))  # the ranks' config is cleaned up
    _only_this_sweep(tmp_path)


@pytest.mark.slow
def test_ddp_sweep_runs_several_jobs_in_one_process(tmp_path):
    out = run_train(
        [
            "-m",
            "sweep.n=2",
            "trainer=ddp",
            "trainer.devices=2",
            "trainer.accelerator=cpu",
            *TINY,
            f"paths.output={tmp_path}",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    recs = _records(tmp_path / "sweeps" / SWEEP)
    assert sorted(r["sample"] for r in recs.values()) == [0, 1]
    _only_this_sweep(tmp_path)


def test_a_failing_job_is_recorded_the_sweep_goes_on_and_exits_non_zero(tmp_path):
    tree = tmp_path / "broken"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tree / split / cls).mkdir(parents=True)
            (tree / split / cls / "0.jpg").write_bytes(b"not a jpeg")
    out = run_train(
        [
            "-m",
            "sweep.n=1",
            "seed=0,1",
            "data=imagefolder",
            f"data.root={tree}",
            "data.resolution=32",
            "data.workers=0",
            *TINY,
            f"paths.output={tmp_path / 'out'}",
        ],
        tmp_path,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.count(f"error: cannot read image {tree / 'train'}") == 2  # one line per job, naming the file
    recs = [json.loads(p.read_text()) for p in (tmp_path / "out" / "sweeps").rglob("result.json")]
    assert len(recs) == 2 and {r["seed"] for r in recs} == {0, 1}
    assert all(r["status"] == "failed" and "UnidentifiedImageError" in r["error"] for r in recs)
    # two training seeds are two experiments: two populations, each with its own table
    base = tmp_path / "out" / "sweeps" / "regnetx-400mf-imagefolder-quick-s0"
    other = [d for d in base.parent.iterdir() if d.name.startswith(base.name + "-")]
    assert (
        [r["seed"] for r in _table(base)] == ["0"]
        and len(other) == 1
        and [r["seed"] for r in _table(other[0])] == ["1"]
    )
    assert "2 of 2 samples not ok (2 failed)" in out.stderr


def test_seed_replicas_are_a_linked_sub_population_never_in_n(tmp_path):
    from netspaces import record
    from netspaces.analysis.populations import load_populations
    from netspaces.train import identity

    out = run_train(
        ["-m", "sweep.n=2", "sweep.replicas=2", "sweep.replica_models=1", *TINY, f"paths.output={tmp_path}"],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "seed replicas: the first 1 at training seeds 1-2" in out.stderr + out.stdout
    sweep_dir = tmp_path / "sweeps" / SWEEP
    assert sorted(_records(sweep_dir)) == ["sample_000", "sample_001"]  # the population: n = 2
    assert len(_table(sweep_dir)) == 2 and len(record.find_records(sweep_dir)) == 2
    replicas = record.replica_dirs(sweep_dir)
    assert [d.name for d in replicas] == ["seed_1", "seed_2"]
    main_id = identity.read_identity(sweep_dir)["hash"]
    for seed, d in zip((1, 2), replicas):
        (rec,) = record.find_records(d)
        assert (rec["sample"], rec["config"]["seed"], rec["status"]) == (0, seed, "ok")
        assert identity.read_identity(d)["hash"] == rec["identity"] != main_id  # its own identity
        assert len(_table(d)) == 1
    # the same model at another training seed: same architecture, another result
    main0 = _records(sweep_dir)["sample_000"]
    rep = record.find_records(replicas[0])[0]
    assert rep["arch"] == main0["arch"] and rep["top1_err"] != main0["top1_err"]
    (pop,) = load_populations(str(sweep_dir))
    assert len(pop.errors) == 2 and pop.replicas is not None and len(pop.replicas) == 3  # seeds 0, 1, 2 of sample 0
    # a rerun finds everything done: no new records, still exit 0
    again = run_train(
        ["-m", "sweep.n=2", "sweep.replicas=2", "sweep.replica_models=1", *TINY, f"paths.output={tmp_path}"],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(record.find_records(replicas[1])) == 1


def test_bad_replica_counts_are_refused_before_anything_runs(tmp_path):
    out = run_train(["-m", "sweep.n=2", "sweep.replicas=-1", *TINY, f"paths.output={tmp_path}"], tmp_path)
    assert out.returncode == 2
    assert "sweep.replicas" in out.stderr and ">= 0" in out.stderr
    assert not (tmp_path / "sweeps").exists()


def test_an_explicit_sweep_dir_gets_its_table_and_no_false_alarm(tmp_path):
    custom = tmp_path / "mine"
    out = run_train(
        ["-m", "sweep.n=1", *TINY, f"paths.output={tmp_path}", f"hydra.sweep.dir={custom}"],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "holds another experiment" not in out.stderr
    assert f"population: 1 records (1 ok) -> {custom / 'population.csv'}" in out.stdout
    assert len(_table(custom)) == 1
