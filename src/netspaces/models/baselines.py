"""Baseline networks from timm (never pretrained) and one entry point for any network by name.

`get_network` returns our AnyNet for a zoo name (RegNetX-400MF, ResNet-50 alias resnet50, …)
and a timm model for a baseline (efficientnet_b0, resnext50_32x4d, regnetx_004, …; the
prefix `timm/` picks timm where our zoo has the same name: `timm/resnet50`). `measured_complexity`
counts any module with torch's flop counter, so timm baselines get flops/params/acts by
the same conventions as our analytic counter (multiply-adds; acts = conv/linear/max-pool
outputs).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from netspaces.errors import UserError
from netspaces.space.complexity import Complexity

# timm name → native (train) resolution. EfficientNets use their own compound-scaled sizes,
# the ones pycls trained and timed them at (pycls_zoo.csv: train_res).
TIMM_BASELINES: dict[str, int] = {
    "efficientnet_b0": 224,
    "efficientnet_b1": 240,
    "efficientnet_b2": 260,
    "efficientnet_b3": 300,
    "efficientnet_b4": 380,
    "efficientnet_b5": 456,
    "resnet50": 224,
    "resnet101": 224,
    "resnet152": 224,
    "resnext50_32x4d": 224,
    "resnext101_32x4d": 224,
    "regnetx_002": 224,
    "regnetx_004": 224,
    "regnetx_006": 224,
    "regnetx_008": 224,
    "regnetx_016": 224,
    "regnetx_032": 224,
    "regnetx_040": 224,
    "regnetx_064": 224,
    "regnety_002": 224,
    "regnety_004": 224,
    "regnety_006": 224,
    "regnety_008": 224,
    "regnety_016": 224,
    "regnety_032": 224,
    "regnety_040": 224,
    "regnety_064": 224,
    "mobilenetv2_100": 224,
    "mobilenetv3_large_100": 224,
}

# timm families whose constructor takes `zero_init_last` (zero γ of each block's last BN).
_ZERO_INIT_FAMILIES = ("resnet", "resnext", "regnet")


TIMM_PREFIX = "timm/"  # forces timm where a name is also in our zoo: timm/resnet50 vs ResNet-50


def baseline_key(name: str) -> str | None:
    """`EfficientNet-B0`, `efficientnet_b0`, `timm/efficientnet-b0` → `efficientnet_b0` (None if unknown)."""
    name = name.strip().lower()
    name = name[len(TIMM_PREFIX) :] if name.startswith(TIMM_PREFIX) else name
    key = re.sub(r"[^a-z0-9]+", "_", name).strip("_")
    return key if key in TIMM_BASELINES else None


def is_baseline(name: str) -> bool:
    """True when `name` means a timm model: a baseline name that is not also a zoo name
    (`resnet50` is our ResNet-50 AnyNet; `timm/resnet50` is timm's)."""
    forced = name.strip().lower().startswith(TIMM_PREFIX)
    return baseline_key(name) is not None and (forced or _zoo_name(name) is None)


def allowed_names() -> list[str]:
    from netspaces.space.zoo import zoo_names

    return [*zoo_names(), *(k if _zoo_name(k) is None else TIMM_PREFIX + k for k in TIMM_BASELINES)]


def _zoo_name(name: str) -> str | None:
    from netspaces.space.zoo import canonical_name

    try:
        return canonical_name(name)
    except UserError:
        return None


def native_resolution(name: str) -> int:
    """The resolution a model is published at: 224 for our zoo, each baseline's own otherwise."""
    if is_baseline(name):
        return TIMM_BASELINES[baseline_key(name)]
    if _zoo_name(name) is not None:
        return 224
    raise _unknown(name)


def _unknown(name: str) -> UserError:
    return UserError(f"unknown model {name!r}; allowed: {', '.join(allowed_names())}")


def cifar_stem(model: nn.Module) -> None:
    """Keep 32 px inputs at full resolution in the stem: first conv stride 1, no stem max-pool
    (what our 'cifar' stem does for AnyNets)."""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first.stride = (1, 1)
    if isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        model.maxpool = nn.Identity()


def create_baseline(
    name: str,
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    stem: str | None = None,
    zero_init_final_gamma: bool = False,
) -> nn.Module:
    """A timm baseline with random weights (`pretrained=False`: never any download)."""
    import timm

    key = baseline_key(name)
    if key is None:
        raise _unknown(name)
    if stem not in (None, "simple", "cifar"):
        raise UserError(f"stem {stem!r} is not available for timm baseline {key}; allowed: simple (native), cifar")
    kwargs = {}
    if key.startswith(_ZERO_INIT_FAMILIES):  # timm zero-inits by default; follow our option instead
        kwargs["zero_init_last"] = zero_init_final_gamma
    model = timm.create_model(key, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if stem == "cifar":
        cifar_stem(model)
    return model


def get_network(
    name: str, *, num_classes: int, in_chans: int = 3, stem: str | None = None, zero_init_final_gamma: bool = False
) -> nn.Module:
    """Our AnyNet for a zoo name, a timm model for a baseline name; UserError for anything else.

    `stem` overrides the stem ('cifar' keeps 32 px inputs at full resolution). For timm
    baselines `zero_init_final_gamma` applies to the ResNe(X)t and RegNet families; the
    EfficientNets have no such option and ignore it.
    """
    if num_classes < 1 or in_chans < 1:
        raise UserError(f"num_classes and in_chans must be >= 1; got {num_classes} and {in_chans}")
    if is_baseline(name):
        return create_baseline(
            name, num_classes=num_classes, in_chans=in_chans, stem=stem, zero_init_final_gamma=zero_init_final_gamma
        )
    zoo = _zoo_name(name)
    if zoo is not None:
        from netspaces.models.anynet import build_model
        from netspaces.space.zoo import get_model_spec

        spec = get_model_spec(zoo, num_classes=num_classes, stem=stem, in_chans=in_chans)
        return build_model(spec, zero_init_final_gamma=zero_init_final_gamma)
    raise _unknown(name)


def measured_complexity(model: nn.Module, resolution: int, in_chans: int | None = None) -> Complexity:
    """flops (multiply-adds), params and acts of `model` on one square image, by running it.

    torch's FlopCounterMode counts 2 flops per multiply-add, so it is halved. acts are the
    output elements of every conv, linear and max-pool (pycls's convention). The counter
    skips bias adds, so a linear head with a bias counts `out` fewer flops than pycls. Runs on the
    model's device: a model built under `torch.device("meta")` is counted without any compute.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if resolution < 1:
        raise UserError(f"resolution must be >= 1; got {resolution}")
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    c = in_chans or (first.in_channels if first is not None else 3)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    acts = 0

    def count_acts(_m: nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal acts
        acts += out[0].numel()  # per image

    hooks = [
        m.register_forward_hook(count_acts)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d))
    ]
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with counter, torch.no_grad():
            model(torch.zeros(1, c, resolution, resolution, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return Complexity(counter.get_total_flops() // 2, params, acts)


def baseline_complexity(name: str, resolution: int | None = None) -> Complexity:
    """Measured complexity of a timm baseline at its native resolution, built on the meta
    device (no memory, no compute)."""
    with torch.device("meta"):
        model = create_baseline(name)
    return measured_complexity(model, resolution or native_resolution(name))
