"""memory: peak resident memory (RSS) of one training process at 224 px batch 32, our
RegNetX-400MF against timm's regnetx_004, each in its own fresh subprocess (alternating,
median of repeats). Both processes import the same libraries (torch, timm, netspaces) and
run the same steps; only the model differs.
R = ref/ours: R >= 1 means no more memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, Result, median, worker_env

# (resolution, batch, training steps per process, processes per side)
SIZES = {"full": (224, 32, 3, 3), "quick": (224, 32, 2, 1), "toy": (64, 2, 1, 1)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
    fork and exec, so a child of a large parent (benchmarks/run.py after the 224 px steps)
    reported the parent's peak — both sides then read the same number."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB on most systems


def worker(which: str, resolution: int, batch: int, steps: int) -> dict:
    """Runs in the subprocess: build the model, train `steps` steps, report memory."""
    import timm  # noqa: F401  (imported on both sides: the same libraries resident)
    import torch
    import torch.nn.functional as F

    from netspaces.models.baselines import create_baseline, get_network

    torch.set_num_threads(2)
    torch.set_flush_denormal(True)  # one fixed batch: keep the steps at normal speed (common.FlushDenormal)
    torch.manual_seed(0)
    model = get_network("RegNetX-400MF", num_classes=1000) if which == "ours" else create_baseline("regnetx_004")
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))
    before = _rss_mb()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    peak = _peak_rss_mb()
    return {"which": which, "peak_rss_mb": peak, "rss_before_training_mb": before, "training_peak_mb": peak - before}


def _spawn(which: str, resolution: int, batch: int, steps: int, mode: str) -> dict:
    env = worker_env()
    if mode == "toy":  # tests share the machine: sleeping OpenMP workers survive oversubscription
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            which,
            "--resolution",
            str(resolution),
            "--batch",
            str(batch),
            "--steps",
            str(steps),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(mode: str = "full") -> list[Result]:
    resolution, batch, steps, repeats = SIZES[mode]
    runs: dict[str, list[dict]] = {"ours": [], "timm": []}
    for i in range(repeats):  # alternate ABBA
        for which in ("ours", "timm") if i % 2 == 0 else ("timm", "ours"):
            runs[which].append(_spawn(which, resolution, batch, steps, mode))
    ours, ref = (median([r["peak_rss_mb"] for r in runs[k]]) for k in ("ours", "timm"))
    details = {
        "resolution": resolution,
        "batch": batch,
        "steps": steps,
        "processes_per_side": repeats,
        **{
            f"{k}_{m}": median([r[m] for r in runs[k]])
            for k in runs
            for m in ("rss_before_training_mb", "training_peak_mb")
        },
    }
    return [Result("memory", ours, ref, "MB", False, 1.0, details)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("full", "quick", "toy"), default="full")
    ap.add_argument("--worker", choices=("ours", "timm"))
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.resolution, a.batch, a.steps)))
    else:
        for r in run(a.mode):
            print(r.line(), r.details)
