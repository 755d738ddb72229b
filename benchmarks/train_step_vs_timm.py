"""train_step_vs_timm: images/s of a full training step (forward, backward, SGD step) of our
RegNetX-400MF against timm's regnetx_004 — the same architecture, equal parameter counts
(checked) — on the CPU with 2 threads, channels_last, at 32 px batch 64 and 224 px batch 32.
Target: no regression against timm (R >= 1.0).

Ours steps with the optimizer our trainer builds (netspaces.train.optim.build_optimizer);
timm's with torch's SGD as a timm user writes it, same hyperparameters. Steps alternate one
by one between the two models in one process; each side's median step time is reported,
with the split into forward, backward and optimizer (where time goes). `--profile` prints
the top ops.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import FlushDenormal, Result, median, set_threads

# (resolution, batch, timed steps per side); warm-up steps per side
SIZES = {"full": [(32, 64, 40), (224, 32, 16)], "quick": [(32, 64, 10), (224, 32, 2)], "toy": [(32, 4, 1), (64, 2, 1)]}
WARMUP = {"full": 3, "quick": 2, "toy": 1}
TARGET = 1.0


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
    return torch.optim.SGD(
        model.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
    )


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
        return {
            k: round(median([p[i] for p in self.phases]) * 1e3, 2)
            for i, k in enumerate(("forward_ms", "backward_ms", "optimizer_ms"))
        }


def measure(resolution: int, batch: int, steps: int, warmup: int) -> Result:
    import torch

    threads = set_threads(2)
    ours_model, ref_model, params = models()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), generator=g)
    ours = Stepper(ours_model, our_optimizer(ours_model), x, y)
    ref = Stepper(ref_model, reference_optimizer(ref_model), x, y)
    for _ in range(warmup):
        ours(), ref()
    ours.phases.clear(), ref.phases.clear()
    for i in range(steps):  # alternate step by step, ABBA
        for s in (ours, ref) if i % 2 == 0 else (ref, ours):
            s()
    t_ours, t_ref = (median([sum(p) for p in s.phases]) for s in (ours, ref))
    return Result(
        f"train_step_vs_timm_{resolution}px",
        batch / t_ours,
        batch / t_ref,
        "img/s",
        True,
        TARGET,
        {
            "batch": batch,
            "resolution": resolution,
            "steps": steps,
            "warmup": warmup,
            "threads": threads,
            "params": params,
            "channels_last": True,
            "ours_split": ours.split_ms(),
            "ref_split": ref.split_ms(),
            "ours_optimizer": type(ours.opt).__name__,
            "ours_optimizer_defaults": {
                k: v for k, v in ours.opt.defaults.items() if k in ("foreach", "fused", "lr", "weight_decay")
            },
        },
    )


def run(mode: str = "full") -> list[Result]:
    with FlushDenormal():  # one fixed batch over-fits into denormals (common.FlushDenormal)
        return [measure(r, b, n, WARMUP[mode]) for r, b, n in SIZES[mode]]


def profile(resolution: int, batch: int, steps: int = 5, rows: int = 20) -> None:
    """Print where a training step's time goes, for both models."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

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
    a = ap.parse_args()
    if a.profile:
        for r, b, _ in SIZES[a.mode]:
            profile(r, b)
    else:
        for res in run(a.mode):
            print(res.line(), res.details)
