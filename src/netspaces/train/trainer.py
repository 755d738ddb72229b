"""The Lightning Trainer of a run: callbacks, checkpointing, DDP strategy, and quiet logs."""

from __future__ import annotations

import logging
import sys
import warnings
from datetime import timedelta
from typing import Any

from lightning.pytorch.callbacks import Callback

from netspaces import perf
from netspaces.train.checkpoints import CHECKPOINT_DIR, LAST_CHECKPOINT, AtomicCheckpointIO
from netspaces.train.settings import RunSettings, uses_gpu


def quiet_lightning() -> None:
    """No banners, tips or per-run advice: one line per epoch and the result."""
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "lightning.fabric.utilities.distributed",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",  # in-memory data needs none
        ".*is smaller than the logging interval.*",  # tiny epochs log at the epoch end
        ".*Checkpoint directory.*exists and is not empty.*",  # a resumed run
        ".*logs directory.*exists and is not empty.*",  # a resumed run
        ".*sync_dist=True.*",  # epoch metrics are logged already reduced over ranks
        ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
    ):  # Lightning 2.6 internals, torch 2.14
        warnings.filterwarnings("ignore", message=pattern)


class SignalOwner(Callback):
    """The run's own signal handlers (train/signals.py) are the ones that act: Lightning's fit
    installs its SIGTERM handler after the run's, so they are put back as training starts."""

    def on_train_start(self, trainer, pl_module) -> None:
        from netspaces.train.signals import reassert

        reassert()


def build_trainer(s: RunSettings, loggers: list):
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    t = s.trainer
    gpu = uses_gpu(t.accelerator)
    # one checkpoint, overwritten at the end of every epoch (after validation): what a rerun resumes
    callbacks: list = [
        ModelCheckpoint(
            dirpath=s.run_dir / CHECKPOINT_DIR,
            filename=LAST_CHECKPOINT[:-5],
            monitor=None,
            save_top_k=1,
            save_last=False,
            every_n_epochs=1,
            save_on_train_epoch_end=True,
            enable_version_counter=False,
        ),
        SignalOwner(),
    ]
    if t.eval_every != 1:
        from netspaces.train.module import EvalCadence

        callbacks.append(EvalCadence(t.eval_every or t.epochs))  # 0: only after the last epoch
    if t.ema_decay > 0:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=t.ema_decay))
    progress = sys.stderr.isatty() if t.progress_bar is None else t.progress_bar
    if progress:  # rich bar per epoch (train/progress.py); Lightning's own bar stays off
        from netspaces.train.progress import RichProgress

        callbacks.append(RichProgress())
    plugins: list = [perf.checkpoint_writer(AtomicCheckpointIO(), s.perf, on_gpu=gpu)]
    strategy: Any = "auto"
    if t.distributed:
        from lightning.pytorch.strategies import DDPStrategy

        # the timeout bounds a rank's wait at the rendezvous and in every collective (a hang)
        strategy = DDPStrategy(
            process_group_backend="gloo" if t.accelerator == "cpu" else None,
            timeout=timedelta(seconds=t.collective_timeout_s),
        )
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():  # submitit requeues preempted/timed-out jobs (train/signals.py), not Lightning
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return Trainer(
        accelerator=t.accelerator,
        devices=list(t.device_ids) if t.device_ids else t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=t.precision,
        deterministic=t.deterministic,
        **perf.trainer_options(s.perf, on_gpu=gpu, deterministic=t.deterministic),
        max_epochs=t.epochs,
        logger=loggers,
        callbacks=callbacks,
        plugins=plugins,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps,
        use_distributed_sampler=False,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        default_root_dir=str(s.run_dir),
    )
