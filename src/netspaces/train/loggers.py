"""Experiment loggers: CSV (default), TensorBoard, Weights & Biases.

W&B never blocks or fails a run: without an API key it runs offline (no network at all;
`wandb sync` uploads later), an online start that fails or times out falls back to offline,
and anything else that fails leaves the run with the CSV logger and a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from netspaces.record import Record
from netspaces.train.settings import LOGGERS, LoggerSettings
from netspaces.wandb_mode import wandb_mode

log = logging.getLogger(__name__)

def _csv(s: LoggerSettings) -> CSVLogger:
    return CSVLogger(save_dir=s.run_dir, name="logs", version="")


def _wandb(s: LoggerSettings, config: dict | None) -> Logger:
    import wandb
    from lightning.pytorch.loggers import WandbLogger
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    mode = wandb_mode(s.mode)
    for attempt in (mode, "offline") if mode == "online" else (mode,):
        if attempt != "online":
            # the mode argument alone still lets wandb's service contact the server; the
            # environment variable keeps offline runs off the network entirely
            os.environ["WANDB_MODE"] = attempt
        try:
            logger = WandbLogger(project=s.project, entity=s.entity, group=s.group, name=s.run_name,
                                 tags=list(s.tags), save_dir=s.run_dir, mode=attempt, config=config,
                                 settings=wandb.Settings(init_timeout=s.init_timeout_s, silent=True))
            if rank_zero_only.rank == 0:
                _ = logger.experiment  # start the run now, where a failure cannot stop training
            return logger
        except Exception as exc:  # noqa: BLE001 — W&B must never fail a run
            log.warning("W&B %s start failed (%s: %s)", attempt, type(exc).__name__, exc)
    log.warning("W&B unavailable: logging to CSV in %s instead", s.run_dir)
    return _csv(s)


def make_loggers(s: LoggerSettings, config: dict | None = None) -> list[Logger]:
    Path(s.run_dir).mkdir(parents=True, exist_ok=True)
    if s.name == "csv":
        return [_csv(s)]
    if s.name == "tensorboard":
        return [TensorBoardLogger(save_dir=s.run_dir, name="logs", version="", default_hp_metric=False)]
    if s.name == "wandb":
        return [_wandb(s, config)]
    raise ValueError(f"unknown logger {s.name!r}; allowed: {', '.join(LOGGERS)}")


def publish_record(loggers: list[Logger], record: Record, record_path: Path | None = None) -> None:
    """Put the record's fields (not the config) in the W&B run summary, the record file among
    the run's files (offline runs keep both until `wandb sync`), and close the run."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        try:
            import wandb

            run = logger.experiment
            run.summary.update({k: v for k, v in record.to_dict().items() if k not in ("config", "history")})
            if record_path is not None and getattr(run, "dir", None):
                shutil.copyfile(record_path, Path(run.dir) / record_path.name)
            wandb.finish(exit_code=0 if record.status == "ok" else 1)
        except Exception as exc:  # noqa: BLE001 — the record on disk is what counts
            log.warning("W&B summary not written (%s: %s)", type(exc).__name__, exc)
