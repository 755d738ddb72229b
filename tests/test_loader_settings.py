"""data.loader, data.on_device, the worker default, trainer.devices as a list and the joblib
GPU round-robin, as settings resolve them (CUDA mocked where a GPU is concerned, as in
tests/test_gpu_defaults.py); a loader this machine cannot run is one line and exit 2."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CIFAR10, IMAGENETTE, compose_train, needs, run_train
from netspaces.errors import UserError
from netspaces.train import settings
from netspaces.train.settings import joblib_devices, run_settings


@pytest.fixture
def cuda(monkeypatch):
    """torch sees two CUDA GPUs (nothing runs on them here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_dali(monkeypatch):
    monkeypatch.setattr(settings, "_dali_installed", lambda: False)


def _data(tmp_path, overrides: list[str]):
    folder = ["data=imagefolder", f"data.root={IMAGENETTE}"]
    return run_settings(compose_train([*folder, *overrides, f"paths.run_dir={tmp_path}"])).data


@needs(IMAGENETTE)
def test_auto_is_pil_on_the_cpu_and_a_gpu_decoder_on_cuda(tmp_path, monkeypatch, no_dali):
    assert _data(tmp_path, []).loader == "pil"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _data(tmp_path, ["trainer=gpu"]).loader == "gpu"  # no DALI: torchvision's decode_jpeg
    monkeypatch.setattr(settings, "_dali_installed", lambda: True)
    assert _data(tmp_path, ["trainer=gpu"]).loader == "dali"
    assert _data(tmp_path, ["trainer=gpu", "data.loader=pil"]).loader == "pil"


@needs(IMAGENETTE)
def test_a_loader_the_run_cannot_use_is_one_line_naming_it(tmp_path, cuda, no_dali):
    with pytest.raises(UserError) as err:
        _data(tmp_path, ["trainer=gpu", "data.loader=dali"])
    assert str(err.value) == (
        "data.loader=dali needs the nvidia-dali package: pip install netspaces[dali] (nvidia-dali-cuda130)"
    )
    with pytest.raises(UserError) as err:
        _data(tmp_path, ["data.loader=fast"])
    assert str(err.value) == "data.loader='fast' is not allowed: one of auto, pil, dali, gpu"


@needs(IMAGENETTE)
def test_dali_for_another_cuda_major_names_its_own_package(tmp_path, cuda, no_dali, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    with pytest.raises(
        UserError, match=r"data.loader=dali needs the nvidia-dali package: pip install nvidia-dali-cuda120"
    ):
        _data(tmp_path, ["trainer=gpu", "data.loader=dali"])


@needs(IMAGENETTE)
def test_a_gpu_loader_on_the_cpu_exits_2_with_one_line(tmp_path):
    out = run_train(
        ["data=imagefolder", f"data.root={IMAGENETTE}", "data.loader=gpu", f"paths.output={tmp_path}"],
        tmp_path,
        timeout=120,
    )
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: data.loader=gpu decodes on a CUDA GPU, and this run trains on the CPU: "
        "use trainer=gpu, or data.loader=pil (or auto)"
    ]
    assert not list(tmp_path.rglob("result.json"))


@needs(CIFAR10)
def test_in_memory_data_lives_on_the_device_only_on_cuda(tmp_path, monkeypatch):
    def on_device(overrides):
        cfg = compose_train(["data=cifar10", f"data.root={CIFAR10}", *overrides, f"paths.run_dir={tmp_path}"])
        return run_settings(cfg).data.on_device

    assert on_device([]) is False  # the CPU path stays what it was
    assert on_device(["data=digits"]) is False
    with pytest.raises(UserError, match=r"^data.on_device=true holds the data on a CUDA GPU"):
        on_device(["data.on_device=true"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert on_device(["trainer=gpu"]) is True
    assert on_device(["trainer=gpu", "data=digits"]) is True
    assert on_device(["trainer=gpu", "data.on_device=false"]) is False


@needs(IMAGENETTE)
def test_workers_default_to_the_jobs_cpus_per_process_minus_two(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(settings, "cpus", lambda: 16)
    assert _data(tmp_path, []).workers == 14
    assert _data(tmp_path, ["trainer=ddp", "trainer.devices=2"]).workers == 6  # 16 CPUs shared by 2 ranks
    assert _data(tmp_path, ["data.workers=3"]).workers == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "10")  # a SLURM task is one rank
    assert _data(tmp_path, ["trainer=ddp", "trainer.devices=2"]).workers == 8
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    monkeypatch.setattr(settings, "cpus", lambda: 2)
    assert _data(tmp_path, []).workers == 1  # at least one


def test_trainer_devices_accepts_a_list_of_gpus(tmp_path, cuda, monkeypatch):
    import lightning.pytorch

    from netspaces.train.trainer import build_trainer

    s = run_settings(compose_train(["trainer=gpu", "trainer.devices=[1]", f"paths.run_dir={tmp_path}"]))
    assert s.trainer.devices == 1 and s.trainer.device_ids == (1,)
    seen = {}
    monkeypatch.setattr(lightning.pytorch, "Trainer", lambda **kw: seen.update(kw))
    build_trainer(s, [])
    assert seen["devices"] == [1]
    ddp = run_settings(compose_train(["trainer=ddp", "trainer.devices=[0,1]", f"paths.run_dir={tmp_path}"]))
    assert ddp.trainer.world_size == 2 and ddp.optim.global_batch == 2 * 128
    for bad, allowed in (("[0,0]", "a list of distinct GPU indices"), ("[0,2]", "GPU indices below 2")):
        with pytest.raises(UserError, match=rf"^trainer.devices=\[0, \d\] is not allowed: .*{allowed}"):
            run_settings(compose_train(["trainer=gpu", f"trainer.devices={bad}", f"paths.run_dir={tmp_path}"]))


def test_joblib_jobs_take_gpus_round_robin(cuda):
    gpu = compose_train(["trainer=gpu"])
    assert [joblib_devices(gpu, k, gpus=2) for k in range(4)] == [[0], [1], [0], [1]]
    assert [joblib_devices(gpu, k, gpus=3) for k in range(4)] == [[0], [1], [2], [0]]
    ddp = compose_train(["trainer=ddp", "trainer.devices=2"])
    assert [joblib_devices(ddp, k, gpus=4) for k in range(3)] == [[0, 1], [2, 3], [0, 1]]
    assert joblib_devices(gpu, 1, gpus=1) is None  # one GPU: nothing to spread
    assert joblib_devices(compose_train(["trainer=cpu"]), 1, gpus=2) is None
    assert joblib_devices(compose_train(["trainer=gpu", "trainer.devices=[1]"]), 0, gpus=2) is None  # chosen already
    assert joblib_devices(ddp, 0, gpus=2) is None  # the job uses every GPU anyway


def test_a_joblib_job_writes_its_gpu_into_its_config(cuda):
    from netspaces.train.run import _spread_over_gpus

    cfg = compose_train(["trainer=gpu"])
    _spread_over_gpus(cfg, job_num=3)
    assert OmegaConf.select(cfg, "trainer.devices") == [1]  # what its DDP ranks and its record see


@needs(IMAGENETTE)
def test_the_loader_choice_is_neither_identity_nor_in_sample_directory_names():
    from netspaces.train import identity

    assert identity.of(compose_train(["data.on_device=false"]))[0] == identity.of(compose_train([]))[0]
    folder = ["data=imagefolder", f"data.root={IMAGENETTE}"]
    assert identity.of(compose_train([*folder, "data.loader=pil"]))[0] == identity.of(compose_train(folder))[0]
    excluded = compose_train([], hydra=True).hydra.job.config.override_dirname.exclude_keys
    assert {"data.loader", "data.on_device", "data.workers"} <= set(excluded)
