"""Weights & Biases: an analysis as its own run, and populations read back from W&B.

`log_analysis` logs one run (job_type "analysis") in a group named after the comparison. Its
config lists every input with the identities of its populations, which are the W&B groups of
their training runs (netspaces.train.loggers), so the analysis links to every input sweep. It
logs the per-model table, one table per section of summary.json (populations, KS tests with
their p-values, bootstrap good ranges, and baselines when the summary has them), a native W&B
line chart per EDF (populations and baselines as series: W&B draws them interactively), the
PNG plots, and report.html with summary.json and edf.csv as an artifact.

Offline without a W&B key (netspaces.wandb_mode); it never raises: any failure prints one
warning, because an analysis already written to disk must not fail on a logging service.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from netspaces.errors import UserError
from netspaces.wandb_mode import sync_hint, wandb_mode

DEFAULT_PROJECT = "netspaces"
ARTIFACT_FILES = ("report.html", "summary.json", "edf.csv")
SECTIONS = ("populations", "ks", "bootstrap", "baselines")  # summary.json sections logged as tables
_MAX_GROUP = 120  # W&B allows 128 characters


def comparison_name(labels: list[str]) -> str:
    """The analysis run's group: its populations' labels, `a vs b vs c` (a long one is cut and
    keeps a hash of the whole, so two comparisons never share a group by accident)."""
    name = " vs ".join(labels)
    if len(name) <= _MAX_GROUP:
        return name
    return f"{name[: _MAX_GROUP - 9]}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def input_links(populations: list) -> list[dict[str, Any]]:
    """Per population: its label, where it was read from, its size, and its identities (the
    W&B groups of its training runs; none for a table without an identity column)."""
    links = []
    for p in populations:
        identities = []
        if "identity" in p.table.columns:
            identities = sorted({str(h) for h in p.table["identity"].dropna()})
        links.append(
            {
                "label": p.label,
                "source": str(p.source),
                "n": int(len(p.table)),
                "excluded": int(p.excluded),
                "identities": identities,
                "wandb_groups": identities,
            }
        )
    return links


def _scalar(value: Any) -> Any:
    """W&B table cells are scalars: lists and dicts become JSON text, non-finite floats None."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _scalar(value.item())
    return value


def _flatten(entry: Any, prefix: str = "") -> dict[str, Any]:
    """A summary entry as one table row: nested dicts become `outer.inner` columns."""
    if not isinstance(entry, dict):
        return {prefix or "value": _scalar(entry)}
    row: dict[str, Any] = {}
    for key, value in entry.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        row.update(_flatten(value, name) if isinstance(value, dict) else {name: _scalar(value)})
    return row


def _uniform_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing cells stay None (not NaN), and a column of mixed types (W&B rejects them)
    becomes text."""
    frame = frame.astype(object).where(frame.notna(), None)
    for column in frame.columns:
        kinds = {type(v) for v in frame[column] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds - {int, float}) and len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame


def section_table(name: str, section: Any) -> pd.DataFrame | None:
    """One summary.json section as a table, read generically: a mapping gives one row per key
    (the key in the first column), a list one row per entry; the bootstrap section (population
    -> parameter -> range) one row per population and parameter."""
    if not section:
        return None
    if name == "bootstrap" and isinstance(section, dict):
        rows = [
            {"population": label, "parameter": param, **_flatten(good)}
            for label, params in section.items()
            if isinstance(params, dict)
            for param, good in params.items()
        ]
    elif isinstance(section, dict):
        first = {"populations": "population", "ks": "pair", "baselines": "baseline"}.get(name, "key")
        rows = [{first: key, **_flatten(value)} for key, value in section.items()]
    elif isinstance(section, list):
        rows = [_flatten(entry) for entry in section]
    else:
        return None
    return _uniform_columns(pd.DataFrame(rows)) if rows else None


def _loggable_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One table with a `population` column; lists and dicts as JSON text (W&B needs scalars)."""
    frames = [t.assign(population=label) for label, t in tables.items()]
    combined = pd.concat(frames, ignore_index=True)
    for column in combined.columns:
        if combined[column].dtype == object:
            combined[column] = combined[column].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
            if combined[column].map(type).nunique() > 1:  # mixed types: W&B rejects them
                combined[column] = combined[column].map(lambda v: None if v is None else str(v))
    return combined[["population"] + [c for c in combined.columns if c != "population"]]


def edf_steps(errors: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The corners of a (weighted) EDF's staircase: at each distinct error the value just below
    it (F counts errors strictly below) and just after it, so a line chart draws the steps."""
    order = np.argsort(errors, kind="stable")
    e, w = np.asarray(errors, float)[order], np.asarray(weights, float)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(w)])
    distinct, first = np.unique(e, return_index=True)
    after = np.append(first[1:], len(e))
    xs = np.repeat(distinct, 2)
    ys = np.column_stack([cumulative[first], cumulative[after]]).ravel()
    return xs, ys


def baseline_errors(summary: dict[str, Any]) -> dict[str, float]:
    """name -> top-1 error of each baseline in the summary's `baselines` section, if any (read
    generically: a mapping name -> entry, or a list of entries with a name or label)."""
    section = summary.get("baselines")
    entries = section.items() if isinstance(section, dict) else enumerate(section or [])
    found = {}
    for key, entry in entries:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or entry.get("label") or entry.get("model") or key)
        error = next((entry[k] for k in ("top1_err", "error") if isinstance(entry.get(k), (int, float))), None)
        if error is not None and math.isfinite(error):
            found[name] = float(error)
    return found


def edf_chart_table(populations: list, weights: dict[str, np.ndarray] | None, summary: dict[str, Any]) -> pd.DataFrame:
    """Rows (series, error, F): each population's EDF staircase (normalized when `weights` are
    given), and each baseline as a vertical line from F=0 to F=1 at its error."""
    rows = []
    for p in populations:
        e = p.errors
        w = weights[p.label] if weights is not None else np.full(len(e), 1.0 / len(e))
        xs, ys = edf_steps(e, w)
        rows.append(pd.DataFrame({"series": p.label, "error": xs, "F": ys}))
    for name, error in baseline_errors(summary).items():
        rows.append(pd.DataFrame({"series": f"baseline: {name}", "error": [error, error], "F": [0.0, 1.0]}))
    return pd.concat(rows, ignore_index=True)


def _flat_summary(summary: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for label, stats in summary.get("populations", {}).items():
        for key, value in stats.items():
            flat[f"{label}/{key}"] = value
    for pair, ks in summary.get("ks", {}).items():
        for key, value in ks.items():
            flat[f"ks/{pair}/{key}"] = value
    return flat


def _artifact_name(comparison: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.'."""
    return "analysis-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", comparison).strip("_") or "populations")[:100]


def log_analysis(
    populations: list,
    analysis: Any,
    written: list[Path],
    *,
    project: str = DEFAULT_PROJECT,
    group: str | None = None,
    entity: str | None = None,
    run_dir: Path | None = None,
    options: dict[str, Any] | None = None,
) -> Path | None:
    """Log an analysis (populations, its `Analysis`, the files `analyze` wrote) as one W&B run.

    Prints the run's group and directory (and, offline, how to upload it); returns the run's
    local directory, or None (after one warning) when anything failed.
    """
    try:
        import wandb

        labels = [p.label for p in populations]
        comparison = comparison_name(labels)
        group = group or comparison
        summary = analysis.summary
        mode = wandb_mode()  # offline unless the user has a key: never wait on the network without one
        if mode != "online":
            # the mode argument alone still lets wandb's service contact the server; the
            # environment variable keeps an offline run off the network entirely
            os.environ["WANDB_MODE"] = mode
        run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            name=f"analysis: {comparison}",
            job_type="analysis",
            tags=["analysis"],
            mode=mode,
            reinit="create_new",
            # Read WANDB_DIR on every call: wandb caches its settings per process.
            dir=str(run_dir or os.environ.get("WANDB_DIR") or Path.cwd()),
            config={"comparison": comparison, "inputs": input_links(populations), "options": options or {}},
            settings=wandb.Settings(silent=True),
        )
        try:
            payload: dict[str, Any] = {
                "population_table": wandb.Table(dataframe=_loggable_table({p.label: p.table for p in populations}))
            }
            for name in SECTIONS:
                frame = section_table(name, summary.get(name))
                if frame is not None:
                    payload[f"{name}_table"] = wandb.Table(dataframe=frame)
            for key, weights, title in (
                ("edf_chart", None, "Error EDF: fraction of models with error below x"),
                ("edf_normalized_chart", analysis.weights, "Complexity-normalized error EDF"),
            ):
                table = wandb.Table(dataframe=edf_chart_table(populations, weights, summary))
                payload[key] = wandb.plot.line(table, "error", "F", stroke="series", title=title)
            for path in written:
                if path.suffix == ".png":
                    payload[path.stem] = wandb.Image(str(path), caption=path.stem)
            run.log(payload)
            for key, value in _flat_summary(summary).items():
                run.summary[key] = value
            files = [p for p in written if p.name in ARTIFACT_FILES]
            if files:
                report = wandb.Artifact(
                    _artifact_name(comparison),
                    type="analysis-report",
                    description=f"netspaces analyze: {comparison}",
                    metadata={"inputs": input_links(populations)},
                )
                for path in files:
                    report.add_file(str(path), name=path.name)
                run.log_artifact(report)
            local_dir = Path(run.dir).parent
            offline = bool(getattr(run, "offline", False))
        finally:
            run.finish()
        print(f"W&B run (job analysis, group {group}): {local_dir}")
        if offline:
            print(sync_hint(local_dir))
        return local_dir
    except Exception as exc:  # noqa: BLE001 - logging must never break the analysis
        print(
            f"netspaces: warning: W&B logging failed, analysis files are unaffected ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return None


def read_wandb_records(uri: str) -> list[dict[str, Any]]:
    """The result records of every run in `wandb://entity/project/group` (needs a key, online).

    A training run's group is its population identity (netspaces.train.loggers). Each run's
    summary holds its record's fields; runs without a status count as ok only if they finished
    (crashed or running ones are excluded).
    """
    parts = uri[len("wandb://") :].strip("/").split("/")
    if len(parts) != 3 or not all(parts):
        raise UserError(f"analyze: {uri!r} must look like wandb://entity/project/group")
    entity, project, group = parts
    try:
        import wandb

        api = wandb.Api(timeout=30)
        runs = api.runs(f"{entity}/{project}", filters={"group": group})
        records = []
        for run in runs:
            if getattr(run, "job_type", None) == "analysis":
                continue
            record = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
            if "arch" not in record and isinstance(run.config.get("arch"), dict):
                record["arch"] = run.config["arch"]
            if "status" not in record:
                record["status"] = "ok" if run.state == "finished" else str(run.state)
            records.append(record)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any API failure is one line for the user
        raise UserError(f"analyze: cannot read {uri} from W&B ({type(exc).__name__}: {exc})") from None
    if not records:
        raise UserError(f"analyze: W&B group {uri} has no runs")
    return records
