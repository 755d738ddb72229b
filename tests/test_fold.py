"""Conv+BN folding: the folded copy computes the same function as the eval-mode original."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netspaces.models.baselines import get_network
from netspaces.models.fold import FoldedCopy, fold_batchnorm, fold_conv_bn


def _with_trained_statistics(model: nn.Module, resolution: int = 32) -> nn.Module:
    """Non-trivial BN state: random affine parameters and running statistics from real passes."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, resolution, resolution, generator=g))
    return model.eval()


@pytest.mark.parametrize("name", ["RegNetX-200MF", "RegNetY-200MF", "ResNet-50"])
def test_folded_network_matches_eval_network(name):
    torch.manual_seed(0)
    model = _with_trained_statistics(get_network(name, num_classes=10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded, count = fold_batchnorm(model)

    assert count == n_bn > 0  # every BN of an AnyNet follows a conv
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert not any(p.requires_grad for p in folded.parameters())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = model(x), folded(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    assert model.training is False and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_squeeze_excite_convs_are_not_folded():
    # SE's 1x1 convs are followed by ReLU/Sigmoid, never BN: they keep their weights untouched
    model = _with_trained_statistics(get_network("RegNetY-200MF", num_classes=10))
    folded, _ = fold_batchnorm(model)
    se_convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    folded_se = [m for m in folded.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
                 and any(torch.equal(m.weight, c.weight) for c in se_convs)]
    assert se_convs and len(folded_se) == len(se_convs)


def test_channels_last_survives_folding():
    model = _with_trained_statistics(get_network("RegNetX-200MF", num_classes=10))
    model = model.to(memory_format=torch.channels_last)
    folded, _ = fold_batchnorm(model)
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert all(not c.weight.is_contiguous() for c in convs)


def test_single_pair_with_conv_bias_and_no_affine():
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(5, affine=False)
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    bn.eval()
    x = torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        assert torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5)


def test_bn_without_running_statistics_is_refused():
    with pytest.raises(ValueError, match="running statistics"):
        fold_conv_bn(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5, track_running_stats=False))


def test_a_kept_copy_follows_the_source_after_training():
    torch.manual_seed(0)
    model = _with_trained_statistics(get_network("RegNetY-200MF", num_classes=10))
    kept = FoldedCopy(model)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    model.train()  # a few SGD steps change weights, BN statistics, SE and head parameters
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3])).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        want = model(x)
        stale = kept.module(x)
        got = kept.refresh()(x)
    assert not torch.allclose(stale, want, atol=1e-3)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
