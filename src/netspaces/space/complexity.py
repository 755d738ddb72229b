"""Analytic complexity of a layer plan: flops (multiply-adds), params and activations.

Counts the same plan the model is built from (`plan.py`), with the paper's conventions:
conv k²·c_in·c_out·h'·w'/groups flops (+ c_out·h'·w' with a bias), acts c_out·h'·w';
BN 2c params; linear in·out+out; SE at 1x1; ReLU, sigmoid, adds and average pooling free;
max-pool counts its acts. Works on ints or on numpy arrays (one entry per candidate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netspaces.space import plan as P


@dataclass(frozen=True)
class Complexity:
    flops: Any
    params: Any
    acts: Any

    def __add__(self, o: "Complexity") -> "Complexity":
        return Complexity(self.flops + o.flops, self.params + o.params, self.acts + o.acts)

    def __mul__(self, k: Any) -> "Complexity":
        return Complexity(self.flops * k, self.params * k, self.acts * k)

    def as_dict(self) -> dict:
        return {"flops": int(self.flops), "params": int(self.params), "acts": int(self.acts)}


ZERO = Complexity(0, 0, 0)


def _out_size(h: int, stride: int) -> int:
    # 'same' padding (k // 2) for odd k: h' = (h + 2p - k) // s + 1 = (h - 1) // s + 1
    return (h - 1) // stride + 1


def count_ops(ops: tuple, h: int, w: int) -> tuple[Complexity, int, int]:
    """Count a sequence of ops applied at spatial size h x w; return the cost and the new size."""
    total = ZERO
    for op in ops:
        if isinstance(op, P.Conv):
            h, w = _out_size(h, op.stride), _out_size(w, op.stride)
            flops = op.k * op.k * op.c_in * op.c_out * h * w // op.groups
            params = op.k * op.k * op.c_in * op.c_out // op.groups
            if op.bias:
                flops, params = flops + op.c_out * h * w, params + op.c_out
            total += Complexity(flops, params, op.c_out * h * w)
        elif isinstance(op, P.BatchNorm):
            total += Complexity(0, 2 * op.c, 0)
        elif isinstance(op, P.MaxPool):
            h, w = _out_size(h, op.stride), _out_size(w, op.stride)
            total += Complexity(0, 0, op.c * h * w)
        elif isinstance(op, P.SqueezeExcite):
            total += count_ops(op.ops, 1, 1)[0]
        elif isinstance(op, P.Linear):
            total += Complexity(op.c_in * op.c_out + op.c_out, op.c_in * op.c_out + op.c_out, op.c_out)
        elif not isinstance(op, (P.ReLU, P.Sigmoid)):
            raise TypeError(f"no cost rule for {type(op).__name__}")
    return total, h, w


def count_block(block: P.Block, h: int, w: int) -> tuple[Complexity, int, int]:
    cost, h2, w2 = count_ops(block.main, h, w)
    if block.shortcut:
        cost += count_ops(block.shortcut, h, w)[0] * block.project
    return cost, h2, w2


def count_net(net: P.Net, resolution: int) -> Complexity:
    cost, h, w = count_ops(net.stem, resolution, resolution)
    for stage in net.stages:
        first, h, w = count_block(stage.first, h, w)
        rest = count_block(stage.rest, h, w)[0]
        cost += first + rest * (stage.depth - 1)
    return cost + count_ops(net.head, 1, 1)[0]


def complexity(spec, resolution: int = 224) -> Complexity:
    """flops, params and acts of a NetSpec at a square input `resolution`."""
    return count_net(spec.plan(), resolution)
