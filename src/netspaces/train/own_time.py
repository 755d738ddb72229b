"""A run's own time: wall and CPU seconds less those a packed model (sweep.pack) spends waiting
for its turn, while the other models of its pack train. Outside a pack nothing is subtracted,
so these are time.perf_counter() and time.process_time()."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

_waited = threading.local()  # per thread: each model of a pack trains in a thread of its own


def wall() -> float:
    return time.perf_counter() - getattr(_waited, "wall", 0.0)


def cpu() -> float:
    """Process CPU time (all threads: torch's workers too) less that used while this thread waited."""
    return time.process_time() - getattr(_waited, "cpu", 0.0)


@contextmanager
def waiting() -> Iterator[None]:
    """Time spent in this block is not this thread's run's."""
    w, c = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        _waited.wall = getattr(_waited, "wall", 0.0) + time.perf_counter() - w
        _waited.cpu = getattr(_waited, "cpu", 0.0) + time.process_time() - c
