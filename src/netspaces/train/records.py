"""Result records (one `result.json` per run) and the population table of a sweep.

Every write is atomic (a temporary file in the same directory, then os.replace), so a
reader — or a killed run — never sees half a record. The population table is rebuilt from
the records under a file lock, so jobs finishing at the same time (joblib, SLURM arrays)
leave a table holding all of them.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

RECORD = "result.json"
TABLE_CSV = "population.csv"
TABLE_JSONL = "population.jsonl"
STATUSES = ("ok", "diverged", "failed")
DONE = ("ok", "diverged")  # a rerun skips these; `failed` runs are retried
# the record's fields that the CSV table shows first (arch fields follow, then the rest)
CSV_FIRST = ["name", "status", "space", "regime", "block", "sample", "sweep_seed", "seed", "model",
             "flops", "params", "acts", "top1_err", "top1_err_best", "top5_err", "epochs", "epochs_planned",
             "train_time_s", "data", "schedule", "diverged_at", "error", "run_dir"]
NOT_IN_TABLE = ("config", "history")  # large: read them from result.json


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null (JSON has neither), tuples lists, numpy scalars numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_record(run_dir: Path, record: dict) -> Path:
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}; got {record.get('status')!r}")
    path = Path(run_dir) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(_clean(record), indent=2, sort_keys=False) + "\n")
    return path


def read_record(run_dir: Path) -> dict | None:
    """The run's record, or None when there is none (or it is unreadable)."""
    try:
        record = json.loads((Path(run_dir) / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def find_records(sweep_dir: Path) -> list[dict]:
    """All records below a sweep directory, ordered by sample then directory."""
    found = []
    for path in sorted(Path(sweep_dir).rglob(RECORD)):
        if any(part.startswith(".") or part == "wandb" for part in path.relative_to(sweep_dir).parts[:-1]):
            continue
        record = read_record(path.parent)
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: (r.get("sample") is None, r.get("sample") or 0, str(r.get("run_dir"))))


def table_row(record: dict) -> dict:
    """One flat row: scalar fields, then the arch fields; lists and dicts as JSON text."""
    row = {k: v for k, v in record.items() if k not in NOT_IN_TABLE and k != "arch"}
    for key, value in (record.get("arch") or {}).items():
        row.setdefault(key, value)
    return row


def _csv_text(rows: list[dict]) -> str:
    columns = [c for c in CSV_FIRST if any(c in r for r in rows)]
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


def write_population(sweep_dir: Path) -> tuple[int, list[Path]]:
    """Rebuild population.csv and population.jsonl from every record below `sweep_dir`."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        records = find_records(sweep_dir)
        jsonl = "".join(json.dumps(_clean({k: v for k, v in r.items() if k not in NOT_IN_TABLE})) + "\n"
                        for r in records)
        paths = [sweep_dir / TABLE_JSONL, sweep_dir / TABLE_CSV]
        write_atomic(paths[0], jsonl)
        write_atomic(paths[1], _csv_text([_clean(table_row(r)) for r in records]))
    return len(records), paths
