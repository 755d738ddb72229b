"""CPU threads that spin when the machine is ours and step aside when it is shared.

torch's CPU kernels run on an OpenMP team; between parallel regions idle threads spin (GNU
OpenMP's default) or sleep (OMP_WAIT_POLICY=PASSIVE). Measured on the 2-core test machine
(RegNetX-400MF train step, 32 px, batch 64, img/s):

    machine                          spin, 2 threads   PASSIVE, 2 threads   1 thread
    quiet                            478               239                  311
    one busy process beside          141               250                  345
    two such trainings side by side  6.3 each          289 each             -

Spinning wins 2x on a quiet machine and loses up to 45x when the cores are shared, worst
when two spinning runs meet. So `choose_wait_policy` (train.py, before torch loads: the
policy is fixed once OpenMP starts) keeps spinning only when the CPUs are idle and no other
netspaces run spins on this machine (runs register under a lock, so two started together
see each other), and sleeps otherwise. During training `ThreadGovernor` watches for
processes that start competing later: a non-deterministic run moves to the CPUs left free
(and back); a deterministic one, whose numbers must not depend on the load, says once how to
avoid the slowdown. An explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT is never overridden.
Torch-free: the caller passes torch's set_num_threads.
"""

from __future__ import annotations

import atexit
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, MutableMapping

BUSY_THRESHOLD = 0.5  # CPUs' worth of other processes' work that makes spinning a bad bet
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def perf_off(name: str) -> bool:
    """Measurement switch (benchmarks/mechanisms.py): NETSPACES_PERF_OFF=a,b leaves mechanisms out."""
    return name in os.environ.get("NETSPACES_PERF_OFF", "").split(",")


def our_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity: a SLURM or taskset share, not the node)."""
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class CpuUse:
    """A snapshot: jiffies busy and in total over our CPUs, and this process's CPU seconds."""

    busy: int
    total: int
    own_s: float
    n_cpus: int


def read_cpu_use(cpus: set[int] | None = None, stat: str = "/proc/stat") -> CpuUse | None:
    """None where /proc/stat is unreadable (not Linux)."""
    cpus = our_cpus() if cpus is None else cpus
    try:
        with open(stat) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(values)
        busy += sum(values) - values[3] - values[4] - values[7]  # steal: the hypervisor's, not a process here
    if not total:
        return None
    own = os.times()
    return CpuUse(busy, total, own.user + own.system, len(cpus))


def others_busy(before: CpuUse | None, after: CpuUse | None, wall_s: float) -> float | None:
    """CPUs' worth of work by other processes on our CPUs between two snapshots."""
    if before is None or after is None or after.total <= before.total or wall_s <= 0:
        return None
    all_busy = (after.busy - before.busy) / (after.total - before.total) * after.n_cpus
    return max(0.0, all_busy - (after.own_s - before.own_s) / wall_s)


def measure_others_busy(interval_s: float = 0.2) -> float | None:
    t0, before = time.perf_counter(), read_cpu_use()
    time.sleep(interval_s)
    return others_busy(before, read_cpu_use(), time.perf_counter() - t0)


def spinning_runs_dir() -> Path:
    """Where spinning runs leave their pid (one machine, one user)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"netspaces-spinning-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_spinning(directory: Path) -> list[int]:
    """Under a lock: the pids of other live spinning runs; when there are none, this process
    registers as the spinning run (removed at exit; a killed run's stale pid is ignored).
    The lock makes two runs started together see each other."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        others = []
        for entry in directory.glob("[0-9]*"):
            pid = int(entry.name)
            if pid != os.getpid() and _alive(pid):
                others.append(pid)
            elif pid != os.getpid():
                entry.unlink(missing_ok=True)
        if not others:
            mine = directory / str(os.getpid())
            mine.touch()
            atexit.register(lambda: mine.unlink(missing_ok=True))
        return sorted(others)


def choose_wait_policy(environ: MutableMapping[str, str] = os.environ,
                       measure: Callable[[], float | None] = measure_others_busy,
                       runs_dir: Path | None = None) -> str | None:
    """Set OMP_WAIT_POLICY=PASSIVE in `environ` when other processes keep at least half a CPU
    busy or another netspaces run is spinning on this machine; keep OpenMP's spinning default
    otherwise. Returns a one-line reason when it set the policy, else None."""
    if any(k in environ for k in USER_SETTINGS) or perf_off("wait_policy"):
        return None
    busy = measure()
    if busy is not None and busy >= BUSY_THRESHOLD:
        why = f"other processes keep {busy:.1f} CPUs busy"
    else:
        try:
            others = claim_spinning(runs_dir or spinning_runs_dir())
        except (OSError, ImportError):  # no fcntl (Windows) or no writable temp dir: keep the default
            return None
        if not others:
            return None
        why = f"netspaces run{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} already spin here"
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return f"{why}: idle OpenMP threads will sleep (OMP_WAIT_POLICY=PASSIVE; ACTIVE keeps them spinning)"


def spinning(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether idle OpenMP threads spin (the default) rather than sleep."""
    return environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE" and environ.get("GOMP_SPINCOUNT") != "0"


class ThreadGovernor:
    """Every `every_s` seconds of training, look at what other processes used on our CPUs
    since the last look. With at least half a CPU taken: when `adjust`, run on the CPUs left
    free (at least one thread: a lone thread has no team to spin for) and go back to
    `threads` once they are free again; otherwise (a deterministic run, whose numbers must
    not depend on the machine's load: the thread count changes float reductions) call
    `warn` once. `tick()` goes once per step: a clock read, and /proc/stat every `every_s`."""

    def __init__(self, threads: int, set_threads: Callable[[int], None], *, adjust: bool = True,
                 warn: Callable[[float], None] = lambda busy: None, every_s: float = 2.0,
                 read: Callable[[], CpuUse | None] = read_cpu_use,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.threads, self.current, self.adjust = threads, threads, adjust
        self.set_threads, self.warn, self.every_s, self.read, self.clock = set_threads, warn, every_s, read, clock
        self.changes: list[tuple[float, int]] = []  # (others' CPUs, threads) at each change
        self.warned = False
        self._t, self._use = clock(), read()

    def tick(self) -> int:
        now = self.clock()
        if now - self._t < self.every_s:
            return self.current
        use = self.read()
        busy = others_busy(self._use, use, now - self._t)
        self._t, self._use = now, use
        if busy is None or use is None:
            return self.current
        if not self.adjust:
            if busy >= BUSY_THRESHOLD and not self.warned:
                self.warned = True
                self.warn(busy)
            return self.current
        free = use.n_cpus - busy
        want = self.threads if busy < BUSY_THRESHOLD else max(1, min(self.threads, math.floor(free + 0.25)))
        if want != self.current:
            self.set_threads(want)
            self.current = want
            self.changes.append((round(busy, 2), want))
        return self.current
