"""sweep.retries: a failed sample is tried again inside its job, from its last checkpoint;
the record says which attempt wrote it; finished samples are never trained again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY, subprocess_env
from netspaces.errors import DataError
from netspaces.train.retry import with_retries

SWEEP = "regnetx-400mf-digits-quick-s0"


def _sweep(tmp_path: Path, *args: str, fail_sample: int, times: int) -> subprocess.CompletedProcess:
    """A digits sweep where sample `fail_sample` raises at the start of its second epoch, the
    first `times` times (tests/sweep_callbacks.py)."""
    env = subprocess_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO / "tests")])
    fail = "+hydra.callbacks.fail."
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        *TINY,
        f"paths.output={tmp_path / 'out'}",
        *args,
        f"{fail}_target_=sweep_callbacks.FailInEpochTwo",
        f"{fail}sample={fail_sample}",
        f"{fail}times={times}",
        f"{fail}log={tmp_path / 'failures.log'}",
    ]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _records(sweep_dir: Path) -> dict[int, dict]:
    return {r["sample"]: r for r in map(json.loads, map(Path.read_text, sweep_dir.glob("sample_*/result.json")))}


def _failures(tmp_path: Path) -> int:
    log = tmp_path / "failures.log"
    return log.read_text().count("\n") if log.is_file() else 0


def test_a_failed_sample_is_retried_from_its_checkpoint_and_finished_ones_are_not_retrained(tmp_path):
    sweep_dir = tmp_path / "out" / "sweeps" / SWEEP
    once = _sweep(tmp_path, "sweep.n=2", fail_sample=1, times=1)  # sweep.retries: its default, 1
    assert once.returncode == 0, once.stderr[-3000:]
    assert _failures(tmp_path) == 1
    log = once.stdout + once.stderr
    assert log.count("failed on attempt 1 of 2 (RuntimeError: injected failure): trying again") == 1
    recs = _records(sweep_dir)
    assert recs[0]["status"] == "ok" and recs[0]["attempt"] == 1
    assert recs[1]["status"] == "ok" and recs[1]["attempt"] == 2
    assert recs[1]["resumed_from_epoch"] == 1 and recs[1]["epochs"] == 2  # went on from its epoch-1 checkpoint
    finished = {i: next(sweep_dir.glob(f"sample_00{i}*/result.json")).stat().st_mtime_ns for i in (0, 1)}

    # sample 2 fails every time: 1 + sweep.retries attempts, then a failed record; 0 and 1 are skipped
    always = _sweep(tmp_path, "sweep.n=3", "sweep.retries=2", fail_sample=2, times=99)
    assert always.returncode == 1
    assert _failures(tmp_path) == 1 + 3
    log = always.stdout + always.stderr
    assert "failed on attempt 2 of 3" in log and "attempt 3 of 3" not in log
    assert log.count("already has a record") == 2
    recs = _records(sweep_dir)
    assert recs[2]["status"] == "failed" and recs[2]["attempt"] == 3 and "injected failure" in recs[2]["error"]
    for i in (0, 1):
        assert next(sweep_dir.glob(f"sample_00{i}*/result.json")).stat().st_mtime_ns == finished[i]
    assert "1 of 1 samples not ok (1 failed)" in always.stderr


@pytest.mark.slow
def test_a_job_whose_ddp_rank_died_is_retried_with_new_ranks(tmp_path):
    from test_ddp_failfast import _records as ddp_records
    from test_ddp_failfast import _sweep_killing_rank_1

    code, out, pids = _sweep_killing_rank_1(tmp_path, ["sweep.n=1"], kill_after=None)  # rank 1 killed once
    assert code == 0, out[-3000:]
    assert "failed on attempt 1 of 2 (RankFailed: DDP rank 1 of 2 died (killed by SIGKILL)" in out
    rec = ddp_records(tmp_path)["sample_000"]
    assert rec["status"] == "ok" and rec["attempt"] == 2 and rec["world_size"] == 2


def test_what_is_not_retried_and_what_is():
    calls = []

    def unreadable(n):
        calls.append(n)
        raise DataError("cannot read image x.jpg")

    with pytest.raises(DataError):
        with_retries(unreadable, 3, "run")
    assert calls == [1]  # the same bytes would be read again

    def flaky(n):
        calls.append(n)
        if n < 3:
            raise OSError("stale file handle")
        return {"status": "ok", "attempt": n}

    calls.clear()
    assert with_retries(flaky, 2, "run") == {"status": "ok", "attempt": 3} and calls == [1, 2, 3]
    calls.clear()
    with pytest.raises(OSError):
        with_retries(flaky, 0, "run")
    assert calls == [1]
