"""AnyNet modules built from per-stage specs: block types, stems, 5 stages, initialisation."""

import math

import pytest
import torch
from torch import nn

from netspaces.errors import UserError
from netspaces.models.anynet import build_model
from netspaces.space.complexity import complexity
from netspaces.space.spec import NetSpec


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("block", ["x", "y", "r", "v"])
@pytest.mark.parametrize("stages", [4, 5])
def test_any_block_and_stage_count_builds_and_counts(block, stages):
    spec = NetSpec(
        ws=[16, 32, 64, 96, 128][:stages],
        ds=[1, 2, 1, 2, 1][:stages],
        bs=[1, 0.5, 1, 0.25, 1][:stages],
        gs=[8, 8, 16, 8, 16][:stages],
        block=block,
        num_classes=10,
    )
    model = build_model(spec)
    assert n_params(model) == complexity(spec).params
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10)


def test_y_block_se_width_is_relative_to_the_block_input():
    spec = NetSpec(ws=[64], ds=[1], bs=[1.0], gs=[8], block="y", stem_w=32)
    se = [m for m in build_model(spec).modules() if m.__class__.__name__ == "SqueezeExcite"][0]
    conv1 = se.f[0]
    assert (conv1.in_channels, conv1.out_channels) == (64, 8)  # round(0.25 * w_in=32) = 8, not 16
    assert conv1.bias is not None


def test_stride_and_shortcut_rules():
    spec = NetSpec(ws=[32, 32], ds=[2, 1], bs=[1, 1], gs=[8, 8], strides=[1, 2], stem_w=32, stem="cifar")
    m = build_model(spec)
    first, second = m.stages[0][0], m.stages[0][1]
    assert first.proj is None and second.proj is None  # same width, stride 1: identity
    assert m.stages[1][0].proj is not None  # stride 2: projection
    assert m.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 32, 16, 16)


def test_vanilla_block_has_no_residual():
    m = build_model(NetSpec(ws=[16], ds=[2], bs=[1], gs=[1], block="v"))
    assert all(b.proj is None and not b.residual for b in m.stages[0])


def test_resnet_stem_counts_its_maxpool():
    spec = NetSpec(ws=[64], ds=[1], bs=[0.25], gs=[16], strides=[1], stem="resnet", stem_w=64)
    # the stem alone: 7x7 conv s2 to 112 px, then the max-pool to 56 px
    from netspaces.space.complexity import count_ops

    cost, h, _ = count_ops(spec.plan().stem, 224, 224)
    assert h == 56
    assert cost.flops == 7 * 7 * 3 * 64 * 112 * 112
    assert cost.acts == 64 * 112 * 112 + 64 * 56 * 56


def test_pycls_initialisation_and_zero_init_final_gamma():
    spec = NetSpec(ws=[64, 128], ds=[2, 2], bs=[1, 1], gs=[16, 16])
    torch.manual_seed(0)
    m = build_model(spec, zero_init_final_gamma=True)
    finals = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) and mod.final_bn]
    assert len(finals) == 4 and all((bn.weight == 0).all() for bn in finals)
    others = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) and not mod.final_bn]
    assert all((bn.weight == 1).all() and (bn.bias == 0).all() for bn in others)
    conv = m.stages[1][1].f[0]  # 1x1, 128 -> 128
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 128), rel=0.05)
    lin = m.head[0]
    assert lin.weight.std().item() == pytest.approx(0.01, rel=0.1) and (lin.bias == 0).all()
    assert build_model(spec).stages[0][0].f[-1].weight.eq(1).all()


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(ws=[64], ds=[1], bs=[1], gs=[24]), "not a multiple of group width 24"),
        (dict(ws=[64, 64], ds=[1], bs=[1], gs=[8]), "ds has 1 entries but ws has 2"),
        (dict(ws=[64], ds=[1], bs=[1], gs=[8], block="z"), "unknown block 'z'"),
    ],
)
def test_bad_specs_are_user_errors(kwargs, needle):
    with pytest.raises(UserError, match=needle):
        NetSpec(**kwargs)
