"""Experiment loggers: CSV (default), TensorBoard, Weights & Biases.

W&B never blocks or fails a run: without an API key it runs offline (no network at all;
`netspaces wandb-sync` uploads later), an online start that fails or times out falls back to
offline, and anything else that fails leaves the run with the CSV logger and a warning.

One W&B run per sample (job_type "train"): its id is derived from the population identity and
the sample's name, with resume allowed, so a resumed or requeued sample continues its run; its
group is the population identity; the sampled architecture and its complexity are in the run
config, so the W&B UI can group and filter by them (docs/wandb.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import shutil
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from netspaces.record import Record, write_atomic
from netspaces.train.settings import LOGGERS, LoggerSettings
from netspaces.wandb_mode import sync_hint, wandb_mode

log = logging.getLogger(__name__)


class _ResumingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv; a resumed run keeps the rows
    of the epochs its checkpoint holds (later rows are replayed by the resumed run)."""

    keep_epochs = 0

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("epoch", "").isdigit() and int(r["epoch"]) < self.keep_epochs]
        if not rows:
            path.unlink()
            return
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(path, out.getvalue())
        self.metrics_keys = header


class ResumingCSVLogger(CSVLogger):
    def __init__(self, *args, keep_epochs: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_epochs = keep_epochs

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            writer = _ResumingWriter.__new__(_ResumingWriter)
            writer.keep_epochs = self.keep_epochs
            writer.__init__(log_dir=self.log_dir)
            self._experiment = writer
        return self._experiment


def _csv(s: LoggerSettings, resumed_epochs: int = 0) -> CSVLogger:
    return ResumingCSVLogger(save_dir=s.run_dir, name="logs", version="", keep_epochs=resumed_epochs)


class _WandbLogger(WandbLogger):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # Lightning always passes anonymous=None, and wandb warns about any value of that
        # deprecated setting ("The anonymous setting has no effect"): leave it unset
        self._wandb_init.pop("anonymous", None)


def wandb_run_id(identity: str, run_name: str | None) -> str:
    """The W&B run id of a sample: the same population identity and sample name always give
    the same id (W&B ids allow letters, digits, - and _; 16 hex digits are plenty)."""
    return hashlib.sha256(f"{identity}/{run_name}".encode()).hexdigest()[:16]


def run_facts(info: dict, identity: str | None) -> dict:
    """What W&B should group and filter runs by, beside the config: the population identity,
    the sampled architecture (ws, ds, gs, bs and design parameters) and its complexity."""
    return {
        "identity": identity,
        "name": info.get("name"),
        "arch": info.get("arch") or {},
        "flops": info.get("flops"),
        "params": info.get("params"),
        "acts": info.get("acts"),
        "trained": info.get("trained") or {},
    }


def _tags(s: LoggerSettings, config: dict) -> list[str]:
    """The run's tags (space, regime, model and the user's), then data, schedule and sweep name."""
    found = [(config.get(group) or {}).get("name") for group in ("data", "schedule", "sweep")]
    tags = [*s.tags, *(str(t) for t in found if t)]
    return list(dict.fromkeys(t[:64] for t in tags))  # W&B allows 64 characters per tag


def _wandb(s: LoggerSettings, config: dict | None, identity: str | None, info: dict | None) -> Logger:
    import wandb
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    config = {**(config or {}), **run_facts(info or {}, identity)}
    if wandb.run is not None:  # a run left open by an earlier sample of this process: never log into it
        log.warning("W&B run %s was still open: finished before this run starts", wandb.run.id)
        wandb.finish(exit_code=1)
    mode = wandb_mode(s.mode)
    for attempt in (mode, "offline") if mode == "online" else (mode,):
        if attempt != "online":
            # the mode argument alone still lets wandb's service contact the server; the
            # environment variable keeps offline runs off the network entirely
            os.environ["WANDB_MODE"] = attempt
        try:
            logger = _WandbLogger(
                project=s.project,
                entity=s.entity,
                group=identity or s.group,
                name=s.run_name,
                id=wandb_run_id(identity, s.run_name) if identity else None,
                resume="allow",
                job_type="train",
                tags=_tags(s, config),
                save_dir=s.run_dir,
                mode=attempt,
                config=config,
                settings=wandb.Settings(init_timeout=s.init_timeout_s, silent=True),
            )
            if rank_zero_only.rank == 0:
                _ = logger.experiment  # start the run now, where a failure cannot stop training
            return logger
        except Exception as exc:  # noqa: BLE001 — W&B must never fail a run
            log.warning("W&B %s start failed (%s: %s)", attempt, type(exc).__name__, exc)
    log.warning("W&B unavailable: logging to CSV in %s instead", s.run_dir)
    return _csv(s)


def make_loggers(
    s: LoggerSettings,
    config: dict | None = None,
    resumed_epochs: int = 0,
    identity: str | None = None,
    info: dict | None = None,
) -> list[Logger]:
    """The run's logger; `identity` (the population's) and `info` (the network's facts) name
    and describe the W&B run."""
    Path(s.run_dir).mkdir(parents=True, exist_ok=True)
    if s.name == "csv":
        return [_csv(s, resumed_epochs)]
    if s.name == "tensorboard":
        return [TensorBoardLogger(save_dir=s.run_dir, name="logs", version="", default_hp_metric=False)]
    if s.name == "wandb":
        return [_wandb(s, config, identity, info)]
    raise ValueError(f"unknown logger {s.name!r}; allowed: {', '.join(LOGGERS)}")


def publish_record(loggers: list[Logger], record: Record, record_path: Path | None = None) -> None:
    """Put the record's fields (not the config) in the W&B run summary, the record file among
    the run's files (offline runs keep both until `netspaces wandb-sync`), and close the run
    (as failed unless the record is ok); an offline run ends with one line saying how to
    upload it."""
    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        try:
            import wandb

            run = logger.experiment
            run.summary.update({k: v for k, v in record.to_dict().items() if k not in ("config", "history")})
            if record_path is not None and getattr(run, "dir", None):
                shutil.copyfile(record_path, Path(run.dir) / record_path.name)
            offline = bool(getattr(run, "offline", False))
            local_dir = Path(run.dir).parent if getattr(run, "dir", None) else None
            wandb.finish(exit_code=0 if record.status == "ok" else 1)
            if offline and local_dir is not None:
                print(sync_hint(local_dir), flush=True)
        except Exception as exc:  # noqa: BLE001 — the record on disk is what counts
            log.warning("W&B summary not written (%s: %s)", type(exc).__name__, exc)
