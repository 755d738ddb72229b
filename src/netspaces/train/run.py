"""`train(cfg) -> dict`: one run from a resolved config to its result record.

A run (1) checks every value and the data, (2) skips itself when its directory already
holds a finished record, (3) builds the network, data and Lightning Trainer from typed
settings, (4) fits, resuming from the last per-epoch checkpoint when one exists, and
(5) writes `result.json` atomically with status ok, diverged (NaN/inf loss) or failed (an
exception, which is then re-raised). `hydra_job` is the Hydra task around it.
"""

from __future__ import annotations

import gc
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from netspaces import record
from netspaces.errors import DataError, UserError, one_line
from netspaces.train.settings import RunSettings, precision_used, run_settings, uses_gpu

log = logging.getLogger(__name__)


def train(cfg: DictConfig, *, in_sweep: bool = False, attempt: int = 1) -> dict:
    """Train the model `cfg` describes; returns its record (also in paths.run_dir/result.json).
    `attempt`: which try of its sweep job this is (train/retry.py), recorded."""
    from netspaces.train.image_tree import shared_listings

    with shared_listings():
        return _train(cfg, in_sweep, attempt)


def _train(cfg: DictConfig, in_sweep: bool, attempt: int = 1) -> dict:
    from netspaces.train import identity
    from netspaces.train.data import check_data

    s = run_settings(cfg)  # every value check, before anything is written
    check_data(s.data)
    ident, _ = identity.of(cfg)
    from netspaces.train.checkpoints import CHECKPOINT_DIR

    for tmp in record.remove_partial_writes(s.run_dir) + record.remove_partial_writes(s.run_dir / CHECKPOINT_DIR):
        log.info("removed %s, left by an interrupted write", tmp)
    done, broken = record.load_record(s.run_dir / record.RECORD_FILE)
    if broken:  # kept for inspection; this run redoes the sample
        aside = s.run_dir / f"{record.RECORD_FILE}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        (s.run_dir / record.RECORD_FILE).replace(aside)
        log.warning(
            "%s was %s: kept as %s, the sample is trained again", s.run_dir / record.RECORD_FILE, broken, aside.name
        )
    if done is not None and done.get("status") in record.DONE and done.get("identity") == ident:
        log.info("%s already has a record (status %s): skipped", s.run_dir, done["status"])
        return done
    if done is not None and done.get("identity") != ident:
        _set_aside(s.run_dir, done)

    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from netspaces.train.loggers import publish_record
    from netspaces.train.module import Diverged
    from netspaces.train.results import make_record, network_stub, result_line
    from netspaces.train.signals import Interrupted, interruptible
    from netspaces.train.trainer import quiet_lightning

    quiet_lightning()
    started = time.perf_counter()
    info = network_stub(s)  # what the record says if the run fails before its network exists
    module = None
    loggers: list = []
    status, diverged_at = "ok", None

    def ended(status: str, error: str, publish: bool = True) -> None:
        if rank_zero_only.rank == 0:
            rec = make_record(
                s,
                cfg,
                info,
                status,
                identity=ident,
                history=module.history if module else [],
                train_time_s=module.train_time_s() if module else time.perf_counter() - started,
                train_cpu_s=module.train_cpu_s() if module else None,
                error=error,
                resumed_from_epoch=module.resumed_from_epoch if module else None,
                attempt=attempt,
            )
            path = None
            try:
                path = record.write_record(s.run_dir, rec)
            except record.DiskFull:
                pass  # the error being reported says why; nothing more can be written
            if status == "failed" and publish:  # the sweep goes on in this process: end this sample's W&B run
                publish_record(loggers, rec, path)  # (a signal ends the process; W&B closes at exit)

    try:
        with interruptible():
            datamodule, network, module, loggers = _prepare(s, cfg, ident)
            info = network.info
            if rank_zero_only.rank == 0:
                _announce(s, info, datamodule)
            # a DDP rank 0 that cannot leave a collective when another rank died: the record, then exit
            _fit(s, cfg, module, datamodule, loggers, on_stuck=lambda why: ended("failed", why, publish=False))
    except UserError:
        raise  # a bad value: no record (the run never started)
    except Diverged as d:
        status, diverged_at = "diverged", {"epoch": d.epoch, "step": d.step}
        log.warning("%s diverged: %s", info.get("name"), d)
    except Interrupted as sig:
        done_epochs = len(module.history) if module else 0
        ended("interrupted", f"{sig} after {done_epochs} finished epoch(s); the last epoch's checkpoint is kept")
        raise
    except record.DiskFull:
        raise
    except Exception as exc:
        ended("failed", f"{type(exc).__name__}: {one_line(exc)}")
        raise
    if rank_zero_only.rank != 0:
        return {"status": status}
    result = make_record(
        s,
        cfg,
        info,
        status,
        identity=ident,
        history=module.history,
        train_time_s=module.train_time_s(),
        train_cpu_s=module.train_cpu_s(),
        diverged_at=diverged_at,
        resumed_from_epoch=module.resumed_from_epoch,
        attempt=attempt,
    )
    path = record.write_record(s.run_dir, result)
    publish_record(loggers, result, path)
    if not _keep_checkpoint(s, in_sweep):
        shutil.rmtree(s.run_dir / CHECKPOINT_DIR, ignore_errors=True)
    print(result_line(result, path), flush=True)
    return result.to_dict()


def _set_aside(run_dir: Path, old: dict) -> None:
    """A record of another identity in this run directory (written by other code or by
    hand): kept under another name, never mixed with this run's."""
    tag = (old.get("identity") or "unknown")[:6]
    target = Path(run_dir) / f"{record.RECORD_FILE}.{tag}.set-aside"
    (Path(run_dir) / record.RECORD_FILE).replace(target)
    log.warning("%s held a record of another experiment (identity %s): moved to %s", run_dir, tag, target.name)


def _spread_over_gpus(cfg: DictConfig, job_num: int) -> None:
    """joblib jobs get their own GPU(s), round-robin (settings.joblib_devices); written into
    the job's config, so its DDP ranks and its record use the same ones."""
    import torch

    from netspaces.train.settings import joblib_devices

    ids = joblib_devices(cfg, job_num, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if ids is not None:
        cfg.trainer.devices = ids


def _keep_checkpoint(s: RunSettings, in_sweep: bool) -> bool:
    return (not in_sweep) if s.trainer.keep_checkpoint is None else s.trainer.keep_checkpoint


def _prepare(s: RunSettings, cfg: DictConfig, ident: str | None = None):
    """Data, network, LightningModule and loggers of a run, seeded; `ident` (the population
    identity) names its W&B run and group."""
    import torch
    from lightning.pytorch import seed_everything

    from netspaces import perf
    from netspaces.train.checkpoints import usable_checkpoint
    from netspaces.train.loggers import make_loggers
    from netspaces.train.module import Classifier
    from netspaces.train.network import build_network
    from netspaces.train.pack_stream import shared_datamodule

    t = s.trainer
    torch.set_num_threads(t.threads)
    perf.process_setup(s.perf, on_gpu=uses_gpu(t.accelerator), precision=precision_used(t))
    seed_everything(s.seed, workers=True, verbose=False)
    _, epochs_done = usable_checkpoint(s.run_dir)  # a broken one is set aside here, once
    datamodule = shared_datamodule(s.data)  # a new one; in a pack (sweep.pack) the pack's shared data
    datamodule.setup("fit")  # the number of classes sizes the head
    network = build_network(replace(s.model, num_classes=datamodule.num_classes))
    module = Classifier(
        perf.compile_network(network.module, t.compile),
        s.optim,
        num_classes=datamodule.num_classes,
        channels_last=t.channels_last,
        label_smoothing=t.label_smoothing,
        check_every=t.check_every_n_steps,
        log_every=t.log_every_n_steps,
    )
    info = network.info
    tags = tuple(str(x) for x in (info.get("space"), info.get("regime"), info.get("model")) if x)
    loggers = make_loggers(
        replace(s.logger, run_name=info.get("name"), tags=tags + s.logger.tags),
        OmegaConf.to_container(cfg, resolve=True),
        resumed_epochs=epochs_done,
        identity=ident,
        info=info,
    )
    return datamodule, network, module, loggers


def _fit(s: RunSettings, cfg: DictConfig, module, datamodule, loggers, on_stuck=None) -> None:
    """fit, resuming from the last checkpoint; this process starts the other DDP ranks if needed."""
    from netspaces.train import ddp
    from netspaces.train.checkpoints import usable_checkpoint
    from netspaces.train.trainer import build_trainer

    resume, epochs_done = usable_checkpoint(s.run_dir)
    if resume is not None:
        log.info("resuming from %s (%d epoch(s) done)", resume, epochs_done)
    trainer = build_trainer(s, loggers)
    if s.trainer.distributed and not ddp.externally_launched():
        with ddp.local_ranks(
            OmegaConf.to_yaml(cfg, resolve=True),
            s.run_dir,
            s.trainer.devices,
            s.trainer.threads,
            timeout_s=s.trainer.collective_timeout_s,
            on_stuck=on_stuck,
        ):
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    else:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)


def _announce(s: RunSettings, info: dict, datamodule) -> None:
    arch = info.get("arch") or {}
    shape = f"ws {arch['ws']} ds {arch['ds']}, " if arch.get("ws") else ""
    log.info(
        "%s: %s%.0f MF, %.2f M params | %s at %d px: %d train / %d val images | %s x%d, %d epochs, "
        "lr %.3g, batch %d -> %s",
        info.get("name"),
        shape,
        info["flops"] / 1e6,
        info["params"] / 1e6,
        s.data.name,
        s.data.resolution,
        len(datamodule.train_set),
        len(datamodule.val_set),
        s.trainer.accelerator,
        s.trainer.world_size,
        s.trainer.epochs,
        s.optim.lr,
        s.optim.global_batch,
        s.run_dir,
    )


def hydra_job(cfg: DictConfig) -> dict | None:
    """The Hydra task. Bad values end the process with one line (exit 2); a signal ends the
    sample as `interrupted` and the process with 128 + the signal; a full disk ends it with
    one line (exit 1: every next sample would fail too). Otherwise, in a sweep, a failed run
    is recorded and the sweep goes on; a single run that failed exits 1 (with a traceback
    only for an unexpected error, which is a bug)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from netspaces.train.ddp import RankFailed
    from netspaces.train.hydra_conf import replica_of
    from netspaces.train.pack_plan import block_of
    from netspaces.train.retry import retries_of, with_retries
    from netspaces.train.signals import Interrupted

    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if in_sweep and block_of(OmegaConf.select(cfg, "sample")) is not None:  # sweep.pack: K models, one job
        from netspaces.train.pack import pack_job

        return pack_job(cfg, train, _claim_identity)
    replica = replica_of(OmegaConf.select(cfg, "sample")) if in_sweep else None
    if replica is not None:  # sweep.replicas: sample i again with training seed + j (its own identity)
        cfg.sample, cfg.seed = replica[0], int(cfg.seed) + replica[1]
    if in_sweep and "joblib" in str(HydraConfig.get().launcher.get("_target_", "")).lower():
        _spread_over_gpus(cfg, HydraConfig.get().job.num)
    run_dir = Path(str(cfg.paths.run_dir))
    prior = None
    if in_sweep:
        _claim_identity(cfg, run_dir.parent)
        prior = record.read_record(run_dir)  # an earlier attempt's record: its table row is replaced
    try:
        retries = retries_of(cfg) if in_sweep else 0  # a failed sample is tried again within its job
        result = with_retries(lambda n: train(cfg, in_sweep=in_sweep, attempt=n), retries, str(run_dir))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except Interrupted as sig:
        if in_sweep:  # its `interrupted` record joins the table like any other
            _add_to_table(run_dir, prior)
        if sig.requeue is None:
            print(
                f"{sig}: {run_dir} stopped (status interrupted); rerun the same command to resume",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(sig.exit_code)
        result = _requeue(sig, run_dir, in_sweep)
        if in_sweep:
            return result  # submitit did not requeue it: the sweep goes on (its row is in)
    except record.DiskFull as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except (DataError, RankFailed) as exc:  # a bad file, a dead DDP rank: the record says which
        print(f"error: {one_line(exc)} ({run_dir}: status failed)", file=sys.stderr, flush=True)
        if not in_sweep:
            sys.exit(1)
        result = record.read_record(run_dir) or {"status": "failed"}
    except Exception:
        if not in_sweep:
            raise
        log.exception("run %s failed; its record says so and the sweep goes on", run_dir)
        result = record.read_record(run_dir) or {"status": "failed"}
    if in_sweep:  # free this run's network and trainer (reference cycles) before the next run starts
        gc.collect()
        # what survived (modules, caches: ~1M objects with Lightning) is never scanned again:
        # the next collections (joblib's worker after each job, this one after the next run,
        # the interpreter's at exit) take milliseconds instead of 0.3-1 s each
        gc.freeze()
    if in_sweep and "config" in result:  # the full record: rank 0 (SLURM runs every rank's task)
        _add_to_table(run_dir, prior, result)  # and "model k of N done" for the sweep
    return result


def _add_to_table(run_dir: Path, prior: dict | None, result: dict | None = None) -> None:
    from netspaces.train.sweep import refresh_population

    result = result if result is not None else record.read_record(run_dir)
    if result is not None and "config" in result:
        refresh_population(run_dir.parent, result, prior)


def _requeue(sig, run_dir: Path, in_sweep: bool) -> dict:
    """Under submitit, once the run's `interrupted` record is written: its checkpoint-and-
    requeue, which ends this process when the job is requeued (it then resumes from the last
    epoch checkpoint). Where submitit does not requeue (too many time-outs), the sample stays
    interrupted: a sweep goes on and names it at its end; a single run exits."""
    print(
        f"{sig}: {run_dir} stopped (status interrupted); submitit requeues the job, which resumes "
        "from the last epoch checkpoint",
        file=sys.stderr,
        flush=True,
    )
    try:
        sig.requeue(sig.signum, None)
    except Exception as exc:  # noqa: BLE001 — submitit's reason not to requeue
        print(f"{run_dir} not requeued ({one_line(exc)}): rerun the sweep command to resume it", file=sys.stderr)
    if not in_sweep:
        sys.exit(sig.exit_code)
    return record.read_record(run_dir) or {"status": "interrupted"}


def _claim_identity(cfg: DictConfig, sweep_dir: Path) -> None:
    """A sweep directory records the identity of its population (the launching process
    writes it for the sweep's own runs; a job of another identity, sent to its own
    directory, writes it there)."""
    from netspaces.train import identity

    if identity.read_identity(sweep_dir) is None:
        try:
            h, p = identity.of(cfg)
        except UserError:
            return  # train() refuses the value with one line
        identity.write_identity(sweep_dir, h, p)


__all__ = ["train", "hydra_job"]
