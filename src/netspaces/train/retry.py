"""Retries of a failed sample, inside its own sweep job: up to sweep.retries more attempts.

Why in the job and not a re-launch of the failed ones when the sweep ends: it works the
same under every launcher (the basic one, joblib's workers, submitit/SLURM tasks) without
reaching into the launcher; the retry reuses the job's allocation (its GPU, its warm data)
instead of queueing a second round behind a thousand-task array; and nothing but the
failed sample is touched. A retry resumes from the sample's last epoch checkpoint (a
`failed` record is never final), so it costs at most the epoch in progress.

Not retried: a bad value (the run never started), a data file that cannot be read (it
reads the same bytes again; the record names the file), a full disk (every next write
fails too), signals (Interrupted, SystemExit: they are not Exceptions), DDP jobs whose
ranks the cluster started as separate tasks (one rank cannot start over alone) and the
members of a packed job (train/pack.py: they share one data stream). A process
that dies outright (SIGKILL, out of memory, a lost node) is not retried here either: the
same command resumes it, and SLURM requeues preempted tasks.
"""

from __future__ import annotations

import gc
import logging
from typing import Callable

from omegaconf import DictConfig

from netspaces.errors import DataError, UserError, one_line
from netspaces.record import DiskFull

log = logging.getLogger(__name__)

NOT_RETRIED = (UserError, DataError, DiskFull)


def retries_of(cfg: DictConfig) -> int:
    """sweep.retries for this job: 0 where one attempt is all a job can make."""
    from netspaces.train.settings import _int, trainer_settings

    try:
        retries = _int(cfg, "sweep.retries", lo=0)
        t = trainer_settings(cfg)
    except UserError:
        return 0  # the run refuses the value with one line
    if t.distributed:
        from netspaces.train.ddp import externally_launched

        if externally_launched():
            return 0
    return retries


def with_retries(attempt: Callable[[int], dict], retries: int, what: str) -> dict:
    """attempt(1), and after a failure attempt(2), … up to 1 + retries attempts; the last
    failure is raised. Each retry is one log line naming the error."""
    for n in range(1, retries + 2):
        try:
            return attempt(n)
        except NOT_RETRIED:
            raise
        except Exception as exc:
            if n > retries:
                raise
            log.warning(
                "%s failed on attempt %d of %d (%s): trying again from its last checkpoint",
                what,
                n,
                retries + 1,
                f"{type(exc).__name__}: {one_line(exc)}",
            )
            gc.collect()  # the failed attempt's network and trainer, before the next is built
            _empty_cuda_cache()
    raise AssertionError("unreachable")


def _empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
