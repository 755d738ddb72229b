"""train_step_vs_timm: images/s of a full training step (forward, backward, SGD step) of our
RegNetX-400MF against timm's regnetx_004 — the same architecture, equal parameter counts
(checked) — on the CPU with 2 threads, channels_last, at 32 px batch 64 and 224 px batch 32.

Ours steps with the optimizer our trainer builds (netspaces.train.optim.build_optimizer);
timm's with torch's SGD as a timm user writes it, same hyperparameters. Steps alternate one
by one between the two models, in a process set up as our trainer sets up a CPU run (freed
memory stays in the heap: netspaces.malloc; it speeds both sides alike); each side's median
step time is reported, with the split into forward, backward and optimizer (where time
goes). `--profile` prints the top ops.

train_step_fused_bn_{32,224}px: the same step of our model with its BN→ReLU and BN→add→ReLU
run by the fused CPU kernel (netspaces.models.fused; what our trainer uses) against PyTorch's
separate BN, add and ReLU, stepped in the same alternation.

train_step_deterministic_224px: our model's step in deterministic mode as our trainer runs it
(torch.use_deterministic_algorithms without the NaN fill of every new tensor) against
PyTorch's deterministic default (with the fill), alternating step by step.

train_step_allocator_224px: the same step of our model in fresh processes with our
trainer's allocator settings against glibc's defaults (alternating processes, medians):
what the process set-up adds beyond the model.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, FlushDenormal, Result, median, set_threads, worker_env

# (resolution, batch, timed steps per side); warm-up steps per side
SIZES = {"full": [(32, 64, 40), (224, 32, 16)], "quick": [(32, 64, 10), (224, 32, 2)],
         "toy": [(32, 4, 1), (64, 2, 1)]}
WARMUP = {"full": 3, "quick": 2, "toy": 1}
TARGET = 1.05


def _sgd_settings():
    from netspaces.train.optim import OptimSettings  # the population schedule's defaults

    return OptimSettings()


def our_optimizer(model):
    """The optimizer our trainer uses for this model (plain SGD if the trainer is absent)."""
    try:
        from netspaces.train.optim import build_optimizer
    except ImportError:
        import torch

        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    return build_optimizer(model, _sgd_settings())[0]


def reference_optimizer(model):
    import torch

    s = _sgd_settings()
    return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov,
                           weight_decay=s.weight_decay)


def models():
    import torch

    from netspaces.models.baselines import create_baseline, get_network

    torch.manual_seed(0)
    ours = get_network("RegNetX-400MF", num_classes=1000)
    torch.manual_seed(0)
    ref = create_baseline("regnetx_004", num_classes=1000)
    n_ours, n_ref = (sum(p.numel() for p in m.parameters()) for m in (ours, ref))
    if n_ours != n_ref:
        raise RuntimeError(f"not the same architecture: {n_ours:,} vs {n_ref:,} parameters")
    return ours, ref, n_ours


class Stepper:
    """One model's training step, timed by phase."""

    def __init__(self, model, optimizer, x, y) -> None:
        import torch

        self.model = model.to(memory_format=torch.channels_last).train()
        self.opt, self.x, self.y = optimizer, x, y
        self.phases: list[tuple[float, float, float]] = []

    def __call__(self) -> None:
        import torch.nn.functional as F

        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        self.phases.append((t1 - t0, t2 - t1, t3 - t2))

    def split_ms(self) -> dict:
        return {k: round(median([p[i] for p in self.phases]) * 1e3, 2)
                for i, k in enumerate(("forward_ms", "backward_ms", "optimizer_ms"))}


def measure(resolution: int, batch: int, steps: int, warmup: int) -> list[Result]:
    import copy

    import torch

    from netspaces.models.anynet import set_fuse_bn_relu
    from netspaces.models.fused import load

    threads = set_threads(2)
    fused = load()
    ours_model, ref_model, params = models()
    unfused_model = copy.deepcopy(ours_model)  # ours with PyTorch's BN/add/ReLU: what the fused kernel adds
    set_fuse_bn_relu(unfused_model, False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), generator=g)
    ours = Stepper(ours_model, our_optimizer(ours_model), x, y)
    ref = Stepper(ref_model, reference_optimizer(ref_model), x, y)
    unfused = Stepper(unfused_model, our_optimizer(unfused_model), x, y)
    for _ in range(warmup):
        ours(), ref(), unfused()
    ours.phases.clear(), ref.phases.clear(), unfused.phases.clear()
    for i in range(steps):  # alternate step by step, ABC CBA
        for s in ((ours, ref, unfused) if i % 2 == 0 else (unfused, ref, ours)):
            s()
    t_ours, t_ref, t_unfused = (median([sum(p) for p in s.phases]) for s in (ours, ref, unfused))
    fused_line = Result(f"train_step_fused_bn_{resolution}px", batch / t_ours, batch / t_unfused, "img/s", True, None,
                        {"batch": batch, "resolution": resolution, "steps": steps, "kernel_loaded": fused,
                         "ours_split": ours.split_ms(), "unfused_split": unfused.split_ms()})
    return [Result(f"train_step_vs_timm_{resolution}px", batch / t_ours, batch / t_ref, "img/s", True, TARGET,
                  {"batch": batch, "resolution": resolution, "steps": steps, "warmup": warmup, "threads": threads,
                   "params": params, "channels_last": True, "flush_denormal": True, "ours_split": ours.split_ms(),
                   "ref_split": ref.split_ms(), "ours_optimizer": type(ours.opt).__name__,
                   "ours_optimizer_defaults": {k: v for k, v in ours.opt.defaults.items()
                                               if k in ("foreach", "fused", "lr", "weight_decay")},
                   "fused_bn_relu_kernel": fused}), fused_line]


# allocator comparison per mode: (resolution, batch, timed steps per process, processes per side)
ALLOCATOR = {"full": (224, 32, 6, 3), "quick": (224, 32, 3, 1), "toy": (64, 2, 1, 1)}


def allocator_worker(keep: bool, resolution: int, batch: int, steps: int) -> float:
    """In a fresh process: median seconds of our model's training step."""
    if keep:
        from netspaces.malloc import keep_freed_memory

        keep_freed_memory()
    import torch

    set_threads(2)
    torch.set_flush_denormal(True)
    ours, _, _ = models()
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    step = Stepper(ours, our_optimizer(ours), x, torch.randint(0, 1000, (batch,)))
    for _ in range(2):
        step()
    step.phases.clear()
    for _ in range(steps):
        step()
    return median([sum(p) for p in step.phases])


def allocator(mode: str) -> Result:
    resolution, batch, steps, procs = ALLOCATOR[mode]
    env = worker_env()
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(procs):
        for keep in ((True, False) if i % 2 == 0 else (False, True)):
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--allocator-worker", str(int(keep)),
                                  str(resolution), str(batch), str(steps)], cwd=REPO, env=env, capture_output=True,
                                 text=True, check=True, timeout=900)
            times[keep].append(float(out.stdout.strip().splitlines()[-1]))
    return Result(f"train_step_allocator_{resolution}px", batch / median(times[True]), batch / median(times[False]),
                  "img/s", True, None, {"batch": batch, "resolution": resolution, "steps_per_process": steps,
                                        "processes_per_side": procs, "ours_step_s": times[True],
                                        "glibc_default_step_s": times[False]})


# deterministic-fill comparison per mode: (resolution, batch, timed steps per side)
DETERMINISTIC = {"full": (224, 32, 8), "quick": (224, 32, 2), "toy": (64, 2, 1)}


def deterministic(mode: str) -> Result:
    import torch
    import torch.utils.deterministic as det

    resolution, batch, steps = DETERMINISTIC[mode]
    set_threads(2)
    ours, _, _ = models()
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    sides = {fill: Stepper(ours, our_optimizer(ours), x, torch.randint(0, 1000, (batch,))) for fill in (False, True)}
    was = torch.are_deterministic_algorithms_enabled(), det.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(True)
        for i in range(steps + 1):  # the first round warms up
            for fill in ((False, True) if i % 2 == 0 else (True, False)):
                det.fill_uninitialized_memory = fill
                sides[fill]()
    finally:
        torch.use_deterministic_algorithms(was[0])
        det.fill_uninitialized_memory = was[1]
    t = {fill: median([sum(p) for p in s.phases[1:]]) for fill, s in sides.items()}
    return Result(f"train_step_deterministic_{resolution}px", batch / t[False], batch / t[True], "img/s", True, None,
                  {"batch": batch, "resolution": resolution, "steps": steps})


def run(mode: str = "full") -> list[Result]:
    from netspaces.malloc import keep_freed_memory

    keep_freed_memory()  # as our trainer does for a CPU run; both models step in this process
    with FlushDenormal():
        results = [line for r, b, n in SIZES[mode] for line in measure(r, b, n, WARMUP[mode])]
        results.append(deterministic(mode))
    return results + [allocator(mode)]


def profile(resolution: int, batch: int, steps: int = 5, rows: int = 20) -> None:
    """Print where a training step's time goes, for both models."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    set_threads(2)
    ours_model, ref_model, _ = models()
    x = torch.randn(batch, 3, resolution, resolution).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,))
    for name, model, opt in (("ours", ours_model, our_optimizer), ("timm", ref_model, reference_optimizer)):
        step = Stepper(model, opt(model), x, y)
        with FlushDenormal():
            for _ in range(2):
                step()
            with torch_profile(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(steps):
                    step()
        print(f"== {name} ({resolution} px, batch {batch}, {steps} steps)")
        print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("full", "quick", "toy"), default="full")
    ap.add_argument("--profile", action="store_true", help="print the top ops instead of benchmarking")
    ap.add_argument("--allocator-worker", nargs=4, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.allocator_worker:
        keep, res, batch, steps = a.allocator_worker
        print(allocator_worker(bool(keep), res, batch, steps))
    elif a.profile:
        for r, b, _ in SIZES[a.mode]:
            profile(r, b)
    else:
        for res in run(a.mode):
            print(res.line(), res.details)
