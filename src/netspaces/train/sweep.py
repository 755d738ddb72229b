"""Population sweeps: up-front checks, the population table, and the Hydra callback.

Layout (conf/launch.yaml): outputs/sweeps/<sweep.name>/sample_NNN/result.json, where
sweep.name = <space>-<regime>-<data>-<schedule>-s<sweep seed>. Job i trains sample i of
(space, regime, block, sweep seed): rerunning the command finds the same directories, skips
finished samples and resumes interrupted ones. The table is rebuilt from the records when
the sweep starts and ends; in between each job adds its own row under a lock, in O(1) of the
sweep's size (record.add_to_population). After each job the sweep says how far it is:
"model k of N done (status, top1_err), ETA", counted in the sweep directory (whichever
process, joblib worker or SLURM task, ran the job).
At sweep start the launching process re-executes itself from the sweep's code snapshot
(train/snapshot.py), so every job runs the code the sweep started with.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from netspaces import record
from netspaces.errors import UserError

log = logging.getLogger(__name__)

# set by the launching process for its jobs (joblib workers and submitit tasks inherit it):
# {"dir": sweep directory, "planned": models in the population (None: not known),
#  "started": time.time() at the start, "since": the same as an ISO time (records' finished_at)}
PROGRESS_ENV = "NETSPACES_SWEEP_PROGRESS"


def clock(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(finished: dict, ended: int, mine: int, planned: int | None, started: float) -> str:
    """The line "model k of N done (status, top1_err), ETA": k = `ended`, the models of the
    population that have ended (ok, diverged, failed; interrupted ones are still to do),
    counted under the table's lock so that two workers finishing together never print the same
    k; the ETA extrapolates this command's pace (`mine` models ended since it started, whatever
    ran them in parallel) to the models not ended yet."""
    err = finished.get("top1_err")
    what = f"{finished.get('status')}, top1_err " + ("n/a" if err is None else f"{err:.2f}%")
    if planned is None:
        return f"model {ended} done ({what})"
    left = max(0, planned - ended)
    elapsed = time.time() - started
    eta = "0:00" if left == 0 else (clock(elapsed / mine * left) if mine else "not yet known")
    return f"model {ended} of {planned} done ({what}), ETA {eta}"


def refresh_population(sweep_dir: Path, finished: dict, prior: dict | None = None) -> None:
    """Add a finished job's record to its sweep's table (`prior`: the record its run directory
    held before the job ran, replaced; the same record: the job skipped it, nothing to add)
    and, for a job of the sweep this process's launcher started, print how far the sweep is;
    a failure here never fails the job that just finished (the table is rebuilt from the
    records when the sweep ends, or by `netspaces collect`)."""
    if prior is not None and (prior.get("finished_at"), prior.get("status")) == (
        finished.get("finished_at"),
        finished.get("status"),
    ):
        return
    sweep = json.loads(os.environ.get(PROGRESS_ENV) or "{}")
    try:
        got = record.add_to_population(sweep_dir, finished, prior=prior, since=str(sweep.get("since") or ""))
    except OSError as exc:
        log.warning("population table of %s not updated (it is rebuilt when the sweep ends): %s", sweep_dir, exc)
        return
    if sweep.get("dir") == str(Path(sweep_dir).resolve()) and finished.get("status") != "interrupted":
        print(progress_line(finished, got.ended, got.mine, sweep.get("planned"), sweep["started"]), flush=True)


def _slurm_launcher(config: DictConfig) -> bool:
    target = OmegaConf.select(config, "hydra.launcher._target_") or ""
    return "Slurm" in str(target)


def check_sweep(config: DictConfig) -> str:
    """Check the config every job will share and draw the population once; a summary line."""
    from netspaces.space.sampling import sample_models
    from netspaces.train.settings import _int, check_config, data_settings, trainer_settings
    from netspaces.train.snapshot import allow_code_change

    choice = check_config(config)
    from netspaces.train.pack_plan import check_pack

    pack = check_pack(config)
    replicas, replica_models = _int(config, "sweep.replicas", lo=0), _int(config, "sweep.replica_models", lo=1)
    _int(config, "sweep.retries", lo=0)
    allow_code_change(OmegaConf.select(config, "sweep.allow_code_change"))
    if not _slurm_launcher(config):  # the submitting machine may not see the cluster's data or GPUs
        from netspaces.train.data import check_data
        from netspaces.train.settings import check_machine

        t = trainer_settings(config)
        check_machine(t)
        check_data(data_settings(config, t))
    if choice.kind != "sampled":
        return f"sweep {config.sweep.name}"
    n = int(config.sweep.n)
    samples = sample_models(choice.space, choice.regime, n, choice.sweep_seed, block=choice.block, draw=choice.draw)
    flops = [s.flops / 1e6 for s in samples]
    seeds = int(config.seed)
    extra = (
        f"; seed replicas: the first {min(replica_models, n)} at training seeds {seeds + 1}-{seeds + replicas} "
        f"-> {record.REPLICAS_DIR}/ (not in the population)"
        if replicas
        else ""
    )
    return (
        f"population {config.sweep.name}: {n} models of {choice.space} (block {choice.block}) "
        f"in {choice.regime.name}, {min(flops):.0f}-{max(flops):.0f} MF{extra}"
        + (f"; {pack} models per job (sweep.pack)" if pack > 1 else "")
    )


def check_run(config: DictConfig) -> None:
    """Every check a single run makes before anything is written (Hydra has not made the run
    directory yet when this runs)."""
    from netspaces.train.data import check_data
    from netspaces.train.settings import check_config, check_machine, data_settings, trainer_settings

    check_config(config)
    from netspaces.train.pack_plan import pack_value

    pack_value(config)  # a single run ignores sweep.pack, but not a bad value of it
    t = trainer_settings(config)
    check_machine(t)
    check_data(data_settings(config, t))


def _refuse(exc: UserError) -> None:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    sys.exit(2)


class SweepCallback(Callback):
    """Hydra callback (conf/launch.yaml): refuse bad values before any directory exists, give
    a population its identity, pass signals on to workers, and close a sweep with its table
    and an exit code that says whether every sample is ok."""

    started = ""  # when the sweep started (UTC, ISO): records finished since are this command's

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_run(config)
        except UserError as exc:
            _refuse(exc)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from netspaces.train import identity, snapshot
        from netspaces.train.signals import forward_to_workers

        try:
            line = check_sweep(config)
            sweep_dir = Path(str(config.hydra.sweep.dir))
            # the jobs run from <sweep>/.code/: this process re-executes from it unless it already does
            snapshot.enter(sweep_dir, config.sweep.allow_code_change, lambda: record.find_records(sweep_dir))
        except UserError as exc:
            _refuse(exc)
        base = Path(str(config.paths.output)) / "sweeps" / str(config.sweep.name)
        h, p = identity.of(config)
        old = identity.read_identity(base)
        if old is not None and sweep_dir.name == f"{base.name}-{h[:6]}":  # ns.sweep_dir moved it aside
            print(
                f"{base} holds another experiment ({identity.describe_difference(old.get('payload', {}), p)}): "
                f"this one goes to {sweep_dir}",
                file=sys.stderr,
                flush=True,
            )
        if identity.read_identity(sweep_dir) is None:
            identity.write_identity(sweep_dir, h, p)
        # the table, from the records, once: each job then adds its own row (O(1))
        got = record.write_population(sweep_dir)
        done = len(got.records) + sum(len(rs) for rs in got.others.values())
        log.info("%s -> %s (identity %s)%s", line, sweep_dir, h[:6], f", {done} records already there" if done else "")
        if not _slurm_launcher(config):  # under SLURM submitit owns the signals
            forward_to_workers()
        # records finished from now on are this command's (ISO times compare as strings)
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record.start_progress(sweep_dir, self.started)
        sampled = OmegaConf.select(config, "model.kind") == "sampled"
        os.environ[PROGRESS_ENV] = json.dumps(
            {
                "dir": str(sweep_dir.resolve()),
                "planned": int(config.sweep.n) if sampled else None,
                "started": time.time(),
                "since": self.started,
            }
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ.pop(PROGRESS_ENV, None)
        base = Path(str(config.paths.output)) / "sweeps" / str(config.sweep.name)
        # this command's jobs of another identity went to <base>-<6 hex> (hydra_conf.sweep_dir)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        dirs = [
            d for d in [base, *sorted(base.parent.glob(f"{glob.escape(base.name)}-" + "[0-9a-f]" * 6))] if d.is_dir()
        ]
        if sweep_dir.is_dir() and sweep_dir not in dirs:  # hydra.sweep.dir given on the command line
            dirs.insert(0, sweep_dir)
        dirs += [r for d in list(dirs) for r in record.replica_dirs(d)]  # seed replicas: tables of their own
        ours, problems = [], []
        for d in dirs:
            got = record.write_population(d)
            mine = [r for r in got.records if str(r.get("finished_at") or "") >= self.started]
            if not mine and d != sweep_dir:
                continue
            ours += mine
            kind = "seed replicas" if d.parent.name == record.REPLICAS_DIR else "population"
            print(
                f"{kind}: {len(got.records)} records ({record.status_counts(got.records) or 'none'}) -> "
                f"{got.paths[1]} and {got.paths[0].name}",
                flush=True,
            )
            problems += got.problem_lines()
        for line in problems:
            print(line, file=sys.stderr, flush=True)
        bad = [r for r in ours if r.get("status") != "ok"]
        if bad:
            print(
                f"{len(bad)} of {len(ours)} samples not ok ({record.status_counts(bad)}): "
                + ", ".join(str(r.get("run_dir")) for r in bad),
                file=sys.stderr,
                flush=True,
            )
        if bad or problems:
            sys.exit(1)
