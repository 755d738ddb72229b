"""The result record and the population table: the one schema that training writes and
`collect` and analysis read. Torch-free.

A run writes one `result.json` (a Record) in its run directory; a sweep directory also holds
`population.csv` / `population.jsonl`, one row per record, written under a file lock so that
jobs finishing together (joblib, SLURM arrays) leave a table holding all of them: rebuilt from
the records when a sweep starts and ends and by `netspaces collect`, and in between each
finishing job adds its own row (`add_to_population`, O(1) in the sweep's size). Every file
netspaces writes goes through `atomic_target`: a temporary file in the same directory, flushed
to disk (fsync), renamed, and the directory fsynced, so a reader, a killed run or a crashed node
never sees half a file or an empty one. The one exception, the table rows a job appends, is
derived data checked against the sizes the last update left (a mismatch rebuilds the table).
"""

from __future__ import annotations

import csv
import errno
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
# models ended (for "model k of N done") and the table files' sizes after the last update: a
# table whose size differs (an update killed half-way, a crash, another writer) is rebuilt
PROGRESS_FILE = ".population.progress.json"
IDENTITY_FILE = "identity.json"  # a sweep directory's population identity (train/identity.py)
# sweep.replicas: the first models retrained with other training seeds, in
# <sweep>/replicas/seed_<s>/ (each seed its own identity); never part of the population
REPLICAS_DIR = "replicas"
# a sweep's code snapshots, <sweep>/.code/<12 hex>/ (train/snapshot.py); hidden like .submitit: not runs
CODE_DIR = ".code"
STATUSES = ("ok", "diverged", "failed", "interrupted")
DONE = ("ok", "diverged")  # a rerun skips these; `failed` and `interrupted` runs resume or retry
ERROR_FIELD = "top1_err"  # what populations are compared by (%, final epoch)
COMPLEXITY_FIELDS = ("flops", "params", "acts")
NOT_IN_TABLE = ("config", "history")  # large: read them from result.json


@dataclass
class Record:
    """One trained model: what it was, how it ended, under which experiment."""

    status: str  # ok | diverged (NaN/inf loss) | failed (an exception, in `error`) | interrupted (a signal)
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
    train_cpu_s: float | None = None  # process CPU time of the fit: core-seconds, load-independent
    diverged_at: dict | None = None
    error: str | None = None
    resumed_from_epoch: int | None = None
    attempt: int = 1  # which try of its sweep job wrote this record (sweep.retries: 2 = retried once)
    # the experiment
    identity: str | None = None  # hash of everything that changes what the run computes (train/identity.py)
    precision: str | None = None  # the precision actually used
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
    git_commit: str | None = None  # of the code that trained ("+dirty": uncommitted changes); None outside git
    command: str | None = None  # the command line that started the run (a sweep's, without sample=)
    code_hash: str | None = None  # content hash of train.py, conf/ and the package that ran (train/snapshot.py)
    allow_code_change: bool = False  # trained under sweep.allow_code_change=true: new code for this population
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

TMP_MARK = ".tmp"  # temporary files are `.<name>.<pid>.tmp[suffix]`: hidden, and found by cleanup


class DiskFull(OSError):
    """No space (or quota) left where netspaces writes: one line naming the file."""

    def __str__(self) -> str:
        return str(self.strerror)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask can only
    set it; setting and restoring it would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_target(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write `path`'s content to; on success it is flushed to disk and
    renamed over `path`, on any error removed. `suffix` ends the temporary name (np.savez
    appends .npz to a name without it). A full disk raises DiskFull."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}{suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the content is on disk before the name points at it
            os.fsync(f.fileno())
        # a writer may create its file 0600 (mkstemp does); the result gets the mode any new
        # file gets under the process umask, so reports and tables stay readable by others
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # and the rename itself survives a node crash
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(exc, DiskFull):
            raise DiskFull(exc.errno, f"no space left on the device writing {path}") from None
        raise


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename in it) to disk. Some file systems and platforms
    cannot open or fsync a directory; there the rename is as durable as they make it."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def remove_partial_writes(directory: Path) -> list[Path]:
    """Temporary files an interrupted write left in `directory` (not below it), removed."""
    found = [p for p in Path(directory).glob(f".*{TMP_MARK}*") if p.is_file()] if Path(directory).is_dir() else []
    for p in found:
        p.unlink(missing_ok=True)
    return found


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
    none or it is unreadable (`check_record` says why)."""
    return load_record(Path(run_dir) / RECORD_FILE)[0]


def load_record(path: Path) -> tuple[dict | None, str | None]:
    """(record, None), or (None, why it cannot be used) for a file that exists."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if not text.strip():
        return None, "empty file"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno})"
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        return None, "not a result record (no valid status)"
    return data, None


def scan_records(sweep_dir: Path, *, table_only: bool = False) -> tuple[list[dict], list[tuple[Path, str]]]:
    """All records below a sweep directory, ordered by sample then directory, and the record
    files that cannot be used with the reason (hidden directories and W&B's copies are not
    runs; seed replicas are a linked sub-population, read by `replica_dirs`). `table_only`:
    without the large fields (config, history), dropped as each record is read, so that
    10,000 records stay small in memory."""
    found, broken = [], []
    for path in sorted(Path(sweep_dir).rglob(RECORD_FILE)):
        parts = path.relative_to(sweep_dir).parts[:-1]
        if any(part.startswith(".") or part == "wandb" for part in parts) or parts[:1] == (REPLICAS_DIR,):
            continue
        rec, why = load_record(path)
        if rec is not None:
            found.append({k: v for k, v in rec.items() if k not in NOT_IN_TABLE} if table_only else rec)
        elif why is not None:
            broken.append((path, why))
    found.sort(key=lambda r: (r.get("sample") is None, r.get("sample") or 0, str(r.get("run_dir"))))
    return found, broken


def find_records(sweep_dir: Path) -> list[dict]:
    return scan_records(sweep_dir)[0]


def replica_dirs(sweep_dir: Path) -> list[Path]:
    """The seed-replica sub-populations of a sweep: <sweep>/replicas/seed_<s>/, by seed."""
    root = Path(sweep_dir) / REPLICAS_DIR
    found = [d for d in root.glob("seed_*") if d.is_dir()] if root.is_dir() else []
    return sorted(found, key=lambda d: int(d.name.split("_", 1)[1]) if d.name[5:].isdigit() else 1 << 62)


def read_json_object(path: Path) -> dict | None:
    """The JSON object in `path`; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sweep_identity(sweep_dir: Path) -> str | None:
    """The identity hash a sweep directory was started with (None for one without)."""
    data = read_json_object(Path(sweep_dir) / IDENTITY_FILE)
    return data.get("hash") if data is not None else None


def by_identity(records: list[dict]) -> dict[str | None, list[dict]]:
    groups: dict[str | None, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("identity"), []).append(r)
    return groups


# ---------------------------------------------------------------- the population table


def table_row(record: dict) -> dict:
    """One flat row: scalar fields, then the arch fields; lists and dicts stay as they are."""
    row = {k: v for k, v in record.items() if k not in NOT_IN_TABLE and k != "arch"}
    for key, value in (record.get("arch") or {}).items():
        row.setdefault(key, value)
    return row


def _csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """The CSV of the rows, header first; its columns: the record's fields, then the rest sorted."""
    if columns is None:
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


@dataclass
class Collected:
    """What `write_population` found and wrote."""

    records: list[dict]  # the population: records of the sweep directory's identity
    paths: list[Path]  # population.jsonl, population.csv
    broken: list[tuple[Path, str]]  # record files that cannot be used, and why
    others: dict[str | None, list[dict]]  # records of other identities (None: recorded without one)
    other_paths: dict[str | None, list[Path]]  # population-<6 hex>.jsonl/.csv of each

    def problem_lines(self) -> list[str]:
        """One line per kind of record that is not in the population table."""
        lines = []
        if self.broken:
            lines.append(
                f"{len(self.broken)} unusable record(s), not in the table (rerun the sweep command to "
                "redo them): " + "; ".join(f"{p}: {why}" for p, why in self.broken)
            )
        for h, recs in self.others.items():
            runs = ", ".join(str(r.get("run_dir")) for r in recs[:5]) + (" …" if len(recs) > 5 else "")
            lines.append(
                f"{len(recs)} record(s) of another experiment (identity {(h or 'none')[:6]}) kept apart "
                f"in {self.other_paths[h][1].name}: {runs}"
            )
        return lines


def _jsonl_line(record: dict) -> str:
    return json.dumps(clean({k: v for k, v in record.items() if k not in NOT_IN_TABLE})) + "\n"


def _write_table(sweep_dir: Path, stem: str, records: list[dict]) -> list[Path]:
    paths = [sweep_dir / f"{stem}.jsonl", sweep_dir / f"{stem}.csv"]
    write_atomic(paths[0], "".join(_jsonl_line(r) for r in records))
    write_atomic(paths[1], _csv_text([clean(table_row(r)) for r in records]))
    return paths


def _ended(records: list[dict]) -> int:
    return sum(1 for r in records if r.get("status") != "interrupted")


def write_population(sweep_dir: Path) -> Collected:
    """Rebuild population.jsonl and population.csv from the records below `sweep_dir` that
    share the directory's identity (all of them when it has none and they agree; none when it
    has none and they do not). Records of another identity never enter it: each such identity
    gets population-<6 hex>.* of its own."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        got = _rebuild(sweep_dir)
    return got


def _rebuild(sweep_dir: Path) -> Collected:
    """write_population's work, under the lock."""
    remove_partial_writes(sweep_dir)  # a table write that was killed; nobody else writes here now
    records, broken = scan_records(sweep_dir, table_only=True)
    groups = by_identity(records)
    main = sweep_identity(sweep_dir)
    if main is None and len(groups) == 1:  # a sweep of one experiment (or from before identities)
        main = next(iter(groups))
    population = groups.pop(main, []) if main is not None or len(groups) == 1 else []
    paths = _write_table(sweep_dir, TABLE_JSONL.rsplit(".", 1)[0], population)
    other_paths = {h: _write_table(sweep_dir, f"population-{(h or 'unknown')[:6]}", rs) for h, rs in groups.items()}
    written = [*paths, *(p for ps in other_paths.values() for p in ps)]
    _write_progress(sweep_dir, ended=_ended(population), sizes={p.name: p.stat().st_size for p in written})
    return Collected(population, paths, broken, groups, other_paths)


# ---------------------------------------------------------------- a finishing job's row


@dataclass
class Added:
    """What add_to_population did: the models of the population that have ended (ok,
    diverged or failed), and how many of them ended since `since`."""

    ended: int
    mine: int
    rebuilt: bool  # the table was rebuilt from the records instead (first job, or after a killed update)


def _read_progress(sweep_dir: Path) -> dict:
    data = read_json_object(Path(sweep_dir) / PROGRESS_FILE)
    return data if data is not None else {}


def _write_progress(sweep_dir: Path, **values: Any) -> dict:
    state = {**_read_progress(sweep_dir), **values}
    write_atomic(Path(sweep_dir) / PROGRESS_FILE, json.dumps(state) + "\n")
    return state


def start_progress(sweep_dir: Path, since: str) -> None:
    """A sweep command starts: models ending from now on count toward its pace."""
    with _locked(Path(sweep_dir)):
        _write_progress(sweep_dir, since=since, mine=0)


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _csv_columns(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader([f.readline()]), [])


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def add_to_population(sweep_dir: Path, rec: dict, *, prior: dict | None = None, since: str = "") -> Added:
    """A job's record joins its sweep's table in O(1) of the sweep's size: under the lock its
    row is appended to population.jsonl and population.csv (population-<6 hex>.* for another
    identity). `prior` is the record its run directory held before this run (a failed or
    interrupted attempt): its row is replaced, by rewriting the table from the table's own
    rows (no walk over the records). Rows stand in the order models ended until the next full
    rebuild (sweep start and end, `netspaces collect`) sorts them; the rows are the same.
    Where the table cannot be trusted (no identity, no table or progress file yet, a table
    file whose size is not the one the last update left: an update killed half-way, a crash),
    it is rebuilt from the records instead. The table is derived data: only the records are
    fsynced, and any table a crash leaves inconsistent is caught by that size check."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        main = sweep_identity(sweep_dir)
        stem = TABLE_JSONL.rsplit(".", 1)[0]
        if main is not None and rec.get("identity") != main:
            stem = f"population-{(rec.get('identity') or 'unknown')[:6]}"
        jsonl, table_csv = sweep_dir / f"{stem}.jsonl", sweep_dir / f"{stem}.csv"
        state = _read_progress(sweep_dir)
        counts = stem == TABLE_JSONL.rsplit(".", 1)[0] and rec.get("status") != "interrupted"
        newly = counts and (prior is None or prior.get("status") == "interrupted")
        again = prior is not None and prior.get("status") != "interrupted" and str(prior.get("finished_at")) >= since
        mine = int(state.get("mine", 0)) + (counts and not again)
        sizes = state.get("sizes") if isinstance(state.get("sizes"), dict) else {}
        population = [sweep_dir / TABLE_JSONL, sweep_dir / TABLE_CSV]
        trusted = main is not None and "ended" in state and all(_size(p) is not None for p in population)
        trusted = trusted and all(_size(p) == sizes.get(p.name) for p in {*population, jsonl, table_csv})
        if not trusted:
            got = _rebuild(sweep_dir)
            _write_progress(sweep_dir, mine=mine)
            return Added(_ended(got.records), mine, rebuilt=True)
        if prior is not None or _size(jsonl) is None:
            # a row of its earlier attempt may be there (or no table of this identity yet):
            # the table without it, plus this one
            rows = [r for r in _read_jsonl(jsonl) if r.get("run_dir") != rec.get("run_dir")] if _size(jsonl) else []
            _write_table(sweep_dir, stem, [*rows, rec])
        else:
            _append(jsonl, _jsonl_line(rec))
            row, columns = clean(table_row(rec)), _csv_columns(table_csv)
            if columns and set(row) <= set(columns):
                _append(table_csv, _csv_text([row], columns).split("\n", 1)[1])
            else:  # a column the header lacks: the CSV again, from the JSONL's rows
                write_atomic(table_csv, _csv_text([clean(table_row(r)) for r in _read_jsonl(jsonl)]))
        sizes = {**sizes, jsonl.name: _size(jsonl), table_csv.name: _size(table_csv)}
        state = _write_progress(sweep_dir, ended=int(state["ended"]) + newly, mine=mine, sizes=sizes)
    return Added(int(state["ended"]), mine, rebuilt=False)


def status_counts(records: list[dict]) -> str:
    """`3 ok, 1 diverged`: how a set of records ended."""
    counts: dict[str, int] = {}
    for r in records:
        counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
