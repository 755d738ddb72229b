"""The file list of a big image tree, cached so a job, a requeue or a DDP rank does not stat
1.28M files again (minutes on a network file system). Torch-free.

A cached list is keyed by the split folder's absolute path and holds, beside the listing,
every folder it walked with its mtime (read before the folder's entries). It is served only
while every one of those folders still has that mtime: adding, removing or renaming an image
changes its folder's mtime, and a new class or sub-folder changes its parent's, so a changed
tree is listed again, never served stale (a folder changed within 2 s of its listing is not
cached at all: mtimes tick coarsely). An image rewritten in place under the same name
changes no folder; that is why only trees of more than image_tree.BIG_TREE images are cached
(smaller ones are listed every time, as before) — the same rule the data fingerprint follows.
Each use says on the log whether the list was reused, rebuilt (and why) or built.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from netspaces.record import DiskFull, atomic_target
from netspaces.train import image_tree

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the stored arrays change
# a folder modified this close to its listing is not trusted: file systems stamp mtimes
# with a coarse clock, so a file added in the same tick would leave the mtime unchanged
RACY_NS = 2_000_000_000


KEYS = ("classes", "labels", "paths", "sizes", "mtimes", "folders", "folder_mtimes", "listed_at_ns")


def cache_file(split_dir: Path, cache_dir: Path) -> Path:
    key = hashlib.sha256(f"{FORMAT} {os.path.abspath(split_dir)}".encode()).hexdigest()[:24]
    return Path(cache_dir) / "file_lists" / f"{Path(split_dir).name}-{key}.npz"


def cached_listing(root: Path, split: str, cache_dir: Path | str) -> image_tree.Listing:
    """root/split's listing: this run's (image_tree.shared_listings), else the cached one while
    no folder changed, else a fresh one; a tree of more than BIG_TREE images is kept for next
    time."""
    split_dir = Path(root) / split
    path = cache_file(split_dir, Path(cache_dir))
    listing = image_tree.shared(root, split)
    why = "built"
    if listing is None and path.is_file():
        stored = _load(path, split_dir)
        if isinstance(stored, image_tree.Listing):
            log.info("file list of %s: reused %s (%d images; no folder changed)", split_dir, path, len(stored.images))
            image_tree.share(root, split, stored)
            return stored
        why = f"rebuilt ({stored})"
    elif listing is not None and (path.is_file() or len(listing.images) <= image_tree.BIG_TREE):
        return listing  # listed earlier in this run, and cached already or too small to cache
    listing = listing or image_tree.list_split(root, split)
    if len(listing.images) <= image_tree.BIG_TREE:
        return listing
    racy = [rel for rel, mtime in listing.folders if mtime >= listing.listed_at_ns - RACY_NS]
    if racy:  # changed just now: a change in the same clock tick would keep this mtime
        log.info("file list of %s: %s, not cached (folder %s changed during the listing)", split_dir, why, racy[0])
        return listing
    _save(path, listing)
    log.info("file list of %s: %s, %d images, cached in %s", split_dir, why, len(listing.images), path)
    return listing


def _load(path: Path, split_dir: Path) -> image_tree.Listing | str:
    """The stored listing, or why it cannot be served (a changed folder, a damaged file)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in KEYS}
    except (OSError, ValueError, EOFError, KeyError) as exc:
        return f"the cache file is damaged: {type(exc).__name__}"
    for rel, mtime in zip(a["folders"].tolist(), a["folder_mtimes"].tolist()):
        try:
            now = os.stat(split_dir / rel).st_mtime_ns
        except OSError:
            return f"folder {rel} is gone"
        if now != mtime:
            return f"folder {rel} changed"
    images = tuple(
        zip(
            a["labels"].tolist(),
            [p.decode() for p in a["paths"].tolist()],
            a["sizes"].tolist(),
            a["mtimes"].tolist(),
            strict=True,
        )
    )
    folders = tuple(zip(a["folders"].tolist(), a["folder_mtimes"].tolist(), strict=True))
    return image_tree.Listing(split_dir, tuple(a["classes"].tolist()), images, folders, int(a["listed_at_ns"]))


def _save(path: Path, listing: image_tree.Listing) -> None:
    labels, paths, sizes, mtimes = zip(*listing.images)
    folders, folder_mtimes = zip(*listing.folders)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(path, suffix=".npz") as tmp:  # ranks writing at once: the last rename wins
            np.savez(
                tmp,
                classes=np.array(listing.classes),
                labels=np.array(labels, np.int32),
                paths=np.array([p.encode() for p in paths]),  # bytes: a quarter of numpy's str
                sizes=np.array(sizes, np.int64),
                mtimes=np.array(mtimes, np.int64),
                folders=np.array(folders),
                folder_mtimes=np.array(folder_mtimes, np.int64),
                listed_at_ns=np.array(listing.listed_at_ns, np.int64),
            )
    except DiskFull as exc:  # the cache only saves time
        log.warning("file list of %s not cached: %s", listing.root, exc)
