"""Data sets: what netspaces knows about each (DATASETS: its up-front check and its
DataModule), digits and CIFAR-10 held in memory, ImageNet / any ImageFolder read from files.

Adding a data set: a YAML in conf/data/ and one DATASETS entry here (an in-memory one needs
only a function returning its train/val tensors; see load_digits_split).

Small datasets live in memory as one tensor and are batched by indexing (no per-image
collation); their augmentation runs batched on the training device. Samplers shard by rank
themselves, so the same code serves one process and DDP, and the validation shards are not
padded with duplicates (every image counts once in the error).
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from netspaces.errors import DataError, UserError
from netspaces.record import DiskFull, atomic_target
from netspaces.train import image_tree
from netspaces.train.settings import DataSettings

log = logging.getLogger(__name__)

# AlexNet-style PCA lighting (RGB, pixels in [0, 1]), as pycls uses for ImageNet
EIG_VALS = (0.2175, 0.0188, 0.0045)
EIG_VECS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


# ---------------------------------------------------------------- samplers and datasets


class ShardSampler(Sampler[int]):
    """Evaluation shard of one rank: every `world`-th index, no padding, no shuffling."""

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class TensorImages(Dataset):
    """Images and labels as two tensors; a batch is one fancy-index, not N item fetches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        return self.x[idx], self.y[idx]


def _keep_batch(batch):  # collate for TensorImages: the batch is already stacked
    return batch


def limit_per_class(labels: np.ndarray, k: int | None) -> np.ndarray:
    """Indices of the first k items of every class, in their original order."""
    labels = np.asarray(labels)
    if k is None:
        return np.arange(len(labels))
    keep = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:k]] = True
    return np.flatnonzero(keep)


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop (zero padding `pad`) and horizontal flip, batched on x's device."""
    n, c, h, w = x.shape
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


class InMemoryData(LightningDataModule):
    """digits / CIFAR-10: tensors in memory, batched augmentation on the device. `load`
    returns (x_train, y_train, x_val, y_val): float images, or uint8 ones normalised here."""

    def __init__(self, s: DataSettings, load: Callable[[DataSettings], tuple]) -> None:
        super().__init__()
        self.s, self.load = s, load
        self.train_set: TensorImages | None = None
        self.val_set: TensorImages | None = None
        self.num_classes = s.num_classes or 10

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        x_tr, y_tr, x_va, y_va = self.load(self.s)
        if len(y_tr) == 0 or len(y_va) == 0:
            raise UserError(f"data={self.s.name}: no images left (data.limit_per_class={self.s.limit_per_class})")
        self.train_set, self.val_set = TensorImages(x_tr, y_tr), TensorImages(x_va, y_va)
        self.num_classes = self.s.num_classes or int(y_tr.max()) + 1

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        sampler = DistributedSampler(self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.s.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.s.batch_size,
            sampler=sampler,
            collate_fn=_keep_batch,
            drop_last=len(sampler) > self.s.batch_size,
            num_workers=self.s.workers,
            pin_memory=self.s.pin_memory,
        )

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank_world()
        return DataLoader(
            self.val_set,
            batch_size=self.s.batch_size,
            sampler=ShardSampler(len(self.val_set), rank, world),
            collate_fn=_keep_batch,
            num_workers=self.s.workers,
            pin_memory=self.s.pin_memory,
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if x.dtype == torch.uint8:  # CIFAR-10 stays uint8 in memory (4x smaller) until here
            mean = torch.tensor(self.s.mean, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(self.s.std, device=x.device).view(1, -1, 1, 1)
            x = (x.float().div_(255) - mean) / std
        if self.s.augment and self.trainer is not None and self.trainer.training:
            # seeded by (seed, step, rank): reproducible, and identical after a resume
            g = torch.Generator().manual_seed(
                (self.s.seed * 1_000_003 + self.trainer.global_step) * 64 + self.trainer.global_rank
            )
            x = random_crop_flip(x, pad=4, generator=g)
        return x, y


# ---------------------------------------------------------------- image folders (ImageNet)


class Lighting:
    """PCA lighting noise (AlexNet): add eigvec · (alpha · eigval) per channel, alpha ~ N(0, std)."""

    def __init__(self, alpha_std: float) -> None:
        self.alpha_std = alpha_std
        self.eig_vals = torch.tensor(EIG_VALS)
        self.eig_vecs = torch.tensor(EIG_VECS)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.alpha_std
        return img + (self.eig_vecs @ (alpha * self.eig_vals)).view(3, 1, 1)


def folder_transforms(s: DataSettings, train: bool):
    from torchvision import transforms as T

    if train and s.augment:
        steps = [T.RandomResizedCrop(s.resolution, scale=(0.08, 1.0)), T.RandomHorizontalFlip(), T.ToTensor()]
        if s.pca_lighting > 0:
            steps.append(Lighting(s.pca_lighting))
    else:  # the paper's evaluation: resize to 256/224 of the crop, center crop
        steps = [T.Resize(round(s.resolution * 256 / 224)), T.CenterCrop(s.resolution), T.ToTensor()]
    return T.Compose([*steps, T.Normalize(s.mean, s.std)])


class FolderData(LightningDataModule):
    """ImageNet or any ImageFolder tree; images decode in loader workers (RGB, greyscale too)."""

    def __init__(self, s: DataSettings) -> None:
        super().__init__()
        self.s = s
        self.train_set = self.val_set = None
        self.num_classes = s.num_classes

    def _folder(self, split: str, train: bool):
        from torchvision.datasets import ImageFolder

        ds = ImageFolder(str(Path(self.s.root) / split), transform=folder_transforms(self.s, train), loader=open_rgb)
        keep = limit_per_class(np.array(ds.targets), self.s.limit_per_class)
        ds.samples = ds.imgs = [ds.samples[i] for i in keep]
        ds.targets = [c for _, c in ds.samples]
        return ds

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = self._folder(self.s.train_split, True)
        self.val_set = self._folder(self.s.val_split, False)
        found = len(self.train_set.classes)
        if found < 2:
            raise UserError(
                f"data.root={self.s.root}: {found} class folder in {self.s.train_split}/; "
                "classification needs at least 2"
            )
        if self.s.num_classes is not None and found > self.s.num_classes:
            raise UserError(
                f"data.num_classes={self.s.num_classes} but {self.s.root}/{self.s.train_split} "
                f"has {found} class folders"
            )
        self.num_classes = self.s.num_classes or found

    def _loader(self, dataset, sampler, batch_size: int, drop_last: bool) -> DataLoader:
        workers = self.s.workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.s.pin_memory,
            persistent_workers=self.s.persistent_workers and workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        t = self.trainer
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        sampler = DistributedSampler(self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.s.seed)
        return self._loader(self.train_set, sampler, self.s.batch_size, len(sampler) > self.s.batch_size)

    def val_dataloader(self) -> DataLoader:
        t = self.trainer
        rank, world = (t.global_rank, t.world_size) if t is not None else (0, 1)
        return self._loader(self.val_set, ShardSampler(len(self.val_set), rank, world), self.s.batch_size, False)


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
    datamodule: Callable[[DataSettings], LightningDataModule]


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


def make_datamodule(s: DataSettings) -> LightningDataModule:
    check_data(s)
    return DATASETS[s.name].datamodule(s)
