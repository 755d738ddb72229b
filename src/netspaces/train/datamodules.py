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
from netspaces.train.settings import DataSettings


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


class InMemoryData(LightningDataModule):
    """digits / CIFAR-10: tensors in memory, batched augmentation on the device. `load`
    returns (x_train, y_train, x_val, y_val): float images, or uint8 ones normalised here."""

    def __init__(self, s: DataSettings, load: Callable[[DataSettings], tuple], augment: Callable) -> None:
        super().__init__()
        self.s, self.load, self.augment = s, load, augment  # augment(x, pad, generator)
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
            x = self.augment(x, pad=4, generator=g)
        return x, y


class FolderData(LightningDataModule):
    """ImageNet or any ImageFolder tree; images decode in loader workers (RGB, greyscale too)."""

    def __init__(self, s: DataSettings, *, transforms: Callable, select: Callable, loader: Callable) -> None:
        super().__init__()
        self.s = s
        # transforms(s, train); select(labels, k): the indices kept; loader(path): an RGB image
        self.transforms, self.select, self.loader = transforms, select, loader
        self.train_set = self.val_set = None
        self.num_classes = s.num_classes

    def _folder(self, split: str, train: bool):
        from torchvision.datasets import ImageFolder

        ds = ImageFolder(str(Path(self.s.root) / split), transform=self.transforms(self.s, train), loader=self.loader)
        keep = self.select(np.array(ds.targets), self.s.limit_per_class)
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
