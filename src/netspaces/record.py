"""The result record and the population table: the one schema that training writes and
`collect` and analysis read. Torch-free.

A run writes one `result.json` (a Record) in its run directory; a sweep directory also holds
`population.csv` / `population.jsonl`, one row per record, rebuilt from the records under a
file lock so that jobs finishing together (joblib, SLURM arrays) leave a table holding all of
them. Every file netspaces writes goes through `atomic_target`: a temporary file in the same
directory, flushed to disk, then renamed, so a reader or a killed run never sees half a file.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

RECORD_FILE = "result.json"
TABLE_CSV = "population.csv"
TABLE_JSONL = "population.jsonl"
STATUSES = ("ok", "diverged", "failed")
DONE = ("ok", "diverged")  # a rerun skips these; `failed` runs are retried
ERROR_FIELD = "top1_err"  # what populations are compared by (%, final epoch)
COMPLEXITY_FIELDS = ("flops", "params", "acts")
NOT_IN_TABLE = ("config", "history")  # large: read them from result.json


@dataclass
class Record:
    """One trained model: what it was, how it ended, under which experiment."""

    status: str  # ok | diverged (NaN/inf loss) | failed (an exception, named in `error`)
    # what was trained
    name: str | None = None
    space: str | None = None
    regime: str | None = None
    block: str | None = None
    sample: int | None = None
    sweep_seed: int | None = None
    seed: int | None = None  # training seed
    model: str | None = None  # "sampled", or a zoo or timm name
    arch: dict = field(default_factory=dict)  # ws, ds, gs, bs, block and the space's own parameters
    flops: int | None = None  # the design space's numbers: 224 px, 1000 classes
    params: int | None = None
    acts: int | None = None
    # how it ended
    top1_err: float | None = None
    top1_err_best: float | None = None
    top5_err: float | None = None
    epochs: int = 0
    epochs_planned: int | None = None
    train_time_s: float | None = None
    diverged_at: dict | None = None
    error: str | None = None
    resumed_from_epoch: int | None = None
    # the experiment
    data: str | None = None
    schedule: str | None = None
    sweep: str | None = None
    lr: float | None = None
    global_batch: int | None = None
    world_size: int | None = None
    trained: dict | None = None  # complexity of the network actually trained (resolution, classes, stem)
    history: list = field(default_factory=list)  # per epoch: errors (when evaluated), loss, lr, time
    run_dir: str | None = None
    finished_at: str | None = None
    host: str | None = None
    versions: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the resolved config

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"record status must be one of {', '.join(STATUSES)}; got {self.status!r}")

    def to_dict(self) -> dict:
        return asdict(self)


FIELDS = tuple(f.name for f in fields(Record))


def clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (JSON has neither), tuples lists, numpy scalars numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------- atomic files


@contextmanager
def atomic_target(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write `path`'s content to; on success it is flushed to disk and
    renamed over `path`, on any error removed. `suffix` ends the temporary name (np.savez
    appends .npz to a name without it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> Path:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


# ---------------------------------------------------------------- records


def write_record(run_dir: Path, record: Record) -> Path:
    path = Path(run_dir) / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(clean(record.to_dict()), indent=2) + "\n")


def read_record(run_dir: Path) -> dict | None:
    """The run's record as written (a dict with the Record's fields), or None when there is
    none or it is unreadable."""
    try:
        record = json.loads((Path(run_dir) / RECORD_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def find_records(sweep_dir: Path) -> list[dict]:
    """All records below a sweep directory, ordered by sample then directory (hidden
    directories and W&B's copies are not runs)."""
    found = []
    for path in sorted(Path(sweep_dir).rglob(RECORD_FILE)):
        if any(part.startswith(".") or part == "wandb" for part in path.relative_to(sweep_dir).parts[:-1]):
            continue
        record = read_record(path.parent)
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: (r.get("sample") is None, r.get("sample") or 0, str(r.get("run_dir"))))


# ---------------------------------------------------------------- the population table


def table_row(record: dict) -> dict:
    """One flat row: scalar fields, then the arch fields; lists and dicts stay as they are."""
    row = {k: v for k, v in record.items() if k not in NOT_IN_TABLE and k != "arch"}
    for key, value in (record.get("arch") or {}).items():
        row.setdefault(key, value)
    return row


def _csv_text(rows: list[dict]) -> str:
    first = [f for f in FIELDS if f not in NOT_IN_TABLE and f != "arch"]
    columns = [c for c in first if any(c in r for r in rows)]
    columns += sorted({k for r in rows for k in r} - set(columns))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return out.getvalue()


@contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
    with open(Path(sweep_dir) / ".population.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_population(sweep_dir: Path) -> tuple[list[dict], list[Path]]:
    """Rebuild population.jsonl and population.csv from every record below `sweep_dir`;
    returns the records and the two paths."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        records = find_records(sweep_dir)
        jsonl = "".join(json.dumps(clean({k: v for k, v in r.items() if k not in NOT_IN_TABLE})) + "\n"
                        for r in records)
        paths = [sweep_dir / TABLE_JSONL, sweep_dir / TABLE_CSV]
        write_atomic(paths[0], jsonl)
        write_atomic(paths[1], _csv_text([clean(table_row(r)) for r in records]))
    return records, paths


def status_counts(records: list[dict]) -> str:
    """`3 ok, 1 diverged`: how a set of records ended."""
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
