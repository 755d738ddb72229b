"""AnyNet in PyTorch, built from a layer plan (netspaces.plan) — the plan the complexity
counter reads, so the module and its flops/params/acts cannot drift apart."""

from __future__ import annotations

import math

import torch
from torch import nn

from netspaces import plan as P
from netspaces.models.fused import bn_relu
from netspaces.spec import NetSpec


class Chain(nn.Sequential):
    """nn.Sequential that runs each BatchNorm2d → ReLU pair as one fused op where that applies
    (netspaces.models.fused: CPU training). The modules, their names and state stay those of
    the plain Sequential, so checkpoints, folding and SyncBatchNorm conversion see no change."""

    fuse = True

    def _run(self, x: torch.Tensor, modules: list[nn.Module]) -> torch.Tensor:
        i = 0
        while i < len(modules):
            m = modules[i]
            if self.fuse and type(m) is nn.BatchNorm2d and i + 1 < len(modules) and type(modules[i + 1]) is nn.ReLU:
                x, i = bn_relu(m, x), i + 2
            else:
                x, i = m(x), i + 1
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, list(self._modules.values()))

    def forward_add_relu(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """relu(self(x) + residual), the last BN fused with the add and the ReLU."""
        *body, last = self._modules.values()
        y = self._run(x, body)
        if type(last) is nn.BatchNorm2d:
            return bn_relu(last, y, residual, fuse=self.fuse)
        return torch.relu_(last(y).add_(residual))  # in-place add: one allocation less per block


class SqueezeExcite(nn.Module):
    def __init__(self, ops: tuple) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
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
        return self.f.forward_add_relu(x, shortcut)  # relu(f(x) + shortcut)


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


def _sequential(ops: tuple) -> Chain:
    return Chain(*[_layer(op) for op in ops])


class AnyNet(nn.Module):
    """stem → stages of blocks → global average pool → linear."""

    def __init__(self, spec: NetSpec, *, zero_init_final_gamma: bool = False, fuse_bn_relu: bool = True) -> None:
        super().__init__()
        self.spec = spec
        net = spec.plan()
        self.stem = _sequential(net.stem)
        stages = []
        for stage in net.stages:
            blocks = [Block(stage.first)] + [Block(stage.rest) for _ in range(stage.depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = _sequential(net.head)
        init_weights(self, zero_init_final_gamma=zero_init_final_gamma)
        set_fuse_bn_relu(self, fuse_bn_relu)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.forward_features(x)), 1))


def set_fuse_bn_relu(model: nn.Module, enabled: bool) -> None:
    """Whether `model`'s BN → ReLU pairs run fused where that applies (they compute the same)."""
    for m in model.modules():
        if isinstance(m, Chain):
            m.fuse = enabled


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


def build_model(spec: NetSpec, *, zero_init_final_gamma: bool = False, fuse_bn_relu: bool = True) -> AnyNet:
    return AnyNet(spec, zero_init_final_gamma=zero_init_final_gamma, fuse_bn_relu=fuse_bn_relu)
