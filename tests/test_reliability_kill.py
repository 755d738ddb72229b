"""SIGKILL at seeded random moments of a real sweep, then the same command: nothing lost,
nothing retrained, nothing corrupt, and the same numbers as a sweep that was never killed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow

ARGS = [
    "-m",
    "sweep.n=3",
    "schedule=quick",
    "schedule.epochs=4",
    "trainer.threads=1",
    "trainer.limit_train_batches=10",
    "trainer.limit_val_batches=2",
]
SWEEP = "regnetx-400mf-digits-quick-s0"


def _records(out):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "sweeps" / SWEEP).rglob("result.json")}


def test_sigkill_at_twelve_random_moments_loses_and_repeats_nothing(tmp_path):
    cmd = [sys.executable, str(REPO / "train.py"), *ARGS]
    env = subprocess_env(tmp_path)
    reference = subprocess.run(
        [*cmd, f"paths.output={tmp_path / 'ref'}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = {name: r["top1_err"] for name, r in _records(tmp_path / "ref").items()}

    rng = random.Random(12)
    finished: dict[tuple[str, str], str] = {}  # (sweep, sample) -> finished_at of its ok record: never changes
    outs = [tmp_path / "killed-0"]
    kills = 0
    while kills < 12:  # a sweep that finishes between kills is done; the kills go on in a fresh one
        out = outs[-1]
        proc = subprocess.Popen(
            [*cmd, f"paths.output={out}"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.0, 8.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0
            outs.append(tmp_path / f"killed-{len(outs)}")
        for name, rec in _records(out).items():  # every record on disk is whole JSON
            if rec["status"] == "ok":
                key = (out.name, name)
                assert finished.setdefault(key, rec["finished_at"]) == rec["finished_at"], f"{key} retrained"

    for out in outs:
        done = subprocess.run(
            [*cmd, f"paths.output={out}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        recs = _records(out)
        assert sorted(recs) == sorted(expected) and {r["status"] for r in recs.values()} == {"ok"}
        for name, rec in recs.items():
            assert rec["finished_at"] == finished.get((out.name, name), rec["finished_at"])  # never retrained
            assert rec["top1_err"] == expected[name]  # resumed or not, the same model
        assert not [p for p in (out / "sweeps").rglob("*") if ".tmp" in p.name]
    assert kills == 12 and any(r["resumed_from_epoch"] for out in outs for r in _records(out).values())
