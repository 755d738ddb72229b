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

from netspaces.errors import UserError
from netspaces.train import records

log = logging.getLogger(__name__)


def refresh_population(sweep_dir: Path) -> None:
    """Rebuild the sweep's table; a failure here never fails the job that just finished."""
    try:
        n, paths = records.write_population(sweep_dir)
        log.info("population table: %d records -> %s", n, paths[1])
    except OSError as exc:
        log.warning("population table of %s not rebuilt: %s", sweep_dir, exc)


def _slurm_launcher(config: DictConfig) -> bool:
    target = OmegaConf.select(config, "hydra.launcher._target_") or ""
    return "Slurm" in str(target)


def check_sweep(config: DictConfig) -> str:
    """Check the config every job will share and draw the population once; a summary line."""
    from netspaces.train.settings import check_config

    # the submitting machine may not see the cluster's data paths: jobs check them there
    check_config(config, check_data=not _slurm_launcher(config))
    if OmegaConf.select(config, "model.kind") != "sampled":
        return f"sweep {config.sweep.name}"
    from netspaces.regimes import get_regime
    from netspaces.sampling import sample_models

    regime = get_regime(str(config.regime.name), tolerance=config.regime.tolerance,
                        max_params=config.regime.max_params, max_acts=config.regime.max_acts)
    n = int(config.sweep.n)
    samples = sample_models(str(config.space.name), regime, n, int(config.sweep.seed), block=str(config.block.name))
    flops = [s.flops / 1e6 for s in samples]
    return (f"population {config.sweep.name}: {n} models of {config.space.name} (block {config.block.name}) "
            f"in {regime.name}, {min(flops):.0f}-{max(flops):.0f} MF")


class SweepCallback(Callback):
    """Hydra callback (conf/launch.yaml): check before any job starts, table at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            line = check_sweep(config)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        done = len(records.find_records(sweep_dir)) if sweep_dir.is_dir() else 0
        log.info("%s -> %s%s", line, sweep_dir, f" ({done} records already there)" if done else "")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if sweep_dir.is_dir():
            n, paths = records.write_population(sweep_dir)
            ok = sum(r.get("status") == "ok" for r in records.find_records(sweep_dir))
            print(f"population: {n} records ({ok} ok) -> {paths[1]} and {paths[0].name}", flush=True)
