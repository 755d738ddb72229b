"""Speed mechanisms, behind one seam: the run enters them through these calls only, models
never import this package, every mechanism has a `perf.*` switch, and none runs where it
cannot help (nothing here acts on a CPU run).

Each must earn its place end to end on the workloads users run (benchmarks/mechanisms.py,
benchmarks/README.md). Eight CPU mechanisms were measured there — a fused BN+ReLU kernel,
a malloc policy, an OpenMP wait policy with its load probe, thread moving, denormal
flushing, skipping deterministic mode's NaN fill, gc freezing and conv+BN-folded
validation — and none reached 1.05x on a 32 px CIFAR-10 population or the digits default,
so none is here. What is here serves GPU runs:

- cudnn_benchmark: cuDNN times the conv algorithms once per shape and keeps the fastest
  (Lightning's own option; off in deterministic runs, where autotuning is not allowed);
- background_checkpoints: the per-epoch checkpoint is written from a snapshot in a thread,
  so the GPU does not wait on the file system (on a CPU the thread would only take cores
  from training, so checkpoints are written in line there).

The GPU issue's mechanisms (TF32, compile) go here too, each with its switch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerfSettings:
    """One switch per mechanism: `perf.<name>` in conf/train.yaml."""

    cudnn_benchmark: bool = True
    background_checkpoints: bool = True


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
