"""Load populations: one table of trained models per design space, from any source.

An INPUT is a sweep directory (its `population.jsonl` / `population.csv`, else every
`**/result.json` below it), a CSV or JSONL file with one row per model, or
`wandb://entity/project/group`. Only `top1_err` is required; only rows with status `ok`
(or no status at all) are analysed, the rest are counted as `excluded`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netspaces import record
from netspaces.errors import UserError

ERROR_COLUMN = record.ERROR_FIELD
COMPLEXITY_COLUMNS = record.COMPLEXITY_FIELDS
# The RegNet parameters (paper section 4); always analysed when a table has them.
KNOWN_PARAMS = ("depth", "w0", "wa", "wm", "group_w", "bot_mul")
# Per-stage lists (widths, depths, group widths, bottleneck ratios).
LIST_COLUMNS = ("ws", "ds", "gs", "bs")
WANDB_PREFIX = "wandb://"


@dataclass
class Population:
    """The analysed (status ok) models of one design space."""

    label: str
    source: str
    table: pd.DataFrame  # ok rows only, with a numeric `top1_err`
    excluded: int = 0
    param_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # seed replicas (sweep.replicas): columns sample, seed, error — the replicated models at
    # every training seed, their population run included; never part of `errors`
    replicas: pd.DataFrame | None = None

    def seed_noise(self) -> dict | None:
        """The seed noise floor: pooled within-model standard deviation of the error over
        training seeds (each replicated model's sample variance, averaged), beside the
        population's own spread; None without replicas."""
        if self.replicas is None:
            return None
        groups = [g["error"].to_numpy(float) for _, g in self.replicas.groupby("sample")]
        groups = [g for g in groups if len(g) >= 2]
        if not groups:
            return None
        pooled = float(np.sqrt(np.mean([np.var(g, ddof=1) for g in groups])))
        spread = float(np.std(self.errors, ddof=1)) if len(self.errors) > 1 else float("nan")
        return {
            "seed_sigma": pooled,
            "models": len(groups),
            "seeds_per_model": round(float(np.mean([len(g) for g in groups])), 2),
            "population_sigma": spread,
        }

    @property
    def errors(self) -> np.ndarray:
        return self.table[ERROR_COLUMN].to_numpy(dtype=float)

    def complexity(self, column: str) -> np.ndarray | None:
        """The column as floats, or None when any analysed model lacks it."""
        if column not in self.table:
            return None
        values = pd.to_numeric(self.table[column], errors="coerce").to_numpy(dtype=float)
        return None if np.isnan(values).any() else values


def load_population(source: str, label: str | None = None) -> Population:
    """Read one INPUT that holds one experiment; raise UserError on unusable input."""
    found = load_populations(source, label)
    if len(found) > 1:
        raise UserError(
            f"analyze: {source} holds {len(found)} experiments (identities "
            f"{', '.join(p.label for p in found)}); analyze them apart"
        )
    return found[0]


def load_populations(source: str, label: str | None = None) -> list[Population]:
    """Read one INPUT and keep its ok rows: one population per experiment it holds (rows of
    different `identity` are never mixed: a second identity becomes its own population,
    labelled with its hash, and a note says so). Raise UserError on unusable input."""
    broken: list[tuple[Path, str]] = []
    if source.startswith(WANDB_PREFIX):
        from netspaces.analysis.wandb_log import read_wandb_records

        frame, arch_keys = _records_to_frame(read_wandb_records(source), source)
        name = source[len(WANDB_PREFIX) :].rstrip("/").split("/")[-1]
    else:
        path = Path(source)
        if not path.exists():
            raise UserError(
                f"analyze: input {source!r} does not exist (give a sweep directory, "
                "a .csv or .jsonl table, or wandb://entity/project/group)"
            )
        if path.is_dir() and any(path.rglob(record.RECORD_FILE)):
            records, broken = record.scan_records(path)  # the records themselves, not a table that may be stale
            if not records:
                raise UserError(
                    f"analyze: {path} has no usable {record.RECORD_FILE} ("
                    + "; ".join(f"{p}: {why}" for p, why in broken)
                    + ")"
                )
            frame, arch_keys = _records_to_frame(
                [{k: v for k, v in r.items() if k not in record.NOT_IN_TABLE} for r in records], str(path)
            )
        else:
            frame, arch_keys = read_table(path)
        name = path.name if path.is_dir() else (path.parent.name if path.stem == "population" else path.stem)
    notes = (
        [f"{len(broken)} unusable record(s) left out: " + "; ".join(f"{p}: {why}" for p, why in broken)]
        if broken
        else []
    )
    groups = [(None, frame)]
    if "identity" in frame.columns and frame["identity"].nunique(dropna=False) > 1:
        groups = [(h, g.reset_index(drop=True)) for h, g in frame.groupby("identity", dropna=False, sort=False)]
        notes.append(
            f"{source} holds {len(groups)} experiments (identities "
            f"{', '.join(_tag(h) for h, _ in groups)}): analysed as separate populations"
        )
    out = []
    for h, g in groups:
        p = _make_population(g, source, label, name, arch_keys)
        if h is not None or len(groups) > 1:
            p.label = f"{p.label}-{_tag(h)}"
        p.notes[:0] = notes
        out.append(p)
    if len(out) == 1 and not source.startswith(WANDB_PREFIX) and Path(source).is_dir():
        out[0].replicas = _replicas(Path(source), out[0])
    return out


def _replicas(sweep_dir: Path, population: Population) -> pd.DataFrame | None:
    """The sweep's seed replicas (ok records of <sweep>/replicas/seed_*/) joined with the
    population's own runs of the same samples; None when there are none."""
    rows = []
    for d in record.replica_dirs(sweep_dir):
        for r in record.find_records(d):
            if r.get("status") == "ok" and r.get(ERROR_COLUMN) is not None:
                rows.append({"sample": r.get("sample"), "seed": r.get("seed"), "error": float(r[ERROR_COLUMN])})
    if not rows:
        return None
    replicated = {row["sample"] for row in rows}
    t = population.table
    if {"sample", "seed"} <= set(t.columns):
        own = t[t["sample"].isin(replicated)]
        rows += [
            {"sample": s, "seed": seed, "error": float(e)}
            for s, seed, e in zip(own["sample"], own["seed"], own[ERROR_COLUMN])
        ]
    return pd.DataFrame(rows).sort_values(["sample", "seed"], kind="stable").reset_index(drop=True)


def _tag(h) -> str:
    return "unknown" if h is None or (isinstance(h, float) and np.isnan(h)) else str(h)[:6]


def read_table(path: Path) -> tuple[pd.DataFrame, set[str]]:
    """A DataFrame with one row per model, and the names of columns flattened from `arch`."""
    if path.is_dir():
        for candidate in (record.TABLE_JSONL, record.TABLE_CSV):
            if (path / candidate).is_file():
                return read_table(path / candidate)
        result_files = sorted(path.glob(f"**/{record.RECORD_FILE}"))
        if not result_files:
            raise UserError(
                f"analyze: {path} has no {record.TABLE_JSONL}, {record.TABLE_CSV} or **/{record.RECORD_FILE}"
            )
        records = [_read_json(f) for f in result_files]
        return _records_to_frame(records, str(path))
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        records = []
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UserError(f"analyze: {path}:{lineno} is not valid JSON ({exc.msg})") from None
        return _records_to_frame(records, str(path))
    if suffix == ".json":
        data = _read_json(path)
        return _records_to_frame(data if isinstance(data, list) else [data], str(path))
    if suffix in (".csv", ".tsv"):
        try:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UserError(f"analyze: cannot read {path} as CSV ({exc})") from None
        for column in frame.columns:
            if column in LIST_COLUMNS or _looks_like_json_lists(frame[column]):
                frame[column] = frame[column].map(_parse_json_cell)
        if "arch" in frame.columns:  # a nested record written as JSON text: flatten it too
            frame["arch"] = frame["arch"].map(
                lambda v: json.loads(v) if isinstance(v, str) and v.strip().startswith("{") else v
            )
            return _records_to_frame(frame.to_dict("records"), str(path))
        return frame, set()
    raise UserError(f"analyze: {path} is not a sweep directory, .csv or .jsonl table")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"analyze: {path} is not valid JSON ({exc.msg})") from None


def _records_to_frame(records: list[Any], source: str) -> tuple[pd.DataFrame, set[str]]:
    """Flatten each record's `arch` dict into top-level columns (top-level keys win)."""
    rows, arch_keys = [], set()
    for rec in records:
        if not isinstance(rec, dict):
            raise UserError(f"analyze: {source} holds a record that is not a JSON object")
        row = {k: v for k, v in rec.items() if k != "arch"}
        arch = rec.get("arch")
        if isinstance(arch, dict):
            for key, value in arch.items():
                if key not in row:
                    row[key] = value
                    arch_keys.add(key)
        rows.append(row)
    return pd.DataFrame(rows), arch_keys


def _looks_like_json_lists(column: pd.Series) -> bool:
    if column.dtype != object:
        return False
    cells = column.dropna()
    return len(cells) > 0 and all(isinstance(c, str) and c.strip().startswith("[") for c in cells)


def _parse_json_cell(cell: Any) -> Any:
    if isinstance(cell, str) and cell.strip().startswith("["):
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def _make_population(frame: pd.DataFrame, source: str, label: str | None, name: str, arch_keys: set[str]) -> Population:
    if ERROR_COLUMN not in frame.columns:
        present = ", ".join(map(str, frame.columns[:8])) or "none"
        raise UserError(f"analyze: {source} has no '{ERROR_COLUMN}' column (columns found: {present})")
    notes: list[str] = []
    if "status" in frame.columns:
        status = frame["status"]
        is_ok = status.isna() | (status.astype(str).str.strip().str.lower() == "ok")
    else:
        is_ok = pd.Series(True, index=frame.index)
    errors = pd.to_numeric(frame[ERROR_COLUMN], errors="coerce")
    bad = is_ok & errors.isna() & frame[ERROR_COLUMN].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserError(
            f"analyze: {source} row {row + 1}: '{ERROR_COLUMN}' must be a number, got {frame[ERROR_COLUMN].iloc[row]!r}"
        )
    missing = is_ok & errors.isna()
    if missing.any():
        notes.append(f"{int(missing.sum())} ok model(s) in {source} have no {ERROR_COLUMN}; excluded")
    impossible = is_ok & errors.notna() & ~errors.between(0, 100)  # NaN and ±inf fail between too
    for column in COMPLEXITY_COLUMNS:
        if column in frame.columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            impossible |= is_ok & frame[column].notna() & ~(np.isfinite(values) & (values >= 0))
    if impossible.any():
        rows = [_row_name(frame, i) for i in np.flatnonzero(impossible.to_numpy())]
        notes.append(
            f"{len(rows)} model(s) in {source} excluded for impossible values ({ERROR_COLUMN} outside "
            f"[0, 100] or a negative or non-finite flops/params/acts): "
            + ", ".join(rows[:10])
            + (" …" if len(rows) > 10 else "")
        )
    keep = is_ok & errors.notna() & ~impossible
    table = frame.loc[keep].reset_index(drop=True)
    table[ERROR_COLUMN] = errors[keep].to_numpy(dtype=float)
    if table.empty:
        raise UserError(
            f"analyze: {source} has no usable models (0 rows with status ok and a "
            f"{ERROR_COLUMN}; {len(frame)} row(s) in all)"
        )
    if label is None:
        spaces = table["space"].dropna().unique() if "space" in table else []
        label = str(spaces[0]) if len(spaces) == 1 else name
    return Population(
        label=label,
        source=source,
        table=table,
        excluded=int(len(frame) - keep.sum()),
        param_columns=_design_params(table, arch_keys),
        notes=notes,
    )


def _row_name(frame: pd.DataFrame, i: int) -> str:
    """A row named by its run directory when it has one, else by its row number."""
    if "run_dir" in frame.columns and isinstance(frame["run_dir"].iloc[i], str):
        return frame["run_dir"].iloc[i]
    return f"row {i + 1}"


def _design_params(table: pd.DataFrame, arch_keys: set[str]) -> list[str]:
    """Known RegNet parameters when present; other scalar `arch` entries only if they vary."""
    params = []
    extra = sorted(k for k in arch_keys if k not in KNOWN_PARAMS and k not in LIST_COLUMNS)
    for column in [c for c in KNOWN_PARAMS if c in table] + extra:
        if table[column].dtype == bool or table[column].map(lambda v: isinstance(v, (list, dict, bool, str))).any():
            continue  # only numbers are design parameters (not flags, names or lists)
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().all():
            continue
        if column in KNOWN_PARAMS or values.nunique() > 1:
            params.append(column)
    return params


def unique_labels(labels: list[str]) -> list[str]:
    """Make labels distinct by numbering repeats ('regnetx', 'regnetx-2')."""
    result: list[str] = []
    for label in labels:
        candidate, number = label, 1
        while candidate in result:
            number += 1
            candidate = f"{label}-{number}"
        result.append(candidate)
    return result


def safe_name(label: str) -> str:
    """A label usable in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "population"
