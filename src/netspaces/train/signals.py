"""The signals of a run, with one owner: this module's handlers, installed while the run
trains (`interruptible`) and put back after Lightning's fit installs its own (`reassert`).

Locally, SIGTERM and SIGINT end the running sample with an `interrupted` record (its last
epoch checkpoint kept), no further sample starts, and the command exits with 128 + the
signal's number. Rerunning the command resumes.

In a task submitit started (hydra/launcher=submitit_slurm or submitit_local), submitit's
checkpoint signal (USR2, or $SUBMITIT_PREEMPT_SIGNAL: sent before the time limit and, where
the cluster is set to, on preemption) ends the sample the same way, then hands over to
submitit, which requeues the job; the requeued job resumes from the last epoch checkpoint.
SIGTERM is ignored there, as submitit does (SLURM sends it before a kill that the checkpoint
signal has already dealt with), and Lightning's SIGTERM and SLURM auto-requeue handlers never
act. Only the first task (rank 0) hands over; the others ignore the signal, as submitit's do.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_owned: dict[int, Callable] = {}  # the handlers `interruptible` installed, while it is active


class Interrupted(BaseException):
    """A signal asked the run to stop (a BaseException, like KeyboardInterrupt: code that
    catches Exception must not swallow it). `requeue`: under submitit, its own handler of the
    checkpoint signal, to call once the run has written its record."""

    def __init__(self, signum: int, requeue: Callable | None = None) -> None:
        self.signum = signum
        self.requeue = requeue
        name = signal.Signals(signum).name
        super().__init__(f"preempted or at its time limit ({name})" if requeue else f"interrupted by {name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def submitit_task() -> bool:
    """True in a task submitit started (its job runner sets SUBMITIT_FOLDER before calling us)."""
    return bool(os.environ.get("SUBMITIT_FOLDER"))


def checkpoint_signal() -> int:
    """submitit's checkpoint-and-requeue signal (its documented default USR2, or the
    SUBMITIT_PREEMPT_SIGNAL it reads)."""
    return int(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))


def _first_task() -> bool:
    """Rank 0 of the job: every rank variable a launcher may set is 0 (or unset)."""
    keys = ("RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID", "LOCAL_RANK")
    return all(os.environ.get(k, "0") in ("", "0") for k in keys)


@contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs in the main thread, the first stop signal raises Interrupted there
    (later ones are ignored while the run winds down): SIGTERM or SIGINT locally; under
    submitit, SIGINT or its checkpoint signal (module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []
    requeue: dict[int, Callable] = {}  # under submitit: its checkpoint-and-requeue handler

    def stop(signum, frame) -> None:
        if not fired:
            fired.append(signum)
            raise Interrupted(signum, requeue.get(signum))

    handlers: dict[int, Callable] = {signal.SIGTERM: stop, signal.SIGINT: stop}
    if submitit_task():
        term = signal.getsignal(signal.SIGTERM)  # submitit's: logs it and goes on
        handlers[signal.SIGTERM] = term if callable(term) else signal.SIG_IGN
        checkpointing = checkpoint_signal()
        theirs = signal.getsignal(checkpointing)
        if callable(theirs) and _first_task():
            requeue[checkpointing] = theirs
            handlers[checkpointing] = stop
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    _owned.update(handlers)
    try:
        yield
    finally:
        _owned.clear()
        for s, h in previous.items():
            signal.signal(s, h)


def reassert() -> None:
    """Put this module's handlers back (Lightning's fit installs its own SIGTERM handler,
    which would end the fit with a SystemExit that no record sees, and under SLURM its
    auto-requeue handler): called as training starts."""
    if threading.current_thread() is threading.main_thread():
        for s, h in _owned.items():
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
