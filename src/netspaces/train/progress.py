"""Progress a researcher can read on a terminal: one rich bar per epoch with the epoch
numbered like the log ("epoch 2/5"), the step, images per second, the loss, the lr, the time
spent and the time left in the whole run.

Only on an interactive terminal (trainer.progress_bar, conf/trainer/*.yaml); elsewhere the
one line per epoch that the module logs is all there is. Each epoch's bar is transient and
stopped before the module logs its epoch line, so that line always starts on a line of its
own, never glued onto a bar.

The loss shown is the last training step's, read every `refresh_s` seconds: one host sync
per refresh, and only when a person is watching a terminal.
"""

from __future__ import annotations

import time

from lightning.pytorch.callbacks import Callback
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from netspaces.train.sweep import clock


class RichProgress(Callback):
    """The terminal progress bar of a training run (see the module docstring)."""

    def __init__(self, console: Console | None = None, refresh_s: float = 0.5) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_s = refresh_s
        self._progress: Progress | None = None
        self._task = None
        self._run_started = 0.0
        self._epoch_started = 0.0
        self._last_refresh = 0.0
        self._images = 0
        self._lr = "…"
        self._steps_at_start = 0  # a resumed run counts its own steps for the ETA

    def _total_steps(self, trainer) -> int:
        return int(trainer.max_epochs * trainer.num_training_batches)

    def on_train_start(self, trainer, pl_module) -> None:
        self._run_started = time.perf_counter()
        self._steps_at_start = int(trainer.global_step)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._stop()
        if trainer.global_rank != 0:  # DDP: one bar, drawn by the first process
            return
        self._epoch_started = self._last_refresh = time.perf_counter()
        self._images = 0
        # the lr of this epoch, as the epoch line shows it (the schedule steps between epochs)
        self._lr = f"{trainer.optimizers[0].param_groups[0]['lr']:.4g}"
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),  # the whole line fits a 120-column terminal
            TextColumn("step"),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}  loss {task.fields[loss]}  lr {task.fields[lr]}"),
            TextColumn("elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
            console=self.console,
            transient=True,  # the module's epoch line replaces the finished bar
        )
        self._task = self._progress.add_task(
            f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}",
            total=trainer.num_training_batches,
            speed="… img/s",
            loss="…",
            lr=self._lr,
            elapsed=clock(time.perf_counter() - self._run_started),
            eta="…",
        )
        self._progress.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._progress is None:
            return
        self._images += len(batch[1])
        now = time.perf_counter()
        last = batch_idx + 1 >= trainer.num_training_batches
        if now - self._last_refresh < self.refresh_s and not last:
            return
        self._last_refresh = now
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        done = int(trainer.global_step) - self._steps_at_start
        left = self._total_steps(trainer) - int(trainer.global_step)
        spent = now - self._run_started
        self._progress.update(
            self._task,
            completed=batch_idx + 1,
            speed=f"{self._images / max(now - self._epoch_started, 1e-9):.0f} img/s",
            loss="…" if loss is None else f"{float(loss):.4f}",
            lr=self._lr,
            elapsed=clock(spent),
            eta=clock(spent / done * left) if done > 0 else "…",
        )

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._progress is not None and not trainer.sanity_checking:
            self._progress.update(
                self._task, description=f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} validating"
            )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Lightning calls this before the module's own hook, which logs the epoch line
        self._stop()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._stop()

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
