"""Fused training-mode BatchNorm2d + ReLU (+ residual) on the CPU: csrc/bn_relu.cpp.

PyTorch runs a block's BN, residual add and ReLU as separate passes over memory; on the CPU
those passes cost about a third of a RegNetX-400MF training step at 224 px. The kernel does
each direction in two passes (measured in benchmarks/train_step_vs_timm.py). It applies
where it computes exactly what the modules would — a plain nn.BatchNorm2d in training mode
with running statistics and momentum, float32 channels_last CPU input — and everything else
(eval, GPU, other dtypes or layouts, SyncBatchNorm, torch.compile) runs the modules as
written.

The kernel is compiled on first use (about 15 s; `make install` does it ahead) into the
user cache, keyed by the source, torch and the compiler flags. Without a compiler or on a
non-x86 CPU the modules run unfused after a one-line notice; NETSPACES_FUSED_BN=0 switches
the kernel off silently.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

SOURCE = Path(__file__).with_name("csrc") / "bn_relu.cpp"
CFLAGS = ["-std=c++20", "-O3", "-mavx2", "-mfma", "-fPIC", "-DNDEBUG"]
_loaded: dict[str, object] = {}  # "ok": bool, "reason": str — one load attempt per process


def cache_dir() -> Path:
    base = os.environ.get("NETSPACES_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "netspaces"
    return Path(base) / "ext"


def library_path() -> Path:
    """The compiled kernel for this source, torch, Python and set of flags."""
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), torch.__version__.encode(), " ".join(CFLAGS).encode(),
                                     sys.version.encode(), platform.machine().encode()])).hexdigest()[:16]
    return cache_dir() / f"bn_relu-{key}.so"


def unavailable_reason() -> str | None:
    """Why the kernel cannot be used on this machine, or None."""
    if os.environ.get("NETSPACES_FUSED_BN", "1") == "0" or "fused_bn" in os.environ.get("NETSPACES_PERF_OFF", "").split(","):
        return "NETSPACES_FUSED_BN=0"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"it is written for x86-64 CPUs, this is {platform.machine()}"
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return "this CPU lacks AVX2/FMA"
    if not library_path().exists() and not shutil.which(os.environ.get("CXX", "c++")):
        return f"no C++ compiler ({os.environ.get('CXX', 'c++')}) to build it"
    return None


def build(out: Path) -> None:
    """Compile the kernel to `out` (atomically: a reader never sees half a library)."""
    torch_dir = Path(torch.__file__).parent
    torch_lib = torch_dir / "lib"
    includes = [f"-isystem{torch_dir / 'include'}"]
    cxx = os.environ.get("CXX", "c++")
    out.parent.mkdir(parents=True, exist_ok=True)
    obj, tmp = out.with_suffix(f".{os.getpid()}.o"), out.with_suffix(f".{os.getpid()}.tmp")
    try:
        # -fopenmp compiles ATen's parallel_for; linking takes torch's own libgomp, never a second runtime
        _run([cxx, *CFLAGS, "-fopenmp", *includes, "-c", str(SOURCE), "-o", str(obj)])
        gomp = ["-l:libgomp.so.1"] if (torch_lib / "libgomp.so.1").exists() else []
        _run([cxx, "-shared", str(obj), f"-L{torch_lib}", "-lc10", "-ltorch_cpu", *gomp, "-o", str(tmp)])
        os.replace(tmp, out)
    finally:
        obj.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"{Path(cmd[0]).name} failed: {next((ln for ln in lines if 'error' in ln), lines[-1] if lines else '')}")


def load(*, quiet: bool = False) -> bool:
    """Make the kernel available in this process (building it the first time); False, with a
    one-line notice on stderr, where it cannot be."""
    if "ok" in _loaded:
        return bool(_loaded["ok"])
    reason = unavailable_reason()
    if reason is None:
        path = library_path()
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path.parent / ".lock", "w") as lock:  # one build among concurrent runs
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    if not path.exists():
                        t0 = time.perf_counter()
                        print(f"netspaces: building the fused BN+ReLU CPU kernel (once) into {path.parent}",
                              file=sys.stderr, flush=True)
                        build(path)
                        print(f"netspaces: built in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            torch.ops.load_library(str(path))
        except (OSError, RuntimeError) as e:
            reason = f"it could not be built or loaded: {e}"
    _loaded.update(ok=reason is None, reason=reason or "")
    if reason and not quiet and reason != "NETSPACES_FUSED_BN=0":
        print(f"netspaces: fused BN+ReLU kernel unavailable ({reason}); using PyTorch's BatchNorm",
              file=sys.stderr, flush=True)
    return reason is None


class _BNReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, residual):
        y, mean, invstd, scale, shift = torch.ops.netspaces.bn_relu_forward(
            x, weight, bias, running_mean, running_var, momentum, eps, residual)
        ctx.has_residual = residual is not None
        # the mask comes from y only with a residual; without one it is recomputed from x
        ctx.save_for_backward(x, y if ctx.has_residual else None, weight, mean, invstd, scale, shift)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, y, weight, mean, invstd, scale, shift = ctx.saved_tensors
        grads = torch.ops.netspaces.bn_relu_backward(grad, x, y, weight, mean, invstd, scale, shift)
        return grads[0], grads[1], grads[2], None, None, None, None, (grads[3] if ctx.has_residual else None)


def _fusable(bn: nn.Module, x: torch.Tensor, residual: torch.Tensor | None) -> bool:
    return (type(bn) is nn.BatchNorm2d and bn.training and bn.affine and bn.track_running_stats
            and bn.momentum is not None and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last)
            and (residual is None or (residual.dtype == x.dtype and residual.shape == x.shape
                                      and residual.is_contiguous(memory_format=torch.channels_last)))
            and x.numel() > x.shape[1] and not torch.compiler.is_compiling() and load())


def bn_relu(bn: nn.Module, x: torch.Tensor, residual: torch.Tensor | None = None, *, fuse: bool = True) -> torch.Tensor:
    """relu(bn(x) + residual) (residual optional): fused where it applies, else the modules' own
    computation. Either way BN's running statistics and batch counter advance as BN's would."""
    if not (fuse and _fusable(bn, x, residual)):
        y = bn(x)
        return F.relu(y if residual is None else y.add_(residual), inplace=True)
    bn.num_batches_tracked.add_(1)
    return _BNReLU.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps, residual)
