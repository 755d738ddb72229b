"""train(cfg) in-process on real digits: records, reproducibility, skip, resume, divergence."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import REPO, TINY, compose_train
from netspaces import record as records
from netspaces.space.sampling import sample_at
from netspaces.train.module import Classifier
from netspaces.train.run import train

pytestmark = pytest.mark.usefixtures("restore_torch_state")

RECORD_FIELDS = {
    "status",
    "space",
    "regime",
    "sample",
    "seed",
    "model",
    "arch",
    "flops",
    "params",
    "acts",
    "top1_err",
    "top1_err_best",
    "top5_err",
    "epochs",
    "train_time_s",
    "train_cpu_s",
    "config",
    "data",
    "schedule",
    "diverged_at",
    "history",
}


def tiny(run_dir, *extra: str):
    return compose_train([*TINY, f"paths.run_dir={run_dir}", f"paths.output={run_dir.parent}", *extra])


def test_a_run_writes_a_complete_record(tmp_path):
    record = train(tiny(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert RECORD_FIELDS <= set(on_disk)
    sample = sample_at("regnetx", "400mf", 0, 0)
    assert on_disk["status"] == "ok" and on_disk["diverged_at"] is None
    assert (on_disk["space"], on_disk["regime"], on_disk["sample"], on_disk["seed"]) == ("regnetx", "400mf", 0, 0)
    assert (on_disk["flops"], on_disk["params"], on_disk["acts"]) == (sample.flops, sample.params, sample.acts)
    assert on_disk["arch"]["ws"] == list(sample.spec.ws) and on_disk["arch"]["wm"] == sample.arch["wm"]
    assert on_disk["epochs"] == 2 == len(on_disk["history"])
    assert 0.0 <= on_disk["top1_err"] <= 100.0 and on_disk["top5_err"] <= on_disk["top1_err"]
    assert on_disk["top1_err_best"] == min(h["top1_err"] for h in on_disk["history"] if h["top1_err"] is not None)
    assert on_disk["config"]["schedule"]["name"] == "quick" and on_disk["train_time_s"] > 0 < on_disk["train_cpu_s"]
    # the code that trained: a commit of this checkout, HEAD or (others commit while tests run,
    # and a process looks once) one before it; the report's header reads it
    commit = on_disk["git_commit"].removesuffix("+dirty")
    assert len(commit) == 40 and on_disk["command"].startswith("python ")
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=REPO, capture_output=True)
    assert ancestor.returncode == 0, commit
    # the trained network: 32 px digits, 10 classes, the simple 3x3 s2 stem
    assert on_disk["trained"]["resolution"] == 32 and on_disk["trained"]["num_classes"] == 10
    assert on_disk["trained"]["stem"] == "simple"
    assert not list((tmp_path / "run").glob(".*.tmp"))  # atomic writes leave no temporaries
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()  # single runs keep it
    assert (tmp_path / "run" / "logs" / "metrics.csv").is_file()


def test_same_config_and_seed_give_the_same_metrics(tmp_path):
    a = train(tiny(tmp_path / "a"))
    b = train(tiny(tmp_path / "b"))
    assert [h["top1_err"] for h in a["history"]] == [h["top1_err"] for h in b["history"]]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    c = train(tiny(tmp_path / "c", "seed=1"))
    assert [h["train_loss"] for h in c["history"]] != [h["train_loss"] for h in a["history"]]


def test_training_uses_plain_pytorch_on_the_cpu(tmp_path, monkeypatch):
    # no CPU speed mechanism survived measurement (benchmarks/README.md): deterministic runs
    # use PyTorch's defaults (NaN fill of new tensors included), the collector is untouched
    import gc

    import torch

    seen = []
    start = Classifier.on_train_epoch_start
    monkeypatch.setattr(
        Classifier,
        "on_train_epoch_start",
        lambda self: (
            seen.append(
                (
                    gc.get_freeze_count(),
                    torch.are_deterministic_algorithms_enabled(),
                    torch.utils.deterministic.fill_uninitialized_memory,
                    torch.get_num_threads(),
                )
            )
            or start(self)
        ),
    )
    record = train(tiny(tmp_path / "run"))
    assert record["status"] == "ok" and len(seen) == 2
    assert all(
        frozen == 0 and deterministic and fill and threads == 1 for frozen, deterministic, fill, threads in seen
    ), seen


def test_validation_only_every_n_epochs_and_always_after_the_last(tmp_path):
    record = train(tiny(tmp_path / "run", "schedule.epochs=3", "schedule.eval_every=2"))
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert [h["top1_err"] is not None for h in record["history"]] == [False, True, True]
    assert all(h["train_loss"] is not None and h["lr"] is not None for h in record["history"])
    assert record["top1_err"] == record["history"][-1]["top1_err"]
    every = train(tiny(tmp_path / "every", "schedule.epochs=3", "schedule.eval_every=1"))  # evaluated each epoch
    assert [h["train_loss"] for h in every["history"]] == [h["train_loss"] for h in record["history"]]
    assert every["top1_err"] == record["top1_err"]
    last = train(tiny(tmp_path / "last", "schedule.epochs=3", "schedule.eval_every=0"))  # populations' default
    assert [h["top1_err"] is not None for h in last["history"]] == [False, False, True]
    assert [h["train_loss"] for h in last["history"]] == [h["train_loss"] for h in every["history"]]
    assert last["top1_err"] == every["top1_err"]


def test_a_finished_run_is_skipped(tmp_path):
    first = train(tiny(tmp_path / "run"))
    before = (tmp_path / "run" / "result.json").stat().st_mtime_ns
    again = train(tiny(tmp_path / "run"))
    assert again == json.loads(json.dumps(first))
    assert (tmp_path / "run" / "result.json").stat().st_mtime_ns == before


def test_an_interrupted_run_resumes_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    whole = train(tiny(tmp_path / "whole"))
    original = Classifier.on_train_epoch_start

    def stop_in_epoch_two(self):
        if self.current_epoch == 1:
            raise RuntimeError("simulated crash")
        original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", stop_in_epoch_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny(tmp_path / "cut"))
    failed = records.read_record(tmp_path / "cut")
    assert failed["status"] == "failed" and "simulated crash" in failed["error"] and failed["epochs"] == 1
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)
    resumed = train(tiny(tmp_path / "cut"))  # failed runs are retried, from the epoch-1 checkpoint
    assert resumed["status"] == "ok" and resumed["resumed_from_epoch"] == 1
    assert resumed["history"][0] == failed["history"][0]
    assert [h["top1_err"] for h in resumed["history"]] == [h["top1_err"] for h in whole["history"]]
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]


def test_nan_loss_ends_the_run_as_diverged(tmp_path):
    record = train(tiny(tmp_path / "run", "schedule.base_lr=1e12", "schedule.zero_init_final_gamma=false"))
    assert record["status"] == "diverged"
    assert record["diverged_at"]["epoch"] == 1 and record["top1_err"] is None
    assert records.read_record(tmp_path / "run")["status"] == "diverged"


def test_an_exception_leaves_a_failed_record_and_is_raised(tmp_path, monkeypatch):
    import netspaces.train.network as network

    def broken(choice):
        raise RuntimeError("no network today")

    monkeypatch.setattr(network, "build_network", broken)
    with pytest.raises(RuntimeError, match="no network today"):
        train(tiny(tmp_path / "run"))
    record = records.read_record(tmp_path / "run")
    assert record["status"] == "failed" and record["error"] == "RuntimeError: no network today"
    assert (record["space"], record["regime"], record["sample"]) == ("regnetx", "400mf", 0)  # still identified


def test_options_ema_bn_exempt_warmup_and_bf16(tmp_path):
    record = train(
        tiny(
            tmp_path / "run",
            "schedule.ema_decay=0.9",
            "schedule.weight_decay_norm_bias=false",
            "schedule.warmup_epochs=1",
            "trainer.precision=bf16-mixed",
            "trainer.deterministic=false",
        )
    )
    assert record["status"] == "ok" and record["epochs"] == 2
    assert record["history"][0]["lr"] == pytest.approx(0.05 * 0.1)  # warmup factor 0.1 in epoch 1


def test_a_zoo_model_with_the_cifar_stem(tmp_path):
    record = train(tiny(tmp_path / "run", "model=regnetx_200mf", "model.stem=cifar"))
    assert record["status"] == "ok" and record["model"] == "RegNetX-200MF" and record["sample"] is None
    assert record["flops"] == 199040872  # the published RegNetX-200MF (224 px, 1000 classes)
    assert record["trained"]["stem"] == "cifar" and record["arch"]["depth"] == 13


def test_a_timm_baseline_and_tensorboard(tmp_path):
    record = train(tiny(tmp_path / "run", "model=efficientnet_b0", "logger=tensorboard"))
    assert record["status"] == "ok" and record["model"] == "efficientnet_b0" and record["space"] is None
    assert record["lr"] == pytest.approx(0.2 * 64 / 128) and record["config"]["model"]["weight_decay"] == 1e-5
    assert 380e6 < record["flops"] < 400e6  # EfficientNet-B0 at 224 px (pycls: 0.39 GF)
    assert list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))


def test_command_line_of_a_run_and_of_a_sweep_job():
    from netspaces.train.results import command_line

    assert command_line(["model=regnetx", "epochs=2"], False) == "python train.py model=regnetx epochs=2"
    # every job of a sweep shows the sweep's command: the generated sample= is dropped
    assert command_line(["sample=3", "sweep.n=20"], True) == "python train.py -m sweep.n=20"
