"""Read an offline W&B run from its files, as `wandb sync` would upload it; no network.

The `.wandb` transaction log is a LevelDB-style log: a 7-byte file header (":W&B", magic
0xBEE1, version), then 32 KiB blocks of chunks, each with a 7-byte header (checksum, length,
type: full, first, middle or last piece of a record); a block's tail shorter than a header is
padding. Each record is a `wandb_internal_pb2.Record` protobuf (wandb's own message types).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """Every record of a `.wandb` file, decoded."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # padding at the end of a block
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if pos > len(data):  # a record still being written
            break
        if kind == 0 and length == 0:  # zero fill: nothing more in this block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def _items(items) -> dict[str, Any]:
    """Config, summary and history items: `key` -> decoded JSON value; an item with a
    `nested_key` path lands in nested dicts (config["_wandb"]["visualize"][...])."""
    out: dict[str, Any] = {}
    for item in items:
        value = json.loads(item.value_json)
        if item.key:
            out[item.key] = value
            continue
        *parents, last = item.nested_key
        node = out
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = value
    return out


def _merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@dataclass
class OfflineRun:
    path: Path
    run_id: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list = field(default_factory=list)  # ArtifactRecord messages
    exit_code: int | None = None

    def series(self, key: str) -> list:
        """The logged values of one history key, in order."""
        return [row[key] for row in self.history if key in row]


def read_run(run_dir: Path) -> OfflineRun:
    """The run of an `offline-run-*` directory: identity, config, history, summary, artifacts."""
    (log,) = Path(run_dir).glob("*.wandb")
    run = OfflineRun(path=Path(run_dir))
    for r in records(log):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.group, run.job_type = r.run.run_id, r.run.run_group, r.run.job_type
            run.name, run.tags = r.run.display_name, list(r.run.tags)
            _merge(run.config, _items(r.run.config.update))
        elif kind == "config":
            _merge(run.config, _items(r.config.update))
        elif kind == "history":
            run.history.append(_items(r.history.item))
        elif kind == "summary":
            _merge(run.summary, _items(r.summary.update))
        elif kind == "artifact":
            run.artifacts.append(r.artifact)
        elif kind == "exit":
            run.exit_code = r.exit.exit_code
    return run


def wait_for_exit(run_dir: Path, timeout: float = 30.0) -> OfflineRun:
    """read_run once the log holds the run's exit record (wandb's service may still be
    flushing it just after `finish()` returns in this process)."""
    deadline = time.monotonic() + timeout
    while True:
        run = read_run(run_dir)
        if run.exit_code is not None or time.monotonic() > deadline:
            return run
        time.sleep(0.2)
