"""`netspaces time`, the timm baselines and get_network: real models, real counts (never speeds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netspaces.errors import UserError
from netspaces.models.anynet import AnyNet
from netspaces.models.baselines import (
    allowed_names,
    baseline_complexity,
    get_network,
    measured_complexity,
    native_resolution,
)
from netspaces.models.timing import default_channels_last, time_model, time_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "netspaces", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


# ---------------------------------------------------------------- get_network and baselines


def test_zoo_names_build_our_anynet_with_the_published_parameter_count():
    net = get_network("regnetx_400mf", num_classes=1000)
    assert isinstance(net, AnyNet)
    assert sum(p.numel() for p in net.parameters()) == 5_157_512  # pycls model zoo
    assert get_network("RegNetX-400MF", num_classes=10, stem="cifar").spec.stem == "cifar"


def test_timm_baselines_are_the_published_architectures():
    eff = get_network("efficientnet_b0", num_classes=1000)
    assert not isinstance(eff, AnyNet)
    assert sum(p.numel() for p in eff.parameters()) == 5_288_548  # pycls EfficientNet-B0
    timm_regnet = get_network("regnetx_004", num_classes=1000)
    assert sum(p.numel() for p in timm_regnet.parameters()) == 5_157_512  # same as our RegNetX-400MF


def test_resnet50_is_ours_and_timm_prefix_picks_timm():
    assert isinstance(get_network("resnet50", num_classes=10), AnyNet)
    timm_r50 = get_network("timm/resnet50", num_classes=10)
    assert not isinstance(timm_r50, AnyNet)
    assert "timm/resnet50" in allowed_names() and "resnext50_32x4d" in allowed_names()


def test_cifar_stem_keeps_32px_resolution_for_timm_models():
    net = get_network("timm/resnet50", num_classes=10, stem="cifar")
    assert net.conv1.stride == (1, 1) and isinstance(net.maxpool, torch.nn.Identity)
    eff = get_network("efficientnet_b0", num_classes=10, stem="cifar").eval()
    assert eff.conv_stem.stride == (1, 1)
    with torch.no_grad():
        assert eff(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_zero_init_final_gamma_reaches_timm_resnets():
    on = get_network("timm/resnet50", num_classes=10, zero_init_final_gamma=True)
    off = get_network("timm/resnet50", num_classes=10, zero_init_final_gamma=False)
    assert float(on.layer1[0].bn3.weight.detach().abs().sum()) == 0.0
    assert float(off.layer1[0].bn3.weight.detach().abs().sum()) > 0.0


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("resnet999", {"num_classes": 10}, "unknown model 'resnet999'; allowed: RegNetX-200MF"),
        ("efficientnet_b0", {"num_classes": 10, "stem": "resnet"}, "stem 'resnet' is not available"),
        ("RegNetX-400MF", {"num_classes": 0}, "num_classes and in_chans must be >= 1"),
    ],
)
def test_bad_network_requests_name_what_is_allowed(name, kwargs, match):
    with pytest.raises(UserError, match=match):
        get_network(name, **kwargs)


def test_measured_complexity_agrees_with_our_analytic_counter():
    """The flop counter sees the same network as the analytic counter: params and acts equal;
    flops differ by the head's bias adds only (the counter skips biases)."""
    from netspaces.space.complexity import complexity
    from netspaces.space.zoo import get_model_spec

    spec = get_model_spec("RegNetY-200MF")
    with torch.device("meta"):
        net = get_network("RegNetY-200MF", num_classes=1000)
    measured, analytic = measured_complexity(net, 224), complexity(spec, 224)
    assert (measured.params, measured.acts) == (analytic.params, analytic.acts)
    se_biases = sum(m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)
    assert analytic.flops - measured.flops == 1000 + se_biases


def test_efficientnet_b0_complexity_matches_the_published_numbers():
    cx = baseline_complexity("EfficientNet-B0")
    assert cx.params == 5_288_548 and cx.acts == 6_748_036  # pycls model_complexity.json
    assert abs(cx.flops - 385_825_092) / 385_825_092 < 0.001
    assert native_resolution("efficientnet_b3") == 300 and native_resolution("RegNetY-1.6GF") == 224


# ---------------------------------------------------------------- timing


def test_time_model_reports_forward_and_training_time_per_batch():
    t = time_model("RegNetX-200MF", batch=2, resolution=32, repeats=2, warmup=1, threads=1)
    assert (t.model, t.batch, t.resolution, t.device, t.threads, t.repeats) == ("RegNetX-200MF", 2, 32, "cpu", 1, 2)
    assert t.forward_ms > 0 and t.train_ms > 0
    assert t.train_ms_per_image == pytest.approx(t.train_ms / 2)
    assert set(t.as_dict()) >= {"forward_ms", "train_ms", "forward_ms_per_image", "train_ms_per_image"}


def test_time_module_leaves_the_model_as_it_found_it():
    net = get_network("RegNetX-200MF", num_classes=10).eval()
    time_module(net, batch=2, resolution=32, repeats=1, warmup=0, num_classes=10)
    assert not net.training and all(p.grad is None for p in net.parameters())


def test_channels_last_default_skips_depthwise_networks():
    assert default_channels_last(get_network("RegNetX-200MF", num_classes=10), "cpu")
    assert not default_channels_last(get_network("efficientnet_b0", num_classes=10), "cpu")
    assert not default_channels_last(get_network("RegNetX-200MF", num_classes=10), "cuda")


def test_time_cli_json_for_a_timm_baseline():
    r = cli(
        "time",
        "efficientnet_b0",
        "--batch",
        "2",
        "--resolution",
        "32",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["model"] == "efficientnet_b0" and d["resolution"] == 32 and d["forward_ms"] > 0 and d["train_ms"] > 0


def test_time_text_output(capsys):
    from netspaces.cli import main

    assert (
        main(["time", "RegNetX-200MF", "--batch", "2", "--resolution", "32", "--repeats", "1", "--threads", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("RegNetX-200MF: batch 2 at 32 px on cpu (1 threads)")
    assert "forward+backward" in out and "ms/image" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope"], "netspaces: error: unknown model 'nope'; allowed:"),
        (["RegNetX-200MF", "--batch", "0"], "netspaces: error: batch must be >= 1; got 0"),
        (["RegNetX-200MF", "--device", "tpu"], "netspaces: error: unknown device 'tpu'; allowed: cpu, cuda"),
        (["RegNetX-200MF", "--resolution", "4"], "netspaces: error: resolution must be >= 8; got 4"),
        (["RegNetX-200MF", "--threads", "0"], "netspaces: error: threads must be >= 1; got 0"),
        (
            [
                "efficientnet_b0",
                "--batch",
                "1",
                "--resolution",
                "32",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--threads",
                "1",
            ],
            "netspaces: error: forward+backward of efficientnet_b0 fails at batch 1, 32 px: Expected more than 1 value",
        ),
    ],
)
def test_time_bad_values_end_with_one_line(args, message, capsys):
    from netspaces.cli import main

    assert main(["time", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_time_cuda_without_a_gpu_says_so(capsys):
    from netspaces.cli import main

    assert main(["time", "RegNetX-200MF", "--device", "cuda"]) == 2
    assert "device cuda is not available on this machine" in capsys.readouterr().err
