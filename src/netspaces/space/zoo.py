"""The paper's models by name: 24 RegNets (one line each) and ResNe(X)t built as AnyNets.

Names are accepted as published (`RegNetX-400MF`) or in the snake form (`regnetx_400mf`),
case-insensitively. EfficientNet baselines come from timm (see models/baselines.py).
"""

from __future__ import annotations

import re
from dataclasses import replace

from netspaces.errors import UserError
from netspaces.space.regnet import RegNetParams
from netspaces.space.spec import NetSpec

R = RegNetParams
_SE = 0.25

# name: (depth, w0, wa, wm, group_w) -- Table 3 / pycls model zoo. Y models add SE 0.25.
REGNETS: dict[str, RegNetParams] = {
    "RegNetX-200MF": R(13, 24, 36.44, 2.49, 8),
    "RegNetX-400MF": R(22, 24, 24.48, 2.54, 16),
    "RegNetX-600MF": R(16, 48, 36.97, 2.24, 24),
    "RegNetX-800MF": R(16, 56, 35.73, 2.28, 16),
    "RegNetX-1.6GF": R(18, 80, 34.01, 2.25, 24),
    "RegNetX-3.2GF": R(25, 88, 26.31, 2.25, 48),
    "RegNetX-4.0GF": R(23, 96, 38.65, 2.43, 40),
    "RegNetX-6.4GF": R(17, 184, 60.83, 2.07, 56),
    "RegNetX-8.0GF": R(23, 80, 49.56, 2.88, 120),
    "RegNetX-12GF": R(19, 168, 73.36, 2.37, 112),
    "RegNetX-16GF": R(22, 216, 55.59, 2.1, 128),
    "RegNetX-32GF": R(23, 320, 69.86, 2.0, 168),
    "RegNetY-200MF": R(13, 24, 36.44, 2.49, 8, se_r=_SE),
    "RegNetY-400MF": R(16, 48, 27.89, 2.09, 8, se_r=_SE),
    "RegNetY-600MF": R(15, 48, 32.54, 2.32, 16, se_r=_SE),
    "RegNetY-800MF": R(14, 56, 38.84, 2.4, 16, se_r=_SE),
    "RegNetY-1.6GF": R(27, 48, 20.71, 2.65, 24, se_r=_SE),
    "RegNetY-3.2GF": R(21, 80, 42.63, 2.66, 24, se_r=_SE),
    "RegNetY-4.0GF": R(22, 96, 31.41, 2.24, 64, se_r=_SE),
    "RegNetY-6.4GF": R(25, 112, 33.22, 2.27, 72, se_r=_SE),
    "RegNetY-8.0GF": R(17, 192, 76.82, 2.19, 56, se_r=_SE),
    "RegNetY-12GF": R(19, 168, 73.36, 2.37, 112, se_r=_SE),
    "RegNetY-16GF": R(18, 200, 106.23, 2.48, 112, se_r=_SE),
    "RegNetY-32GF": R(20, 232, 115.89, 2.53, 232, se_r=_SE),
}


def _resnet(ds: tuple[int, ...], bot_mul: float, groups: int) -> NetSpec:
    ws = (256, 512, 1024, 2048)
    gs = tuple(round(w * bot_mul) // groups for w in ws)  # groups=1: the group width is w_b
    return NetSpec(ws=ws, ds=ds, bs=(bot_mul,) * 4, gs=gs, strides=(1, 2, 2, 2), block="x", stem="resnet", stem_w=64)


RESNETS: dict[str, NetSpec] = {
    "ResNet-50": _resnet((3, 4, 6, 3), 0.25, 1),
    "ResNet-101": _resnet((3, 4, 23, 3), 0.25, 1),
    "ResNet-152": _resnet((3, 8, 36, 3), 0.25, 1),
    "ResNeXt-50": _resnet((3, 4, 6, 3), 0.5, 32),
    "ResNeXt-101": _resnet((3, 4, 23, 3), 0.5, 32),
    "ResNeXt-152": _resnet((3, 8, 36, 3), 0.5, 32),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", name.lower())


_BY_KEY = {_key(n): n for n in [*REGNETS, *RESNETS]}


def zoo_names() -> list[str]:
    return [*REGNETS, *RESNETS]


def canonical_name(name: str) -> str:
    """`regnetx_400mf`, `RegNetX-400MF`, `regnetx-400MF` → `RegNetX-400MF`."""
    try:
        return _BY_KEY[_key(name)]
    except KeyError:
        raise UserError(f"unknown model {name!r}; allowed: {', '.join(zoo_names())}") from None


def get_model_spec(name: str, *, num_classes: int = 1000, stem: str | None = None, in_chans: int = 3) -> NetSpec:
    """The NetSpec of a zoo model; `stem` overrides the stem type (e.g. 'cifar' for 32 px)."""
    name = canonical_name(name)
    if name in REGNETS:
        spec = REGNETS[name].to_spec(num_classes=num_classes, in_chans=in_chans)
    else:
        spec = replace(RESNETS[name], num_classes=num_classes, in_chans=in_chans)
    if stem:
        spec = replace(spec, stem=stem)
    return spec


def regnet_params(name: str) -> RegNetParams | None:
    return REGNETS.get(canonical_name(name))
