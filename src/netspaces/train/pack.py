"""`sweep.pack=K`: one job trains K sampled models on one shared data stream.

Each model runs its own solo code path, `run.train(cfg)` with its own Lightning Trainer
(optimizer, lr schedule, EMA, metrics, checkpoint, record, divergence check), in a thread of
its own; train/pack_stream.py's Relay lets one model run at a time and feeds all of them from
one DataLoader. So a packed model sees exactly the batches of its solo run and computes
exactly what its solo run computes (bit-identical on the CPU in deterministic mode). A model
that diverges, fails or runs out of memory ends with its record saying so; the others go on.
A signal ends every model at its next batch as `interrupted`.
"""

from __future__ import annotations

import copy
import gc
import logging
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from omegaconf import DictConfig, OmegaConf

from netspaces import record
from netspaces.errors import DataError, UserError, one_line
from netspaces.train.pack_plan import block_of, member_dir_name
from netspaces.train.pack_stream import Relay, member_thread

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------- running a pack


@dataclass
class Outcome:
    config: DictConfig
    result: dict | None = None  # the record train() returned
    error: BaseException | None = None  # what train() raised (its record, if any, says so)

    @property
    def run_dir(self) -> Path:
        return Path(str(self.config.paths.run_dir))


def run_pack(
    configs: list[DictConfig],
    train: Callable[..., dict],
    *,
    in_sweep: bool = True,
    on_done: Callable[[Outcome], None] | None = None,
) -> tuple[list[Outcome], Relay]:
    """Train the models of `configs` (one resolved run config each, same data and seed) as
    one pack, each by `train(cfg, in_sweep=...)` (run.train: the solo code path); every
    model's outcome, in order. `on_done` runs in a model's thread when it ends. A signal ends
    every model as `interrupted` and is raised here once all have stopped."""
    from netspaces.train.signals import Interrupted, interruptible

    relay = Relay(len(configs))
    outcomes = [Outcome(c) for c in configs]

    def member(i: int) -> None:
        try:
            with member_thread(relay, i):
                relay.start(i)
                outcomes[i].result = train(configs[i], in_sweep=in_sweep)
        except BaseException as exc:  # noqa: BLE001 — reported by the caller, per model
            outcomes[i].error = exc
        finally:
            relay.leave(i)
        try:
            if on_done is not None:
                on_done(outcomes[i])
            if outcomes[i].error is not None:  # its traceback's frames hold the model: free it for the others
                _drop_frames(outcomes[i].error)
                _release_device_memory()
        finally:
            ended[i].set()

    threads = [
        threading.Thread(target=member, args=(i,), name=Path(str(c.paths.run_dir)).name, daemon=True)
        for i, c in enumerate(configs)
    ]
    # the main thread waits on flags, not Thread.join: a signal handler raising inside join (or
    # is_alive) marks a running thread as stopped on Python 3.11 (its lock released), and the
    # process would then exit under it
    ended = [threading.Event() for _ in configs]

    def wait() -> None:
        while not all(e.is_set() for e in ended):
            time.sleep(0.2)

    with interruptible(), _member_logs(configs):
        try:
            for t in threads:
                t.start()
            wait()
        except Interrupted as sig:
            relay.interrupt(sig.signum)
            for i, t in enumerate(threads):
                if t.ident is None:  # the signal came before this model's thread started
                    relay.leave(i)
                    ended[i].set()
            wait()  # a second signal is ignored (interruptible)
            raise
    for t in threads:
        t.join()
    return outcomes, relay


def _drop_frames(exc: BaseException | None) -> None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def _release_device_memory() -> None:
    """After a model failed (an out-of-memory error, say): its tensors are garbage now; give
    their cached GPU blocks back so the other models of the pack can use them."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _TagThread(logging.Filter):
    """Prefix a pack member's log lines with its run directory's name (the job's log and
    terminal show K models' lines)."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def filter(self, rec: logging.LogRecord) -> bool:
        if rec.threadName in self.names and not getattr(rec, "_pack_tagged", False):
            rec.msg, rec._pack_tagged = f"[{rec.threadName}] {rec.msg}", True
        return True


class _OnlyThread(logging.Filter):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name_ = name

    def filter(self, rec: logging.LogRecord) -> bool:
        return rec.threadName == self.name_


@contextmanager
def _member_logs(configs: list[DictConfig]) -> Iterator[None]:
    """Every model's lines also go to its own run directory's train.log, as a solo job's do."""
    root = logging.getLogger()
    names = {Path(str(c.paths.run_dir)).name for c in configs}
    tag = _TagThread(names)
    shared = list(root.handlers)
    for h in shared:
        h.addFilter(tag)
    fmt = next((h.formatter for h in shared if h.formatter is not None), None)
    own = []
    for c in configs:
        run_dir = Path(str(c.paths.run_dir))
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            h = logging.FileHandler(run_dir / "train.log")
        except OSError:
            continue
        h.addFilter(_OnlyThread(run_dir.name))
        if fmt is not None:
            h.setFormatter(fmt)
        root.addHandler(h)
        own.append(h)
    try:
        yield
    finally:
        for h in own:
            root.removeHandler(h)
            h.close()
        for h in shared:
            h.removeFilter(tag)


# ---------------------------------------------------------------------- the Hydra job


def member_configs(cfg: DictConfig, job_dir: Path) -> list[DictConfig]:
    """One run config per sample of the pack job's block: `sample` and `paths.run_dir` set as
    the sample's solo job would have them, everything else the job's."""
    first, last = block_of(OmegaConf.select(cfg, "sample"))
    out = []
    for i in range(first, last + 1):
        c = copy.deepcopy(cfg)
        c.sample = i
        c.paths.run_dir = str(job_dir.parent / member_dir_name(job_dir.name, first, last, i))
        if sys.stderr.isatty() and OmegaConf.select(c, "trainer.progress_bar") is None:
            c.trainer.progress_bar = False  # K live bars cannot share one terminal: epoch lines instead
        out.append(c)
    return out


def pack_job(cfg: DictConfig, train: Callable[..., dict], claim_identity: Callable) -> list[dict]:
    """The Hydra task of a pack job (sample="a-b"): train the block's models as one pack with
    run.train and report each as its solo job would (the table, "model k of N done"); then,
    like a solo job: a signal exits 128 + its number, a bad value 2, a full disk 1."""
    from netspaces.train.signals import Interrupted
    from netspaces.train.sweep import refresh_population

    job_dir = Path(str(cfg.paths.run_dir))
    configs = member_configs(cfg, job_dir)
    claim_identity(configs[0], job_dir.parent)
    # what each run directory held before: an earlier attempt's row is replaced, a skipped one added once
    priors = {str(Path(str(c.paths.run_dir))): record.read_record(Path(str(c.paths.run_dir))) for c in configs}

    def done(o: Outcome) -> None:
        result = o.result
        if result is None and isinstance(o.error, Interrupted):
            result = record.read_record(o.run_dir)  # its `interrupted` record joins the table too
        if result is None and isinstance(o.error, Exception) and not isinstance(o.error, UserError):
            if isinstance(o.error, DataError):
                print(f"error: {one_line(o.error)} ({o.run_dir}: status failed)", file=sys.stderr, flush=True)
            elif not isinstance(o.error, record.DiskFull):
                log.error("run %s failed; its record says so and the pack goes on", o.run_dir, exc_info=o.error)
            result = record.read_record(o.run_dir)
        if result is not None and "config" in result:
            refresh_population(job_dir.parent, result, priors.get(str(o.run_dir)))

    try:
        outcomes, relay = run_pack(configs, train, in_sweep=True, on_done=done)
    except Interrupted as sig:
        print(
            f"{sig}: pack {job_dir.name} stopped (status interrupted); rerun the same command to resume",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(sig.exit_code)
    log.info("pack %s: %d models, %d batches fetched once each", job_dir.name, len(configs), relay.fetched)
    gc.collect()
    gc.freeze()  # as a solo sweep job does (run.hydra_job)
    for kind, code in ((UserError, 2), (record.DiskFull, 1)):
        bad = next((o.error for o in outcomes if isinstance(o.error, kind)), None)
        if bad is not None:
            print(f"error: {bad}", file=sys.stderr, flush=True)
            sys.exit(code)
    return [o.result or record.read_record(o.run_dir) or {"status": "failed"} for o in outcomes]
