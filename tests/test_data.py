"""DataModules on real data: digits, CIFAR-10 (in memory and as an ImageFolder), Imagenette."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CIFAR10, IMAGENETTE, TINY, compose_train, needs
from netspaces.errors import UserError
from netspaces.train.data import (
    FolderData,
    InMemoryData,
    ShardSampler,
    check_data,
    folder_transforms,
    limit_per_class,
    load_cifar10_split,
    load_digits_split,
    random_crop_flip,
)
from netspaces.train.run import train
from netspaces.train.settings import DataSettings


def test_digits_fixed_stratified_split_at_32px():
    s = DataSettings(name="digits", batch_size=128, resolution=32)
    x_tr, y_tr, x_va, y_va = load_digits_split(s)
    assert x_tr.shape == (1437, 3, 32, 32) and x_va.shape == (360, 3, 32, 32)
    assert torch.equal(x_tr[:, 0], x_tr[:, 2])  # grey replicated to 3 channels
    assert abs(float(x_tr.mean())) < 1e-4 and abs(float(x_tr.std()) - 1) < 1e-3  # train statistics
    assert np.bincount(y_va.numpy()).min() >= 35  # stratified: every digit ~36 times
    again = load_digits_split(s)
    assert torch.equal(again[1], y_tr) and torch.equal(again[2], x_va)  # fixed, seeded split
    few = load_digits_split(DataSettings(name="digits", batch_size=8, resolution=16, limit_per_class=3))
    assert few[0].shape == (30, 3, 16, 16) and np.bincount(few[1].numpy()).tolist() == [3] * 10


def test_limit_per_class_keeps_the_first_k_in_order():
    assert limit_per_class(np.array([0, 1, 0, 1, 0, 2]), 2).tolist() == [0, 1, 2, 3, 5]
    assert limit_per_class(np.array([3, 3]), None).tolist() == [0, 1]


def test_validation_shards_cover_every_image_once():
    shards = [list(ShardSampler(10, rank, 3)) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(10)) and [len(s) for s in shards] == [4, 3, 3]


def test_random_crop_flip_is_a_padded_crop_of_each_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = random_crop_flip(x, pad=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        crops = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)
    same = random_crop_flip(x, pad=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


@needs(CIFAR10)
def test_cifar10_image_tree_decodes_into_memory_and_caches(tmp_path):
    s = DataSettings(
        name="cifar10",
        batch_size=16,
        resolution=32,
        root=str(CIFAR10),
        train_split="train",
        val_split="test",
        limit_per_class=5,
        cache_dir=str(tmp_path),
    )
    x_tr, y_tr, x_va, y_va = load_cifar10_split(s)
    assert x_tr.dtype == torch.uint8 and x_tr.shape == (50, 3, 32, 32) and x_va.shape == (50, 3, 32, 32)
    assert np.bincount(y_tr.numpy()).tolist() == [5] * 10
    first = np.asarray(Image.open(CIFAR10 / "train" / "airplane" / "0000.jpg").convert("RGB"))
    assert np.array_equal(x_tr[0].permute(1, 2, 0).numpy(), first)
    assert len(list(tmp_path.glob("cifar10-*.npz"))) == 2
    cached = load_cifar10_split(s)
    assert torch.equal(cached[0], x_tr) and torch.equal(cached[3], y_va)


@needs(IMAGENETTE)
def test_imagenet_transforms_and_greyscale_images_become_rgb():
    s = DataSettings(
        name="imagenet",
        batch_size=4,
        resolution=224,
        root=str(IMAGENETTE),
        augment=True,
        pca_lighting=0.1,
        limit_per_class=100,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    data = FolderData(s)
    data.setup()
    assert data.num_classes == 10 and len(data.train_set) == 1000 and len(data.val_set) == 500
    grey = next(i for i, (path, _) in enumerate(data.train_set.samples) if Image.open(path).mode == "L")
    img, label = data.train_set[grey]
    assert img.shape == (3, 224, 224) and 0 <= label < 10
    val_img, _ = data.val_set[0]
    assert val_img.shape == (3, 224, 224)
    # evaluation is deterministic: resize 256 -> center crop 224
    assert torch.equal(val_img, data.val_set[0][0])
    small = folder_transforms(
        DataSettings(
            name="imagefolder", batch_size=1, resolution=64, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
        ),
        train=False,
    )
    assert small(Image.open(data.val_set.samples[0][0])).shape == (3, 64, 64)


def test_missing_roots_and_unknown_data_are_one_clear_error(tmp_path):
    stats = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    with pytest.raises(UserError, match=f"data.root={tmp_path / 'x'} does not exist"):
        check_data(DataSettings(name="cifar10", batch_size=1, resolution=32, root=str(tmp_path / "x"), **stats))
    with pytest.raises(UserError, match="has no train/ folder"):
        check_data(DataSettings(name="imagenet", batch_size=1, resolution=224, root=str(tmp_path), **stats))
    with pytest.raises(UserError, match="data=imagenet needs data.mean and data.std"):
        check_data(DataSettings(name="imagenet", batch_size=1, resolution=224, root=str(tmp_path)))
    with pytest.raises(UserError, match="data.name='mnist' is not allowed: one of digits, cifar10, imagenet"):
        check_data(DataSettings(name="mnist", batch_size=1, resolution=28))


@pytest.mark.usefixtures("restore_torch_state")
@needs(CIFAR10)
def test_imagefolder_path_trains_a_quick_epoch_on_cifar10(tmp_path):
    cfg = compose_train(
        [
            *TINY,
            "schedule.epochs=1",
            "data=imagefolder",
            f"data.root={CIFAR10}",
            "data.val_split=test",
            "data.resolution=32",
            "data.limit_per_class=8",
            "data.workers=0",
            f"paths.run_dir={tmp_path / 'run'}",
            f"paths.output={tmp_path}",
        ]
    )
    record = train(cfg)
    assert record["status"] == "ok" and record["data"] == "imagefolder" and record["epochs"] == 1
    assert record["trained"]["num_classes"] == 10 and record["trained"]["resolution"] == 32


@pytest.mark.usefixtures("restore_torch_state")
@needs(CIFAR10)
def test_cifar10_in_memory_path_trains_with_batched_augmentation(tmp_path, monkeypatch):
    from netspaces.train import image_tree

    listed = []
    real = image_tree._list_split
    monkeypatch.setattr(image_tree, "_list_split", lambda root, split: listed.append(split) or real(root, split))
    cfg = compose_train(
        [
            *TINY,
            "schedule.epochs=1",
            "data=cifar10",
            f"data.root={CIFAR10}",
            "data.limit_per_class=10",
            f"paths.run_dir={tmp_path / 'run'}",
            f"paths.output={tmp_path}",
        ]
    )
    record = train(cfg)
    assert record["status"] == "ok" and record["data"] == "cifar10"
    assert sorted(listed) == ["test", "train"]  # identity and data cache key share one listing per split


def test_a_listing_is_shared_within_a_run_only(tmp_path):
    from netspaces.train.image_tree import list_split, shared_listings

    (tmp_path / "train" / "cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "train" / "cat" / "a.png")
    with shared_listings():
        first = list_split(tmp_path, "train")
        Image.new("RGB", (4, 4)).save(tmp_path / "train" / "cat" / "b.png")
        assert list_split(tmp_path, "train") is first and len(first.images) == 1
    assert len(list_split(tmp_path, "train").images) == 2  # the next run lists again


def test_runs_in_threads_ending_out_of_order_leave_no_listing_behind(tmp_path):
    # A pack's models run in threads; the first to start may finish first. Save-and-restore
    # left the later thread's listings in place for every run after it (stale trees).
    import threading

    from netspaces.train.image_tree import list_split, shared_listings

    (tmp_path / "train" / "cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "train" / "cat" / "a.png")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with shared_listings():
            list_split(tmp_path, "train")
            first_in.set()
            second_in.wait(60)
        first_out.set()

    def second():
        first_in.wait(60)
        with shared_listings():
            second_in.set()
            first_out.wait(60)

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert first_out.is_set() and not any(t.is_alive() for t in threads)
    Image.new("RGB", (4, 4)).save(tmp_path / "train" / "cat" / "b.png")
    assert len(list_split(tmp_path, "train").images) == 2


@pytest.mark.usefixtures("restore_torch_state")
@needs(IMAGENETTE)
def test_imagenet_path_trains_a_quick_epoch_at_224px(tmp_path):
    cfg = compose_train(
        [
            *TINY,
            "schedule.epochs=1",
            "schedule.batch_size=10",
            "model=regnetx_200mf",
            "data=imagenet",
            f"data.root={IMAGENETTE}",
            "data.limit_per_class=2",
            "data.workers=1",
            f"paths.run_dir={tmp_path / 'run'}",
            f"paths.output={tmp_path}",
        ]
    )
    record = train(cfg)
    assert record["status"] == "ok" and record["model"] == "RegNetX-200MF"
    assert record["trained"]["resolution"] == 224 and record["trained"]["num_classes"] == 10
    assert record["trained"]["stem"] == "simple"


def test_in_memory_loader_yields_whole_batches():
    data = InMemoryData(DataSettings(name="digits", batch_size=100, resolution=32), load_digits_split)
    data.setup()
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (100, 3, 32, 32) and y.shape == (100,)
    assert len(data.train_dataloader()) == 14 and len(data.val_dataloader()) == 4  # 1437 // 100 (drop last), 360
