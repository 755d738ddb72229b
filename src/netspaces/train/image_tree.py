"""Image folder trees (root/<split>/<class>/<image>): listing, up-front checks and the
fingerprint of their content. Torch-free, so config checks and the population identity can
use it without loading a framework.

A listing holds every image's path, size and modification time. The fingerprint of a split
hashes the relative paths and sizes (not where the tree lives, not mtimes: a copy of the same
data is the same data); the decoded-pixel cache key adds the mtimes, so an image edited in
place is decoded again.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from netspaces.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Listing:
    """One split: class names (sorted, as torchvision's ImageFolder numbers them) and, per
    image, (class index, path relative to the split, size in bytes, mtime in ns)."""

    root: Path
    classes: tuple[str, ...]
    images: tuple[tuple[int, str, int, int], ...]
    # every folder walked (relative to the split) with its mtime, read before its entries:
    # what a cached file list is checked against (file_lists.py)
    folders: tuple[tuple[str, int], ...] = ()
    # the clock when the listing started (file_lists: a folder changed near it is not trusted)
    listed_at_ns: int = field(default=0, compare=False)

    def paths(self) -> list[str]:
        return [str(self.root / rel) for _, rel, _, _ in self.images]

    def labels(self) -> list[int]:
        return [c for c, _, _, _ in self.images]


_SHARED: dict[Path, Listing] | None = None  # set while any shared_listings() is open
_OPEN = 0  # shared_listings() contexts open in this process (a pack's models run in threads)
_LOCK = threading.Lock()


@contextmanager
def shared_listings() -> Iterator[None]:
    """Within one run, list each split once: the identity's fingerprint and the decoded-data
    cache key read the same listing (listing CIFAR-10's 60,000 files twice cost ~1 s a model).
    A count, not save-and-restore: threads leave in any order, and the last one out must
    drop the listings, or every later run in the process would read a stale tree."""
    global _SHARED, _OPEN
    with _LOCK:
        _OPEN += 1
        if _SHARED is None:
            _SHARED = {}
    try:
        yield
    finally:
        with _LOCK:
            _OPEN -= 1
            if _OPEN == 0:
                _SHARED = None


def list_split(root: Path, split: str) -> Listing:
    """Every image of root/split, in ImageFolder's order; one UserError when the tree is not
    an image tree or a class folder holds no image. (file_lists.cached_listing keeps a big
    tree's list between jobs.)"""
    listing = shared(root, split)
    if listing is None:
        listing = _list_split(root, split)
        share(root, split, listing)
    return listing


def shared(root: Path, split: str) -> Listing | None:
    """root/split's listing made earlier in this run (inside shared_listings()), else None."""
    return None if _SHARED is None else _SHARED.get(Path(os.path.abspath(Path(root) / split)))


def share(root: Path, split: str, listing: Listing) -> None:
    if _SHARED is not None:
        _SHARED[Path(os.path.abspath(Path(root) / split))] = listing


def _list_split(root: Path, split: str) -> Listing:
    started = time.time_ns()
    split_dir = Path(root) / split
    folders: dict[str, int] = {".": split_dir.stat().st_mtime_ns} if split_dir.is_dir() else {}
    classes = _classes(root, split)
    images, empty = [], []
    for index, name in enumerate(classes):
        found = []
        for dirpath, filenames in _walk(str(split_dir / name), folders, str(split_dir)):
            for f in sorted(filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    full = os.path.join(dirpath, f)
                    st = os.stat(full)
                    found.append((index, os.path.relpath(full, split_dir), st.st_size, st.st_mtime_ns))
        if not found:
            empty.append(str(split_dir / name))
        images += found
    if len(empty) == len(classes):
        raise UserError(f"data.root={root}: no images under {split_dir}/<class>/ (an empty or non-ImageFolder tree)")
    if empty:
        raise UserError(f"data.root={root}: {len(empty)} empty class folder(s): {', '.join(empty)}")
    return Listing(split_dir, tuple(classes), tuple(images), tuple(folders.items()), started)


def _walk(top: str, folders: dict[str, int], base: str) -> Iterator[tuple[str, list[str]]]:
    """os.walk's top-down order (sub-folders sorted, symlinked folders not entered), each
    folder's mtime taken before its entries are read, so a change during the walk is seen."""
    folders[os.path.relpath(top, base)] = os.stat(top).st_mtime_ns
    subdirs, files = [], []
    for e in os.scandir(top):
        (subdirs if e.is_dir() else files).append(e)
    yield top, [e.name for e in files]
    for e in sorted(subdirs, key=lambda e: e.name):
        if not e.is_symlink():
            yield from _walk(e.path, folders, base)


def _classes(root: Path, split: str) -> list[str]:
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise UserError(f"data.root={root} has no {split}/ folder (expected {root}/{split}/<class>/<image>)")
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise UserError(f"data.root={root}: no class folders under {split_dir}/ (an empty or non-ImageFolder tree)")
    return classes


def _has_image(folder: Path) -> bool:
    for _, _, filenames in os.walk(folder):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            return True
    return False


def check_tree(root: Path, train_split: str, val_split: str) -> None:
    """Cheap up-front check (no image is opened, no full listing): both splits exist, hold the
    same class folders (else one line naming the difference), and no class folder is empty."""
    train, val = _classes(root, train_split), _classes(root, val_split)
    if train != val:
        only_train = sorted(set(train) - set(val))
        only_val = sorted(set(val) - set(train))
        raise UserError(
            f"data.root={root}: the class folders of {train_split}/ and {val_split}/ differ "
            f"(only in {train_split}/: {', '.join(only_train) or 'none'}; only in {val_split}/: "
            f"{', '.join(only_val) or 'none'}): labels would not match"
        )
    for split in (train_split, val_split):
        empty = [str(Path(root) / split / c) for c in train if not _has_image(Path(root) / split / c)]
        if len(empty) == len(train):
            raise UserError(
                f"data.root={root}: no images under {Path(root) / split}/<class>/ (an empty or non-ImageFolder tree)"
            )
        if empty:
            raise UserError(f"data.root={root}: {len(empty)} empty class folder(s): {', '.join(empty)}")


def verify_images(listing: Listing, workers: int = 8) -> None:
    """Decode every image (data.verify=true); one line naming the unreadable ones."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    def bad(path: str) -> str | None:
        try:
            with Image.open(path) as im:
                im.convert("RGB").load()
        except Exception as exc:  # noqa: BLE001 — any decode failure is the answer
            return f"{path} ({type(exc).__name__})"
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        failed = [b for b in pool.map(bad, listing.paths(), chunksize=64) if b]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise UserError(f"{len(failed)} unreadable image(s) under {listing.root}: {shown}")


def digest(listing: Listing, *, mtimes: bool) -> str:
    h = hashlib.sha256()
    for name in listing.classes:
        h.update(f"class {name}\n".encode())
    for c, rel, size, mtime in listing.images:
        h.update(f"{c} {rel} {size}{f' {mtime}' if mtimes else ''}\n".encode())
    return h.hexdigest()


BIG_TREE = 100_000  # images: above this a fingerprint is reused while no folder changed


def _folders_key(split_dir: Path) -> str:
    """The split folder's and its class folders' names and mtimes: they change whenever an
    image is added, removed or renamed (not when one is rewritten in place)."""
    h = hashlib.sha256(f"{split_dir} {split_dir.stat().st_mtime_ns}\n".encode())
    for e in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if e.is_dir():
            h.update(f"{e.name} {e.stat().st_mtime_ns}\n".encode())
    return h.hexdigest()


def fingerprint(root: Path, split: str, cache_dir: Path | None = None) -> str:
    """Content fingerprint of root/split: class names, relative paths and sizes. Trees of
    more than BIG_TREE images reuse a cached fingerprint while no folder's mtime changed
    (stat-ing a million files at every job start is what this avoids); smaller trees are
    listed every time, so an image rewritten in place with another size is noticed too."""
    split_dir = Path(root) / split
    cache = None
    if cache_dir is not None and split_dir.is_dir():
        key = _folders_key(split_dir)
        cache = Path(cache_dir) / "fingerprints" / f"{key[:32]}.txt"
        if cache.is_file():
            return cache.read_text().strip()
    listing = list_split(root, split)
    value = digest(listing, mtimes=False)
    if cache is not None and len(listing.images) > BIG_TREE:
        from netspaces.record import write_atomic

        cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache, value + "\n")
    return value
