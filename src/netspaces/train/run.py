"""`train(cfg) -> dict`: one run from a resolved config to its result record.

A run (1) checks every value and the data root, (2) skips itself when its directory
already holds a finished record, (3) builds the network, data and Lightning Trainer from
typed settings, (4) fits — resuming from the last per-epoch checkpoint when one exists,
loaded with weights_only=True — and (5) writes `result.json` atomically with status ok,
diverged (NaN/inf loss) or failed (an exception, which is then re-raised).
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from netspaces.errors import UserError
from netspaces.openmp import our_cpus, perf_off
from netspaces.train import records
from netspaces.train.settings import RunSettings, check_data_root, run_settings

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def _quiet_lightning() -> None:
    """No banners, tips or per-run advice: one line per epoch and the result."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*",  # in-memory data needs none
                    ".*is smaller than the logging interval.*",  # tiny epochs log at the epoch end
                    ".*Checkpoint directory.*exists and is not empty.*",  # a resumed run
                    ".*logs directory.*exists and is not empty.*",  # a resumed run
                    ".*sync_dist=True.*",  # epoch metrics are logged already reduced over ranks
                    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*"):  # Lightning 2.6 internals, torch 2.14
        warnings.filterwarnings("ignore", message=pattern)


def _on_gpu(accelerator: str) -> bool:
    import torch

    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def _checkpoint_io(background: bool):
    """Checkpoints written each to a temporary file renamed into place; on a GPU in a
    background thread (from a snapshot taken at the epoch end, so training goes on). On the
    CPU the thread only competes with the training threads for the same cores: a 38 MB
    RegNetX-400MF checkpoint took ~0.1 s written in line and held the epoch's end ~0.2 s
    written beside spinning OpenMP threads (benchmarks/fit_loop_overhead.py)."""
    from lightning.pytorch.plugins.io import AsyncCheckpointIO, TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Write to a temporary file, then rename: a kill mid-save leaves the old checkpoint."""

        def save_checkpoint(self, checkpoint: dict, path, storage_options: Any = None) -> None:
            # torch.save straight to the file: Lightning's own writer serializes into memory
            # first and copies that out through fsspec (0.35 s against 0.1 s for 38 MB here)
            import torch

            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)

    return AsyncCheckpointIO(AtomicCheckpointIO()) if background else AtomicCheckpointIO()


def build_trainer(s: RunSettings, loggers: list):
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar

    t = s.trainer
    # one checkpoint, overwritten at the end of every epoch (after validation): what a rerun resumes
    callbacks: list = [ModelCheckpoint(dirpath=s.run_dir / CHECKPOINT_DIR, filename=LAST_CHECKPOINT[:-5],
                                       monitor=None, save_top_k=1, save_last=False, every_n_epochs=1,
                                       save_on_train_epoch_end=True, enable_version_counter=False)]
    if t.eval_every > 1:
        from netspaces.train.module import EvalCadence

        callbacks.append(EvalCadence(t.eval_every))
    if t.ema_decay > 0:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=t.ema_decay))
    if t.accelerator == "cpu" and not perf_off("share_cpus"):
        from netspaces.train.share_cpus import ShareCpus

        callbacks.append(ShareCpus(deterministic=t.deterministic))
    progress = sys.stderr.isatty() if t.progress_bar is None else t.progress_bar
    if progress:
        callbacks.append(TQDMProgressBar(refresh_rate=20))
    plugins: list = [_checkpoint_io(background=_on_gpu(t.accelerator))]
    strategy: Any = "auto"
    if t.distributed:
        from lightning.fabric.plugins.environments import SLURMEnvironment
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo" if t.accelerator == "cpu" else None)
        if SLURMEnvironment.detect():  # submitit requeues preempted/timed-out jobs, not Lightning
            plugins.append(SLURMEnvironment(auto_requeue=False))
    gpu = t.accelerator in ("gpu", "cuda")
    return Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=t.precision, deterministic=t.deterministic, benchmark=gpu and not t.deterministic,
        max_epochs=t.epochs, logger=loggers, callbacks=callbacks, plugins=plugins,
        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps, use_distributed_sampler=False,
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        default_root_dir=str(s.run_dir))


def _summary(history: list[dict], status: str) -> dict:
    errs = [h["top1_err"] for h in history if h.get("top1_err") is not None]
    last = history[-1] if history else {}
    return {"top1_err": last.get("top1_err") if status == "ok" else None,
            "top1_err_best": min(errs) if errs else None,
            "top5_err": last.get("top5_err") if status == "ok" else None,
            "epochs": len(history)}


def _record(s: RunSettings, cfg: DictConfig, info: dict, status: str, *, history: list[dict],
            train_time_s: float | None, diverged_at: dict | None = None, error: str | None = None,
            resumed_from_epoch: int | None = None) -> dict:
    import lightning
    import torch

    import netspaces

    return {
        "status": status, "name": info.get("name"), "space": info.get("space"), "regime": info.get("regime"),
        "block": info.get("block"), "sample": info.get("sample"), "sweep_seed": info.get("sweep_seed"),
        "seed": s.seed, "model": info.get("model"), "arch": info.get("arch"),
        "flops": info.get("flops"), "params": info.get("params"), "acts": info.get("acts"),
        **_summary(history, status), "epochs_planned": s.trainer.epochs,
        "train_time_s": None if train_time_s is None else round(train_time_s, 3),
        "diverged_at": diverged_at, "error": error, "resumed_from_epoch": resumed_from_epoch,
        "data": s.data.name, "schedule": OmegaConf.select(cfg, "schedule.name"), "sweep": s.sweep_name,
        "lr": s.optim.lr, "global_batch": s.optim.global_batch, "world_size": s.trainer.world_size,
        "trained": info.get("trained"), "history": history, "run_dir": str(s.run_dir),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
        "versions": {"netspaces": netspaces.__version__, "torch": torch.__version__,
                     "lightning": lightning.__version__},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def _keep_checkpoint(s: RunSettings, in_sweep: bool) -> bool:
    return (not in_sweep) if s.trainer.keep_checkpoint is None else s.trainer.keep_checkpoint


def train(cfg: DictConfig, *, in_sweep: bool = False) -> dict:
    """Train the model `cfg` describes; returns its record (also in paths.run_dir/result.json)."""
    s = run_settings(cfg)  # every value check, before anything is written
    check_data_root(s.data)
    done = records.read_record(s.run_dir)
    if done is not None and done.get("status") in records.DONE:
        log.info("%s already has a record (status %s): skipped", s.run_dir, done["status"])
        return done

    _quiet_lightning()
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from netspaces.train.loggers import publish_record
    from netspaces.train.module import Diverged

    started = time.perf_counter()
    m = s.model  # what the record says if the run fails before its network exists
    info: dict = {"model": m.name if m.kind != "sampled" else "sampled", "space": m.space, "regime": m.regime,
                  "block": m.block, "sample": m.sample if m.kind == "sampled" else None,
                  "sweep_seed": m.sweep_seed if m.kind == "sampled" else None}
    module = None
    status, diverged_at = "ok", None
    try:
        datamodule, network, module, loggers = _prepare(s, cfg)
        info = network.info
        if rank_zero_only.rank == 0:
            _announce(s, info, datamodule)
        _fit(s, cfg, module, datamodule, loggers)
    except UserError:
        raise  # a bad value: no record (the run never started)
    except Diverged as d:
        status, diverged_at = "diverged", {"epoch": d.epoch, "step": d.step}
        log.warning("%s diverged: %s", info.get("name"), d)
    except Exception as exc:
        if rank_zero_only.rank == 0:
            record = _record(s, cfg, info, "failed", history=module.history if module else [],
                             train_time_s=time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}",
                             resumed_from_epoch=module.resumed_from_epoch if module else None)
            records.write_record(s.run_dir, record)
        raise
    if rank_zero_only.rank != 0:
        return {"status": status}
    record = _record(s, cfg, info, status, history=module.history, train_time_s=module.train_time_s(),
                     diverged_at=diverged_at, resumed_from_epoch=module.resumed_from_epoch)
    path = records.write_record(s.run_dir, record)
    publish_record(loggers, record, path)
    if not _keep_checkpoint(s, in_sweep):
        shutil.rmtree(s.run_dir / CHECKPOINT_DIR, ignore_errors=True)
    _print_result(record, path)
    return record


def _prepare(s: RunSettings, cfg: DictConfig):
    """Data, network, LightningModule and loggers of a run, seeded."""
    import torch
    from lightning.pytorch import seed_everything

    from netspaces.train.data import make_datamodule
    from netspaces.train.loggers import make_loggers
    from netspaces.train.module import Classifier
    from netspaces.train.network import build_network

    t = s.trainer
    torch.set_num_threads(_threads(s))
    # Late in training on small data the gradients go denormal, and x86 CPUs then run many times
    # slower (the last digits epochs took ~1.7x as long); flushing them to zero changes no result
    # seen here (same errors, still deterministic). GPUs flush by default.
    torch.set_flush_denormal(not perf_off("flush_denormal"))
    # Deterministic mode also fills every new tensor with NaN, a debugging aid against reading
    # uninitialized memory: one more pass per allocation, 1.2x the step time at 224 px here
    # (benchmarks/train_step_vs_timm.py). Results stay deterministic without it.
    torch.utils.deterministic.fill_uninitialized_memory = perf_off("skip_nan_fill")
    if not _on_gpu(t.accelerator) and not perf_off("malloc"):  # the activations live in host memory: reuse it (netspaces.malloc)
        from netspaces.malloc import keep_freed_memory

        keep_freed_memory()
    seed_everything(s.seed, workers=True, verbose=False)
    datamodule = make_datamodule(s.data)
    datamodule.setup("fit")  # the number of classes sizes the head
    network = build_network(replace(s.model, num_classes=datamodule.num_classes))
    module = Classifier(network.module, s.optim, num_classes=datamodule.num_classes,
                        channels_last=t.channels_last, label_smoothing=t.label_smoothing,
                        check_every=t.log_every_n_steps, fold_bn_eval=t.fold_bn_eval)
    info = network.info
    tags = tuple(str(x) for x in (info.get("space"), info.get("regime"), info.get("model")) if x)
    loggers = make_loggers(replace(s.logger, run_name=info.get("name"), tags=tags + s.logger.tags),
                           OmegaConf.to_container(cfg, resolve=True))
    return datamodule, network, module, loggers


def _threads(s: RunSettings) -> int:
    """trainer.threads, else OMP_NUM_THREADS (joblib's workers get cpus / n_jobs there), else
    this node's CPUs shared among its ranks."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return s.trainer.threads or (int(env) if env.isdigit() and int(env) > 0 else max(1, len(our_cpus()) // s.trainer.devices))


@contextmanager
def settled_gc():
    """Training without the collector rescanning what was built before it: the ~500,000 objects
    of torch, Lightning, Hydra and the network are frozen out of its view for the fit (a full
    collection over them took 0.25 s in the middle of an epoch here) and handed back after."""
    if perf_off("gc_freeze"):
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _fit(s: RunSettings, cfg: DictConfig, module, datamodule, loggers) -> None:
    """fit, resuming from the last checkpoint; this process starts the other DDP ranks if needed."""
    from netspaces.train import ddp

    ckpt = s.run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    resume = ckpt if ckpt.is_file() else None
    if resume is not None:
        log.info("resuming from %s", ckpt)
    trainer = build_trainer(s, loggers)
    if s.trainer.distributed and not ddp.externally_launched():
        with ddp.local_ranks(OmegaConf.to_yaml(cfg, resolve=True), s.run_dir, s.trainer.devices, _threads(s)), \
                settled_gc():
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    else:
        with settled_gc():
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)


def _announce(s: RunSettings, info: dict, datamodule) -> None:
    arch = info.get("arch") or {}
    shape = f"ws {arch['ws']} ds {arch['ds']}, " if arch.get("ws") else ""
    log.info("%s: %s%.0f MF, %.2f M params | %s at %d px: %d train / %d val images | %s x%d, %d epochs, "
             "lr %.3g, batch %d -> %s", info.get("name"), shape, info["flops"] / 1e6, info["params"] / 1e6,
             s.data.name, s.data.resolution, len(datamodule.train_set), len(datamodule.val_set),
             s.trainer.accelerator, s.trainer.world_size, s.trainer.epochs, s.optim.lr, s.optim.global_batch,
             s.run_dir)


def _print_result(record: dict, path: Path) -> None:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}%"

    print(f"{record['name']}: {record['status']}, top-1 error {pct(record['top1_err'])} "
          f"(best {pct(record['top1_err_best'])}), top-5 error {pct(record['top5_err'])}, "
          f"{record['epochs']} epochs in {record['train_time_s']:.1f} s -> {path}", flush=True)


def hydra_job(cfg: DictConfig) -> dict | None:
    """The Hydra task: bad values end the process with one line (exit 2); in a sweep, a
    failed run is recorded and the sweep goes on; a single run re-raises (exit 1)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        record = train(cfg, in_sweep=in_sweep)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except Exception:
        if not in_sweep:
            raise
        log.exception("run %s failed; its record says so and the sweep goes on", cfg.paths.run_dir)
        record = records.read_record(Path(str(cfg.paths.run_dir))) or {"status": "failed"}
    if in_sweep:  # free this run's network and trainer (reference cycles) before the next run starts
        gc.collect()
    if in_sweep and "config" in record:  # the full record: rank 0 (SLURM runs every rank's task)
        from netspaces.train.sweep import refresh_population

        refresh_population(Path(str(cfg.paths.run_dir)).parent)
    return record


__all__ = ["train", "hydra_job", "build_trainer"]
