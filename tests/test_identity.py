"""The population identity: every config key classified, and the hash follows what a run
computes, not how it was spelled."""

from __future__ import annotations

import shutil

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import CIFAR10, compose_train, group_options, needs
from netspaces.train import identity, register

GROUPS = ("space", "block", "regime", "model", "data", "schedule", "trainer", "logger")


def _with_every_option():
    for group in GROUPS:
        for option in group_options(group):
            extra = ["model.name=regnetx_004"] if (group, option) == ("model", "timm") else []
            yield compose_train([f"{group}={option}", *extra], hydra=True)


def test_every_key_of_every_option_is_classified():
    unknown = {key for cfg in _with_every_option() for key in register.unclassified(cfg)}
    assert not unknown, f"classify these in netspaces/train/register.py: {sorted(unknown)}"


def test_every_register_entry_says_why():
    assert all(k.why and len(k.why) > 10 for k in register.REGISTER)


def _hash(overrides, **kw):
    return identity.of(compose_train(["paths.run_dir=unused", *overrides], **kw))[0]


def test_what_changes_the_computation_changes_the_hash_and_nothing_else_does():
    base = _hash([])
    for same in (
        ["trainer.threads=1"],
        ["paths.output=elsewhere"],
        ["logger=wandb"],
        ["sweep.n=7"],
        ["sample=3"],
        ["trainer.progress_bar=true"],
        ["perf.cudnn_benchmark=false"],
        ["schedule.eval_every=3"],
        ["trainer.channels_last=false"],
        ["data.workers=2"],
    ):
        assert _hash(same) == base, same
    for other in (
        ["seed=1"],
        ["sweep.seed=1"],
        ["schedule.epochs=5"],
        ["trainer.limit_train_batches=3"],
        ["regime=200mf"],
        ["space=anynetx_a"],
        ["block=r"],
        ["schedule.base_lr=0.2"],
        ["data.resolution=16"],
    ):
        assert _hash(other) != base, other


def test_the_global_batch_counts_not_how_it_is_split_over_devices():
    one = _hash(["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "schedule.batch_size=64"])
    assert one == _hash(["schedule.batch_size=128"])
    assert one != _hash(["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])  # 2 x 128


def test_the_precision_actually_used_counts():
    # on a CPU 16-mixed runs as bf16-mixed: the same computation
    assert _hash(["trainer.precision=16-mixed"]) == _hash(["trainer.precision=bf16-mixed"])
    assert _hash(["trainer.precision=32"]) == _hash(["trainer.precision=32-true"]) == _hash([])


@needs(CIFAR10)
def test_the_data_counts_by_content_not_by_path(tmp_path):
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            (tmp_path / "a" / split / c).mkdir(parents=True)
            for i in range(2):
                shutil.copy(CIFAR10 / split / c / f"{i:04d}.jpg", tmp_path / "a" / split / c / f"{i}.jpg")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    data = ["data=cifar10", "data.val_split=test", f"paths.output={tmp_path}"]
    a, b = _hash([*data, f"data.root={tmp_path / 'a'}"]), _hash([*data, f"data.root={tmp_path / 'b'}"])
    assert a == b  # a copy is the same data
    (tmp_path / "b" / "train" / "cat" / "1.jpg").write_bytes(b"changed")
    assert _hash([*data, f"data.root={tmp_path / 'b'}"]) != a


def test_a_key_added_later_at_its_old_behaviour_keeps_existing_hashes(monkeypatch):
    cfg = compose_train(["paths.run_dir=unused"])
    before = identity.of(cfg)[0]
    with open_dict(cfg):
        cfg.schedule.future_option = 0  # a new key, at the value that means "as before"
    monkeypatch.setattr(
        register,
        "REGISTER",
        (register.Key("schedule.future_option", True, "a test of the rule", before=0), *register.REGISTER),
    )
    assert identity.of(cfg)[0] == before
    cfg.schedule.future_option = 1
    assert identity.of(cfg)[0] != before


@pytest.mark.usefixtures("restore_torch_state")
def test_records_carry_the_hash_of_their_config(tmp_path):
    from netspaces.train.run import train

    cfg = compose_train(
        [
            "schedule=quick",
            "schedule.epochs=1",
            "trainer.threads=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            f"paths.run_dir={tmp_path / 'run'}",
            f"paths.output={tmp_path}",
        ]
    )
    rec = train(cfg)
    assert rec["identity"] == identity.of(cfg)[0]
    assert identity.of(OmegaConf.create(rec["config"]))[0] == rec["identity"]  # recomputable from the record


def test_the_register_is_documented_line_by_line():
    from conftest import REPO

    doc = (REPO / "docs" / "reliability.md").read_text()
    for k in register.REGISTER:
        assert f"| `{k.pattern}` | {'**identity**' if k.identity else 'not'} | {k.why} |" in doc, k.pattern
