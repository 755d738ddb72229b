"""Weights & Biases: log an analysis to the sweep's group, read populations back.

Logging runs offline without a W&B key (netspaces.wandb_mode) and never raises: any failure prints one
warning, because an analysis already written to disk must not fail on a logging service.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from netspaces.errors import UserError
from netspaces.wandb_mode import wandb_mode

DEFAULT_PROJECT = "netspaces"


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


def _flat_summary(summary: dict[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for label, stats in summary.get("populations", {}).items():
        for key, value in stats.items():
            flat[f"{label}/{key}"] = value
    for pair, ks in summary.get("ks", {}).items():
        for key, value in ks.items():
            flat[f"ks/{pair}/{key}"] = value
    return flat


def log_to_wandb(
    tables: dict[str, pd.DataFrame],
    summary: dict[str, Any],
    plots: dict[str, Path],
    project: str = DEFAULT_PROJECT,
    group: str | None = None,
    entity: str | None = None,
    run_dir: Path | None = None,
    name: str = "analysis",
) -> Path | None:
    """Log the population table, summary numbers and plots to one W&B run in `group`.

    Returns the run's local directory, or None (after one warning) when anything failed.
    """
    try:
        import wandb

        mode = wandb_mode()  # offline unless the user has a key: never wait on the network without one
        run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            name=name,
            job_type="analysis",
            mode=mode,
            reinit="create_new",
            # Read WANDB_DIR on every call: wandb caches its settings per process.
            dir=str(run_dir or os.environ.get("WANDB_DIR") or Path.cwd()),
            config={"populations": list(tables)},
        )
        try:
            payload: dict[str, Any] = {"population_table": wandb.Table(dataframe=_loggable_table(tables))}
            for file_name, path in plots.items():
                payload[Path(file_name).stem] = wandb.Image(str(path), caption=Path(file_name).stem)
            run.log(payload)
            for key, value in _flat_summary(summary).items():
                run.summary[key] = value
            local_dir = Path(run.dir).parent
        finally:
            run.finish()
        return local_dir
    except Exception as exc:  # noqa: BLE001 - logging must never break the analysis
        print(
            f"netspaces: warning: W&B logging failed, analysis files are unaffected ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return None


def default_group(source: str) -> str:
    """A sweep's W&B group is its name: the directory (or the table's parent for population.*)."""
    if source.startswith("wandb://"):
        return source.rstrip("/").split("/")[-1]
    path = Path(source)
    if path.is_dir():
        return path.resolve().name
    return path.parent.resolve().name if path.stem == "population" else path.stem


def read_wandb_records(uri: str) -> list[dict[str, Any]]:
    """The result records of every run in `wandb://entity/project/group` (needs a key, online).

    Each run's summary holds its record's fields (the sweep logger puts them there); runs
    without a status count as ok only if they finished (crashed or running ones are excluded).
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
