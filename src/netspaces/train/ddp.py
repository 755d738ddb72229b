"""Single-node DDP that is safe under Hydra multirun and every launcher, and fails fast.

Lightning's own `ddp` launcher starts ranks 1..N-1 by re-running `sys.argv`; under Hydra
that re-runs the whole command — with `-m`, every rank re-launches the whole sweep — and
Hydra's run-dir rewriting does not know the sweep's job directories. Instead the job's
process (rank 0) writes its resolved config to the run directory and starts the other
ranks as `python -m netspaces.train.worker CONFIG`, each running exactly this job. With
LOCAL_RANK set, Lightning treats the processes as launched externally and only connects
them. Under SLURM (one task per GPU) or torchrun, the cluster starts the ranks and this
module stays out of the way.

A dead rank stops the whole job within seconds, rank 0 included: this process hosts the
ranks' rendezvous store (as torchrun's agent does) and watches the workers. When one dies it
ends the others, closes the store (rank 0 waiting at the rendezvous gets an error) and aborts
an NCCL process group (rank 0 waiting in a collective gets an error; with gloo the dead
peers' closed sockets already do that). Rank 0 then leaves training with `RankFailed`, which
names the rank, how it ended and its last output lines: the run's `failed` record. A rank that
hangs without dying is bounded by `trainer.collective_timeout_s`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Callable, Iterator

from netspaces.record import write_atomic

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0  # after a rank died: how long rank 0 may take to leave its collective
LAST_LINES = 5  # of a dead rank's output, in its record
_ENV_KEYS = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "NODE_RANK",
    "LOCAL_RANK",
    "TORCHELASTIC_USE_AGENT_STORE",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING",
)


class RankFailed(RuntimeError):
    """A DDP rank of this job died; the message names it, how it ended and its last lines."""


def externally_launched() -> bool:
    """True when a cluster or launcher already started one process per rank."""
    if "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


class Worker:
    """A rank started by this job, its output forwarded line by line (prefixed `[rank k]`)
    and its last lines kept for the record."""

    def __init__(self, rank: int, world: int, proc: subprocess.Popen) -> None:
        self.rank, self.world, self.proc = rank, world, proc
        self.tail: deque[str] = deque(maxlen=LAST_LINES)
        self._pump = threading.Thread(target=self._forward, daemon=True)
        self._pump.start()

    def _forward(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.strip():
                self.tail.append(line.strip())
            print(f"[rank {self.rank}] {line}", file=sys.stderr, flush=True)

    def failed(self) -> bool:
        return self.proc.poll() not in (None, 0)

    def describe(self) -> str:
        """One line: which rank, how it ended, what it printed last."""
        self._pump.join(timeout=2.0)  # the last lines it wrote before it died
        code = self.proc.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        last = " | ".join(line[:300] for line in self.tail) or "(it printed nothing)"
        return f"DDP rank {self.rank} of {self.world} died ({how}); its last lines: {last}"


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when the job's process dies, which would
    otherwise leave it waiting in a collective until the timeout."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_worker(rank: int, world: int, cfg_path: Path, env: dict[str, str]) -> Worker:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netspaces.train.worker", str(cfg_path)],
        env={**os.environ, **env, "LOCAL_RANK": str(rank)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    return Worker(rank, world, proc)


def stop_workers(workers: list[Worker], grace_s: float = 10.0) -> None:
    """SIGTERM (a worker exits quietly), then SIGKILL for one stuck in a collective."""
    for w in workers:
        if w.proc.poll() is None:
            w.proc.terminate()
    deadline = time.monotonic() + grace_s
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()


def first_dead(workers: list[Worker]) -> Worker | None:
    return next((w for w in workers if w.failed()), None)


class Watch:
    """Which worker died first. A worker this job stops itself exits non-zero too, so the
    first death is decided once, under a lock, and never after rank 0 left the block."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.culprit: Worker | None = None
        self._lock = threading.Lock()
        self._closed = False

    def check(self) -> Worker | None:
        """The first dead worker, decided at the first call that sees one (None once closed)."""
        with self._lock:
            if self.culprit is None and not self._closed:
                self.culprit = first_dead(self.workers)
            return None if self._closed else self.culprit

    def close(self, wait_s: float = 0.0) -> Worker | None:
        """Rank 0 left the block: no later death counts. Waits up to `wait_s` for one first
        (rank 0's error is usually the dead rank's closed socket, seen before its exit)."""
        for _ in range(int(wait_s / 0.1)):
            if self.check() is not None:
                break
            time.sleep(0.1)
        with self._lock:
            self._closed = True
            return self.culprit


def abort_collectives() -> None:
    """Abort this process's NCCL process group from another thread, so that rank 0 blocked
    in a collective gets an error now (gloo needs nothing: a dead peer's sockets close)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
            from torch.distributed.distributed_c10d import _abort_process_group

            _abort_process_group()
    except Exception as exc:  # noqa: BLE001 — a best effort; the stop grace still bounds the wait
        log.warning("could not abort the NCCL process group: %s", exc)


class Rendezvous:
    """The ranks' TCP store, hosted by this process as torchrun's agent hosts it: every rank,
    rank 0 included, connects as a client, so closing it ends a rendezvous that waits for a
    dead rank."""

    def __init__(self, world: int, timeout_s: float) -> None:
        from torch.distributed import TCPStore

        self._store = [TCPStore("127.0.0.1", 0, world, True, timedelta(seconds=timeout_s), wait_for_workers=False)]
        self.port = self._store[0].port

    def close(self) -> None:
        self._store.clear()  # the last reference: the server stops, waiting clients get an error


def _watch(
    watch: Watch,
    done: threading.Event,
    on_dead: Callable[[Worker], None],
    on_stuck: Callable[[str], None],
    grace_s: float,
) -> None:
    """Polls the workers; on the first death, `on_dead`, then `on_stuck` if rank 0 has not
    left the DDP block within `grace_s`."""
    while not done.wait(0.5):
        dead = watch.check()
        if dead is None:
            continue
        on_dead(dead)
        if not done.wait(grace_s):
            on_stuck(dead.describe())
        return


def _give_up(why: str) -> None:
    """Rank 0 could not leave its collective: end the process (what was saved is kept)."""
    print(f"error: {why}; rank 0 did not stop within {STOP_GRACE_S:.0f} s: exiting", file=sys.stderr, flush=True)
    os._exit(1)


@contextmanager
def local_ranks(
    config_yaml: str,
    run_dir: Path,
    processes: int,
    threads: int | None,
    *,
    timeout_s: float,
    on_stuck: Callable[[str], None] | None = None,
    grace_s: float = STOP_GRACE_S,
) -> Iterator[None]:
    """Start ranks 1..processes-1 for this job and make this process rank 0 for the block.

    If a rank dies, the block raises RankFailed (naming it) within seconds. Should rank 0 be
    stuck where no error can reach it, `on_stuck(why)` runs after `grace_s` (it writes the
    record) and the process exits 1."""
    ddp_dir = Path(run_dir) / ".ddp"
    ddp_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = write_atomic(ddp_dir / "config.yaml", config_yaml)
    rendezvous = Rendezvous(processes, timeout_s)
    env = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(rendezvous.port),
        "WORLD_SIZE": str(processes),
        "NODE_RANK": "0",
        "TORCHELASTIC_USE_AGENT_STORE": "True",  # every rank a client of this process's store
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    # NCCL's watchdog at the collective timeout: a worker is torn down (1); rank 0 (this
    # process, which may run a whole sweep) only aborts its communicator and gets an error (2)
    nccl = "TORCH_NCCL_ASYNC_ERROR_HANDLING"
    worker_env = {**env, nccl: os.environ.get(nccl, "1")}
    workers = [start_worker(rank, processes, cfg_path, worker_env) for rank in range(1, processes)]
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    os.environ.update(env, LOCAL_RANK="0", **{nccl: os.environ.get(nccl, "2")})

    def on_dead(dead: Worker) -> None:
        log.error("%s: stopping this DDP job", dead.describe())
        rendezvous.close()
        abort_collectives()
        stop_workers([w for w in workers if w is not dead], grace_s=5.0)

    def stuck(why: str) -> None:
        (on_stuck or (lambda _: None))(why)
        _give_up(why)

    watch, done = Watch(workers), threading.Event()
    watcher = threading.Thread(target=_watch, args=(watch, done, on_dead, stuck, grace_s), daemon=True)
    watcher.start()
    finished = False
    try:
        yield
        finished = True
    except Exception as exc:
        dead = watch.close(wait_s=3.0)
        if dead is not None:
            raise RankFailed(dead.describe()) from exc
        raise
    finally:
        done.set()
        watch.close()
        if finished:  # the workers end with rank 0
            for w in workers:
                try:
                    w.proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    w.proc.kill()
        stop_workers(workers)
        rendezvous.close()
        shutil.rmtree(ddp_dir, ignore_errors=True)
        for k, v in saved.items():  # the next job of a sweep starts from a clean environment
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reset_process_group()


def _reset_process_group() -> None:
    """The next job of a sweep starts from no process group. An init that failed half-way
    (a rank died at the rendezvous) has counted a group all the same: torch names groups by
    that count, so the next job's rank 0 would wait for group "1" while its new ranks offer
    group "0". torch resets the count when it destroys the world; here nothing is left to
    destroy."""
    import torch.distributed as dist

    if not dist.is_available():
        return
    if dist.is_initialized():
        dist.destroy_process_group()
    else:
        from torch.distributed import distributed_c10d

        distributed_c10d._world.group_count = 0
