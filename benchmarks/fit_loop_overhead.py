"""fit_loop_overhead: one epoch of our Lightning training on the digits data (the Trainer and
LightningModule exactly as `python train.py data=digits schedule=quick` builds them: logging,
NaN checks, per-epoch checkpoint, validation) against a plain PyTorch loop doing the same
batches with the same network, optimizer, lr schedule and validation. R = plain/ours time:
the framework costs (1 - R); target R >= 0.97.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import Result, main, median, run_settings_for

OVERRIDES = [
    "data=digits",
    "schedule=quick",
    "schedule.epochs=1",
    "trainer.threads=2",
    "trainer.progress_bar=false",
    "logger=csv",
]
# per mode: pairs of (ours, plain) epochs; train-batch limit (None: the whole epoch)
PLAN = {"full": (9, None), "quick": (2, None), "toy": (1, 2)}
TARGET = 0.97


def _settings(run_dir: Path, limit: int | None):
    extra = [f"trainer.limit_train_batches={limit}", f"trainer.limit_val_batches={limit}"] if limit else []
    return run_settings_for(OVERRIDES + extra, run_dir)


def ours_epoch(run_dir: Path, limit: int | None) -> float:
    """Seconds of trainer.fit for one epoch (network, data and module built beforehand)."""
    from netspaces.train.run import _prepare
    from netspaces.train.trainer import build_trainer, quiet_lightning

    quiet_lightning()
    cfg, s = _settings(run_dir, limit)
    datamodule, _, module, loggers = _prepare(s, cfg)
    t0 = time.perf_counter()
    trainer = build_trainer(s, loggers)
    trainer.fit(module, datamodule=datamodule)
    return time.perf_counter() - t0


def plain_epoch(run_dir: Path, limit: int | None) -> float:
    """The same epoch as a plain loop: same data order, network, optimizer, validation."""
    import torch
    import torch.nn.functional as F
    from lightning.pytorch import seed_everything

    from netspaces.train.data import make_datamodule
    from netspaces.train.network import build_network
    from netspaces.train.optim import build_optimizer

    cfg, s = _settings(run_dir, limit)
    torch.set_num_threads(s.trainer.threads)
    seed_everything(s.seed, workers=True, verbose=False)
    torch.use_deterministic_algorithms(s.trainer.deterministic)  # what the Trainer switches on
    dm = make_datamodule(s.data)
    dm.setup("fit")
    net = build_network(replace(s.model, num_classes=dm.num_classes)).module
    net = net.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    opt, sched = build_optimizer(net, s.optim)
    dm.trainer = SimpleNamespace(training=True, global_step=0, global_rank=0, world_size=1)
    net.train()
    for i, batch in enumerate(dm.train_dataloader()):
        if limit and i >= limit:
            break
        x, y = dm.on_after_batch_transfer(batch, 0)
        loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        dm.trainer.global_step += 1
    sched.step()
    net.eval()
    wrong = total = 0
    dm.trainer.training = False
    with torch.no_grad():
        for i, batch in enumerate(dm.val_dataloader()):
            if limit and i >= limit:
                break
            x, y = dm.on_after_batch_transfer(batch, 0)
            wrong += int((net(x.contiguous(memory_format=torch.channels_last)).argmax(1) != y).sum())
            total += len(y)
    _ = 100.0 * wrong / max(1, total)  # the error, as the framework computes it
    return time.perf_counter() - t0


def run(mode: str = "full") -> list[Result]:
    import torch

    pairs, limit = PLAN[mode]
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dirs = iter(Path(tmp) / f"run{i}" for i in range(10 * pairs + 10))
            ours_epoch(next(dirs), limit), plain_epoch(next(dirs), limit)  # warm-up
            t_ours, t_plain = [], []
            for i in range(pairs):  # alternate ABBA
                for fn, out in ((ours_epoch, t_ours), (plain_epoch, t_plain))[:: 1 if i % 2 == 0 else -1]:
                    gc.collect()  # neither side inherits the other's garbage (a full collection mid-epoch)
                    out.append(fn(next(dirs), limit))
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
    ours, plain = median(t_ours), median(t_plain)
    return [
        Result(
            "fit_loop_overhead",
            ours,
            plain,
            "s",
            False,
            TARGET,
            {
                "epochs_per_side": pairs,
                "train_batch_limit": limit,
                "data": "digits",
                "schedule": "quick",
                "framework_cost": ours / plain - 1.0,
                "ours_s": t_ours,
                "plain_s": t_plain,
                # the VM's speed drifts by 10-20% between epochs: each pair ran back to back
                "median_pair_ratio": median([p / o for o, p in zip(t_ours, t_plain)]),
            },
        )
    ]


if __name__ == "__main__":
    main(run, __doc__)
