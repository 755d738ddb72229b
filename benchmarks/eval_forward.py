"""eval_forward: images/s of an evaluation forward pass (no_grad, eval mode, channels_last,
2 threads) of RegNetX-400MF as our validation runs it — conv+BN pairs folded into one conv
(netspaces.models.fold, trainer.fold_bn_eval) — against timm's regnetx_004 as a timm user
evaluates it. Same architecture (equal parameter counts, checked); batches alternate one by
one between the two after a warm-up; medians. The folded network's outputs are checked
against the unfolded one's before timing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import Result, main, median, set_threads

# (resolution, batch, timed batches per side)
SIZES = {"full": [(32, 64, 40), (224, 32, 12)], "quick": [(32, 64, 10), (224, 32, 3)], "toy": [(32, 4, 1)]}
WARMUP = {"full": 3, "quick": 2, "toy": 1}


def _rotating(fns: dict, *, warmup: int, repeats: int) -> dict[str, list[float]]:
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        for name in names[i % len(names):] + names[:i % len(names)]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def measure(resolution: int, batch: int, repeats: int, warmup: int) -> Result:
    import torch

    from benchmarks.train_step_vs_timm import models
    from netspaces.models.fold import fold_batchnorm

    threads = set_threads(2)
    ours, ref, params = models()
    ours, ref = (m.to(memory_format=torch.channels_last).eval() for m in (ours, ref))
    folded, n_folded = fold_batchnorm(ours)
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = ours(x), folded(x)
        if not torch.allclose(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max())):
            raise RuntimeError("the folded network does not compute what the original does")
        # three-way, rotating the order every round; the unfolded network shows what folding adds
        times = _rotating({"folded": lambda: folded(x), "timm": lambda: ref(x), "unfolded": lambda: ours(x)},
                          warmup=warmup, repeats=repeats)
    t_ours, t_ref, t_unfolded = times["folded"], times["timm"], times["unfolded"]
    return Result(f"eval_forward_{resolution}px", batch / median(t_ours), batch / median(t_ref), "img/s", True,
                  None, {"batch": batch, "resolution": resolution, "repeats": repeats, "threads": threads,
                         "params": params, "conv_bn_folded": n_folded,
                         "ours_unfolded_img_s": round(batch / median(t_unfolded), 2)})


def run(mode: str = "full") -> list[Result]:
    return [measure(r, b, n, WARMUP[mode]) for r, b, n in SIZES[mode]]


if __name__ == "__main__":
    main(run, __doc__)
