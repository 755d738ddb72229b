"""The cached file list of a big image tree (train/file_lists.py): reused while no folder
changed, rebuilt when one did (an image added, a class added, a nested folder changed, a
damaged cache file), never written for a folder changed during its listing, and always the
listing a fresh scan gives. BIG_TREE is lowered so a tree of a few real images counts as big."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from conftest import IMAGENETTE, needs
from netspaces.train import file_lists, image_tree

OLD_NS = 1_600_000_000 * 10**9  # 2020: folders long unchanged


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """root/train/<3 classes>/<4 real JPEGs>, one of them in a nested folder, folders old."""
    monkeypatch.setattr(image_tree, "BIG_TREE", 5)
    sources = sorted((IMAGENETTE / "train").iterdir())[:3]
    root = tmp_path / "tree"
    for cls in sources:
        for i, jpeg in enumerate(sorted(cls.glob("*.JPEG"))[:4]):
            dest = root / "train" / cls.name / ("nested" if i == 3 else "") / jpeg.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(jpeg, dest)
    _age(root)
    return root


def _age(root) -> None:
    for dirpath, _, _ in os.walk(root):
        os.utime(dirpath, ns=(OLD_NS, OLD_NS))


def _listing(root, cache, caplog):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=file_lists.__name__):
        listing = file_lists.cached_listing(root, "train", cache)
    return listing, " ".join(r.getMessage() for r in caplog.records)


@needs(IMAGENETTE)
def test_a_big_trees_file_list_is_reused_until_a_folder_changes(tree, tmp_path, caplog, monkeypatch):
    cache = tmp_path / "cache"
    first, said = _listing(tree, cache, caplog)
    assert len(first.images) == 12 and first == image_tree._list_split(tree, "train")
    assert "built, 12 images, cached in" in said
    scans = []
    real = image_tree._list_split
    monkeypatch.setattr(image_tree, "_list_split", lambda root, split: scans.append(split) or real(root, split))
    again, said = _listing(tree, cache, caplog)
    assert again == first and scans == [] and "reused" in said and "no folder changed" in said

    cls = first.classes[1]
    shutil.copyfile(tree / "train" / first.images[0][1], tree / "train" / cls / "added.JPEG")  # an image added
    os.utime(tree / "train" / cls, ns=(OLD_NS + 10**9, OLD_NS + 10**9))  # its folder's new mtime, not "just now"
    grown, said = _listing(tree, cache, caplog)
    assert len(grown.images) == 13 and f"rebuilt (folder {cls} changed)" in said and scans == ["train"]
    assert grown == real(tree, "train")

    nested = tree / "train" / first.classes[0] / "nested"
    (nested / os.listdir(nested)[0]).unlink()  # an image removed from a nested folder
    os.utime(nested, ns=(OLD_NS + 10**9, OLD_NS + 10**9))
    shrunk, said = _listing(tree, cache, caplog)
    assert len(shrunk.images) == 12 and f"folder {first.classes[0]}/nested changed" in said

    new_class = tree / "train" / "n99999999"  # a class added
    new_class.mkdir()
    shutil.copyfile(tree / "train" / first.images[0][1], new_class / "x.JPEG")
    for folder in (new_class, tree / "train"):
        os.utime(folder, ns=(OLD_NS + 2 * 10**9, OLD_NS + 2 * 10**9))
    more, said = _listing(tree, cache, caplog)
    assert "n99999999" in more.classes and "rebuilt (folder . changed)" in said


@needs(IMAGENETTE)
def test_a_folder_changed_during_the_listing_is_not_cached(tree, tmp_path, caplog):
    cache = tmp_path / "cache"
    (tree / "train" / "late.txt").write_text("")  # the split folder's mtime is now
    listing, said = _listing(tree, cache, caplog)
    assert len(listing.images) == 12 and "not cached (folder . changed during the listing)" in said
    assert not (cache / "file_lists").exists()


@needs(IMAGENETTE)
def test_a_damaged_cache_file_is_rebuilt(tree, tmp_path, caplog):
    cache = tmp_path / "cache"
    first, _ = _listing(tree, cache, caplog)
    path = file_lists.cache_file(tree / "train", cache)
    path.write_bytes(b"not an npz")
    again, said = _listing(tree, cache, caplog)
    assert again == first and "rebuilt (the cache file is damaged" in said


@needs(IMAGENETTE)
def test_small_trees_are_listed_every_time(tmp_path, caplog):
    listing, said = _listing(IMAGENETTE, tmp_path / "cache", caplog)  # 1,000 images < BIG_TREE
    assert len(listing.images) > 500 and said == "" and not (tmp_path / "cache").exists()


@needs(IMAGENETTE)
def test_the_listing_is_torchvisions_imagefolder_order(tmp_path):
    from torchvision.datasets import ImageFolder

    listing = file_lists.cached_listing(IMAGENETTE, "val", tmp_path)
    folder = ImageFolder(str(IMAGENETTE / "val"))
    assert listing.classes == tuple(folder.classes)
    assert list(zip(listing.paths(), listing.labels())) == folder.samples


@needs(IMAGENETTE)
def test_a_listing_made_earlier_in_the_run_is_cached_without_a_second_scan(tree, tmp_path, caplog, monkeypatch):
    scans = []
    real = image_tree._list_split
    monkeypatch.setattr(image_tree, "_list_split", lambda root, split: scans.append(split) or real(root, split))
    with image_tree.shared_listings():
        first = image_tree.list_split(tree, "train")  # as the identity's fingerprint lists it
        again, said = _listing(tree, tmp_path / "cache", caplog)
    assert again == first and scans == ["train"] and "built, 12 images, cached in" in said
    assert file_lists.cache_file(tree / "train", tmp_path / "cache").is_file()
