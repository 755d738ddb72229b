"""Input on a CUDA GPU (marker `gpu`: skipped without one; scripts/gpu_check.sh runs them):
the side-stream prefetcher gives the batches the CPU path gives, in-memory data lives on the
device, torchvision's GPU decode agrees with its CPU decode, and short runs train with each
loader on real Imagenette images."""

from __future__ import annotations

import pytest
import torch

from conftest import CIFAR10, IMAGENETTE, compose_train, needs

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("restore_torch_state")]

CUDA = torch.device("cuda", 0)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FEW = ["schedule=quick", "schedule.epochs=1", "trainer.limit_val_batches=2", "trainer.progress_bar=false"]


def _train(tmp_path, overrides: list[str]) -> dict:
    from netspaces.train.run import train

    cfg = compose_train([*FEW, *overrides, f"paths.run_dir={tmp_path / 'run'}", f"paths.output={tmp_path}"])
    return train(cfg)


@needs(IMAGENETTE)
def test_the_prefetcher_gives_the_cpu_paths_batches_on_the_device():
    from netspaces.train.data import FolderData
    from netspaces.train.device_input import DevicePrefetcher
    from netspaces.train.settings import DataSettings

    s = DataSettings(
        name="imagenet",
        batch_size=8,
        resolution=64,
        root=str(IMAGENETTE),
        augment=False,
        mean=MEAN,
        std=STD,
        limit_per_class=4,
        pin_memory=True,
    )
    dm = FolderData(s)
    dm.setup()
    loader = dm.val_dataloader()  # the CPU's DataLoader (no trainer attached)
    on_cpu = [dm.on_after_batch_transfer(b, 0) for b in loader]
    fetched = DevicePrefetcher(loader, CUDA, lambda b, i: dm._prepare(b, i, loader.sampler, False, CUDA))
    on_gpu = list(fetched)
    assert len(on_gpu) == len(on_cpu) == len(fetched) == 5
    for (gx, gy), (cx, cy) in zip(on_gpu, on_cpu):
        assert gx.is_cuda and gx.dtype == torch.float32
        assert float((gx.cpu() - cx).abs().max()) <= 1e-6 and torch.equal(gy.cpu(), cy)


def test_in_memory_data_lives_on_the_gpu_and_trains(tmp_path, monkeypatch):
    from netspaces.train import datamodules

    seen = []
    real = datamodules.DeviceBatches.__iter__

    def spy(self):
        seen.append(self.x.device.type)
        return real(self)

    monkeypatch.setattr(datamodules.DeviceBatches, "__iter__", spy)
    rec = _train(tmp_path, ["trainer=gpu", "trainer.limit_train_batches=4"])
    assert rec["status"] == "ok", rec.get("error")
    assert seen and set(seen) == {"cuda"}  # training and validation batches from device memory


@needs(CIFAR10)
def test_cifar10_batches_on_the_gpu_make_no_host_sync():
    """Gather, normalisation and crop + flip of CIFAR-10 held on the GPU: any host-device
    sync is an error (after the first batch, which puts the epoch's order and the constants
    there)."""
    from types import SimpleNamespace

    from netspaces.train.data import InMemoryData, load_cifar10_split
    from netspaces.train.settings import DataSettings

    s = DataSettings(
        name="cifar10",
        batch_size=64,
        resolution=32,
        root=str(CIFAR10),
        train_split="train",
        val_split="test",
        augment=True,
        limit_per_class=50,
        on_device=True,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.247, 0.2435, 0.2616),
    )
    dm = InMemoryData(s, load_cifar10_split)
    dm.setup()
    dm.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=CUDA), global_rank=0, world_size=1, training=True, global_step=0
    )
    batches = iter(dm.train_dataloader())
    dm.on_after_batch_transfer(next(batches), 0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step, batch in zip(range(1, 5), batches):
            dm.trainer.global_step = step
            x, y = dm.on_after_batch_transfer(batch, 0)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert x.is_cuda and y.is_cuda and x.dtype == torch.float32 and x.shape == (64, 3, 32, 32)


@needs(IMAGENETTE)
def test_gpu_decode_agrees_with_the_cpu_decode():
    from netspaces.train import image_tree
    from netspaces.train.data import open_rgb
    from netspaces.train.gpu_decode import EncodedImages, decode_batch

    listing = image_tree.list_split(IMAGENETTE, "val")
    ds = EncodedImages(listing.paths()[::50], listing.labels()[::50], open_rgb)
    items = [ds[i][0] for i in range(len(ds))]
    gpu = decode_batch(items, CUDA, 224, train=False).cpu().float()
    cpu = decode_batch(items, torch.device("cpu"), 224, train=False).float()
    assert float((gpu - cpu).abs().mean()) < 2  # nvJPEG vs libjpeg-turbo: IDCT rounding


@needs(IMAGENETTE)
@pytest.mark.parametrize("loader", ["pil", "gpu"])
def test_a_run_trains_on_imagenette_with_each_loader(tmp_path, loader):
    rec = _train(
        tmp_path,
        [
            "trainer=gpu",
            "data=imagenet",
            f"data.root={IMAGENETTE}",
            f"data.loader={loader}",
            "data.resolution=64",
            "data.limit_per_class=20",
            "data.pca_lighting=0.1",
            "trainer.limit_train_batches=3",
        ],
    )
    assert rec["status"] == "ok", rec.get("error")
    assert rec["config"]["data"]["loader"] == loader
