"""Layer plans: the one description of a network that both the PyTorch builder and the
complexity counter read.

A plan is a tree of small frozen records (convs, norms, activations, squeeze-excitation,
blocks, stages). `models/anynet.py` turns a plan into modules; `complexity.py` counts it.
Nothing here imports torch, so plans are cheap and can be built for many candidates at
once: every width may be a numpy array (one entry per candidate) as well as an int.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

Int = Union[int, np.ndarray]  # an int, or one int per candidate when counting in bulk


def round_int(x: Any) -> Int:
    """Round half-to-even to an int (numpy and Python agree; RegNetX-12GF depends on it)."""
    if isinstance(x, np.ndarray):
        return np.rint(x).astype(np.int64)
    return int(round(x))


@dataclass(frozen=True)
class Conv:
    c_in: Int
    c_out: Int
    k: int
    stride: int = 1
    groups: Int = 1
    bias: bool = False


@dataclass(frozen=True)
class BatchNorm:
    c: Int
    final: bool = False  # last BN of a residual branch: zero-init target (ZERO_INIT_FINAL_GAMMA)


@dataclass(frozen=True)
class ReLU:
    pass


@dataclass(frozen=True)
class Sigmoid:
    pass


@dataclass(frozen=True)
class MaxPool:
    c: Int
    k: int
    stride: int


@dataclass(frozen=True)
class SqueezeExcite:
    """Global pool, then `ops` at 1x1, then a channel-wise multiply of the input."""

    ops: tuple


@dataclass(frozen=True)
class Linear:
    c_in: Int
    c_out: int


@dataclass(frozen=True)
class Block:
    """main(x) [+ shortcut(x)] [then ReLU]. An empty shortcut is the identity."""

    main: tuple
    shortcut: tuple = ()
    project: Any = False  # bool, or a bool array in bulk: does the shortcut project?
    residual: bool = True


@dataclass(frozen=True)
class Stage:
    """`depth` blocks: `first` (stride, width change) then depth-1 copies of `rest`."""

    first: Block
    rest: Block
    depth: Int


@dataclass(frozen=True)
class Net:
    stem: tuple
    stages: tuple  # of Stage
    head: tuple  # global average pool is implied before these ops


# ---------------------------------------------------------------------------- stems


STEMS = {
    "simple": lambda c_in, w: (Conv(c_in, w, 3, 2), BatchNorm(w), ReLU()),  # RegNet/AnyNet ImageNet stem
    "cifar": lambda c_in, w: (Conv(c_in, w, 3, 1), BatchNorm(w), ReLU()),  # 32 px data: keep the resolution
    "resnet": lambda c_in, w: (Conv(c_in, w, 7, 2), BatchNorm(w), ReLU(), MaxPool(w, 3, 2)),
}


def stem_plan(kind: str, c_in: int, w: int) -> tuple:
    if kind not in STEMS:
        raise ValueError(f"unknown stem {kind!r}; allowed: {', '.join(STEMS)}")
    return STEMS[kind](c_in, w)


# ---------------------------------------------------------------------------- blocks


def _projection(w_in: Int, w_out: Int, stride: int) -> tuple:
    return (Conv(w_in, w_out, 1, stride), BatchNorm(w_out))


def _needs_projection(w_in: Int, w_out: Int, stride: int) -> Any:
    return (w_in != w_out) | (stride != 1)


def bottleneck_block(w_in: Int, w_out: Int, stride: int, bot_mul: Any, group_w: Int, se_r: float) -> Block:
    """X block (Y block when se_r > 0): 1x1, 3x3 group conv with the stride, [SE], 1x1."""
    w_b = round_int(w_out * bot_mul)
    ops: list = [Conv(w_in, w_b, 1), BatchNorm(w_b), ReLU()]
    ops += [Conv(w_b, w_b, 3, stride, groups=w_b // group_w), BatchNorm(w_b), ReLU()]
    if se_r:
        w_se = round_int(w_in * se_r)  # relative to the block's input width, as in pycls
        ops.append(SqueezeExcite((Conv(w_b, w_se, 1, bias=True), ReLU(), Conv(w_se, w_b, 1, bias=True), Sigmoid())))
    ops += [Conv(w_b, w_out, 1), BatchNorm(w_out, final=True)]
    return Block(tuple(ops), _projection(w_in, w_out, stride), _needs_projection(w_in, w_out, stride))


def basic_block(w_in: Int, w_out: Int, stride: int, bot_mul: Any, group_w: Int, se_r: float) -> Block:
    """R block: two 3x3 convs with a residual."""
    ops = (Conv(w_in, w_out, 3, stride), BatchNorm(w_out), ReLU(), Conv(w_out, w_out, 3), BatchNorm(w_out, final=True))
    return Block(ops, _projection(w_in, w_out, stride), _needs_projection(w_in, w_out, stride))


def vanilla_block(w_in: Int, w_out: Int, stride: int, bot_mul: Any, group_w: Int, se_r: float) -> Block:
    """V block: two 3x3 convs, no residual."""
    ops = (Conv(w_in, w_out, 3, stride), BatchNorm(w_out), ReLU(), Conv(w_out, w_out, 3), BatchNorm(w_out), ReLU())
    return Block(ops, residual=False)


# Adding a block type: a function like the ones above and one entry here (its Hydra option
# `block=<name>` is generated from it; the module builder and the counter read the plan).
BLOCKS = {"x": bottleneck_block, "y": bottleneck_block, "r": basic_block, "v": vanilla_block}
SE_RATIO = {"y": 0.25}  # blocks with squeeze-excitation by default: w_se = ratio · w_in
GROUPED = ("x", "y")  # blocks with a group conv on the bottleneck width


def net_plan(
    *,
    ws,
    ds,
    bs,
    gs,
    strides,
    block: str,
    se_r: float,
    stem: str,
    stem_w: int,
    num_classes: int,
    in_chans: int,
) -> Net:
    """The plan of an AnyNet: stem, one Stage per entry of ws/ds/bs/gs/strides, head."""
    make_block = BLOCKS[block]
    stages = []
    w_in: Int = stem_w
    for w, d, b, g, s in zip(ws, ds, bs, gs, strides):
        first = make_block(w_in, w, s, b, g, se_r)
        rest = make_block(w, w, 1, b, g, se_r)
        stages.append(Stage(first, rest, d))
        w_in = w
    return Net(stem_plan(stem, in_chans, stem_w), tuple(stages), (Linear(w_in, num_classes),))
