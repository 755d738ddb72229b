"""Workers emit uint8, the device normalises: on real Imagenette images the uint8 pipeline
finished by the DataModule equals the float pipeline (ToTensor, PCA lighting, Normalize)
within 1e-6; on the CPU there is no stream machinery and digits / CIFAR-10 give the same bits
as before; in-memory data held on the device is batched exactly as the host DataLoader
batches it."""

from __future__ import annotations

import hashlib

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from conftest import CIFAR10, IMAGENETTE, needs
from netspaces.train.data import FolderData, InMemoryData, Lighting, folder_transforms, load_digits_split
from netspaces.train.device_input import DeviceBatches, batch_generator, normalize, pca_lighting
from netspaces.train.settings import DataSettings

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _settings(**kw) -> DataSettings:
    base = dict(name="imagenet", batch_size=4, resolution=96, root=str(IMAGENETTE), augment=True, mean=MEAN, std=STD)
    return DataSettings(**{**base, **kw})


def _images(n: int) -> list[Image.Image]:
    paths = sorted((IMAGENETTE / "train").rglob("*.JPEG"))[::120][:n]  # several classes
    return [Image.open(p).convert("RGB") for p in paths]


@needs(IMAGENETTE)
@pytest.mark.parametrize("train", [True, False])
def test_uint8_images_normalised_by_the_datamodule_equal_the_float_pipeline(train):
    s = _settings()
    as_float, as_uint8 = folder_transforms(s, train), folder_transforms(s, train, uint8=True)
    floats, uint8s = [], []
    for i, im in enumerate(_images(8)):
        torch.manual_seed(i)  # the same crop and flip for both
        floats.append(as_float(im))
        torch.manual_seed(i)
        uint8s.append(as_uint8(im))
    batch = torch.stack(uint8s)
    assert batch.dtype == torch.uint8 and batch.shape == (8, 3, 96, 96)
    dm = FolderData(s)  # no trainer: evaluation-time finishing on the CPU, as in validation
    x, y = dm.on_after_batch_transfer((batch, torch.arange(8)), 0)
    expected = torch.stack(floats)
    assert x.dtype == torch.float32 and float((x - expected).abs().max()) <= 1e-6
    assert float(expected.std()) > 0.5  # real pictures, not a constant


@needs(IMAGENETTE)
def test_pca_lighting_on_the_device_is_the_cpu_transform_with_the_same_draws(monkeypatch):
    s = _settings(pca_lighting=0.1)
    crop = folder_transforms(s, train=False, uint8=True)  # a fixed crop: only the lighting varies
    images = torch.stack([crop(im) for im in _images(4)])
    offsets = pca_lighting(4, 0.1, batch_generator(torch.device("cpu"), 7))
    alpha = torch.randn(4, 3, generator=torch.Generator().manual_seed(7)) * 0.1
    assert float(offsets.abs().max()) > 1e-3  # the lighting does something
    lit = normalize(images, MEAN, STD, offsets)
    lighting = Lighting(0.1)
    for i in range(4):
        monkeypatch.setattr(torch, "randn", lambda n, a=alpha[i]: a / 0.1)  # the CPU transform's draw
        expected = (lighting(images[i].float().div(255)) - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(
            3, 1, 1
        )
        monkeypatch.undo()
        assert float((lit[i] - expected).abs().max()) <= 1e-6


@needs(IMAGENETTE)
def test_on_the_cpu_workers_emit_uint8_through_a_plain_dataloader():
    dm = FolderData(_settings(limit_per_class=2, augment=False))
    dm.setup()
    loader = dm.train_dataloader()
    assert type(loader) is DataLoader  # no prefetcher, no streams on the CPU
    x, y = next(iter(loader))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 96, 96) and y.dtype == torch.int64
    finished, _ = dm.on_after_batch_transfer((x, y), 0)
    assert finished.dtype == torch.float32 and abs(float(finished.mean())) < 2


def test_device_batches_give_the_host_dataloaders_batches_in_its_order():
    s = DataSettings(name="digits", batch_size=100, resolution=16)
    dm = InMemoryData(s, load_digits_split)
    dm.setup()
    host = dm.train_dataloader()
    assert type(host) is DataLoader  # the CPU path is the DataLoader it always was
    for epoch in (0, 1):
        host.sampler.set_epoch(epoch)
        sampler = DistributedSampler(dm.train_set, num_replicas=1, rank=0, shuffle=True, seed=s.seed)
        sampler.set_epoch(epoch)
        resident = DeviceBatches(dm.train_set.x, dm.train_set.y, sampler, s.batch_size, drop_last=True)
        pairs = list(zip(host, resident, strict=True))
        assert len(pairs) == len(resident) == 1437 // 100
        for (hx, hy), (dx, dy) in pairs:
            assert torch.equal(hx, dx) and torch.equal(hy, dy)
    short = DeviceBatches(dm.val_set.x, dm.val_set.y, range(250), 100, drop_last=False)
    assert [len(y) for _, y in short] == [100, 100, 50] and len(short) == 3


@needs(CIFAR10)
def test_the_cpu_path_of_cifar10_and_digits_is_bit_identical_to_before():
    """The first three training batches (normalised, CIFAR-10's cropped and flipped) hash to
    what commit aea56fb, before the device-resident path, computed: a published reproduction
    rests on these exact numbers."""
    from types import SimpleNamespace

    from netspaces.train.data import load_cifar10_split

    cifar = dict(root=str(CIFAR10), train_split="train", val_split="test", augment=True, limit_per_class=50)
    stats = dict(mean=(0.4914, 0.4822, 0.4465), std=(0.247, 0.2435, 0.2616))
    expected = {"cifar10": "10f1da331b4cf0dc", "digits": "e0b99f7c16ccd7f1"}
    for name, load, kw in (("cifar10", load_cifar10_split, {**cifar, **stats}), ("digits", load_digits_split, {})):
        dm = InMemoryData(DataSettings(name=name, batch_size=64, resolution=32, **kw), load)
        dm.setup()
        dm.trainer = SimpleNamespace(global_rank=0, world_size=1, training=True, global_step=0)
        xs = []
        for step, batch in zip(range(3), dm.train_dataloader()):
            dm.trainer.global_step = step
            xs.append(dm.on_after_batch_transfer(batch, 0)[0])
        assert hashlib.sha256(torch.stack(xs).numpy().tobytes()).hexdigest()[:16] == expected[name], name
