"""data_pipeline: images/s the training loaders deliver (default worker settings, the
batch-side normalisation and augmentation included) against the training throughput of the
model they feed (RegNetX-400MF, 2 threads, channels_last), and the fraction of a real
training loop's time spent waiting for data (target: under 5%).

Loaders: digits (in memory), cifar10 (../shared/data/cifar10 ImageFolder decoded once into
memory, the data=cifar10 default) and imagefolder (the same tree read image by image in
loader workers, data=imagefolder). R = loader img/s / model img/s: R >= 1 means the loader
can keep up even without overlap.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, FlushDenormal, Result, main, median, run_settings_for, set_threads

CIFAR = SHARED / "data" / "cifar10"
# per mode: batches per pass, passes per side, CIFAR-10 images per class, batch size override
PLAN = {"full": (20, 3, None, None), "quick": (6, 1, 1000, None), "toy": (2, 1, 10, 16)}
TARGET_WAIT = 0.05


def loaders(mode: str) -> dict[str, list[str]]:
    _, _, per_class, batch = PLAN[mode]
    common = ["schedule=population"] + ([f"schedule.batch_size={batch}"] if batch else [])
    limit = [f"data.limit_per_class={per_class}"] if per_class else []
    out = {"digits": ["data=digits", *common]}
    if CIFAR.is_dir():
        out["cifar10"] = ["data=cifar10", f"data.root={CIFAR}", *limit, *common]
        out["imagefolder"] = [
            "data=imagefolder",
            f"data.root={CIFAR}",
            "data.val_split=test",
            "data.resolution=32",
            *limit,
            *common,
        ]
    return out


class Feed:
    """A DataModule's training batches as the trainer sees them (after the transfer hook)."""

    def __init__(self, overrides: list[str], run_dir: Path) -> None:
        import torch

        from netspaces.train.data import make_datamodule

        _, s = run_settings_for(overrides, run_dir)
        self.settings = s.data
        self.dm = make_datamodule(s.data)
        self.dm.setup("fit")
        # The parts of a Trainer the DataModule reads; it trains on the CPU here.
        strategy = SimpleNamespace(root_device=torch.device("cpu"))
        self.dm.trainer = SimpleNamespace(training=True, global_step=0, global_rank=0, world_size=1, strategy=strategy)
        self.loader = self.dm.train_dataloader()
        self._it = iter(self.loader)

    def next(self):
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            batch = next(self._it)
        self.dm.trainer.global_step += 1
        return self.dm.on_after_batch_transfer(batch, 0)


def _model_step(num_classes: int):
    import torch
    import torch.nn.functional as F

    from benchmarks.train_step_vs_timm import our_optimizer
    from netspaces.models.baselines import get_network

    torch.manual_seed(0)
    model = get_network("RegNetX-400MF", num_classes=num_classes).to(memory_format=torch.channels_last).train()
    opt = our_optimizer(model)

    def step(x, y) -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y).backward()
        opt.step()

    return step


def measure(name: str, overrides: list[str], mode: str) -> Result:
    batches, passes, _, _ = PLAN[mode]
    with tempfile.TemporaryDirectory() as tmp:
        feed = Feed(overrides, Path(tmp))
        step = _model_step(feed.dm.num_classes)
        x0, y0 = feed.next()
        step(x0, y0)  # warm-up: model and loader (workers start)
        loader_rates, model_rates, wait, busy = [], [], 0.0, 0.0
        for _ in range(passes):
            n, t0 = 0, time.perf_counter()  # loader alone
            for _ in range(batches):
                n += len(feed.next()[1])
            loader_rates.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()  # model alone, on a batch already in memory
            for _ in range(batches):
                step(x0, y0)
            model_rates.append(batches * len(y0) / (time.perf_counter() - t0))
            for _ in range(batches):  # the real loop: how long does the step wait for data?
                t0 = time.perf_counter()
                x, y = feed.next()
                t1 = time.perf_counter()
                step(x, y)
                wait, busy = wait + t1 - t0, busy + time.perf_counter() - t1
    frac = wait / (wait + busy)
    s = feed.settings
    return Result(
        f"data_pipeline_{name}",
        median(loader_rates),
        median(model_rates),
        "img/s",
        True,
        None,
        {
            "wait_fraction": frac,
            "wait_target": TARGET_WAIT,
            "wait_under_target": frac < TARGET_WAIT,
            "batch": s.batch_size,
            "resolution": s.resolution,
            "workers": s.workers,
            "augment": s.augment,
            "train_images": len(feed.dm.train_set),
            "batches_per_pass": batches,
            "passes": passes,
            "model": "RegNetX-400MF",
        },
    )


def run(mode: str = "full") -> list[Result]:
    set_threads(2)
    with FlushDenormal():  # the model-alone pass repeats one batch (see FlushDenormal)
        return [measure(name, ov, mode) for name, ov in loaders(mode).items()]


if __name__ == "__main__":
    main(run, __doc__)
