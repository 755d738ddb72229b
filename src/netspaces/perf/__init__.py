"""Speed mechanisms, behind one seam: the run enters them through these calls only, models
never import this package, every mechanism has a `perf.*` switch, and none runs where it
cannot help (keep_freed_memory acts on CPU runs only; the rest on GPU runs only).

Each must earn its place end to end on the workloads users run (benchmarks/mechanisms.py,
benchmarks/README.md). Eight CPU mechanisms were measured there — a fused BN+ReLU kernel,
a malloc policy, an OpenMP wait policy with its load probe, thread moving, denormal
flushing, skipping deterministic mode's NaN fill, gc freezing and conv+BN-folded
validation — and none reached 1.05x on a 32 px CIFAR-10 population or the digits default.
The malloc policy came back when populations stopped validating every epoch and were
measured against a plain loop (benchmarks/README.md): see keep_freed_memory.

- keep_freed_memory (CPU): glibc serves each block above its mmap threshold with a fresh
  mmap and unmaps it on free, and trims the heap top back to the kernel, so a training step
  pays page faults to get the same activation buffers back every step. Keeping freed memory
  in the heap removed that (a reproduce-small sweep's system time 14.7 -> 5.1 s).

What else is here serves GPU runs:

- cudnn_benchmark: cuDNN times the conv algorithms once per shape and keeps the fastest
  (Lightning's own option; off in deterministic runs, where autotuning is not allowed);
- background_checkpoints: the per-epoch checkpoint is written from a snapshot in a thread,
  so the GPU does not wait on the file system (on a CPU the thread would only take cores
  from training, so checkpoints are written in line there).

- tf32: float32 matmuls and convolutions on the tensor cores in TF32 (10-bit mantissa), for
  the mixed-precision path only, where the few float32 ops left are not what the run's numerics
  rest on. A run in 32-true gets true fp32 (TF32 off, also for convolutions, which torch would
  otherwise run in TF32), so `trainer.precision=32-true` is the paper-exact path;
- compile_network: torch.compile of the network (`trainer.compile`: off | default |
  max-autotune-no-cudagraphs), compiled in place so checkpoints keep their keys. Off by
  default: compiling costs minutes per model, which a population of short runs pays 100 times.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerfSettings:
    """One switch per mechanism: `perf.<name>` in conf/train.yaml."""

    cudnn_benchmark: bool = True
    background_checkpoints: bool = True
    keep_freed_memory: bool = True
    tf32: bool = True


MIXED = ("bf16-mixed", "16-mixed")


def process_setup(p: PerfSettings, *, on_gpu: bool, precision: str = "32-true") -> list[str]:
    """Process-wide mechanisms, entered once a run knows its device and the precision it
    trains in (settings.precision_used); the names of those taken."""
    taken = []
    if not on_gpu and p.keep_freed_memory and keep_freed_memory():
        taken.append("keep_freed_memory")
    if on_gpu:  # set either way: a 32-true run after a bf16 one in this process gets true fp32
        use_tf32 = p.tf32 and precision in MIXED
        set_tf32(use_tf32)
        if use_tf32:
            taken.append("tf32")
    return taken


def set_tf32(on: bool) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions, on or off (the fp32_precision API of
    torch >= 2.9 where present, else the allow_tf32 flags)."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "conv"):
        matmul.fp32_precision = "tf32" if on else "ieee"
        cudnn.conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = on
        cudnn.allow_tf32 = on


def tf32_on() -> tuple[bool, bool]:
    """(matmul, convolution) TF32 as torch has it now."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(cudnn, "conv"):
        return matmul.fp32_precision == "tf32", cudnn.conv.fp32_precision == "tf32"
    return bool(matmul.allow_tf32), bool(cudnn.allow_tf32)


def compile_network(net, mode: str):
    """`net` compiled in place by torch.compile in `mode` (trainer.compile); "off": as it is.
    In place (nn.Module.compile), so its state_dict keys and checkpoints stay those of the
    plain network; the compilation itself happens at the first forward."""
    if mode != "off":
        net.compile(mode=mode)
    return net


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
TRIM_THRESHOLD = 2**31 - 1  # bytes: the largest int, i.e. never give the heap top back


def keep_freed_memory() -> bool:
    """glibc: serve every block from the heap (no mmap per large block) and never trim it, so
    freed activations are reused without page faults; True when glibc took it. The process
    keeps its peak heap, which a training step reaches every step anyway. Other C libraries
    (musl, macOS) are left alone."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc: musl has no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def trainer_options(p: PerfSettings, *, on_gpu: bool, deterministic: bool) -> dict[str, Any]:
    """Lightning Trainer arguments of the kept mechanisms (Lightning resets
    cudnn.benchmark to False unless it is passed True)."""
    return {"benchmark": on_gpu and p.cudnn_benchmark and not deterministic}


def checkpoint_writer(writer, p: PerfSettings, *, on_gpu: bool):
    """`writer` (a Lightning CheckpointIO), moved to a background thread where that helps."""
    if on_gpu and p.background_checkpoints:
        from lightning.pytorch.plugins.io import AsyncCheckpointIO

        return AsyncCheckpointIO(writer)
    return writer
