"""Baselines matched to a flop regime (the rule is space/matched.py's), as PyTorch modules.

EfficientNets are timm's EfficientNet builder at a channel multiplier and a depth multiplier
(random weights, nothing downloaded); their flops are measured with torch's counter
(`measured_complexity`, multiply-adds) on the meta device, so solving a width costs no
memory and no compute. ResNe(X)ts are our AnyNets built from the scaled zoo specs, their
complexity analytic.
"""

from __future__ import annotations

from functools import lru_cache

from torch import nn

from netspaces.errors import UserError
from netspaces.space.complexity import Complexity, complexity
from netspaces.space.matched import BASELINES, BaselineRule, Matched, get_rule, match, match_resnext, resnext_spec
from netspaces.space.regimes import Regime

RESOLUTION = 224  # the regime window's convention


def efficientnet(
    rule: BaselineRule, width_mult: float, *, num_classes: int = 1000, in_chans: int = 3, stem: str | None = None
) -> nn.Module:
    """timm's EfficientNet-B0 blocks at `width_mult` and the rule's depth multiplier, random
    weights; at (1.0, 1.0) it is timm's efficientnet_b0, at (1.0, 1.1) its efficientnet_b1."""
    from timm.models.efficientnet import _gen_efficientnet  # the builder behind timm's efficientnet_b0..b8

    from netspaces.models.baselines import cifar_stem

    if rule.family != "efficientnet":
        raise UserError(f"{rule.published} is not an EfficientNet; allowed: efficientnet_b0, efficientnet_b1")
    if stem not in (None, "simple", "cifar"):
        raise UserError(f"stem {stem!r} is not available for {rule.published}; allowed: simple (native), cifar")
    model = _gen_efficientnet(
        rule.key,
        channel_multiplier=width_mult,
        depth_multiplier=rule.depth_mult,
        pretrained=False,
        num_classes=num_classes,
        in_chans=in_chans,
    )
    if stem == "cifar":
        cifar_stem(model)
    return model


@lru_cache(maxsize=4096)
def _efficientnet_cost(key: str, width_mult: float) -> Complexity:
    import torch

    from netspaces.models.baselines import measured_complexity

    with torch.device("meta"):
        model = efficientnet(BASELINES[key], width_mult)
    return measured_complexity(model, RESOLUTION)


@lru_cache(maxsize=256)
def match_baseline(key: str | int, regime: Regime) -> Matched:
    """One baseline (its key, or its index in BASELINES) matched to `regime`."""
    rule = get_rule(key)
    if rule.family == "resnext":
        return match_resnext(rule, regime)
    return match(rule, regime, lambda w: _efficientnet_cost(rule.key, w))


def matched_baselines(regime: Regime) -> list[Matched]:
    """Every baseline of `regime`, in BASELINES order."""
    return [match_baseline(key, regime) for key in BASELINES]


def build_matched(
    m: Matched, *, num_classes: int, in_chans: int = 3, stem: str | None = None, zero_init_final_gamma: bool = False
) -> tuple[nn.Module, dict]:
    """The module of a matched baseline and its architecture (what its record says of it).

    `stem` overrides the stem as for the zoo and timm models ('cifar': 32 px kept at full
    resolution); `zero_init_final_gamma` applies to the ResNe(X)ts (EfficientNets have none).
    """
    from netspaces.models.anynet import build_model

    rule = BASELINES[m.key]
    arch = {"baseline": m.key, "published": m.published, "width_mult": m.width_mult, "depth_mult": m.depth_mult}
    if rule.family == "resnext":
        spec = resnext_spec(rule, m.width_mult, num_classes=num_classes, in_chans=in_chans, stem=stem)
        arch |= {
            "ws": list(spec.ws),
            "ds": list(spec.ds),
            "gs": list(spec.gs),
            "bs": list(spec.bs),
            "block": spec.block,
        }
        return build_model(spec, zero_init_final_gamma=zero_init_final_gamma), arch
    return efficientnet(rule, m.width_mult, num_classes=num_classes, in_chans=in_chans, stem=stem), arch


def trained_complexity(
    m: Matched, module: nn.Module, *, resolution: int, num_classes: int, stem: str | None
) -> Complexity:
    """Complexity of the network actually trained (its resolution, classes and stem)."""
    rule = BASELINES[m.key]
    if rule.family == "resnext":
        return complexity(resnext_spec(rule, m.width_mult, num_classes=num_classes, stem=stem), resolution)
    from netspaces.models.baselines import measured_complexity

    return measured_complexity(module, resolution)
