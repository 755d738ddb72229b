"""Checking published errors: top-1/top-5 error of a model (e.g. a zoo model with published
weights loaded by netspaces.models.pretrained) on a local ImageFolder tree such as ImageNet's
val set or a subset of it. No download."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from netspaces.errors import DataError, UserError, one_line

if TYPE_CHECKING:
    from torch import nn

# the evaluation normalisation of conf/data/imagefolder.yaml (RGB, pixels in [0, 1])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Evaluation:
    top1_err: float  # percent
    top5_err: float
    images: int
    classes: int
    imagenet_labels: bool  # True: wnid folders numbered as in ImageNet-1k; else folder order


def _imagenet_wnids() -> list[str]:
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_names())


def evaluate_folder(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    transform: Callable,
    num_classes: int,
    batch: int = 50,
    limit_per_class: int | None = None,
    device: str = "cpu",
    image_loader: Callable | None = None,
) -> Evaluation:
    """Top-1/top-5 error (%) of `model` on an ImageFolder tree root/<class>/<image>. `transform`
    is the evaluation transform (the CLI passes training's own: netspaces.train.data.
    folder_transforms, resize to 256/224 of the crop, center crop, ImageNet mean/std) and
    `image_loader` opens an image (training's open_rgb). Folders named by ImageNet wnids
    (n01440764, …) take their ImageNet-1k index when the model has 1000 classes, so a subset of
    the val set is scored right; other trees are numbered in folder order."""
    import torch
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such directory (expected {root}/<class>/<image>)")
    try:
        extra = {"loader": image_loader} if image_loader is not None else {}
        ds = ImageFolder(str(root), transform=transform, **extra)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folder, or no image in one
        raise UserError(f"{root}: not an image tree root/<class>/<image> ({one_line(exc)})") from None
    wnids = _imagenet_wnids() if num_classes == 1000 else []
    index = {w: i for i, w in enumerate(wnids)}
    imagenet = bool(wnids) and all(c in index for c in ds.classes)
    if not imagenet and len(ds.classes) > num_classes:
        raise UserError(f"{root}: {len(ds.classes)} class folders but the model has {num_classes} classes")
    to_label = torch.tensor([index[c] for c in ds.classes] if imagenet else list(range(len(ds.classes))))
    counts = [0] * len(ds.classes)
    keep = []
    for i, c in enumerate(ds.targets):  # the first limit_per_class images of each class
        counts[c] += 1
        if limit_per_class is None or counts[c] <= limit_per_class:
            keep.append(i)
    data = Subset(ds, keep)
    workers = min(8, os.cpu_count() or 1) if len(data) > 2 * batch else 0
    loader = DataLoader(data, batch_size=batch, num_workers=workers, pin_memory=device.startswith("cuda"))
    k = min(5, num_classes)
    wrong1 = wrong5 = seen = 0
    model.eval().to(device)
    try:
        with torch.inference_mode():
            for x, y in loader:
                y = to_label[y].to(device)
                top = model(x.to(device)).topk(k, dim=1).indices
                hit = top == y[:, None]
                wrong1 += int((~hit[:, 0]).sum())
                wrong5 += int((~hit.any(dim=1)).sum())
                seen += len(y)
    except DataError as exc:
        raise UserError(one_line(exc)) from None
    return Evaluation(100 * wrong1 / seen, 100 * wrong5 / seen, seen, len(ds.classes), imagenet)
