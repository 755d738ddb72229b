"""Conv+BatchNorm folding for evaluation: an eval-mode BN after a conv is an affine map per
channel, so it can live in the conv's weight and bias. The folded copy computes the same
function (to float rounding) with one pass over each activation instead of two, which is
what makes evaluation forward faster (measured in benchmarks/eval_forward.py).

Folds every Conv2d directly followed by a BatchNorm2d inside an nn.Sequential — the shape
our AnyNet modules have by construction (stem, block branches, shortcut projections).
The source model is left untouched; the copy is for inference only (no training: BN's
batch statistics are gone).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv computing bn(conv(x)) with BN in eval mode (running statistics)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm2d without running statistics (track_running_stats=False)")
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                       device="meta")  # no allocation or init: both parameters are replaced below
    # an elementwise product keeps the conv weight's strides: channels_last stays channels_last
    folded.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype), requires_grad=False)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    folded.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
    return folded


def _fold_sequential(seq: nn.Sequential) -> int:
    names = list(seq._modules)
    count = 0
    for a, b in zip(names, names[1:]):
        conv, bn = seq._modules[a], seq._modules[b]
        if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d:
            seq._modules[a] = fold_conv_bn(conv, bn)
            seq._modules[b] = nn.Identity()
            count += 1
    return count


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode copy of `model` with conv+BN pairs folded, and how many were folded."""
    folded = copy.deepcopy(model).eval()
    count = sum(_fold_sequential(m) for m in [m for m in folded.modules() if isinstance(m, nn.Sequential)])
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded, count
