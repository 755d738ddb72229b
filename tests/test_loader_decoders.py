"""The GPU decoders' code on real Imagenette JPEGs, run on the CPU where it can be: the
data.loader=gpu batch step (torchvision's decode_jpeg, crops and resizes on tensors) with
device="cpu", and the DALI pipeline on DALI's CPU backend when nvidia-dali is installed
(skipped otherwise, with the reason). Both give what the PIL path gives, within resampling
differences."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from conftest import IMAGENETTE, needs
from netspaces.train import image_tree
from netspaces.train.data import FolderData, folder_transforms, open_rgb
from netspaces.train.gpu_decode import EncodedImages, collate_encoded, decode_batch
from netspaces.train.settings import DataSettings

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CPU = torch.device("cpu")


def _settings(**kw) -> DataSettings:
    base = dict(name="imagenet", batch_size=8, resolution=64, root=str(IMAGENETTE), augment=True, mean=MEAN, std=STD)
    return DataSettings(**{**base, **kw})


def _val(n: int = 24) -> tuple[list[str], list[int]]:
    listing = image_tree.list_split(IMAGENETTE, "val")
    step = len(listing.images) // n
    return listing.paths()[::step][:n], listing.labels()[::step][:n]


def _pil_eval(paths: list[str], resolution: int = 64) -> torch.Tensor:
    crop = folder_transforms(_settings(resolution=resolution), train=False, uint8=True)
    return torch.stack([crop(open_rgb(p)) for p in paths])


@needs(IMAGENETTE)
def test_workers_hand_over_jpeg_bytes_and_decoded_pixels_of_other_files(tmp_path):
    paths, labels = _val(2)
    png = tmp_path / "a.png"
    Image.open(paths[1]).convert("RGB").save(png)
    ds = EncodedImages([paths[0], str(png)], labels, open_rgb)
    (jpeg, y0), (pixels, _) = ds[0], ds[1]
    assert jpeg.dtype == torch.uint8 and jpeg.dim() == 1 and bytes(jpeg[:3].tolist()) == b"\xff\xd8\xff"
    assert jpeg.numel() == (IMAGENETTE / paths[0]).stat().st_size and y0 == labels[0]
    assert pixels.dtype == torch.uint8 and pixels.shape[0] == 3 and pixels.dim() == 3
    items, ys = collate_encoded([ds[0], ds[1]])
    out = decode_batch(items, CPU, 64, train=False)
    assert out.shape == (2, 3, 64, 64) and out.dtype == torch.uint8 and ys.tolist() == labels[:2]
    assert float((out.float() - _pil_eval([paths[0], paths[1]]).float()).abs().mean()) < 3  # of 255


@needs(IMAGENETTE)
def test_gpu_decode_evaluation_matches_the_pil_path_within_resampling():
    paths, labels = _val()
    items = [EncodedImages(paths, labels, open_rgb)[i][0] for i in range(len(paths))]
    ours, pil = decode_batch(items, CPU, 64, train=False).float(), _pil_eval(paths).float()
    diff = (ours - pil).abs()
    assert float(diff.mean()) < 3 and float(pil.std()) > 30  # antialiased bilinear vs PIL's: close
    assert float((ours - pil.roll(1, 0)).abs().mean()) > 20  # another image is far away


@needs(IMAGENETTE)
def test_gpu_decode_training_crops_are_seeded_random_resized_crops():
    paths, labels = _val(8)
    items = [EncodedImages(paths, labels, open_rgb)[i][0] for i in range(len(paths))]
    torch.manual_seed(0)
    a = decode_batch(items, CPU, 64, train=True)
    torch.manual_seed(0)
    b = decode_batch(items, CPU, 64, train=True)
    c = decode_batch(items, CPU, 64, train=True)
    assert a.shape == (8, 3, 64, 64) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)  # seeded, and another draw differs


@needs(IMAGENETTE)
def test_the_gpu_loaders_datamodule_finishes_a_batch_like_the_pil_one():
    paths, _ = _val(8)
    gpu = FolderData(_settings(loader="gpu", augment=False, limit_per_class=1))
    gpu.setup()
    loader = gpu.val_dataloader()
    batch = next(iter(loader))
    assert isinstance(batch[0], list) and batch[0][0].dim() == 1  # bytes from the workers
    x, y = gpu._prepare(batch, 0, loader.sampler, train=False, device=CPU)
    pil = FolderData(_settings(augment=False, limit_per_class=1))
    pil.setup()
    px, py = pil.on_after_batch_transfer(next(iter(pil.val_dataloader())), 0)
    assert x.dtype == torch.float32 and x.shape == px.shape and torch.equal(y, py)
    assert float((x - px).abs().mean()) < 0.05  # normalised units: ~3 of 255 levels


DALI_MISSING = "nvidia-dali not installed (pip install netspaces[dali]: the ~200 MB nvidia-dali-cuda130 wheel)"


@needs(IMAGENETTE)
def test_dali_on_its_cpu_backend_reads_shards_and_matches_the_pil_path():
    pytest.importorskip("nvidia.dali", reason=DALI_MISSING)
    import torchvision.transforms as T

    from netspaces.train.dali_input import DaliBatches

    paths, labels = _val(40)

    def batches(train: bool, rank: int):
        return DaliBatches(
            paths, labels, train=train, resolution=64, batch_size=8, rank=rank, world=2, seed=0, device=CPU, workers=1
        )

    shards = [list(batches(False, r)) for r in (0, 1)]
    got = sorted(int(v) for shard in shards for _, y in shard for v in y)
    assert got == sorted(labels)  # every image once over the two ranks, none padded
    x = torch.cat([x for x, _ in shards[0]]).float()
    # PIL resized to 73 (64·256/224), cropped where DALI centers: a half-pixel offset rounded
    # up (torchvision's CenterCrop rounds it to even, one pixel off here)
    resized = [T.PILToTensor()(T.Resize(73)(open_rgb(p))) for p in paths[:20]]
    crops = []
    for im in resized:
        top, left = (int((d - 64) / 2 + 0.5) for d in im.shape[1:])
        crops.append(im[:, top : top + 64, left : left + 64])
    assert x.shape == (20, 3, 64, 64) and float((x - torch.stack(crops).float()).abs().mean()) < 1
    train = batches(True, 0)
    epochs = [list(train), list(train)]
    assert len(train) == 2 and [len(e) for e in epochs] == [2, 2]
    assert all(b[0].shape == (8, 3, 64, 64) for e in epochs for b in e)
    dm = FolderData(_settings(loader="dali", limit_per_class=3))  # the DataModule around it
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    x, y = dm.on_after_batch_transfer(batch, 0)
    assert x.dtype == torch.float32 and x.shape == (8, 3, 64, 64) and 0 <= int(y.min()) and int(y.max()) < 10
