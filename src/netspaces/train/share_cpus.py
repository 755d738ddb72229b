"""A Lightning callback: while OpenMP threads spin, watch for other processes competing for
the CPUs; give them CPUs back (and take them again once free) when the run is not
deterministic, else say once what to do about the slowdown (netspaces.openmp)."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.callbacks import Callback

from netspaces import openmp

log = logging.getLogger(__name__)


class ShareCpus(Callback):
    def __init__(self, *, deterministic: bool, every_s: float = 2.0) -> None:
        self.deterministic, self.every_s = deterministic, every_s
        self.governor: openmp.ThreadGovernor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        threads = torch.get_num_threads()
        if openmp.spinning() and threads > 1:  # sleeping threads or a lone thread: nothing spins
            self.governor = openmp.ThreadGovernor(threads, self._set_threads, adjust=not self.deterministic,
                                                  warn=self._warn, every_s=self.every_s)

    def _set_threads(self, n: int) -> None:
        torch.set_num_threads(n)
        log.info("other processes are using these CPUs: training on %d of %d threads", n, self.governor.threads)

    @staticmethod
    def _warn(busy: float) -> None:
        log.warning("other processes now keep %.1f CPUs busy while this run's OpenMP threads spin: steps can "
                    "be several times slower. On a shared machine start runs with OMP_WAIT_POLICY=PASSIVE, or "
                    "trainer.deterministic=false to let the run use fewer threads meanwhile", busy)

    def on_train_batch_end(self, *args) -> None:
        if self.governor is not None:
            self.governor.tick()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.governor is not None and self.governor.current != self.governor.threads:
            torch.set_num_threads(self.governor.threads)
