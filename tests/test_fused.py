"""The fused BN+ReLU(+residual) CPU kernel: the same numbers as the modules (checked against
float64), the same state updates, and the modules' own path wherever it does not apply."""

from __future__ import annotations

import copy
import platform
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from netspaces.models import fused
from netspaces.models.anynet import Chain, set_fuse_bn_relu
from netspaces.models.baselines import get_network

CAN_BUILD = platform.machine() == "x86_64" and shutil.which("c++") is not None
needs_kernel = pytest.mark.skipif(not CAN_BUILD, reason="the fused kernel needs x86-64 and a C++ compiler")


@pytest.fixture(scope="module")
def kernel():
    assert fused.load(), fused._loaded.get("reason")  # where it can be built it must be


def _bn(c: int, seed: int) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(c)
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        bn.weight.copy_(torch.rand(c, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(c, generator=g) * 0.5)
        bn.running_mean.copy_(torch.randn(c, generator=g))
        bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return bn


def _run(bn, x, g, residual, *, fuse):
    x = x.clone().requires_grad_()
    r = residual.clone().requires_grad_() if residual is not None else None
    y = fused.bn_relu(bn, x, r, fuse=fuse)
    y.backward(g)
    return {"y": y.detach(), "dx": x.grad, "dw": bn.weight.grad, "db": bn.bias.grad,
            "dr": None if r is None else r.grad, "running_mean": bn.running_mean.clone(),
            "running_var": bn.running_var.clone(), "batches": bn.num_batches_tracked.clone()}


@needs_kernel
@pytest.mark.parametrize("shape", [(4, 8, 5, 5), (3, 21, 7, 9), (2, 16, 64, 64)])  # 21: not a vector width
@pytest.mark.parametrize("with_residual", [False, True])
def test_matches_float64_modules(kernel, shape, with_residual):
    gen = torch.Generator().manual_seed(1)
    x = (torch.randn(*shape, generator=gen) * 2 + 0.5).contiguous(memory_format=torch.channels_last)
    g = torch.randn(*shape, generator=gen).contiguous(memory_format=torch.channels_last)
    r = torch.randn(*shape, generator=gen).contiguous(memory_format=torch.channels_last) if with_residual else None

    calls = []
    apply = fused._BNReLU.apply
    fused._BNReLU.apply = lambda *a: calls.append(1) or apply(*a)
    try:
        got = _run(_bn(shape[1], 0), x, g, r, fuse=True)
    finally:
        fused._BNReLU.apply = apply
    want = _run(_bn(shape[1], 0).double(), x.double(), g.double(), None if r is None else r.double(), fuse=True)

    assert calls == [1]  # the kernel ran, not the modules
    for k, w in want.items():
        if w is None:
            assert got[k] is None
            continue
        scale = w.abs().max().item() or 1.0
        err = (got[k].double() - w.double()).abs().max().item() / scale
        assert err < 2e-6, f"{k}: relative error {err:.2e}"
    assert int(got["batches"]) == 1
    # the ReLU's zeros are exact, and the mask the backward used is the forward's
    assert torch.equal(got["y"] == 0, want["y"] == 0)


@needs_kernel
def test_more_accurate_than_pytorchs_kernel_over_many_rows(kernel):
    # 32*64*64 = 131,072 rows per channel: float accumulation loses digits, ours keeps them
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(32, 8, 64, 64, generator=gen) * 3 + 2).contiguous(memory_format=torch.channels_last)
    g = torch.randn(x.shape, generator=gen).contiguous(memory_format=torch.channels_last)
    want = _run(_bn(8, 0).double(), x.double(), g.double(), None, fuse=False)
    ours = _run(_bn(8, 0), x, g, None, fuse=True)
    theirs = _run(_bn(8, 0), x, g, None, fuse=False)

    def err(res):
        return (res["dx"].double() - want["dx"]).abs().max().item() / want["dx"].abs().max().item()

    assert err(ours) < 1e-6 and err(ours) <= err(theirs)


@pytest.mark.parametrize("case", ["eval", "nchw", "float64", "subclass", "no_running_stats", "fuse_off"])
def test_modules_run_where_the_kernel_does_not_apply(case, monkeypatch):
    monkeypatch.setattr(fused._BNReLU, "apply", lambda *a: pytest.fail("the kernel ran"))
    bn = _bn(8, 0) if case != "no_running_stats" else nn.BatchNorm2d(8, track_running_stats=False)
    if case == "subclass":  # e.g. SyncBatchNorm: its own forward must run
        bn = type("MyBN", (nn.BatchNorm2d,), {})(8)
    x = torch.randn(4, 8, 6, 6)
    if case != "nchw":
        x = x.contiguous(memory_format=torch.channels_last)
    if case == "float64":
        bn, x = bn.double(), x.double()
    if case == "eval":
        bn.eval()
    want = torch.relu(copy.deepcopy(bn)(x) + x)
    assert torch.equal(fused.bn_relu(bn, x.clone(), x, fuse=case != "fuse_off"), want)


@needs_kernel
def test_network_gradients_match_float64(kernel):
    # a float32 network's gradients drift from float64's by rounding; the fused one no more
    # than PyTorch's modules (one step: SGD on random data is chaotic after a few)
    torch.manual_seed(0)
    fused_net = get_network("RegNetY-200MF", num_classes=10).to(memory_format=torch.channels_last)  # SE too
    modules_net = copy.deepcopy(fused_net)
    set_fuse_bn_relu(modules_net, False)
    exact = copy.deepcopy(modules_net).double()
    assert all(m.fuse for m in fused_net.modules() if isinstance(m, Chain))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, 64, 64, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (16,), generator=gen)
    for net in (fused_net, modules_net, exact):
        nn.functional.cross_entropy(net(x.to(next(net.parameters()).dtype)), y).backward()

    def drift(net, what):
        got = torch.cat([t.double().flatten() for t in what(net)])
        want = torch.cat([t.flatten() for t in what(exact)])
        return ((got - want).norm() / want.norm()).item()

    def grads(net):
        return [p.grad for p in net.parameters()]

    def stats(net):
        return [b for n, b in net.named_buffers() if "running" in n]

    assert drift(fused_net, grads) < 1e-3 and drift(fused_net, grads) <= drift(modules_net, grads)
    assert drift(fused_net, stats) < 1e-6
    assert list(fused_net.state_dict()) == list(modules_net.state_dict())  # same modules, same checkpoints
    assert all(int(b) == 1 for n, b in fused_net.named_buffers() if n.endswith("num_batches_tracked"))


def test_unavailable_kernel_says_why_once_and_the_network_still_trains(tmp_path):
    code = (
        "import torch\n"
        "from netspaces.models import fused\n"
        "from netspaces.models.baselines import get_network\n"
        "m = get_network('RegNetX-200MF', num_classes=10).to(memory_format=torch.channels_last)\n"
        "for _ in range(2): m(torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)).sum().backward()\n"
        "print('ok', fused._loaded['ok'])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "NETSPACES_CACHE": str(tmp_path), "CXX": "no-such-compiler",
           "PYTHONPATH": str(fused.SOURCE.parents[3])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "False"]
    notices = [ln for ln in out.stderr.splitlines() if "fused BN+ReLU" in ln]
    if platform.machine() == "x86_64" and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert notices == ["netspaces: fused BN+ReLU kernel unavailable (no C++ compiler (no-such-compiler) "
                           "to build it); using PyTorch's BatchNorm"]
    env["NETSPACES_FUSED_BN"] = "0"  # the documented opt-out: silent
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["ok", "False"] and "fused" not in out.stderr


@needs_kernel
def test_builds_from_source_into_an_empty_cache(tmp_path):
    # what a fresh machine does once (make install): compile, load, run the op
    code = (
        "import torch\n"
        "from netspaces.models import fused\n"
        "assert not fused.library_path().exists()\n"
        "bn = torch.nn.BatchNorm2d(4)\n"
        "x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)\n"
        "y = fused.bn_relu(bn, x)\n"
        "assert fused._loaded['ok'] and fused.library_path().exists()\n"
        "assert torch.allclose(y, torch.relu(torch.nn.functional.batch_norm(x, None, None, training=True)), atol=1e-5)\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "NETSPACES_CACHE": str(tmp_path), "PYTHONPATH": str(fused.SOURCE.parents[3])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert "building the fused BN+ReLU CPU kernel (once)" in out.stderr
    assert [p.name for p in (tmp_path / "ext").glob("*.so")] == [fused.library_path().name]
    assert not list((tmp_path / "ext").glob("*.tmp")) and not list((tmp_path / "ext").glob("*.o"))
