"""The LightningModule: an injected network trained with cross-entropy, scored by top-k error.

Per-step work is the step itself: the loss is accumulated on the device; every `log_every`
steps the mean loss of those steps and the lr go to the loggers (one host sync then; by default
about ten points per epoch, so a short run still draws a curve), and every `check_every` steps
and at the end of an epoch the loss is checked for NaN/inf (one host sync then).
Per-epoch entries (train loss, lr, time, and the validation errors (%) of the epochs that
were evaluated) are kept in `history`, which travels in checkpoints, so a resumed run reports
its best epoch over the whole run.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from netspaces.train import own_time  # wall/CPU clocks; a packed model's exclude its waits
from netspaces.train.optim import OptimSettings, build_optimizer

log = logging.getLogger(__name__)


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def default_log_every(steps_per_epoch: float) -> int:
    """About ten logged points per epoch, at most 50 steps apart (Lightning's default)."""
    if not math.isfinite(steps_per_epoch) or steps_per_epoch <= 0:
        return 50
    return max(1, min(50, math.ceil(steps_per_epoch / 10)))


class Diverged(RuntimeError):
    """The training loss became NaN or inf: the run ends as `diverged`."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__(f"loss became NaN/inf in epoch {epoch} (by step {step})")
        self.epoch, self.step = epoch, step


class EvalCadence(Callback):
    """Validate every `every` epochs and always after the last one (Lightning's
    check_val_every_n_epoch alone would skip the last epoch when it is not a multiple)."""

    def __init__(self, every: int) -> None:
        self.every = max(1, every)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        due = epoch % self.every == 0 or epoch >= trainer.max_epochs
        # Lightning validates when epoch % check_val_every_n_epoch == 0, read at each epoch
        trainer.check_val_every_n_epoch = 1 if due else epoch + 1


class Classifier(LightningModule):
    def __init__(
        self,
        net: nn.Module,
        optim: OptimSettings,
        *,
        num_classes: int,
        channels_last: bool = True,
        label_smoothing: float = 0.0,
        check_every: int = 50,
        log_every: int | None = None,
    ) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.optim = optim
        self.channels_last = channels_last
        self.label_smoothing = label_smoothing
        self.check_every = max(1, check_every)
        self.log_every = log_every  # None: default_log_every(steps per epoch)
        self.top1 = MulticlassAccuracy(num_classes=num_classes, top_k=1, average="micro")
        self.top5 = MulticlassAccuracy(num_classes=num_classes, top_k=min(5, num_classes), average="micro")
        self.history: list[dict] = []  # one entry per finished epoch
        self.prior_time_s = 0.0  # training time of earlier (interrupted) attempts
        self.prior_cpu_s = 0.0  # and their process CPU time
        self.resumed_from_epoch: int | None = None
        self._started = own_time.wall()
        self._cpu_started = own_time.cpu()
        self._epoch_started = self._started
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._log_interval = 50  # set when training starts
        self._log_loss_sum: torch.Tensor | None = None  # since the last logged step, on the device
        self._log_count = 0
        self._nonfinite: torch.Tensor | None = None
        self._loss_scaled = False  # a GradScaler scales the loss (16-mixed on a GPU)
        self._epoch_lr = optim.lr
        self._val_errors: tuple[float, float] | None = None  # this epoch's, until on_train_epoch_end

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._input(x))

    def configure_optimizers(self):
        opt, sched = build_optimizer(self.net, self.optim)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # ------------------------------------------------------------------ training

    def on_train_start(self) -> None:
        # Under fp16's GradScaler a step whose loss or gradients overflow fp16 is skipped (the
        # weights stay as they were) and the scale is lowered: a passing overflow is not a
        # divergence. A diverged run's loss stays non-finite, so there the check reads only
        # the latest step's loss; elsewhere any non-finite loss since the last check counts.
        self._loss_scaled = getattr(self.trainer.precision_plugin, "scaler", None) is not None
        self._started = own_time.wall()
        self._cpu_started = own_time.cpu()
        self._log_interval = self.log_every or default_log_every(self.trainer.num_training_batches)
        self._log_loss_sum = torch.zeros((), device=self.device)
        self._log_count = 0

    def on_train_epoch_start(self) -> None:
        self._epoch_started = own_time.wall()
        self._loss_sum = torch.zeros((), device=self.device)
        self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
        self._loss_count = 0
        self._epoch_lr = self.trainer.optimizers[0].param_groups[0]["lr"]  # the lr of this epoch

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y, label_smoothing=self.label_smoothing)
        detached = loss.detach()
        self._loss_sum += detached
        if self._loss_scaled:  # 16-mixed: only the latest loss counts (see on_train_start)
            self._nonfinite.copy_(~torch.isfinite(detached))
        else:
            self._nonfinite |= ~torch.isfinite(detached)  # on the device: no sync here
        self._loss_count += 1
        self._log_loss_sum += detached
        self._log_count += 1
        if (self.global_step + 1) % self._log_interval == 0:
            self._log_step()
        if (batch_idx + 1) % self.check_every == 0 or self.trainer.is_last_batch:
            self._check_finite()
        return loss

    def _log_step(self) -> None:
        """The mean loss of the steps since the last logged one (this rank's batches) and the
        lr, straight to the loggers at this step: the only host sync of the interval."""
        mean = float(self._log_loss_sum) / self._log_count
        self._log_loss_sum.zero_()
        self._log_count = 0
        metrics = {
            "train/loss": mean,
            "train/lr": self.trainer.optimizers[0].param_groups[0]["lr"],
            "epoch": self.current_epoch,
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.global_step)

    def _check_finite(self) -> None:
        # every rank reaches this at the same step, so the reduction is collective-safe
        bad = self.trainer.strategy.reduce_boolean_decision(bool(self._nonfinite), all=False)
        if bad:
            raise Diverged(self.current_epoch + 1, self.global_step)

    def _mean_train_loss(self) -> float | None:
        if not self._loss_count:
            return None
        mean = self._loss_sum / self._loss_count
        return float(self.trainer.strategy.reduce(mean, reduce_op="mean"))

    # ------------------------------------------------------------------ validation

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.top1.update(logits, y)
        self.top5.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        # compute() sums the counts of every rank (each image counted once)
        top1 = 100.0 * (1.0 - float(self.top1.compute()))
        top5 = 100.0 * (1.0 - float(self.top5.compute()))
        self.top1.reset()
        self.top5.reset()
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return
        self._val_errors = (round(top1, 4), round(top5, 4))
        self.log_dict({"val/top1_err": top1, "val/top5_err": top5}, sync_dist=False)  # already global

    def on_train_epoch_end(self) -> None:
        # validation (when this epoch has one) ran inside the epoch, before this hook; the
        # checkpoint callback runs after it, so a checkpoint holds this epoch's entry
        top1, top5 = self._val_errors or (None, None)
        self._val_errors = None
        entry = {
            "epoch": self.current_epoch + 1,
            "top1_err": top1,
            "top5_err": top5,
            "train_loss": _round(self._mean_train_loss()),
            "lr": _round(self._epoch_lr),
            "epoch_time_s": round(own_time.wall() - self._epoch_started, 3),
        }
        self.history.append(entry)
        per_epoch = {"train/epoch_loss": entry["train_loss"], "train/epoch_time_s": entry["epoch_time_s"]}
        self.log_dict({k: v for k, v in per_epoch.items() if v is not None}, sync_dist=False)  # already global
        loss = "n/a" if entry["train_loss"] is None else f"{entry['train_loss']:.4f}"
        errors = "not evaluated" if top1 is None else f"top1_err {top1:.2f}%  top5_err {top5:.2f}%"
        log.info(
            "epoch %d/%d  %s  loss %s  lr %.4g  (%.1f s)",
            entry["epoch"],
            self.trainer.max_epochs,
            errors,
            loss,
            entry["lr"],
            entry["epoch_time_s"],
        )

    # ------------------------------------------------------------------ checkpoints

    def train_time_s(self) -> float:
        return self.prior_time_s + (own_time.wall() - self._started)

    def train_cpu_s(self) -> float:
        """CPU time of this process's fit (all its threads): the core-seconds it used, whatever
        else shared the machine (wall time grows with the load, this does not)."""
        return self.prior_cpu_s + (own_time.cpu() - self._cpu_started)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["netspaces"] = {
            "history": list(self.history),
            "train_time_s": self.train_time_s(),
            "train_cpu_s": self.train_cpu_s(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("netspaces", {})
        self.history = list(state.get("history", []))
        self.prior_time_s = float(state.get("train_time_s", 0.0))
        self.prior_cpu_s = float(state.get("train_cpu_s", 0.0))
        self.resumed_from_epoch = len(self.history)
