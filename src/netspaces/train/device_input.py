"""Input finished on the training device: loader workers emit uint8 images (a quarter of the
bytes of float32 through IPC, pinning and the host-to-device copy), normalised — and
PCA-lit — on the device; on CUDA the next batch is copied and prepared on a side stream
while the model trains on this one. On the CPU there is no stream machinery: the batch is
normalised where it is.

`normalize` does what torchvision's ToTensor + Normalize do, in the same order (divide by
255, subtract the mean, divide by the std), so a uint8 batch normalised here equals the
float pipeline's batch (tests/test_loader_uint8.py).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch

# AlexNet-style PCA lighting (RGB, pixels in [0, 1]), as pycls uses for ImageNet
EIG_VALS = (0.2175, 0.0188, 0.0045)
EIG_VECS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


@functools.lru_cache(maxsize=32)
def constant(values: tuple, device: torch.device) -> torch.Tensor:
    """`values` as a float32 tensor on `device`, made once: building it per batch would be a
    blocking host-to-device copy every step."""
    return torch.tensor(values, dtype=torch.float32, device=device)


def normalize(x: torch.Tensor, mean, std, lighting: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 images (N, 3, H, W) -> float32 normalised with per-channel `mean`/`std` (pixels
    in [0, 1]); `lighting` (N, 3), when given, is added per image and channel before the
    normalisation, as data.Lighting adds it after ToTensor."""
    x = x.float().div_(255)
    if lighting is not None:
        x.add_(lighting.to(x.dtype)[:, :, None, None])
    m = constant(tuple(mean), x.device).view(1, -1, 1, 1)
    s = constant(tuple(std), x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def pca_lighting(n: int, alpha_std: float, generator: torch.Generator) -> torch.Tensor:
    """AlexNet's PCA lighting offsets of n images, (n, 3), drawn on the generator's device:
    eigvecs @ (alpha * eigvals), alpha ~ N(0, alpha_std) per image and eigenvalue."""
    device = generator.device
    alpha = torch.randn(n, 3, generator=generator, device=device) * alpha_std
    return (alpha * constant(EIG_VALS, device)) @ constant(EIG_VECS, device).T


def batch_generator(device: torch.device, key: int) -> torch.Generator:
    """A generator on `device` seeded with `key` (no host copy of what it draws)."""
    return torch.Generator(device=device).manual_seed(key)


def _tensors(batch) -> list[torch.Tensor]:
    return [t for t in batch if isinstance(t, torch.Tensor)]


class DevicePrefetcher:
    """`loader`'s batches on a CUDA `device`: batch i+1 is copied (from pinned memory) and
    finished by `prepare(batch, index)` on a side stream while the model trains on batch i.
    Keeps the loader's `sampler` and length, so Lightning still sets the epoch and counts
    batches; a batch already on the device passes Lightning's transfer untouched."""

    def __init__(self, loader, device: torch.device, prepare: Callable[[Any, int], tuple]) -> None:
        self.loader, self.device, self.prepare = loader, device, prepare
        self.sampler = getattr(loader, "sampler", None)
        self.batch_size = getattr(loader, "batch_size", None)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def worker_init_fn(self):  # Lightning seeds the loader's workers through this
        return self.loader.worker_init_fn

    @worker_init_fn.setter
    def worker_init_fn(self, fn) -> None:
        self.loader.worker_init_fn = fn

    def __iter__(self):
        stream = torch.cuda.Stream(device=self.device)
        main = torch.cuda.current_stream(self.device)
        batches = iter(self.loader)
        index = 0

        def load():
            nonlocal index
            try:
                batch = next(batches)
            except StopIteration:
                return None
            with torch.cuda.stream(stream):
                ready = self.prepare(batch, index)
            index += 1
            return ready

        upcoming = load()
        while upcoming is not None:
            main.wait_stream(stream)
            for t in _tensors(upcoming):  # made on the side stream, used on the main one
                t.record_stream(main)
            current, upcoming = upcoming, load()
            yield current


class DeviceBatches:
    """Batches of an in-memory data set that lives on the device (digits, CIFAR-10 on CUDA):
    the sampler's order goes to the device once per epoch (pinned, asynchronous) and a batch
    is one gather there, so a step makes no host-to-device copy. Same order and batches as
    the host DataLoader with this sampler; `sampler` is exposed for Lightning's set_epoch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, sampler, batch_size: int, drop_last: bool) -> None:
        self.x, self.y, self.sampler = x, y, sampler
        self.batch_size, self.drop_last = batch_size, drop_last

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long)
        if self.x.is_cuda:
            order = order.pin_memory().to(self.x.device, non_blocking=True)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]
