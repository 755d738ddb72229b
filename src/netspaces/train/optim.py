"""The paper's optimiser and schedule: SGD (Nesterov), lr ∝ batch, cosine per epoch, warmup.

lr(e) = base_lr · global_batch/128 · ½(1 + cos(π·e/E)) for epoch e of E (0 at e = E), times a
linear warmup factor f + (1 − f)·e/W during the first W epochs (pycls's schedule).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from netspaces.train.settings import OptimSettings


class EpochLR:
    """The lr multiplier of epoch e (a plain object: its state pickles as numbers)."""

    def __init__(self, epochs: int, warmup_epochs: int = 0, warmup_factor: float = 0.1) -> None:
        self.epochs, self.warmup_epochs, self.warmup_factor = epochs, warmup_epochs, warmup_factor

    def __call__(self, epoch: int) -> float:
        factor = 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        if epoch < self.warmup_epochs:
            alpha = epoch / self.warmup_epochs
            factor *= self.warmup_factor * (1.0 - alpha) + alpha
        return factor


def param_groups(model: nn.Module, s: OptimSettings) -> list[dict]:
    if s.weight_decay_norm_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": s.weight_decay}]
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # BN γ/β and biases are 1-d
    return [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, s: OptimSettings):
    """SGD and its per-epoch LambdaLR, as Lightning's configure_optimizers expects them."""
    # fused: one kernel for the whole update (SGD step 14.9 -> 6.8 ms for RegNetX-400MF on the
    # CPU, +7% per training step at 32 px; benchmarks/README.md)
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    opt = torch.optim.SGD(
        param_groups(model, s), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, dampening=0.0, fused=fused or None
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, EpochLR(s.epochs, s.warmup_epochs, s.warmup_factor))
    return opt, sched
