"""Small parts of training: the lr schedule and weight-decay groups."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from netspaces.train.optim import EpochLR, build_optimizer, param_groups
from netspaces.train.settings import OptimSettings


def test_cosine_per_epoch_reaches_zero_at_the_end():
    lr = EpochLR(epochs=10)
    assert lr(0) == 1.0 and lr(5) == pytest.approx(0.5) and lr(10) == pytest.approx(0.0, abs=1e-12)
    assert lr(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))


def test_linear_warmup_from_factor_to_one():
    lr = EpochLR(epochs=100, warmup_epochs=5, warmup_factor=0.1)
    assert lr(0) == pytest.approx(0.1)
    assert lr(1) == pytest.approx((0.1 * 0.8 + 0.2) * 0.5 * (1 + math.cos(math.pi / 100)))
    assert lr(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 100)))


def test_sgd_nesterov_with_lr_scaled_by_the_global_batch():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    s = OptimSettings(base_lr=0.1, global_batch=512, epochs=10)
    opt, sched = build_optimizer(model, s)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["lr"] == pytest.approx(0.4) and group["weight_decay"] == 5e-5
    assert all(not callable(v) for v in sched.state_dict()["lr_lambdas"][0].values())  # weights_only-safe state


def test_bn_and_bias_can_be_exempt_from_weight_decay():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 2))
    decay, no_decay = param_groups(model, OptimSettings(weight_decay_norm_bias=False))
    assert [p.shape for p in decay["params"]] == [(8, 3, 3, 3), (2, 8)]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # BN γ, β and the linear bias


def test_perf_mechanisms_act_only_on_gpu_runs_and_follow_their_switches():
    from lightning.pytorch.plugins.io import AsyncCheckpointIO

    from netspaces.perf import PerfSettings, checkpoint_writer, trainer_options
    from netspaces.train.checkpoints import AtomicCheckpointIO

    on, off = PerfSettings(), PerfSettings(cudnn_benchmark=False, background_checkpoints=False)
    assert trainer_options(on, on_gpu=True, deterministic=False) == {"benchmark": True}
    assert trainer_options(on, on_gpu=True, deterministic=True) == {"benchmark": False}  # not allowed there
    assert trainer_options(on, on_gpu=False, deterministic=False) == {"benchmark": False}
    assert trainer_options(off, on_gpu=True, deterministic=False) == {"benchmark": False}
    writer = AtomicCheckpointIO()
    assert isinstance(checkpoint_writer(writer, on, on_gpu=True), AsyncCheckpointIO)
    assert checkpoint_writer(writer, on, on_gpu=False) is writer  # a thread would only take cores from training
    assert checkpoint_writer(writer, off, on_gpu=True) is writer


def test_atomic_checkpoints_leave_the_old_file_when_a_save_fails(tmp_path):
    from netspaces.train.checkpoints import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        io.save_checkpoint({"epoch": 2, "bad": lambda: None}, path)  # not picklable: fails mid-save
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_the_up_front_data_checks_load_neither_torch_nor_lightning():
    """A sweep's launching process imports netspaces.train.data only for its checks: loading
    torch and Lightning there delayed the first job by ~3 s and its exit by ~1 s."""
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src"
    code = (
        "import sys\n"
        "from netspaces.train.data import check_data\n"
        "from netspaces.train.settings import DataSettings\n"
        "import netspaces.train.identity, netspaces.train.sweep\n"
        "check_data(DataSettings(name='digits', batch_size=8, resolution=8))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'torchvision'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(src)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
