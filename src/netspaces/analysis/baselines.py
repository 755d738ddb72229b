"""Baselines in the analysis: trained baselines placed in every population.

A baseline source is a sweep directory (`python train.py -m model=baselines regime=200mf`,
or any directory of result records: each ok record is one baseline, named by its `name`) or
a CSV/JSONL table with `name` and `top1_err` columns (optional `flops`, `params`, `acts`).
Each baseline gets its error, its flops and, per population, the share of the population's
models it beats (error strictly below theirs), on the plain and the normalized EDF.

A baseline means something beside a population only when both were trained alike: a sweep
directory's identity.json holds the identity payload of its runs (train/identity.py), and a
baseline sweep and a population must agree on every key of it but those that pick the model
(model.*, the stem excepted; space.*, block.*; sample; sweep.seed). Where they do not, the
analysis is refused with one line naming the keys; where a payload is unknown (a table, a
directory without identity.json) a note says it was not checked.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netspaces import record
from netspaces.analysis.populations import Population, read_table, unique_labels
from netspaces.errors import UserError

# payload keys that pick the model: a baseline differs from a population in these only
_MODEL_PREFIXES = ("model.", "space.", "block.")
_MODEL_KEYS = ("sample", "sweep.seed")
_KEPT = ("model.stem",)  # the stem is part of the recipe: the population's stem, on every model


@dataclass
class Baseline:
    name: str
    error: float  # top-1 error, %
    flops: float | None = None  # multiply-adds at 224 px (the regime window's convention)
    params: float | None = None
    acts: float | None = None
    source: str = ""
    payload: dict | None = None  # the identity payload it was trained under; None: unknown


@dataclass
class BaselineSet:
    baselines: list[Baseline] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def training_keys(payload: dict) -> dict:
    """The identity payload without the keys that pick the model (what must match)."""
    return {k: v for k, v in payload.items() if k in _KEPT or not (k.startswith(_MODEL_PREFIXES) or k in _MODEL_KEYS)}


def _identity(directory: Path) -> tuple[str | None, dict | None]:
    data = record.read_json_object(directory / record.IDENTITY_FILE)
    if data is None or not isinstance(data.get("payload"), dict):
        return None, None
    return data.get("hash"), data["payload"]


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load_baselines(sources: list[str]) -> BaselineSet:
    """Every baseline of every source; UserError for a source that holds none."""
    out = BaselineSet()
    for source in sources:
        found = _load_one(str(source), out.notes)
        if not found:
            raise UserError(f"analyze: --baselines {source} holds no usable baseline (status ok with a top1_err)")
        out.baselines += found
    names = unique_labels([b.name for b in out.baselines])
    renamed = [f"{b.name!r} -> {new!r}" for b, new in zip(out.baselines, names) if b.name != new]
    for b, new in zip(out.baselines, names):
        b.name = new
    if renamed:
        out.notes.append("repeated baseline names renamed: " + ", ".join(renamed))
    return out


def _load_one(source: str, notes: list[str]) -> list[Baseline]:
    path = Path(source)
    if not path.exists():
        raise UserError(f"analyze: --baselines {source!r} does not exist (give a baseline sweep directory or a table)")
    payload = None
    if path.is_dir() and any(path.rglob(record.RECORD_FILE)):
        h, payload = _identity(path)
        records, broken = record.scan_records(path)
        if broken:
            notes.append(f"{len(broken)} unusable baseline record(s) in {source} left out")
        rows = [r for r in records if h is None or r.get("identity") == h]
        if len(rows) < len(records):
            notes.append(f"{len(records) - len(rows)} record(s) of another experiment in {source} left out")
    else:
        frame, _ = read_table(path)
        rows = frame.to_dict("records")
    found, skipped = [], 0
    for i, row in enumerate(rows, 1):
        if str(row.get("status") if row.get("status") is not None else "ok").strip().lower() != "ok":
            skipped += 1
            continue
        error = _number(row.get(record.ERROR_FIELD))
        if error is None or not 0 <= error <= 100:
            raise UserError(
                f"analyze: --baselines {source} row {i}: {record.ERROR_FIELD} must be a number in [0, 100], "
                f"got {row.get(record.ERROR_FIELD)!r}"
            )
        name = row.get("name") or row.get("model") or row.get("label")
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"analyze: --baselines {source} row {i} has no name (a name, model or label column)")
        found.append(
            Baseline(
                name=name.strip(),
                error=error,
                flops=_number(row.get("flops")),
                params=_number(row.get("params")),
                acts=_number(row.get("acts")),
                source=source,
                payload=payload,
            )
        )
    if skipped:
        notes.append(f"{skipped} baseline run(s) in {source} not ok (diverged, failed or interrupted) left out")
    return found


def population_payload(p: Population) -> dict | None:
    """The identity payload a population was trained under, when its source says so: a sweep
    directory's identity.json whose hash its records carry."""
    path = Path(p.source)
    if not path.is_dir():
        return None
    h, payload = _identity(path)
    if payload is None:
        return None
    if "identity" in p.table and set(p.table["identity"].dropna().astype(str)) - {h}:
        return None  # records of another experiment than the directory's
    return payload


def _differences(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    return ", ".join(f"{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}" for k in keys if a.get(k) != b.get(k))


def check_identities(baselines: BaselineSet, populations: list[Population]) -> None:
    """Refuse (one line) a baseline source trained under another data/schedule identity than a
    population; note the pairs that cannot be checked."""
    unchecked_sources = sorted({b.source for b in baselines.baselines if b.payload is None})
    sources = {b.source: b.payload for b in baselines.baselines if b.payload is not None}
    unchecked_pops = []
    for p in populations:
        mine = population_payload(p)
        if mine is None:
            unchecked_pops.append(p.label)
            continue
        for source, theirs in sources.items():
            diff = _differences(training_keys(mine), training_keys(theirs))
            if diff:
                raise UserError(
                    f"analyze: baselines {source} were trained under another experiment than population "
                    f"{p.label} ({diff}); train them with the population's data, schedule and stem"
                )
    if unchecked_sources or unchecked_pops:
        what = [f"baselines {s}" for s in unchecked_sources] + [f"population {x}" for x in unchecked_pops]
        baselines.notes.append(
            "training identity unknown (a table, or a directory without identity.json) for "
            + ", ".join(what)
            + ": baselines and populations were not checked to share data, schedule and stem"
        )


def beats(baseline_error: float, errors: np.ndarray, weights: np.ndarray) -> dict:
    """The share (%) of a population's models the baseline beats (their error above its own),
    plainly and with the normalized EDF's weights, and how many tie with it."""
    worse = errors > baseline_error
    return {
        "n": int(len(errors)),
        "beats_pct": float(100.0 * worse.mean()),
        "beats_pct_normalized": float(100.0 * weights[worse].sum()),
        "ties": int((errors == baseline_error).sum()),
    }


def baseline_section(
    baselines: BaselineSet, populations: list[Population], weights: dict[str, np.ndarray]
) -> dict[str, dict]:
    """summary.json's `baselines`: per baseline its error, complexity, source and, per
    population, the share of its models the baseline beats."""
    checked = {p.label for p in populations if population_payload(p) is not None}
    section = {}
    for b in baselines.baselines:
        per_population = {}
        for p in populations:
            share = beats(b.error, p.errors, weights[p.label])
            share["text"] = f"{b.name} beats {share['beats_pct']:.0f}% of {p.label} models"
            share["identity_checked"] = b.payload is not None and p.label in checked
            per_population[p.label] = share
        section[b.name] = {
            "error": b.error,
            "flops": b.flops,
            "params": b.params,
            "acts": b.acts,
            "source": b.source,
            "populations": per_population,
        }
    return section
