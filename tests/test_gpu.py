"""Checks that need a CUDA GPU (marker `gpu`: skipped without one; scripts/gpu_check.sh runs
them): the GPU defaults as a real run takes them, no host sync between logging steps, a
deterministic GPU run that repeats itself. Each trains a sampled model on digits for a few
batches."""

from __future__ import annotations

import pytest
import torch

from conftest import compose_train

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("restore_torch_state")]

FEW = ["schedule=quick", "schedule.epochs=1", "trainer.limit_val_batches=2", "trainer.progress_bar=false"]


def _train(tmp_path, overrides: list[str]) -> dict:
    from netspaces.train.run import train

    cfg = compose_train([*FEW, *overrides, f"paths.run_dir={tmp_path / 'run'}", f"paths.output={tmp_path}"])
    return train(cfg)


def test_a_gpu_run_trains_in_bf16_with_tf32_and_cudnn_autotuning(tmp_path, monkeypatch):
    from netspaces import perf

    def cpu_only(*args, **kwargs):  # a CPU-only mechanism must never be entered on a GPU run
        raise AssertionError("keep_freed_memory entered on a GPU run")

    monkeypatch.setattr(perf, "keep_freed_memory", cpu_only)
    rec = _train(tmp_path, ["trainer=gpu", "trainer.limit_train_batches=4"])
    assert rec["status"] == "ok" and rec["precision"] == "bf16-mixed"
    assert torch.backends.cudnn.benchmark is True
    assert perf.tf32_on() == (True, True)


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_cudnn_autotuning_is_on_for_gpu_and_ddp_trainers(trainer, tmp_path):
    from netspaces.train.settings import run_settings
    from netspaces.train.trainer import build_trainer

    torch.backends.cudnn.benchmark = False
    s = run_settings(compose_train([f"trainer={trainer}", "trainer.devices=1", f"paths.run_dir={tmp_path}"]))
    build_trainer(s, [])
    assert torch.backends.cudnn.benchmark is True


def test_32_true_on_a_gpu_is_true_fp32(tmp_path):
    from netspaces import perf

    rec = _train(tmp_path, ["trainer=gpu", "trainer.precision=32-true", "trainer.limit_train_batches=2"])
    assert rec["status"] == "ok" and rec["precision"] == "32-true"
    assert perf.tf32_on() == (False, False)


def test_no_host_sync_between_logging_steps(tmp_path, monkeypatch):
    """From the start to the end of each training batch (forward, loss, backward, optimizer
    step) that is neither a logging nor a check step, any host-device sync is an error."""
    from netspaces.train.module import Classifier

    checked = []

    def start(self, batch, batch_idx):
        step = self.trainer.global_step + 1
        syncs = step % getattr(self, "_log_interval", self.check_every) == 0 or (batch_idx + 1) % self.check_every == 0
        if not (syncs or self.trainer.is_last_batch):
            torch.cuda.set_sync_debug_mode("error")
            checked.append(batch_idx)

    def end(self, outputs, batch, batch_idx):
        torch.cuda.set_sync_debug_mode(0)

    monkeypatch.setattr(Classifier, "on_train_batch_start", start)
    monkeypatch.setattr(Classifier, "on_train_batch_end", end)
    try:
        rec = _train(
            tmp_path,
            [
                "trainer=gpu",
                "trainer.limit_train_batches=12",
                "trainer.log_every_n_steps=5",
                "trainer.check_every_n_steps=5",
            ],
        )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert rec["status"] == "ok", rec.get("error")
    assert len(checked) >= 8  # 12 batches less the logging/check steps 5, 10 and the last


def test_a_deterministic_gpu_run_repeats_itself(tmp_path):
    """trainer.deterministic=true on CUDA (the global pool is a mean, whose backward is
    deterministic): the same command gives the same losses."""
    args = ["trainer=gpu", "trainer.deterministic=true", "trainer.limit_train_batches=6"]
    one = _train(tmp_path / "a", args)
    two = _train(tmp_path / "b", args)
    assert one["status"] == two["status"] == "ok", (one.get("error"), two.get("error"))
    assert [h.get("train_loss") for h in one["history"]] == [h.get("train_loss") for h in two["history"]]
    assert one["top1_err"] == two["top1_err"]
