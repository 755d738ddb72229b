"""Published RegNet weights in netspaces's AnyNets: checkpoints in timm's or pycls's naming (or
netspaces's own), mapped by structure, loaded strictly.

No per-model table: each naming has a few rules saying where a layer sits in any RegNet/AnyNet
(stem; stage s, block b, main branch or shortcut, its rank in that branch; head), and our own
layers get the same places from the module tree, in forward order. Inside each place the two
lists are paired in order and every tensor's name and shape is checked, so a checkpoint of
another model fails on the first tensor that does not fit, named in one line.

pycls read images with OpenCV, in BGR order; netspaces feeds RGB (as timm and torchvision do),
so the input channels of a pycls checkpoint's first conv are reversed on loading. timm's copies
of the pycls weights were converted the same way, so they load unchanged.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from netspaces.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn


SOURCES = ("auto", "timm", "pycls", "netspaces")
CONTAINER_KEYS = ("state_dict", "model_state", "model")  # Lightning/timm, pycls, torchvision/DeiT-style
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "net.", "model.")  # DDP, torch.compile, our Lightning module
OPTIONAL = ("num_batches_tracked",)  # BN step counters: not every checkpoint keeps them; eval ignores them


@dataclass(frozen=True)
class Naming:
    """Where each layer of a RegNet/AnyNet sits in one framework's names. Layers are module
    paths (a tensor's name without its last part); each tuple lists them in forward order
    (a block without SE simply lacks those two)."""

    name: str
    stem: tuple[str, ...]
    block: str  # regex of a block's path; groups: stage, block (both from 1)
    main: tuple[str, ...]  # residual branch, relative to the block
    shortcut: tuple[str, ...]  # projection shortcut, relative to the block
    head: tuple[str, ...]
    marker: str  # regex that only this naming's tensor names match

    def place(self, layer: str) -> tuple[tuple, int] | None:
        """(group, rank) of a layer: group is ("stem",), ("head",) or (stage, block, branch)."""
        if layer in self.stem:
            return ("stem",), self.stem.index(layer)
        if layer in self.head:
            return ("head",), self.head.index(layer)
        m = re.fullmatch(self.block + r"\.(.+)", layer)
        if m:
            stage, block, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            for branch, layers in (("main", self.main), ("shortcut", self.shortcut)):
                if rest in layers:
                    return (stage, block, branch), layers.index(rest)
        return None


# timm/models/regnet.py: Bottleneck (conv1/conv2 ConvNormAct, SEModule fc1/fc2, conv3, downsample)
TIMM = Naming(
    "timm",
    stem=("stem.conv", "stem.bn"),
    block=r"s(\d+)\.b(\d+)",
    main=("conv1.conv", "conv1.bn", "conv2.conv", "conv2.bn", "se.fc1", "se.fc2", "conv3.conv", "conv3.bn"),
    shortcut=("downsample.conv", "downsample.bn"),
    head=("head.fc",),
    marker=r"s\d+\.b\d+\.conv1\.conv\.weight",
)
# pycls/models/anynet.py (2020 on, the model zoo's): ResBottleneckBlock proj/bn + f =
# BottleneckTransform a, a_bn, b, b_bn, se.f_ex (conv, act, conv, sigmoid), c, c_bn; AnyHead fc.
# pycls's ResNet/ResNeXt (resnet.py) use the same names.
PYCLS = Naming(
    "pycls",
    stem=("stem.conv", "stem.bn"),
    block=r"s(\d+)\.b(\d+)",
    main=("f.a", "f.a_bn", "f.b", "f.b_bn", "f.se.f_ex.0", "f.se.f_ex.2", "f.c", "f.c_bn"),
    shortcut=("proj", "bn"),
    head=("head.fc",),
    marker=r"s\d+\.b\d+\.f\.a\.weight",
)
NAMINGS = {n.name: n for n in (TIMM, PYCLS)}
OWN_MARKER = r"stages\.\d+\.\d+\.f\.\d+\.weight"


@dataclass(frozen=True)
class Loaded:
    tensors: int  # tensors taken from the checkpoint
    naming: str  # timm | pycls | netspaces


# ---------------------------------------------------------------- reading a file


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a local file: a plain one, or one under 'state_dict' (Lightning, timm
    training), 'model_state' (pycls) or 'model'; .safetensors too. Never unpickles code
    (weights_only=True); any problem is one UserError naming the file."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file" if not p.exists() else f"{p} is not a file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(p))
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 — truncated, not a checkpoint, pickled objects: one answer
        raise _unreadable(p, exc) from None
    return unwrap_state_dict(obj, str(p))


def _unreadable(p: Path, exc: Exception) -> UserError:
    text = str(exc)
    glob = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if glob:
        return UserError(
            f"{p} holds pickled Python objects ({glob.group(1)}) that torch.load(weights_only=True) refuses; "
            "if you trust the file, save only its state dict (torch.save(ckpt['model_state'], 'weights.pth')) and load that"
        )
    reason = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in text else text
    reason = next((line.strip() for line in reason.splitlines() if line.strip()), "") or "empty or truncated"
    return UserError(f"{p}: not a PyTorch checkpoint ({type(exc).__name__}: {reason[:200]})")


def unwrap_state_dict(obj: Any, label: str) -> dict[str, torch.Tensor]:
    import torch

    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if not isinstance(obj, Mapping) or _is_state_dict(obj):
            break
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        what = f"keys {', '.join(map(str, list(obj)[:6]))}" if isinstance(obj, Mapping) else type(obj).__name__
        raise UserError(
            f"{label}: no state dict found ({what}); expected tensors by name, or a dict holding them under "
            f"{', '.join(repr(k) for k in CONTAINER_KEYS)}"
        )
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_state_dict(obj: Mapping) -> bool:
    import torch

    return bool(obj) and all(isinstance(k, str) for k in obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


# ---------------------------------------------------------------- mapping


def strip_wrappers(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a prefix every name shares that wrappers add (DDP `module.`, our Lightning `net.`, …)."""
    sd = dict(state_dict)
    changed = True
    while changed and sd:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix) :]: v for k, v in sd.items()}
                changed = True
    return sd


def detect_naming(state_dict: Mapping[str, torch.Tensor], label: str = "the state dict") -> str:
    names = list(state_dict)
    if any(re.fullmatch(OWN_MARKER, k) for k in names):
        return "netspaces"
    for naming in NAMINGS.values():
        if any(re.fullmatch(naming.marker, k) for k in names):
            return naming.name
    raise UserError(
        f"{label}: tensor names are not a RegNet's in timm's naming (s1.b1.conv1.conv.weight, …), pycls's "
        f"(s1.b1.f.a.weight, …) or netspaces's (stages.0.0.f.0.weight, …); first name: {names[0] if names else 'none'}"
    )


def _shape(t) -> str:
    return str(tuple(t.shape))


def _split(name: str) -> tuple[str, str]:
    layer, _, tensor = name.rpartition(".")
    return layer, tensor


def _own_places(model: nn.Module) -> OrderedDict[tuple, list[str]]:
    """Our layers (module paths with tensors of their own) grouped by place, in forward order."""
    places: OrderedDict[tuple, list[str]] = OrderedDict()
    for layer, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)) and not any(
            True for _ in module.buffers(recurse=False)
        ):
            continue
        m = re.fullmatch(r"stages\.(\d+)\.(\d+)\.(f|proj)\..+", layer)
        if m:
            group = (int(m.group(1)) + 1, int(m.group(2)) + 1, "main" if m.group(3) == "f" else "shortcut")
        elif re.fullmatch(r"(stem|head)\.\d+", layer):
            group = (layer.split(".")[0],)
        else:
            raise UserError(f"{type(model).__name__} is not a netspaces AnyNet (layer {layer!r}); cannot map weights")
        places.setdefault(group, []).append(layer)
    return places


def _where(group: tuple) -> str:
    return group[0] if len(group) == 1 else f"stage {group[0]} block {group[1]} {group[2]}"


def _by_layer(names) -> dict[str, dict[str, str]]:
    """{layer: {tensor: full name}} in the given order."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        layer, tensor = _split(name)
        out.setdefault(layer, {})[tensor] = name
    return out


def map_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    model: nn.Module,
    *,
    source: str = "auto",
    label: str = "the state dict",
    model_name: str | None = None,
) -> tuple[OrderedDict[str, torch.Tensor], str, int]:
    """`state_dict` renamed to `model`'s names: (mapped, naming, tensors used). Every tensor of
    the checkpoint must find its place and every tensor of the model must get one (a missing
    BN step counter keeps the model's); else one UserError naming, in forward order, the first
    tensor that is missing, unexpected or of another shape."""
    if source not in SOURCES:
        raise UserError(f"unknown weights naming {source!r}; allowed: {', '.join(SOURCES)}")
    sd = strip_wrappers(state_dict)
    naming = detect_naming(sd, label) if source == "auto" else source
    own = model.state_dict()
    fit = _Fit(sd, own, f"{label} ({naming} naming)", model_name or type(model).__name__)
    if naming == "netspaces":
        for k in own:
            fit.pair(k, k)
        fit.no_leftovers(list(sd))
        return fit.mapped(), naming, len(sd)
    rules = NAMINGS[naming]
    theirs: dict[tuple, list[tuple[int, str]]] = {}  # place -> [(rank, layer)]
    src_layers = _by_layer(sd)
    for layer, tensors in src_layers.items():
        placed = rules.place(layer)
        if placed is None:
            fit.unexpected(next(iter(tensors.values())), f"not a layer of a {naming} RegNet/AnyNet")
        theirs.setdefault(placed[0], []).append((placed[1], layer))
    ours = _own_places(model)
    own_layers = _by_layer(own)
    for group, layers in ours.items():
        matched = [layer for _, layer in sorted(theirs.get(group, []))]
        for i, layer in enumerate(layers):
            src = matched[i] if i < len(matched) else None
            for tensor, k in own_layers[layer].items():
                fit.pair(src_layers[src].get(tensor, f"{src}.{tensor}") if src else None, k)
            if src:  # the checkpoint layer's tensors ours lacks (a conv bias, say)
                fit.no_leftovers([n for t, n in src_layers[src].items() if t not in own_layers[layer]])
        fit.no_leftovers([n for layer in matched[len(layers) :] for n in src_layers[layer].values()])
    for group, layers in theirs.items():
        if group not in ours:
            fit.unexpected(src_layers[min(layers)[1]], f"{fit.what} has no {_where(group)}")
    mapped = fit.mapped()
    if naming == "pycls":  # BGR-trained: reverse the first conv's input channels for RGB input
        first = next(k for k in mapped if k.startswith("stem.") and mapped[k].dim() == 4)
        if mapped[first].shape[1] == 3:
            mapped[first] = mapped[first].flip(1)
    return mapped, naming, len(sd)


class _Fit:
    """Pairs checkpoint tensors with ours; the first one that does not fit is a UserError."""

    def __init__(self, sd, own, where: str, what: str) -> None:
        self.sd, self.own, self.where, self.what = sd, own, where, what
        self.taken: dict[str, str] = {}  # our name -> checkpoint name
        self.used: set[str] = set()

    def pair(self, src: str | None, dst: str) -> None:
        if src is None or src not in self.sd:
            if _split(dst)[1] in OPTIONAL:
                return
            raise UserError(
                f"{self.where}: no tensor for {self.what}'s {dst} (shape {_shape(self.own[dst])})"
                + (f" (expected {src})" if src and src != dst else "")
            )
        if tuple(self.sd[src].shape) != tuple(self.own[dst].shape):
            raise UserError(
                f"{self.where}: {src} has shape {_shape(self.sd[src])} but {self.what}'s {dst} expects "
                f"{_shape(self.own[dst])}"
            )
        self.taken[dst] = src
        self.used.add(src)

    def unexpected(self, src, why: str) -> None:
        src = next(iter(src.values())) if isinstance(src, dict) else src
        raise UserError(f"{self.where}: unexpected tensor {src} (shape {_shape(self.sd[src])}): {why}")

    def no_leftovers(self, names: list[str]) -> None:
        for name in names:
            if name not in self.used:
                self.unexpected(name, f"{self.what} has no tensor for it")

    def mapped(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict((k, self.sd[self.taken[k]] if k in self.taken else v) for k, v in self.own.items())


def load_weights(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike | Mapping[str, torch.Tensor],
    *,
    source: str = "auto",
    model_name: str | None = None,
) -> Loaded:
    """Load a local checkpoint (file or state dict) in timm's, pycls's or netspaces's naming into
    a netspaces AnyNet, strictly. `source`: auto | timm | pycls | netspaces."""
    if isinstance(path_or_state_dict, Mapping):
        label = "the state dict"
        sd = unwrap_state_dict(path_or_state_dict, label)
    else:
        label = str(path_or_state_dict)
        sd = read_state_dict(path_or_state_dict)
    mapped, naming, used = map_state_dict(sd, model, source=source, label=label, model_name=model_name)
    model.load_state_dict(mapped, strict=True)
    return Loaded(used, naming)
