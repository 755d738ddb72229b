"""cpu_wait_policy: training throughput under train.py's OpenMP wait policy (spin on CPUs we
have to ourselves, sleep beside other runs: netspaces.openmp) against always sleeping
(OMP_WAIT_POLICY=PASSIVE, the safe fixed choice). RegNetX-400MF train steps, 32 px batch 64,
2 threads, each side in fresh worker processes (the policy is fixed when OpenMP starts).

- cpu_wait_policy_alone: one run on an otherwise quiet machine; img/s.
- cpu_wait_policy_pair: two runs started together (ours: the first to register spins, the
  second sleeps; reference: both sleep); images of both / wall time of both, img/s.

Sides alternate, ABBA; medians. Each worker gets its own registry directory per round, so
nothing outside the benchmark counts as a spinning run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, Result, median, worker_env

# per mode: (timed steps per worker, batch, rounds per side)
PLAN = {"full": (30, 64, 3), "quick": (10, 64, 1), "toy": (2, 4, 1)}
WARMUP_STEPS = 3


def worker(steps: int, batch: int) -> dict:
    from netspaces.openmp import choose_wait_policy

    why = choose_wait_policy()  # as train.py does, before torch loads
    import torch

    from benchmarks.train_step_vs_timm import Stepper, models, our_optimizer

    torch.set_num_threads(2)
    torch.set_flush_denormal(True)  # one repeated batch (see common.FlushDenormal)
    ours, _, _ = models()
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    step = Stepper(ours, our_optimizer(ours), x, torch.randint(0, 1000, (batch,)))
    for _ in range(WARMUP_STEPS):
        step()
    t0 = time.time()
    for _ in range(steps):
        step()
    return {"start": t0, "end": time.time(), "images": steps * batch, "policy": os.environ.get("OMP_WAIT_POLICY"),
            "why": why}


def _spawn(n: int, ours: bool, steps: int, batch: int) -> list[dict]:
    """n workers started together; their reports."""
    with tempfile.TemporaryDirectory() as runtime:
        env = worker_env(XDG_RUNTIME_DIR=runtime)
        for user_setting in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):  # the policy is what is measured
            env.pop(user_setting, None)
        if not ours:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(steps), str(batch)]
        procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(n)]
        outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"worker failed:\n{err[-2000:]}")
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def _img_s(reports: list[dict]) -> float:
    return sum(r["images"] for r in reports) / (max(r["end"] for r in reports) - min(r["start"] for r in reports))


def run(mode: str = "full") -> list[Result]:
    steps, batch, rounds = PLAN[mode]
    results = []
    for name, n in (("cpu_wait_policy_alone", 1), ("cpu_wait_policy_pair", 2)):
        got: dict[bool, list[float]] = {True: [], False: []}
        policies: dict[bool, list] = {True: [], False: []}
        for i in range(rounds):
            for ours in ((True, False) if i % 2 == 0 else (False, True)):
                reports = _spawn(n, ours, steps, batch)
                got[ours].append(_img_s(reports))
                policies[ours].append(sorted(str(r["policy"]) for r in reports))
        results.append(Result(name, median(got[True]), median(got[False]), "img/s", True, None,
                              {"workers": n, "steps_per_worker": steps, "batch": batch, "resolution": 32,
                               "rounds_per_side": rounds, "ours_img_s": got[True], "passive_img_s": got[False],
                               "ours_policies": policies[True]}))
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("full", "quick", "toy"), default="full")
    ap.add_argument("--worker", nargs=2, type=int, metavar=("STEPS", "BATCH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*a.worker)))
    else:
        for r in run(a.mode):
            print(r.line(), r.details)
