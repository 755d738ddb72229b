"""What every benchmark shares: the result record, its one-line form, and side-by-side timing.

A benchmark measures ours and a reference in one process (or one run), alternating, after a
warm-up, and reports medians: R = ours/ref for throughput, ref/ours for time or memory, so
R >= 1 always means we are at least as good.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SRC = REPO / "src"
if str(SRC) not in sys.path:  # run from a plain checkout: `python benchmarks/run.py`
    sys.path.insert(0, str(SRC))

MODES = ("full", "quick", "toy")  # toy: the smallest run that exercises the code (tests)
LINE = re.compile(
    r"^(?P<name>[a-z0-9_]+): ratio=(?P<ratio>[0-9.]+|nan|inf) ours=(?P<ours>\S+) "
    r"ref=(?P<ref>\S+) unit=(?P<unit>\S+)$"
)


@dataclass
class Result:
    name: str
    ours: float
    ref: float
    unit: str
    higher_is_better: bool  # throughput: True; time and memory: False
    target: float | None = None  # the ratio the issue asks for
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        num, den = (self.ours, self.ref) if self.higher_is_better else (self.ref, self.ours)
        return num / den if den else float("inf")

    def line(self) -> str:
        return f"{self.name}: ratio={self.ratio:.3f} ours={self.ours:.4g} ref={self.ref:.4g} unit={self.unit}"

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "line": self.line(),
            "met_target": None if self.target is None else self.ratio >= self.target,
        }


def side_by_side(
    ours: Callable[[], object], ref: Callable[[], object], *, warmup: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Wall seconds of `ours` and `ref`, alternating (ABBA order cancels slow drifts), after
    `warmup` untimed calls of each."""
    for _ in range(warmup):
        ours()
        ref()
    t_ours, t_ref = [], []
    for i in range(repeats):
        pair = ((ours, t_ours), (ref, t_ref)) if i % 2 == 0 else ((ref, t_ref), (ours, t_ours))
        for fn, out in pair:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return t_ours, t_ref


def main(run: Callable[[str], list[Result]], doc: str, argv: list[str] | None = None) -> None:
    """`python benchmarks/NAME.py [--mode full|quick|toy]`: each result's line and details."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--mode", choices=MODES, default="full")
    for r in run(ap.parse_args(argv).mode):
        print(r.line(), r.details)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def set_threads(n: int = 2) -> int:
    import torch

    torch.set_num_threads(n)
    return torch.get_num_threads()


def machine() -> dict:
    import platform

    import torch

    return {
        "cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
    }


def worker_env(**extra: str) -> dict[str, str]:
    """os.environ for a benchmark's subprocess: this checkout's package and benchmarks first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def compose_train(overrides: list[str]):
    """The `train` config as train.py composes it (Hydra's compose API), for in-process runs."""
    from hydra import compose, initialize_config_dir

    from netspaces.train.hydra_conf import register

    register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3", job_name="bench"):
        return compose("train", overrides=list(overrides))


def run_settings_for(overrides: list[str], run_dir: Path):
    """Typed run settings of `train.py OVERRIDES` with its outputs under run_dir."""
    from netspaces.train.settings import run_settings

    cfg = compose_train(
        [*overrides, f"paths.run_dir={run_dir}", f"paths.output={REPO / 'outputs'}", f"paths.data={SHARED / 'data'}"]
    )
    return cfg, run_settings(cfg)


class FlushDenormal:
    """Flush denormal floats to zero while a benchmark runs. Training on one fixed batch
    over-fits it within a few steps and drives activations and gradients into the denormal
    range, where x86 arithmetic is ~100x slower (measured here: a RegNetX-400MF step at 224 px
    went from 1.1 s to 6-8 s, and the SGD step from 14 ms to 1.3 s). Real training on fresh
    batches does not sit there, so the benchmark must not either."""

    def __enter__(self) -> "FlushDenormal":
        import torch

        self.ok = torch.set_flush_denormal(True)
        return self

    def __exit__(self, *exc) -> None:
        import torch

        torch.set_flush_denormal(False)


def wait_for_quiet(max_wait_s: float, threshold: float = 1.0, poll_s: float = 5.0) -> float:
    """Wait (up to max_wait_s) until the 1-minute load average drops below `threshold`: on a
    shared 2-core machine another process's threads turn OpenMP's spin-waits into stalls and
    skew a measurement by far more than the effects measured. Returns the load at the start."""
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(poll_s)
    return os.getloadavg()[0]
