"""Baselines matched to a flop regime by one fixed rule per family (the torch-free part).

The paper compares RegNets with ResNe(X)t and EfficientNet at matched flops (Tables 3-4).
In the small regimes no published ResNe(X)t exists, and EfficientNet-B0 fits only 400MF, so
every regime gets the same four baselines, each a published architecture with one free
width multiplier:

- EfficientNet-B0 (depth multiplier 1) and EfficientNet-B0's blocks at EfficientNet-B1's
  depth (depth multiplier 1.1): timm's channel multiplier, every width (stem and head
  included) rounded as timm rounds it (models/matched.py builds and counts them);
- ResNet-50 and ResNeXt-50 32x4d: one factor f on every width (stem and stages), group
  widths fixed: each bottleneck width becomes the multiple of q nearest to f times the
  published one (at least q), q = 8 for ResNet's plain 3x3 convs and lcm(8, group width)
  for ResNeXt's grouped ones, whose group widths (4, 8, 16, 32 per stage) stay as published
  while the number of groups follows the width. (Keeping 32 groups instead moves bottleneck
  widths in steps of 32, and no factor puts ResNeXt-50 in 180-200 MF: 155 MF jumps to
  225 MF.) Output widths keep the published bottleneck ratio, the stem width is the multiple
  of 8 nearest to f·64. f = 1 is the published model.

A published model whose flops (multiply-adds at 224 px, 1000 classes: the regime window's
convention) lie in the window is used as is; otherwise the multiplier alone is solved
(`solve_width`) so that the flops come closest to the window's midpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from netspaces.errors import UserError
from netspaces.space.complexity import Complexity, complexity
from netspaces.space.regimes import Regime
from netspaces.space.spec import NetSpec

# Each family's own recipe where the paper uses one (DESIGN.md, pycls dds_baselines):
# EfficientNet trains at lr 0.2·batch/128 with weight decay 1e-5; ResNe(X)t at the schedule's.
EFFICIENTNET_RECIPE = {"base_lr": 0.2, "weight_decay": 1e-5}


@dataclass(frozen=True)
class BaselineRule:
    """One baseline of every regime: the published model it starts from, and how it scales."""

    key: str  # the member of `model=baselines` (sample=<key>) and its run directory
    published: str  # the published model's name
    family: str  # efficientnet | resnext (ResNet is ResNeXt with one group)
    depth_mult: float = 1.0  # EfficientNet's depth multiplier (fixed)
    width_mult: float = 1.0  # the published width multiplier

    @property
    def recipe(self) -> dict:
        return dict(EFFICIENTNET_RECIPE) if self.family == "efficientnet" else {}


BASELINES: dict[str, BaselineRule] = {
    r.key: r
    for r in (
        BaselineRule("efficientnet_b0", "EfficientNet-B0", "efficientnet", depth_mult=1.0),
        BaselineRule("efficientnet_b1", "EfficientNet-B1", "efficientnet", depth_mult=1.1),
        BaselineRule("resnet50", "ResNet-50", "resnext"),
        BaselineRule("resnext50", "ResNeXt-50", "resnext"),
    )
}


@dataclass(frozen=True)
class Matched:
    """One baseline matched to one regime."""

    key: str
    name: str  # the published name when used as is, else e.g. EfficientNet-B0-200MF
    published: str
    family: str
    regime: str
    width_mult: float
    depth_mult: float
    scaled: bool  # False: the published model lies in the window and is used as is
    flops: int  # multiply-adds at 224 px, 1000 classes
    params: int
    acts: int

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "published": self.published,
            "family": self.family,
            "regime": self.regime,
            "width_mult": self.width_mult,
            "depth_mult": self.depth_mult,
            "scaled": self.scaled,
            "flops": self.flops,
            "params": self.params,
            "acts": self.acts,
        }


def get_rule(key: object) -> BaselineRule:
    """A baseline by its key, or by its index in BASELINES (`sample=0` is the first)."""
    keys = list(BASELINES)
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(keys):
        return BASELINES[keys[key]]
    if isinstance(key, str) and key in BASELINES:
        return BASELINES[key]
    raise UserError(
        f"sample={key!r} is not a baseline of model=baselines; allowed: {', '.join(keys)} (or their index 0-{len(keys) - 1})"
    )


def member_dir(sample: object) -> str:
    """The run directory of a `model=baselines` job: its member's key (`sample` may be the
    index); the value itself when it names none (the run refuses it with one line)."""
    try:
        return get_rule(sample).key
    except UserError:
        return str(sample)


def matched_name(rule: BaselineRule, regime: Regime, scaled: bool) -> str:
    return f"{rule.published}-{regime.name.upper()}" if scaled else rule.published


# ---------------------------------------------------------------- solving a width multiplier


def solve_width(
    flops_at: Callable[[float], int], lo: float, hi: float, *, start: float = 1.0, rel_tol: float = 1e-5
) -> float | None:
    """The width multiplier whose flops come closest to (lo + hi) / 2 among those inside [lo, hi],
    or None when no multiplier puts the flops in the window.

    `flops_at` must be non-decreasing in the multiplier (rounded widths make it a step
    function). Bisection finds the step where the flops cross the midpoint; the multipliers
    on both sides of it are the candidates. The one returned is written with as few decimals
    as keep its flops (0.62 rather than 0.6213867), so the same number rebuilds the model.
    """
    flops_at = _memo(flops_at)
    target = (lo + hi) / 2
    below, above = start, start  # flops(below) < target <= flops(above)
    for _ in range(64):
        if flops_at(above) >= target:
            break
        below, above = above, above * 2
    else:
        return None
    for _ in range(64):
        if flops_at(below) < target:
            break
        above, below = below, below / 2
    else:
        return None
    while above - below > rel_tol * above:
        mid = (below + above) / 2
        if flops_at(mid) < target:
            below = mid
        else:
            above = mid
    inside = [w for w in (above, below) if lo <= flops_at(w) <= hi]
    if not inside:
        return None
    best = min(inside, key=lambda w: abs(flops_at(w) - target))
    return _short(best, flops_at)


def _memo(fn: Callable[[float], int]) -> Callable[[float], int]:
    seen: dict[float, int] = {}

    def cached(w: float) -> int:
        if w not in seen:
            seen[w] = fn(w)
        return seen[w]

    return cached


def _short(width: float, flops_at: Callable[[float], int]) -> float:
    """The value with the fewest decimals (up to 8) that has the same flops as `width` (every
    width grows with the multiplier, so the same flops is the same network)."""
    for digits in range(1, 9):
        scale = 10**digits
        for candidate in (round(width, digits), math.floor(width * scale) / scale, math.ceil(width * scale) / scale):
            if candidate > 0 and flops_at(candidate) == flops_at(width):
                return candidate
    return width


# ---------------------------------------------------------------- ResNe(X)t: AnyNet specs


def scale_resnext(spec: NetSpec, width_mult: float) -> NetSpec:
    """A ResNe(X)t spec with every width times `width_mult` (see the module doc): a plain
    3x3 conv stays plain (ResNet), a grouped one keeps its group width (ResNeXt)."""
    if not (width_mult > 0 and math.isfinite(width_mult)):
        raise UserError(f"width multiplier must be a positive number; got {width_mult}")
    ws, gs = [], []
    for w, b, g in zip(spec.ws, spec.bs, spec.gs):
        plain = g == round(w * b)  # one group: the group width is the bottleneck width
        quantum = 8 if plain else math.lcm(8, g)
        w_b = max(quantum, round(width_mult * round(w * b) / quantum) * quantum)
        ws.append(round(w_b / b))
        gs.append(w_b if plain else g)
    stem_w = max(8, round(width_mult * spec.stem_w / 8) * 8)
    return replace(spec, ws=tuple(ws), gs=tuple(gs), stem_w=stem_w)


def resnext_spec(
    rule: BaselineRule, width_mult: float, *, num_classes: int = 1000, in_chans: int = 3, stem: str | None = None
) -> NetSpec:
    """The AnyNet spec of a ResNe(X)t baseline at a width multiplier (1: the published model)."""
    from netspaces.space.zoo import get_model_spec

    if rule.family != "resnext":
        raise UserError(f"{rule.published} is not a ResNe(X)t; allowed: resnet50, resnext50")
    spec = scale_resnext(get_model_spec(rule.published), width_mult)
    spec = replace(spec, num_classes=num_classes, in_chans=in_chans)
    return replace(spec, stem=stem) if stem else spec


def match(rule: BaselineRule, regime: Regime, cost_at: Callable[[float], Complexity]) -> Matched:
    """`rule` matched to `regime`, given its cost (224 px, 1000 classes) at a width multiplier."""
    published = cost_at(rule.width_mult)
    scaled = not (regime.lo <= published.flops <= regime.hi)
    width = rule.width_mult
    if scaled:
        # start where flops ∝ width² would put the midpoint: fewer (costly) evaluations
        guess = rule.width_mult * math.sqrt((regime.lo + regime.hi) / 2 / published.flops)
        found = solve_width(lambda w: int(cost_at(w).flops), regime.lo, regime.hi, start=guess)
        if found is None:
            raise UserError(
                f"no width multiplier puts {rule.published} in the {regime.name} window "
                f"[{regime.lo / 1e6:g}, {regime.hi / 1e6:g}] MF"
            )
        width = found
    cost = cost_at(width)
    return Matched(
        key=rule.key,
        name=matched_name(rule, regime, scaled),
        published=rule.published,
        family=rule.family,
        regime=regime.name,
        width_mult=width,
        depth_mult=rule.depth_mult,
        scaled=scaled,
        flops=int(cost.flops),
        params=int(cost.params),
        acts=int(cost.acts),
    )


def match_resnext(rule: BaselineRule, regime: Regime) -> Matched:
    """A ResNe(X)t baseline matched to `regime` (analytic complexity, no torch)."""
    return match(rule, regime, lambda w: complexity(resnext_spec(rule, w), 224))
