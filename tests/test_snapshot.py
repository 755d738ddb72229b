"""Code snapshots: a sweep's jobs run the code it started with, even when the checkout is
edited while they wait; a rerun reuses the snapshot; new code is refused unless opted in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY, subprocess_env
from netspaces.train import snapshot
from sweep_callbacks import edit_checkout

SWEEP = "regnetx-400mf-digits-quick-s0"
EDIT = ["+hydra.callbacks.edit._target_=sweep_callbacks.EditCheckout"]
SUBMITIT = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]  # a task is a new process, like SLURM's


def _checkout(tmp_path: Path) -> Path:
    """A copy of what a run executes, to edit freely (the real checkout stays untouched)."""
    tree = tmp_path / "checkout"
    snapshot.copy_code(REPO, tree)
    return tree


def _train(tree: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(REPO / "tests")])
    cmd = [sys.executable, str(tree / "train.py"), "-m", *TINY, f"paths.output={tmp_path / 'out'}", *args]
    if any(a.startswith("+hydra.callbacks.edit.") for a in args):
        cmd.append(f"+hydra.callbacks.edit.checkout={tree}")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _records(sweep_dir: Path) -> dict[int, dict]:
    return {r["sample"]: r for r in map(json.loads, map(Path.read_text, sweep_dir.glob("sample_*/result.json")))}


def _files(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def test_the_hash_covers_every_code_file_by_path_and_content(tmp_path):
    tree = _checkout(tmp_path)
    files = snapshot.manifest(tree)
    assert {"train.py", "conf/train.yaml", "src/netspaces/train/run.py"} <= set(files)
    h = snapshot.tree_hash(files)
    (tree / "src" / "netspaces" / "__pycache__").mkdir(exist_ok=True)
    (tree / "src" / "netspaces" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert snapshot.tree_hash(snapshot.manifest(tree)) == h  # bytecode is not code
    edit_checkout(tree)
    edited = snapshot.tree_hash(snapshot.manifest(tree))
    assert edited != h
    edit_checkout(tree, undo=True)
    assert snapshot.tree_hash(snapshot.manifest(tree)) == h
    (tree / "conf" / "train.yaml").rename(tree / "conf" / "other.yaml")
    assert snapshot.tree_hash(snapshot.manifest(tree)) != h  # a file's place is part of the code


def test_jobs_run_the_snapshot_a_rerun_reuses_it_and_new_code_needs_an_opt_in(tmp_path):
    tree = _checkout(tmp_path)
    sweep_dir = tmp_path / "out" / "sweeps" / SWEEP
    h = snapshot.tree_hash(snapshot.manifest(tree))

    # the checkout is edited once the sweep has started, before its job (a process of its own) starts
    first = _train(tree, tmp_path, "sweep.n=1", *SUBMITIT, *EDIT)
    assert first.returncode == 0, first.stderr[-3000:]
    code = sweep_dir / ".code" / h[:12]
    assert f"code snapshot {h[:12]} taken: {code}" in first.stdout
    assert "+edited" in (tree / "src" / "netspaces" / "__init__.py").read_text()  # the edit happened
    assert snapshot.tree_hash(snapshot.manifest(code)) == h  # the snapshot is the code before it
    rec = _records(sweep_dir)[0]
    assert rec["status"] == "ok" and rec["code_hash"] == h and rec["attempt"] == 1
    assert rec["versions"]["netspaces"] == "0.1.0" and rec["config"]["sweep"]["replica_models"] == 5
    assert rec["allow_code_change"] is False

    # the same command with the edited checkout: refused, one line, nothing written
    before = _files(sweep_dir)
    refused = _train(tree, tmp_path, "sweep.n=1")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {sweep_dir} holds a population trained with code")
    assert "conf/train.yaml" in lines[0] and "src/netspaces/__init__.py" in lines[0]
    assert "sweep.allow_code_change=true" in lines[0]
    assert _files(sweep_dir) == before

    # the checkout back as it was: the rerun (in-process jobs this time) reuses the snapshot,
    # says so once, retrains nothing
    edit_checkout(tree, undo=True)
    again = _train(tree, tmp_path, "sweep.n=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("code snapshot") == 1
    assert f"code snapshot {h[:12]} reused: {code} (the checkout's code is unchanged)" in again.stdout
    recs = _records(sweep_dir)
    assert recs[0] == rec and recs[1]["code_hash"] == h

    # new code, opted in: a new snapshot beside the old one, recorded in the new records
    edit_checkout(tree)
    new = snapshot.tree_hash(snapshot.manifest(tree))
    changed = _train(tree, tmp_path, "sweep.n=3", "sweep.allow_code_change=true")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert f"code snapshot {new[:12]} taken" in changed.stdout and f"code was {h[:12]}" in changed.stdout
    assert sorted(p.name for p in (sweep_dir / ".code").iterdir()) == sorted([h[:12], new[:12], "current.json"])
    recs = _records(sweep_dir)
    assert recs[0] == rec and recs[1]["code_hash"] == h  # finished samples are not retrained
    assert recs[2]["code_hash"] == new and recs[2]["allow_code_change"] is True
    assert recs[2]["versions"]["netspaces"] == "0.1.0+edited" and recs[2]["config"]["sweep"]["replica_models"] == 4
    assert len(list(sweep_dir.glob("sample_*"))) == 3  # the opt-in does not rename the run directories


@pytest.mark.slow
def test_joblib_workers_run_the_snapshot_too(tmp_path):
    # joblib's workers start after the edit
    tree = _checkout(tmp_path)
    h = snapshot.tree_hash(snapshot.manifest(tree))
    out = _train(tree, tmp_path, "sweep.n=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *EDIT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "+edited" in (tree / "src" / "netspaces" / "__init__.py").read_text()
    recs = _records(tmp_path / "out" / "sweeps" / SWEEP)
    assert sorted(recs) == [0, 1]
    for rec in recs.values():
        assert rec["status"] == "ok" and rec["code_hash"] == h
        assert rec["versions"]["netspaces"] == "0.1.0" and rec["config"]["sweep"]["replica_models"] == 5


@pytest.mark.parametrize(
    "arg, expected",
    [
        ("sweep.allow_code_change=maybe", "sweep.allow_code_change='maybe' is not allowed: true or false"),
        ("sweep.retries=-1", "sweep.retries=-1 is not allowed: must be >= 0"),
    ],
)
def test_bad_sweep_options_are_refused_before_anything_is_written(tmp_path, arg, expected):
    out = _train(REPO, tmp_path, "sweep.n=1", arg)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {expected}"
    assert not (tmp_path / "out").exists()
