"""The GPU defaults, checked on the CPU with CUDA mocked: bf16-mixed and cuDNN autotuning on
trainer=gpu and trainer=ddp, true fp32 (TF32 off) under 32-true, trainer.compile, the
global pool as a mean, and a divergence check that a loss scaler's skipped step does not trip.
What needs a real GPU is in tests/test_gpu.py (marker `gpu`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose_train
from netspaces import perf
from netspaces.errors import UserError
from netspaces.train import identity
from netspaces.train.settings import precision_used, run_settings


@pytest.fixture
def cuda(monkeypatch):
    """torch sees two CUDA GPUs (nothing runs on them here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def tf32_restored():
    before = perf.tf32_on()
    yield
    perf.set_tf32(False)
    matmul, conv = before
    torch.backends.cuda.matmul.fp32_precision = "tf32" if matmul else "ieee"
    torch.backends.cudnn.conv.fp32_precision = "tf32" if conv else "ieee"


def _trainer_kwargs(s, monkeypatch) -> dict:
    """The arguments build_trainer hands Lightning's Trainer (recorded, no Trainer built)."""
    import lightning.pytorch

    from netspaces.train.trainer import build_trainer

    seen = {}
    monkeypatch.setattr(lightning.pytorch, "Trainer", lambda **kw: seen.update(kw))
    build_trainer(s, [])
    return seen


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_gpu_runs_default_to_bf16_and_cudnn_autotuning(trainer, cuda, monkeypatch, tmp_path):
    cfg = compose_train([f"trainer={trainer}", f"paths.run_dir={tmp_path}"])
    s = run_settings(cfg)
    assert s.trainer.precision == "bf16-mixed" and precision_used(s.trainer) == "bf16-mixed"
    assert identity.payload(cfg)["precision"] == "bf16-mixed"  # recorded: part of the identity
    kw = _trainer_kwargs(s, monkeypatch)
    assert kw["precision"] == "bf16-mixed"
    assert kw["benchmark"] is True  # ddp's accelerator is `auto`: autotuning follows CUDA, not the name
    assert kw["deterministic"] is False
    # deterministic runs never autotune (cuDNN would pick algorithms by timing)
    det = run_settings(compose_train([f"trainer={trainer}", "trainer.deterministic=true", f"paths.run_dir={tmp_path}"]))
    assert _trainer_kwargs(det, monkeypatch)["benchmark"] is False
    off = run_settings(compose_train([f"trainer={trainer}", "perf.cudnn_benchmark=false", f"paths.run_dir={tmp_path}"]))
    assert _trainer_kwargs(off, monkeypatch)["benchmark"] is False


def test_32_true_is_one_override_away_and_another_identity(cuda, tmp_path):
    bf16 = compose_train(["trainer=gpu", f"paths.run_dir={tmp_path}"])
    fp32 = compose_train(["trainer=gpu", "trainer.precision=32-true", f"paths.run_dir={tmp_path}"])
    assert run_settings(fp32).trainer.precision == "32-true"
    assert identity.payload(fp32)["precision"] == "32-true"
    assert identity.of(bf16)[0] != identity.of(fp32)[0]


def test_ddp_on_cpu_processes_stays_fp32_without_autotuning(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    s = run_settings(compose_train(["trainer=ddp", f"paths.run_dir={tmp_path}"]))
    assert s.trainer.precision == "32-true"
    kw = _trainer_kwargs(s, monkeypatch)
    assert kw["precision"] == "32-true" and kw["benchmark"] is False
    # the CPU default is untouched
    assert run_settings(compose_train([f"paths.run_dir={tmp_path}"])).trainer.precision == "32-true"


@pytest.mark.parametrize(
    "precision,switch,expected",
    [
        ("bf16-mixed", True, (True, True)),
        ("16-mixed", True, (True, True)),
        ("32-true", True, (False, False)),  # 32-true means true fp32, convolutions included
        ("bf16-mixed", False, (False, False)),  # perf.tf32=false
    ],
)
def test_tf32_only_on_the_mixed_precision_gpu_path(precision, switch, expected, tf32_restored):
    perf.set_tf32(not expected[0])  # start from the opposite, so the call must set both
    taken = perf.process_setup(perf.PerfSettings(tf32=switch), on_gpu=True, precision=precision)
    assert perf.tf32_on() == expected
    assert ("tf32" in taken) == expected[0]


def test_tf32_is_left_alone_on_cpu_runs(tf32_restored):
    perf.set_tf32(True)
    assert "tf32" not in perf.process_setup(perf.PerfSettings(), on_gpu=False, precision="32-true")
    assert perf.tf32_on() == (True, True)


def test_compile_option_is_validated(tmp_path):
    assert run_settings(compose_train([f"paths.run_dir={tmp_path}"])).trainer.compile == "off"
    for mode in ("off", "default", "max-autotune-no-cudagraphs"):
        s = run_settings(compose_train([f"trainer.compile={mode}", f"paths.run_dir={tmp_path}"]))
        assert s.trainer.compile == mode
    with pytest.raises(UserError) as err:
        run_settings(compose_train(["trainer.compile=fast", f"paths.run_dir={tmp_path}"]))
    assert str(err.value) == ("trainer.compile='fast' is not allowed: one of off, default, max-autotune-no-cudagraphs")


def test_compile_network_compiles_in_place_and_keeps_checkpoint_keys():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    keys = list(net.state_dict())
    assert perf.compile_network(net, "off") is net and net._compiled_call_impl is None
    assert perf.compile_network(net, "max-autotune-no-cudagraphs") is net
    assert net._compiled_call_impl is not None  # compiled lazily, at the first forward
    assert list(net.state_dict()) == keys  # no _orig_mod. prefix: checkpoints load either way


@pytest.mark.parametrize("channels_last", [False, True])
def test_global_pool_is_adaptive_average_pooling_as_a_mean(channels_last):
    from netspaces.models.anynet import GlobalAvgPool

    torch.manual_seed(0)
    for shape in [(2, 8, 7, 7), (3, 5, 1, 1), (1, 16, 13, 9)]:
        x = torch.randn(shape, requires_grad=True)
        x_in = x.to(memory_format=torch.channels_last) if channels_last else x
        ours, ref = GlobalAvgPool()(x_in), F.adaptive_avg_pool2d(x_in, 1)
        assert ours.shape == ref.shape == (shape[0], shape[1], 1, 1)
        assert torch.equal(ours, ref)  # bit-identical on the CPU
        g = torch.randn_like(ref)
        (grad_ours,) = torch.autograd.grad(ours, x, g)
        (grad_ref,) = torch.autograd.grad(ref, x, g)
        torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-7)


def test_anynet_with_the_mean_pool_computes_what_adaptive_pooling_did():
    from netspaces.models.anynet import build_model
    from netspaces.space.spec import NetSpec

    torch.manual_seed(0)
    spec = NetSpec(ws=[24, 48], ds=[1, 2], bs=[1.0, 1.0], gs=[8, 8], block="y", num_classes=10)  # SE pools too
    net = build_model(spec).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = net(x)
        for m in list(net.modules()):
            if hasattr(m, "pool"):
                m.pool = nn.AdaptiveAvgPool2d(1)
        assert torch.equal(ours, net(x))


class _Net(nn.Module):
    """A logit per class; NaN wherever the input holds a NaN (an overflowed forward)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


def _train_steps(nan_steps: set[int], *, scaled: bool, steps: int = 4, check_every: int = 4):
    """training_step over `steps` batches (the NaN/inf check after the last) with a stand-in
    trainer whose precision plugin has a GradScaler or not."""
    from netspaces.train.module import Classifier
    from netspaces.train.settings import OptimSettings

    module = Classifier(_Net(), OptimSettings(), num_classes=3, channels_last=False, check_every=check_every)
    trainer = SimpleNamespace(
        precision_plugin=SimpleNamespace(scaler=object() if scaled else None),
        num_training_batches=steps,
        optimizers=[SimpleNamespace(param_groups=[{"lr": 0.1}])],
        loggers=[],
        logger=None,
        global_step=0,
        current_epoch=0,
        is_last_batch=False,
        strategy=SimpleNamespace(reduce_boolean_decision=lambda decision, all=True: decision),
        barebones=True,  # self.log(), where a version of the module calls it, returns at once
    )
    module._trainer = trainer  # a stand-in: no Trainer runs here
    module.on_train_start()
    module.on_train_epoch_start()
    y = torch.tensor([0, 1])
    for i in range(steps):
        x = torch.full((2, 4), float("nan")) if i in nan_steps else torch.ones(2, 4)
        trainer.global_step, trainer.is_last_batch = i, i == steps - 1
        module.training_step((x, y), i)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_a_skipped_fp16_step_is_not_a_divergence():
    from netspaces.train.module import Diverged

    _train_steps({1}, scaled=True)  # the scaler skipped step 1; steps 2, 3 are finite again
    with pytest.raises(Diverged):
        _train_steps({1}, scaled=False)  # without a scaler the NaN step updated the weights
    with pytest.raises(Diverged):
        _train_steps({1, 2, 3}, scaled=True)  # still non-finite at the check: diverged


@pytest.mark.slow
def test_a_compiled_network_computes_what_the_eager_one_does():
    """trainer.compile=default for real (inductor on the CPU; a minute of compiling)."""
    from netspaces.models.anynet import build_model
    from netspaces.space.spec import NetSpec

    torch.manual_seed(0)
    net = build_model(NetSpec(ws=[16, 32], ds=[1, 1], bs=[1.0, 1.0], gs=[8, 8], block="y", num_classes=10)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        eager = net(x)
        compiled = perf.compile_network(net, "default")(x)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
