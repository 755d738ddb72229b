"""The DataModule classes behind train/data.py's data sets (torch and Lightning; data.py's
InMemoryData and FolderData build them, handing over what is specific to a data set): in-memory
tensors batched by indexing, with their augmentation batched on the device, and image folders
decoded in loader workers. Samplers shard by rank themselves, so the same code serves one
process and DDP, and the validation shards are not padded with duplicates (every image counts
once in the error). Imports nothing of data.py (the arrow points one way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from netspaces.errors import UserError
from netspaces.train import image_tree
from netspaces.train.device_input import (
    DeviceBatches,
    DevicePrefetcher,
    batch_generator,
    constant,
    normalize,
    pca_lighting,
)
from netspaces.train.file_lists import cached_listing
from netspaces.train.settings import DataSettings


def _device(trainer) -> torch.device:
    """The device this process trains on (the CPU before a Trainer is attached)."""
    return trainer.strategy.root_device if trainer is not None else torch.device("cpu")


class ShardSampler(Sampler[int]):
    """Evaluation shard of one rank: every `world`-th index, no padding, no shuffling."""

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EpochSeededSampler(DistributedSampler):
    """A DistributedSampler that also reseeds `generator` at every epoch. A DataLoader draws
    its workers' base seed from its generator when an epoch's iterator starts, so the
    augmentation done in loader workers is a function of (seed, epoch, rank, worker) only,
    not of what else drew from the global RNG before (the other models of a pack)."""

    def __init__(self, dataset, *, generator: torch.Generator, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.generator = generator
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)


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


class InMemoryData(LightningDataModule):
    """digits / CIFAR-10: tensors in memory, batched augmentation on the device. `load`
    returns (x_train, y_train, x_val, y_val): float images, or uint8 ones normalised here."""

    def __init__(self, s: DataSettings, load: Callable[[DataSettings], tuple], augment: Callable) -> None:
        super().__init__()
        self.s, self.load, self.augment = s, load, augment  # augment(x, pad, generator)
        self.train_set: TensorImages | None = None
        self.val_set: TensorImages | None = None
        self.num_classes = s.num_classes or 10
        self._moved: dict[int, TensorImages] = {}  # the splits on the CUDA device (data.on_device)

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

    def _resident(self, split: TensorImages) -> TensorImages | None:
        """`split` moved to the CUDA device once (data.on_device), else None (host memory)."""
        if not self.s.on_device:  # the CPU path (and data.on_device=false) stays in host memory
            return None
        device = _device(self.trainer)
        if device.type != "cuda":
            return None
        moved = self._moved.get(id(split))
        if moved is None:
            moved = self._moved[id(split)] = TensorImages(split.x.to(device), split.y.to(device))
        return moved

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        rank, world = self._rank_world()
        sampler = DistributedSampler(self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.s.seed)
        resident = self._resident(self.train_set)
        if resident is not None:
            return DeviceBatches(resident.x, resident.y, sampler, self.s.batch_size, len(sampler) > self.s.batch_size)
        return DataLoader(
            self.train_set,
            batch_size=self.s.batch_size,
            sampler=sampler,
            collate_fn=_keep_batch,
            drop_last=len(sampler) > self.s.batch_size,
            num_workers=self.s.workers,
            pin_memory=self.s.pin_memory,
        )

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        rank, world = self._rank_world()
        resident = self._resident(self.val_set)
        if resident is not None:
            return DeviceBatches(
                resident.x, resident.y, ShardSampler(len(self.val_set), rank, world), self.s.batch_size, False
            )
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
            mean = constant(tuple(self.s.mean), x.device).view(1, -1, 1, 1)  # made once per device
            std = constant(tuple(self.s.std), x.device).view(1, -1, 1, 1)
            x = (x.float().div_(255) - mean) / std
        if self.s.augment and self.trainer is not None and self.trainer.training:
            # seeded by (seed, step, rank): reproducible, and identical after a resume; on CUDA
            # a CUDA generator, so the draws need no host-to-device copy
            key = (self.s.seed * 1_000_003 + self.trainer.global_step) * 64 + self.trainer.global_rank
            g = torch.Generator(device=x.device).manual_seed(key) if x.is_cuda else torch.Generator().manual_seed(key)
            x = self.augment(x, pad=4, generator=g)
        return x, y


class ListedImages(Dataset):
    """The images of a listed split (image_tree.Listing), each opened by `loader` (an RGB
    image) and passed through `transform`; `classes` as ImageFolder names them."""

    def __init__(self, paths: list[str], labels: list[int], classes: tuple[str, ...], transform, loader) -> None:
        self.paths, self.labels, self.classes = paths, labels, classes
        self.transform, self.loader = transform, loader

    @property
    def samples(self) -> list[tuple[str, int]]:  # ImageFolder's (path, label) pairs
        return list(zip(self.paths, self.labels))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(self.loader(self.paths[i])), self.labels[i]


class FolderData(LightningDataModule):
    """ImageNet or any ImageFolder tree, listed once (a big tree's file list cached:
    file_lists.py). data.loader: `pil` decodes in loader workers to uint8; `gpu` reads bytes
    in the workers and decodes on the GPU (gpu_decode.py); `dali` runs NVIDIA DALI
    (dali_input.py). uint8 batches are normalised (and PCA-lit) on the training device; on
    CUDA the next batch is copied and finished on a side stream (device_input.py)."""

    def __init__(self, s: DataSettings, *, transforms: Callable, select: Callable, loader: Callable) -> None:
        super().__init__()
        self.s = s
        # transforms(s, train, uint8=True); select(labels, k): the indices kept; loader(path): an RGB image
        self.transforms, self.select, self.loader = transforms, select, loader
        self.train_set = self.val_set = None
        self.num_classes = s.num_classes

    def _listed(self, split: str, train: bool) -> Dataset:
        root = Path(self.s.root)
        listing = (
            cached_listing(root, split, self.s.cache_dir) if self.s.cache_dir else image_tree.list_split(root, split)
        )
        labels = listing.labels()
        keep = self.select(np.array(labels), self.s.limit_per_class)
        paths = listing.paths()
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        if self.s.loader == "gpu":
            from netspaces.train.gpu_decode import EncodedImages

            ds = EncodedImages(paths, labels, self.loader)
            ds.classes = listing.classes
            return ds
        return ListedImages(paths, labels, listing.classes, self.transforms(self.s, train, uint8=True), self.loader)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = self._listed(self.s.train_split, True)
        self.val_set = self._listed(self.s.val_split, False)
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

    def _loader(self, dataset, sampler, batch_size: int, drop_last: bool, train: bool):
        device = _device(self.trainer)
        if self.s.loader == "dali":
            from netspaces.train.dali_input import DaliBatches

            rank, world = self._rank_world()
            return DaliBatches(
                dataset.paths,
                dataset.labels,
                train=train,
                resolution=self.s.resolution,
                batch_size=batch_size,
                rank=rank,
                world=world,
                seed=self.s.seed,
                device=device,
                workers=self.s.workers,
            )
        workers = self.s.workers
        collate = None
        if self.s.loader == "gpu":
            from netspaces.train.gpu_decode import collate_encoded

            collate = collate_encoded
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.s.pin_memory,
            persistent_workers=self.s.persistent_workers and workers > 0,
            collate_fn=collate,
            generator=getattr(sampler, "generator", None),  # the workers' seeds (EpochSeededSampler)
        )
        if device.type != "cuda":  # the CPU: no streams; on_after_batch_transfer normalises
            return loader
        return DevicePrefetcher(
            loader, device, lambda batch, index: self._prepare(batch, index, sampler, train, device)
        )

    def _prepare(self, batch, index: int, sampler, train: bool, device: torch.device):
        """On the prefetcher's side stream: the batch on the device, decoded (data.loader=gpu),
        normalised and, for training, PCA-lit, keyed by (seed, epoch, batch, rank)."""
        x, y = batch
        if self.s.loader == "gpu":
            from netspaces.train.gpu_decode import decode_batch

            x = decode_batch(x, device, self.s.resolution, train)
        else:
            x = x.to(device, non_blocking=True)
        epoch = getattr(sampler, "epoch", 0)
        key = ((self.s.seed * 1_000_003 + epoch) * 100_003 + index) * 64 + self._rank_world()[0]
        return self._finish(x, train, key), y.to(device, non_blocking=True)

    def _finish(self, x: torch.Tensor, train: bool, key: int) -> torch.Tensor:
        """uint8 -> normalised float, with PCA lighting drawn on x's device when training."""
        lighting = None
        if train and self.s.augment and self.s.pca_lighting > 0:
            lighting = pca_lighting(len(x), self.s.pca_lighting, batch_generator(x.device, key))
        return normalize(x, self.s.mean, self.s.std, lighting)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if x.dtype == torch.uint8:  # the CPU path and DALI's batches; the prefetcher's are done
            t = self.trainer
            train = t is not None and t.training
            key = (self.s.seed * 1_000_003 + (t.global_step if t is not None else 0)) * 64 + self._rank_world()[0]
            x = self._finish(x, train, key)
        return x, y

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def train_dataloader(self):
        rank, world = self._rank_world()
        sampler = EpochSeededSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=self.s.seed, generator=torch.Generator()
        )
        return self._loader(self.train_set, sampler, self.s.batch_size, len(sampler) > self.s.batch_size, True)

    def val_dataloader(self):
        rank, world = self._rank_world()
        sampler = ShardSampler(len(self.val_set), rank, world)
        return self._loader(self.val_set, sampler, self.s.batch_size, False, False)
