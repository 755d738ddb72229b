"""SIGTERM and SIGINT during a local run or sweep: the running sample ends with an
`interrupted` record (its last epoch checkpoint kept), no further sample starts, and the
command exits with 128 + the signal's number. Rerunning the command resumes.

Under SLURM, submitit's own checkpoint-and-requeue protocol owns the signals (the cluster
issue); nothing here is installed there.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A signal asked the run to stop (a BaseException, like KeyboardInterrupt: code that
    catches Exception must not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs in the main thread, the first SIGTERM or SIGINT raises
    Interrupted there (later ones are ignored while the run winds down)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, frame) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def children(pid: int | None = None) -> list[int]:
    """Direct child processes (Linux /proc; empty elsewhere)."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def forward_to_workers() -> None:
    """In a sweep's launching process: pass SIGTERM and SIGINT on to the worker processes
    (joblib's), which end their samples as `interrupted` and stop the sweep; with no worker
    (the basic launcher, between samples) stop right away."""
    if threading.current_thread() is not threading.main_thread():
        return
    fired: list[int] = []

    def handler(signum, frame) -> None:
        kids = children()
        if not fired:
            fired.append(signum)
            for kid in kids:
                try:
                    os.kill(kid, signum)
                except ProcessLookupError:
                    pass
        if not kids:
            raise Interrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)
