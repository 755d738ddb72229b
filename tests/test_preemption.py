"""Preemption under submitit: the checkpoint signal ends the sample as `interrupted`, submitit
requeues the job, the requeued job resumes from its last epoch checkpoint and ends with one
`ok` record equal to a run that was never interrupted. And one owner of the signals while a
run trains: Lightning's SIGTERM and SLURM auto-requeue handlers never act."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, subprocess_env

SWEEP = "regnetx-400mf-digits-quick-s0"
# one model, 4 short digits epochs (a fraction of a second each, one thread): time to signal it mid-run
ARGS = [
    "-m",
    "sweep.n=1",
    "schedule=quick",
    "schedule.epochs=4",
    "trainer.threads=1",
    "trainer.limit_train_batches=8",
    "trainer.limit_val_batches=1",
]
TIMINGS = ("epoch_time_s", "time_s", "train_time_s")


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below pid (Linux /proc)."""
    from netspaces.train.signals import children

    found, todo = [], [pid]
    while todo:
        for kid in children(todo.pop()):
            try:
                cmd = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found.append((kid, cmd))
            todo.append(kid)
    return found


def _without_timings(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in epoch.items() if k not in TIMINGS} for epoch in history]


def test_checkpoint_signal_requeues_and_the_job_resumes_to_the_uninterrupted_result(tmp_path):
    ref_out = tmp_path / "uninterrupted"  # the same sweep, never signalled, beside it
    reference = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *ARGS, f"paths.output={ref_out}"],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "submitit"
    proc = subprocess.Popen(  # noqa: SIM115 — killed in the finally below
        [sys.executable, str(REPO / "train.py"), *ARGS, "hydra/launcher=submitit_local", f"paths.output={out}"],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    sweep_dir = out / "sweeps" / SWEEP
    signalled = None
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list(sweep_dir.glob("sample_000*/checkpoints/last.ckpt")):  # an epoch is done, more to go
                # what submitit's local controller does at the time limit: the signal to the task
                (signalled,) = [p for p, cmd in _descendants(proc.pid) if "submitit.core._submit" in cmd]
                os.kill(signalled, signal.SIGUSR2)
                break
            time.sleep(0.05)
        output, _ = proc.communicate(timeout=240)
        _, err = reference.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    assert signalled is not None, output[-3000:]
    assert proc.returncode == 0, output[-3000:]
    logs = "".join(p.read_text() for p in sweep_dir.glob(".submitit/*/*_log.*"))
    assert "preempted or at its time limit (SIGUSR2)" in logs and "(status interrupted)" in logs, logs[-3000:]
    assert "Requeued job" in logs, logs[-3000:]  # submitit's local executor requeued it
    (path,) = sweep_dir.glob("sample_000*/result.json")  # one record
    rec = json.loads(path.read_text())
    assert rec["status"] == "ok" and rec["epochs"] == 4 and rec["resumed_from_epoch"] >= 1

    assert reference.returncode == 0, err[-3000:]
    (ref_path,) = (ref_out / "sweeps" / SWEEP).glob("sample_000*/result.json")
    ref = json.loads(ref_path.read_text())
    for key in ("top1_err", "top1_err_best", "top5_err", "epochs", "identity", "flops", "arch"):
        assert rec[key] == ref[key], key
    assert _without_timings(rec["history"]) == _without_timings(ref["history"])


def test_under_submitit_on_slurm_the_run_owns_the_signals_while_it_trains(tmp_path, monkeypatch, restore_torch_state):
    """submitit's handlers in place, SLURM variables set: during a real fit SIGTERM only reaches
    submitit's (which ignores it: Lightning's would end the fit with a SystemExit and no
    record), Lightning installs no SLURM auto-requeue handler, and the checkpoint signal ends
    the fit with Interrupted carrying submitit's handler, the last epoch checkpoint kept."""
    import torch
    from lightning.pytorch import LightningModule
    from torch.utils.data import DataLoader, TensorDataset

    from conftest import compose_train
    from netspaces.train.checkpoints import last_checkpoint
    from netspaces.train.settings import run_settings
    from netspaces.train.signals import Interrupted, interruptible
    from netspaces.train.trainer import build_trainer, quiet_lightning

    quiet_lightning()
    for key, value in {"SUBMITIT_FOLDER": str(tmp_path), "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "sweep"}.items():
        monkeypatch.setenv(key, value)
    for key in ("SLURM_PROCID", "RANK", "LOCAL_RANK", "SUBMITIT_PREEMPT_SIGNAL"):
        monkeypatch.delenv(key, raising=False)
    seen: dict[str, list] = {"submitit_term": [], "usr1_handler": []}

    def submitit_term(signum, frame):  # submitit's bypass: logs and goes on
        seen["submitit_term"].append(signum)

    def submitit_requeue(signum, frame):
        raise AssertionError("called by the run only after its record is written")

    class Tiny(LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch, i):
            if i == 0:
                seen["usr1_handler"].append(signal.getsignal(signal.SIGUSR1))
                os.kill(os.getpid(), signal.SIGTERM if self.current_epoch == 0 else signal.SIGUSR2)
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, i):
            return None

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    s = run_settings(compose_train(["schedule=quick", "schedule.epochs=3", f"paths.run_dir={tmp_path}"]))
    old = {
        sig: signal.signal(sig, h) for sig, h in ((signal.SIGTERM, submitit_term), (signal.SIGUSR2, submitit_requeue))
    }
    try:
        with interruptible():
            trainer = build_trainer(s, [])
            try:
                trainer.fit(Tiny(), train_dataloaders=data, val_dataloaders=data)
                raise AssertionError("the checkpoint signal did not end the fit")
            except Interrupted as sig:
                stopped = sig
        assert signal.getsignal(signal.SIGTERM) is submitit_term  # restored
        assert signal.getsignal(signal.SIGUSR2) is submitit_requeue
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    assert stopped.signum == signal.SIGUSR2 and stopped.requeue is submitit_requeue
    assert str(stopped) == "preempted or at its time limit (SIGUSR2)"
    assert seen["submitit_term"] == [signal.SIGTERM] and not trainer.received_sigterm
    assert seen["usr1_handler"] == [signal.SIG_DFL, signal.SIG_DFL]  # no Lightning auto-requeue
    assert trainer.current_epoch == 1 and last_checkpoint(tmp_path).is_file()  # epoch 1 done, kept


def test_other_ranks_leave_the_checkpoint_signal_to_submitit(monkeypatch):
    from netspaces.train.signals import interruptible

    monkeypatch.setenv("SUBMITIT_FOLDER", "/nonexistent")
    monkeypatch.setenv("SLURM_PROCID", "1")
    calls = []
    old = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with interruptible():
            os.kill(os.getpid(), signal.SIGUSR2)  # submitit's handler: on rank 1 it only logs
    finally:
        signal.signal(signal.SIGUSR2, old)
    assert calls == [signal.SIGUSR2]
