"""AnyNet in PyTorch, built from a layer plan (netspaces.space.plan) — the plan the complexity
counter reads, so the module and its flops/params/acts cannot drift apart."""

from __future__ import annotations

import math

import torch
from torch import nn

from netspaces.space import plan as P
from netspaces.space.spec import NetSpec


class GlobalAvgPool(nn.Module):
    """The mean over H and W (N, C, 1, 1): what adaptive average pooling to 1x1 computes, as a
    plain reduction, whose CUDA backward is deterministic (runs with trainer.deterministic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)


class SqueezeExcite(nn.Module):
    def __init__(self, ops: tuple) -> None:
        super().__init__()
        self.pool = GlobalAvgPool()
        self.f = _sequential(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.f(self.pool(x))


class Block(nn.Module):
    def __init__(self, plan: P.Block) -> None:
        super().__init__()
        self.f = _sequential(plan.main)
        self.residual = plan.residual
        self.proj = _sequential(plan.shortcut) if plan.residual and plan.project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.residual:
            return self.f(x)
        shortcut = x if self.proj is None else self.proj(x)
        return torch.relu_(self.f(x).add_(shortcut))  # in place: one allocation less per block


def _layer(op) -> nn.Module:
    if isinstance(op, P.Conv):
        return nn.Conv2d(op.c_in, op.c_out, op.k, op.stride, padding=op.k // 2, groups=op.groups, bias=op.bias)
    if isinstance(op, P.BatchNorm):
        bn = nn.BatchNorm2d(op.c, eps=1e-5, momentum=0.1)
        bn.final_bn = op.final  # read by init_weights for zero-init of the final gamma
        return bn
    if isinstance(op, P.ReLU):
        return nn.ReLU(inplace=True)
    if isinstance(op, P.Sigmoid):
        return nn.Sigmoid()
    if isinstance(op, P.MaxPool):
        return nn.MaxPool2d(op.k, op.stride, padding=op.k // 2)
    if isinstance(op, P.SqueezeExcite):
        return SqueezeExcite(op.ops)
    if isinstance(op, P.Linear):
        return nn.Linear(op.c_in, op.c_out)
    raise TypeError(f"no module for {type(op).__name__}")


def _sequential(ops: tuple) -> nn.Sequential:
    return nn.Sequential(*[_layer(op) for op in ops])


class AnyNet(nn.Module):
    """stem → stages of blocks → global average pool → linear."""

    def __init__(self, spec: NetSpec, *, zero_init_final_gamma: bool = False) -> None:
        super().__init__()
        self.spec = spec
        net = spec.plan()
        self.stem = _sequential(net.stem)
        stages = []
        for stage in net.stages:
            blocks = [Block(stage.first)] + [Block(stage.rest) for _ in range(stage.depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalAvgPool()
        self.head = _sequential(net.head)
        init_weights(self, zero_init_final_gamma=zero_init_final_gamma)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.forward_features(x)), 1))


def init_weights(model: nn.Module, *, zero_init_final_gamma: bool = False) -> None:
    """pycls initialisation: conv N(0, sqrt(2/fan_out)) with fan_out = k·k·c_out; BN γ=1
    (0 for a residual branch's final BN when asked), β=0; linear N(0, 0.01), bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            zero = zero_init_final_gamma and getattr(m, "final_bn", False)
            nn.init.constant_(m.weight, 0.0 if zero else 1.0)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def build_model(spec: NetSpec, *, zero_init_final_gamma: bool = False) -> AnyNet:
    return AnyNet(spec, zero_init_final_gamma=zero_init_final_gamma)
