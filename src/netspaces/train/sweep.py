"""Population sweeps: up-front checks, the population table, and the Hydra callback.

Layout (conf/launch.yaml): outputs/sweeps/<sweep.name>/sample_NNN/result.json, where
sweep.name = <space>-<regime>-<data>-<schedule>-s<sweep seed>. Job i trains sample i of
(space, regime, block, sweep seed): rerunning the command finds the same directories, skips
finished samples and resumes interrupted ones. The table is rebuilt after every job (under
a lock) and once more when the sweep ends.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from netspaces import record
from netspaces.errors import UserError

log = logging.getLogger(__name__)


def refresh_population(sweep_dir: Path) -> None:
    """Rebuild the sweep's table; a failure here never fails the job that just finished."""
    try:
        found, paths = record.write_population(sweep_dir)
        log.info("population table: %d records -> %s", len(found), paths[1])
    except OSError as exc:
        log.warning("population table of %s not rebuilt: %s", sweep_dir, exc)


def _slurm_launcher(config: DictConfig) -> bool:
    target = OmegaConf.select(config, "hydra.launcher._target_") or ""
    return "Slurm" in str(target)


def check_sweep(config: DictConfig) -> str:
    """Check the config every job will share and draw the population once; a summary line."""
    from netspaces.space.sampling import sample_models
    from netspaces.train.settings import check_config, data_settings, trainer_settings

    choice = check_config(config)
    if not _slurm_launcher(config):  # the submitting machine may not see the cluster's data paths
        from netspaces.train.data import check_data

        check_data(data_settings(config, trainer_settings(config)))
    if choice.kind != "sampled":
        return f"sweep {config.sweep.name}"
    n = int(config.sweep.n)
    samples = sample_models(choice.space, choice.regime, n, choice.sweep_seed, block=choice.block)
    flops = [s.flops / 1e6 for s in samples]
    return (f"population {config.sweep.name}: {n} models of {choice.space} (block {choice.block}) "
            f"in {choice.regime.name}, {min(flops):.0f}-{max(flops):.0f} MF")


class SweepCallback(Callback):
    """Hydra callback (conf/launch.yaml): check before any job starts, table at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            line = check_sweep(config)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        done = len(record.find_records(sweep_dir)) if sweep_dir.is_dir() else 0
        log.info("%s -> %s%s", line, sweep_dir, f" ({done} records already there)" if done else "")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if sweep_dir.is_dir():
            found, paths = record.write_population(sweep_dir)
            print(f"population: {len(found)} records ({record.status_counts(found)}) -> {paths[1]} and "
                  f"{paths[0].name}", flush=True)
