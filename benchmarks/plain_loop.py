"""plain_loop: the reproduce-small workload as a minimal plain-PyTorch program, the reference
that `train.py -m` is measured against (benchmarks/population_vs_plain_loop.py).

W spawned worker processes (one thread each by default); each decodes the CIFAR-10 subset
once (the same ImageFolder files and the same first-k-per-class selection as netspaces's
data.limit_per_class) and then trains the models it is handed, one after another, in
process: netspaces's sampled models (sample_at, the given stem, zero-init final BN gamma),
SGD Nesterov momentum 0.9, lr = base_lr * batch / 128 with a per-epoch cosine to 0, weight
decay on every parameter, random crop (pad 4) + flip, CIFAR-10 normalisation, channels_last
and torch's fused SGD as netspaces trains. Validation every `--eval-every` epochs and after
the last. No checkpoints, no logging, no determinism switch: one JSON line per model.

    python benchmarks/plain_loop.py --root ../shared/data/cifar10 --per-class 1000 \
        --spaces regnetx anynetx_a --n 12 --epochs 5 --workers 2 --threads 1 --stem cifar

Frozen: the training logic stays as first committed (the reference must not be tuned).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "src") not in sys.path:  # a plain checkout; spawned workers import this module too
    sys.path.insert(0, str(REPO / "src"))
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # conf/data/cifar10.yaml
DATA: dict = {}  # this worker's decoded images


def decode_split(root: Path, split: str, per_class: int | None):
    """uint8 NCHW images and labels: classes sorted, files sorted, the first k of each class."""
    import numpy as np
    import torch
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(sorted(e.name for e in os.scandir(root / split) if e.is_dir())):
        files = sorted(f for f in os.listdir(root / split / name) if f.lower().endswith((".jpg", ".jpeg", ".png")))
        for f in files[:per_class]:
            with Image.open(root / split / name / f) as im:
                xs.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            ys.append(label)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ys)


def init_worker(root: str, per_class: int | None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    DATA["train"] = decode_split(Path(root), "train", per_class)
    DATA["val"] = decode_split(Path(root), "test", per_class)


def prepare(x, mean, std):
    import torch

    return ((x.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)


def crop_flip(x, g, pad: int = 4):
    """Per-image random crop of the zero-padded batch and a random horizontal flip."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=g)
    flips = torch.rand(n, generator=g) < 0.5
    padded = F.pad(x, (pad, pad, pad, pad))
    out = torch.stack([padded[i, :, r : r + h, c : c + w] for i, (r, c) in enumerate(offsets.T.tolist())])
    return torch.where(flips[:, None, None, None], out.flip(3), out)


def train_one(job: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from netspaces.models.anynet import build_model
    from netspaces.space.sampling import sample_at

    t0 = time.perf_counter()
    torch.manual_seed(job["seed"])
    sample = sample_at(job["space"], job["regime"], job["sweep_seed"], job["sample"])
    spec = replace(sample.spec, num_classes=10, stem=job["stem"] or sample.spec.stem)
    net = build_model(spec, zero_init_final_gamma=True).to(memory_format=torch.channels_last)
    batch, epochs = job["batch"], job["epochs"]
    lr0 = job["base_lr"] * batch / 128
    opt = torch.optim.SGD(
        net.parameters(), lr=lr0, momentum=0.9, nesterov=True, weight_decay=job["weight_decay"], fused=True
    )
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    x_tr, y_tr = DATA["train"]
    x_va, y_va = DATA["val"]
    n = len(y_tr)
    steps = n // batch if n > batch else 1  # full batches only (one short batch if that is all)
    step, top1 = 0, None
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr0 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        net.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(job["seed"] + epoch))
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            g = torch.Generator().manual_seed(job["seed"] * 1_000_003 * 64 + step * 64)
            x = crop_flip((x_tr[idx].float() / 255 - mean) / std, g).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if (epoch + 1) % job["eval_every"] == 0 or epoch + 1 == epochs:
            net.eval()
            wrong = 0
            with torch.no_grad():
                for i in range(0, len(y_va), batch):
                    logits = net(prepare(x_va[i : i + batch], mean, std))
                    wrong += int((logits.argmax(1) != y_va[i : i + batch]).sum())
            top1 = 100.0 * wrong / len(y_va)
    return {
        "name": sample.name,
        "space": job["space"],
        "sample": job["sample"],
        "top1_err": round(top1, 4),
        "final_loss": round(loss.item(), 4),
        "seconds": round(time.perf_counter() - t0, 3),
        "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data" / "cifar10")
    p.add_argument("--per-class", type=int, default=1000, help="images per class in each split; 0: all")
    p.add_argument("--spaces", nargs="+", default=["regnetx", "anynetx_a"])
    p.add_argument("--n", type=int, default=12, help="models per space: samples 0..n-1")
    p.add_argument("--regime", default="200mf")
    p.add_argument("--sweep-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--stem", default="cifar", help="'' for the spec's own stem")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--base-lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    common = {k: getattr(a, k) for k in ("regime", "sweep_seed", "seed", "stem", "epochs", "batch", "base_lr")}
    common |= {"weight_decay": a.weight_decay, "eval_every": max(1, a.eval_every)}
    jobs = [{"space": s, "sample": i, **common} for s in a.spaces for i in range(a.n)]
    per_class = a.per_class or None
    with mp.get_context("spawn").Pool(a.workers, init_worker, (str(a.root), per_class, a.threads)) as pool:
        for result in pool.imap_unordered(train_one, jobs):
            print(json.dumps(result), flush=True)
    print(json.dumps({"models": len(jobs), "seconds": round(time.perf_counter() - t0, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
