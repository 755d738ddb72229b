"""Single-node DDP that is safe under Hydra multirun and every launcher.

Lightning's own `ddp` launcher starts ranks 1..N-1 by re-running `sys.argv`; under Hydra
that re-runs the whole command — with `-m`, every rank re-launches the whole sweep — and
Hydra's run-dir rewriting does not know the sweep's job directories. Instead the job's
process (rank 0) writes its resolved config to the run directory and starts the other
ranks as `python -m netspaces.train.worker CONFIG`, each running exactly this job. With
LOCAL_RANK set, Lightning treats the processes as launched externally and only connects
them. Under SLURM (one task per GPU) or torchrun, the cluster starts the ranks and this
module stays out of the way.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from netspaces.record import write_atomic

log = logging.getLogger(__name__)

_ENV_KEYS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK")


def externally_launched() -> bool:
    """True when a cluster or launcher already started one process per rank."""
    if "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return True
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch(procs: list[subprocess.Popen], stop: threading.Event) -> None:
    """If a worker rank dies, end the others: rank 0 then fails at its next collective."""
    while not stop.wait(1.0):
        if any(p.poll() not in (None, 0) for p in procs):
            log.error("a DDP worker process failed; stopping the others")
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            return


@contextmanager
def local_ranks(config_yaml: str, run_dir: Path, processes: int, threads: int | None) -> Iterator[None]:
    """Start ranks 1..processes-1 for this job and make this process rank 0 for the block."""
    ddp_dir = Path(run_dir) / ".ddp"
    ddp_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = write_atomic(ddp_dir / "config.yaml", config_yaml)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(processes), "NODE_RANK": "0"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    procs = []
    for rank in range(1, processes):
        child_env = {**os.environ, **env, "LOCAL_RANK": str(rank)}
        procs.append(subprocess.Popen([sys.executable, "-m", "netspaces.train.worker", str(cfg_path)], env=child_env))
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    os.environ.update(env, LOCAL_RANK="0")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(procs, stop), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(ddp_dir, ignore_errors=True)
        for k, v in saved.items():  # the next job of a sweep starts from a clean environment
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
