"""Data sets: what netspaces knows about each (DATASETS: its up-front check and its
DataModule), digits and CIFAR-10 held in memory, ImageNet / any ImageFolder read from files.

Adding a data set: a YAML in conf/data/ and one DATASETS entry here (an in-memory one needs
only a function returning its train/val tensors; see load_digits_split).

Small datasets live in memory as one tensor and are batched by indexing (no per-image
collation); their augmentation runs batched on the training device. Samplers shard by rank
themselves, so the same code serves one process and DDP, and the validation shards are not
padded with duplicates (every image counts once in the error).

Importing this module loads neither torch nor Lightning: a sweep's launching process imports
it for the up-front checks only, where loading both cost ~3 s before the first job started
and ~1 s more at its exit. The DataModule classes are in train/datamodules.py; InMemoryData
and FolderData here are the functions that build them (torch loads then, in the run).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from netspaces.errors import DataError, UserError
from netspaces.record import DiskFull, atomic_target
from netspaces.train import image_tree
from netspaces.train.settings import DataSettings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- selection and augmentation


def limit_per_class(labels: np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the first k items of every class, in their original order."""
    labels = np.asarray(labels)
    if k is None:
        return np.arange(len(labels))
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:k]] = True
    return np.flatnonzero(keep)


def random_crop_flip(x: Any, pad: int, generator: Any) -> Any:
    """Per-image random crop (zero padding `pad`) and horizontal flip, batched on x's device
    (drawn from `generator`, on the GPU when it is a CUDA generator)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    if generator.device.type == "cuda":  # drawn on the GPU: no host-to-device copy per step
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=x.device)
        flips = torch.rand(n, generator=generator, device=x.device) < 0.5
    else:  # the CPU path, as it always was (reproductions depend on its exact numbers)
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
        flips = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    cols = torch.where(flips[:, None, None, None], cols.flip(-1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


# ---------------------------------------------------------------- in-memory data


def load_digits_split(s: DataSettings):
    """sklearn digits → (x_train, y_train, x_val, y_val): 3×res×res float, normalised."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    images = F.interpolate(images, size=(s.resolution, s.resolution), mode="bilinear", align_corners=False)
    labels = torch.from_numpy(d.target.astype(np.int64))
    idx_train, idx_val = train_test_split(
        np.arange(len(labels)), test_size=s.val_fraction, stratify=d.target, random_state=s.split_seed
    )
    idx_train = idx_train[limit_per_class(d.target[idx_train], s.limit_per_class)]
    idx_val = idx_val[limit_per_class(d.target[idx_val], s.limit_per_class)]
    mean, std = images[idx_train].mean(), images[idx_train].std()  # train statistics only
    images = ((images - mean) / std).expand(-1, 3, -1, -1).contiguous()
    return images[idx_train], labels[idx_train], images[idx_val], labels[idx_val]


def open_rgb(path: str):
    """An image as RGB (greyscale too); a file PIL cannot read is a DataError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as exc:  # noqa: BLE001 — truncated, empty, not an image: all one answer
        raise DataError(
            f"cannot read image {path} ({type(exc).__name__}: {exc}); fix or remove it, "
            "or check every image up front with data.verify=true"
        ) from None


def _decode(path: str, resolution: int) -> np.ndarray:
    from PIL import Image

    im = open_rgb(path)
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _folder_arrays(s: DataSettings, split: str) -> tuple[np.ndarray, np.ndarray]:
    """An ImageFolder split decoded to uint8 (N, H, W, 3) + labels, cached as .npz. The cache
    key is the content that matters: every file's name, size and mtime, and the options."""
    listing = image_tree.list_split(Path(s.root), split)
    content = image_tree.digest(listing, mtimes=True)
    key = hashlib.sha256(f"{content}|{s.limit_per_class}|{s.resolution}".encode()).hexdigest()[:24]
    cache = Path(s.cache_dir) / f"{s.name}-{split}-{key}.npz" if s.cache_dir else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache) as z:
                return z["x"], z["y"]
        except (OSError, ValueError, KeyError, EOFError):  # a damaged cache file: decode again
            cache.unlink(missing_ok=True)
    labels = np.array(listing.labels(), np.int64)
    keep = limit_per_class(labels, s.limit_per_class)
    all_paths = listing.paths()
    paths = [all_paths[i] for i in keep]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        x = np.stack(list(pool.map(lambda p: _decode(p, s.resolution), paths, chunksize=256)))
    y = labels[keep]
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_target(cache, suffix=".npz") as tmp:
                np.savez(tmp, x=x, y=y)
        except DiskFull as exc:  # the cache only saves time: train without it
            log.warning("decoded data not cached: %s", exc)
    return x, y


def load_cifar10_split(s: DataSettings):
    """CIFAR-10 train/test as uint8 NCHW tensors (torchvision format or an ImageFolder tree)."""
    import torch
    import torch.nn.functional as F

    root = Path(s.root)
    arrays = []
    for train, split in ((True, s.train_split), (False, s.val_split)):
        if (root / "cifar-10-batches-py").is_dir() or s.download:
            from torchvision.datasets import CIFAR10

            ds = CIFAR10(str(root), train=train, download=s.download)
            x, y = ds.data, np.array(ds.targets, np.int64)
            keep = limit_per_class(y, s.limit_per_class)
            x, y = x[keep], y[keep]
            if s.resolution != x.shape[1]:
                t = F.interpolate(
                    torch.from_numpy(x).permute(0, 3, 1, 2).float(),
                    size=s.resolution,
                    mode="bilinear",
                    align_corners=False,
                )
                x = t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        else:
            x, y = _folder_arrays(s, split)
        arrays += [torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)]
    return tuple(arrays)


def InMemoryData(s: DataSettings, load: Callable[[DataSettings], tuple]):
    """The DataModule of an in-memory data set (digits, CIFAR-10): `load` returns (x_train,
    y_train, x_val, y_val), float images or uint8 ones normalised on the device
    (datamodules.InMemoryData; torch and Lightning load here, on first use)."""
    from netspaces.train.datamodules import InMemoryData as DataModule

    return DataModule(s, load, augment=random_crop_flip)


# ---------------------------------------------------------------- image folders (ImageNet)


class Lighting:
    """PCA lighting noise (AlexNet): add eigvec · (alpha · eigval) per channel, alpha ~ N(0, std)."""

    def __init__(self, alpha_std: float) -> None:
        import torch

        from netspaces.train.device_input import EIG_VALS, EIG_VECS

        self.alpha_std = alpha_std
        self.eig_vals = torch.tensor(EIG_VALS)
        self.eig_vecs = torch.tensor(EIG_VECS)

    def __call__(self, img):
        import torch

        alpha = torch.randn(3) * self.alpha_std
        return img + (self.eig_vecs @ (alpha * self.eig_vals)).view(3, 1, 1)


def folder_transforms(s: DataSettings, train: bool, uint8: bool = False):
    """The paper's per-image transform of an image folder: float32 normalised, or (`uint8`)
    the same crop as uint8 (3, H, W) pixels, normalised and PCA-lit later on the training
    device (device_input.normalize), a quarter of the bytes through the loader."""
    from torchvision import transforms as T

    if train and s.augment:
        steps = [T.RandomResizedCrop(s.resolution, scale=(0.08, 1.0)), T.RandomHorizontalFlip()]
    else:  # the paper's evaluation: resize to 256/224 of the crop, center crop
        steps = [T.Resize(round(s.resolution * 256 / 224)), T.CenterCrop(s.resolution)]
    if uint8:
        return T.Compose([*steps, T.PILToTensor()])
    steps.append(T.ToTensor())
    if train and s.augment and s.pca_lighting > 0:
        steps.append(Lighting(s.pca_lighting))
    return T.Compose([*steps, T.Normalize(s.mean, s.std)])


def FolderData(s: DataSettings):
    """The DataModule of ImageNet or any ImageFolder tree, decoded by data.loader's choice
    (datamodules.FolderData; torch and Lightning load here, on first use)."""
    from netspaces.train.datamodules import FolderData as DataModule

    return DataModule(s, transforms=folder_transforms, select=limit_per_class, loader=open_rgb)


# ---------------------------------------------------------------- up-front checks and the registry


def _check_stats(s: DataSettings) -> None:
    if s.mean is None or s.std is None:
        raise UserError(f"data={s.name} needs data.mean and data.std (3 numbers each, pixels in [0, 1])")


def _check_root(s: DataSettings) -> Path:
    _check_stats(s)
    if s.root in (None, "", "???"):
        raise UserError(f"data.root is required for data={s.name}: data.root=/path/to/{s.name}")
    root = Path(s.root)
    if not root.exists():
        raise UserError(f"data.root={root} does not exist (data={s.name})")
    if not root.is_dir():
        raise UserError(f"data.root={root} is not a directory (data={s.name})")
    return root


def check_image_folder(s: DataSettings) -> None:
    root = _check_root(s)
    image_tree.check_tree(root, s.train_split, s.val_split)
    if s.verify:
        for split in (s.train_split, s.val_split):
            image_tree.verify_images(image_tree.list_split(root, split))


def check_cifar10(s: DataSettings) -> None:
    if s.download:  # torchvision fetches it into data.root
        _check_stats(s)
        return
    root = _check_root(s)
    if (root / "cifar-10-batches-py").is_dir():
        return
    if not (root / s.train_split).is_dir():
        raise UserError(
            f"data.root={root} has no {s.train_split}/ folder (expected {root}/{s.train_split}/<class>/"
            "<image>, or torchvision's cifar-10-batches-py/: data.download=true fetches it)"
        )
    check_image_folder(s)


@dataclass(frozen=True)
class DataSet:
    check: Callable[[DataSettings], None]  # up front, before anything is written: one line, no scan
    datamodule: Callable[[DataSettings], Any]  # a LightningDataModule


DATASETS: dict[str, DataSet] = {
    "digits": DataSet(lambda s: None, lambda s: InMemoryData(s, load_digits_split)),
    "cifar10": DataSet(check_cifar10, lambda s: InMemoryData(s, load_cifar10_split)),
    "imagenet": DataSet(check_image_folder, FolderData),
    "imagefolder": DataSet(check_image_folder, FolderData),
}


def check_data(s: DataSettings) -> None:
    """One clear UserError naming the path or value when the data cannot be there."""
    if s.name not in DATASETS:
        raise UserError(f"data.name={s.name!r} is not allowed: one of {', '.join(DATASETS)}")
    DATASETS[s.name].check(s)


def make_datamodule(s: DataSettings):
    check_data(s)
    return DATASETS[s.name].datamodule(s)


def __getattr__(name: str):
    """ShardSampler and TensorImages, from datamodules.py (loaded on first use, with torch)."""
    if name in ("ShardSampler", "TensorImages"):
        from netspaces.train import datamodules

        return getattr(datamodules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
