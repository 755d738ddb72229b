"""Records and checkpoints reach the disk before their name points at them: the file is
fsynced before the rename and its directory after it, and a write that fails on the way
leaves the previous file whole."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from netspaces import record


@pytest.fixture
def disk_log(monkeypatch):
    """Every fsync (of a file or a directory) and rename, in the order they happen."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append((f"fsync-{kind}", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _durable(events, path) -> None:
    """The file's content, then the rename to `path`, then its directory, flushed."""
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync-file", "rename", "fsync-dir"], events
    assert events[1][1] == str(path) and events[2][1] == str(path.parent)
    assert events[0][1].startswith(str(path.parent / f".{path.name}."))  # the temporary file


def test_a_record_is_fsynced_before_and_after_its_rename(tmp_path, disk_log):
    path = record.write_record(tmp_path, record.Record(status="ok", top1_err=12.5))
    _durable(disk_log, path)
    assert json.loads(path.read_text())["top1_err"] == 12.5


def test_a_checkpoint_is_fsynced_before_and_after_its_rename(tmp_path, disk_log):
    import torch

    from netspaces.train.checkpoints import AtomicCheckpointIO, last_checkpoint

    path = last_checkpoint(tmp_path)
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, path)
    _durable(disk_log, path)
    assert torch.load(path, weights_only=True)["w"].tolist() == [1.0, 1.0, 1.0]


def test_a_failed_fsync_leaves_the_old_record_and_no_temporary_file(tmp_path, monkeypatch):
    path = record.write_record(tmp_path, record.Record(status="ok", top1_err=1.0))

    def broken(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="I/O error"):
        record.write_record(tmp_path, record.Record(status="failed", error="x"))
    assert json.loads(path.read_text())["status"] == "ok"  # never renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == [record.RECORD_FILE]


def test_a_directory_that_cannot_be_fsynced_does_not_fail_the_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def no_dir_fsync(fd):  # some file systems refuse fsync on a directory
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", no_dir_fsync)
    path = record.write_atomic(tmp_path / "population.csv", "a,b\n1,2\n")
    assert path.read_text() == "a,b\n1,2\n"
