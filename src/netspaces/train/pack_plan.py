"""`sweep.pack=K`: which jobs a packed sweep runs and how big a pack is (torch-free).

A pack is a contiguous block of sample indices trained by one job (train/pack.py): the
sweeper's `sample` values `0,1,...,n-1` become `0-2,3-5,...` (a block of one stays a plain
index), so a launcher submits ceil(n/K) jobs. Seed replicas (`<i>r<j>`) stay one job each.
The job of block a-b has its own directory `pack_aaa-bbb[,overrides]` (Hydra's config and
the job's log); each model still writes `sample_NNN[,overrides]/`, as its solo job would.

`sweep.pack=auto` sizes K from the analytic counts of the population's models at the trained
resolution and the memory of the device a job trains on (train/pack.py trains the K models
one step after another, so K models' weights, gradients and momenta are resident but only
one model's activations). Torch is imported only to ask a GPU for its free memory.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from netspaces.errors import UserError

MAX_PACK = 8  # auto never packs more: beyond it a failure or a resume touches too many models
BLOCK = re.compile(r"^(\d+)-(\d+)$")
PACK_DIR = "pack"
# bytes per trained activation and image kept for the backward pass (the conv output, the BN
# output and the ReLU output, fp32) with headroom for the gradients in flight: an upper estimate
ACT_BYTES = 16
MEMORY_SHARE = 0.8  # of the free memory: the rest is the allocator's and the data's


def block_of(sample: Any) -> tuple[int, int] | None:
    """(first, last) sample index of a pack job's `sample` value "a-b", else None."""
    m = BLOCK.match(str(sample))
    return (int(m.group(1)), int(m.group(2))) if m and int(m.group(1)) < int(m.group(2)) else None


def job_dir_name(first: int, last: int) -> str:
    return f"{PACK_DIR}_{first:03d}-{last:03d}"


def member_dir_name(job_dir_name_: str, first: int, last: int, index: int) -> str:
    """sample_NNN with the job directory's override suffix (sample_004,schedule.epochs=5)."""
    head = job_dir_name(first, last)
    suffix = job_dir_name_[len(head) :] if job_dir_name_.startswith(head) else ""
    return f"sample_{index:03d}{suffix}"


def blocks(indices: list[int], k: int) -> list[str]:
    """Contiguous blocks of k indices as sample values: "0-2", "3-5", ..., "9"."""
    out = []
    for start in range(0, len(indices), k):
        chunk = indices[start : start + k]
        out.append(f"{chunk[0]}-{chunk[-1]}" if len(chunk) > 1 else str(chunk[0]))
    return out


def pack_value(cfg: DictConfig) -> int | str:
    """sweep.pack as given: an integer >= 1 or "auto"; anything else is one line."""
    value = OmegaConf.select(cfg, "sweep.pack", default=1)
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise UserError(f"sweep.pack={value!r} is not allowed: an integer >= 1 (models per job) or auto")


def check_pack(cfg: DictConfig) -> int:
    """Up-front checks of sweep.pack (the sweep callback's); the K the sweep will use."""
    from netspaces.train.settings import trainer_settings

    value = pack_value(cfg)
    if value == 1:
        return 1
    t = trainer_settings(cfg)
    if t.strategy == "ddp":
        raise UserError(
            f"sweep.pack={value} is not allowed with trainer.strategy=ddp: packing is for single-device jobs "
            "(use sweep.pack=1 with DDP, or a single-device trainer with packing)"
        )
    if OmegaConf.select(cfg, "model.kind") != "sampled":
        raise UserError(f"sweep.pack={value} packs sampled models only (model=sampled); use sweep.pack=1")
    folder = OmegaConf.select(cfg, "data.name") in ("imagenet", "imagefolder")
    if folder and OmegaConf.select(cfg, "data.workers") == 0:
        raise UserError(
            f"sweep.pack={value} is not allowed with data.workers=0 on image folders: the augmentation would draw "
            "from the RNG the pack's models share; data.workers >= 1 (or auto)"
        )
    if OmegaConf.select(cfg, "logger.name") == "wandb":
        raise UserError(f"sweep.pack={value} is not allowed with logger=wandb (one W&B run per process); use csv")
    return choose_pack(cfg) if value == "auto" else value


def choose_pack(cfg: DictConfig) -> int:
    """K for sweep.pack=auto: as many models as the device's memory holds (all K models'
    weights, gradients and momenta, plus one model's activations: they train one after the
    other), at most MAX_PACK and n; then evened out over the local workers (joblib's n_jobs),
    so that no worker is left with a short last pack while the others wait."""
    from netspaces.train.settings import data_settings, model_choice, trainer_settings, uses_gpu

    t = trainer_settings(cfg)
    d = data_settings(cfg, t)
    n = int(OmegaConf.select(cfg, "sweep.n"))
    state, acts = model_bytes(model_choice(cfg, d.num_classes or 10, d.resolution), n, d.batch_size, t.ema_decay > 0)
    free = device_memory(uses_gpu(t.accelerator), t.threads)
    return balanced(pack_for(free, state, acts, n), n, local_workers(cfg))


def local_workers(cfg: DictConfig) -> int:
    """Jobs this machine runs side by side: joblib's n_jobs (-1: every CPU), else 1 (the basic
    launcher runs one job at a time; a cluster's tasks are not evened out)."""
    if "joblib" not in str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "").lower():
        return 1
    from netspaces.train.settings import cpus

    jobs = OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=1)
    jobs = int(jobs) if isinstance(jobs, int) else 1
    return max(1, jobs if jobs > 0 else cpus() + 1 + jobs)


def balanced(k_max: int, n: int, workers: int) -> int:
    """The smallest K that keeps the rounds of ceil(n / K) jobs over `workers` as few as K = k_max does."""
    rounds = -(-n // (workers * k_max))
    return max(1, -(-n // (workers * rounds)))


def pack_for(free_bytes: int, state_bytes: int, act_bytes: int, n: int) -> int:
    """The largest K <= MAX_PACK, n whose K models' state plus one's activations fit."""
    room = MEMORY_SHARE * free_bytes - act_bytes
    fits = int(room // max(1, state_bytes)) if room > 0 else 1
    return max(1, min(MAX_PACK, n, fits))


def model_bytes(choice, n: int, batch: int, ema: bool) -> tuple[int, int]:
    """(resident state, training activations of one step) in bytes, the largest over the
    population's first n models, from the analytic counts at the trained resolution."""
    from netspaces.space.complexity import complexity
    from netspaces.space.sampling import sample_models

    samples = sample_models(choice.space, choice.regime, n, choice.sweep_seed, block=choice.block, draw=choice.draw)
    state = acts = 0
    copies = 4 if ema else 3  # weights, gradients, momentum (and the EMA's weights)
    for s in samples:
        spec = replace(s.spec, num_classes=choice.num_classes, stem=choice.stem or s.spec.stem)
        cx = complexity(spec, choice.resolution)
        state = max(state, copies * 4 * int(cx.params))
        acts = max(acts, ACT_BYTES * batch * int(cx.acts))
    return state, acts


def device_memory(on_gpu: bool, threads: int) -> int:
    """Free bytes a job may use: the GPU's free memory, or on the CPU the available host
    memory shared among the jobs this machine's cores run side by side (cores / threads)."""
    if on_gpu:
        import torch

        if not torch.cuda.is_available():
            raise UserError(
                "sweep.pack=auto needs the GPU it sizes packs for, and this machine has none; give sweep.pack=K"
            )
        return int(torch.cuda.mem_get_info()[0])
    from netspaces.train.settings import cpus

    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(available // max(1, cpus() // max(1, threads)))


def packing_samples(sample_sweep: Callable[..., str]) -> Callable[..., str]:
    """The resolver of the `sample` sweep: hydra_conf.sample_sweep's values with the sample
    indices in blocks of K (sweep.pack); replicas and other models' values as they are."""

    def resolver(
        kind: Any, n: Any, task_overrides: Any, replicas: Any, replica_models: Any, pack: Any, *, _root_: Any
    ) -> str:
        values = sample_sweep(kind, n, task_overrides, replicas, replica_models)
        if pack == 1 or not (values.startswith("range(0,") or values[:1].isdigit()):
            return values
        try:
            k = check_pack(_root_)
        except Exception:  # noqa: BLE001 — the sweep callback has refused a bad value with one line
            return values
        if k == 1:
            return values
        if values.startswith("range(0,"):
            indices, rest = list(range(int(n))), []
        else:
            items = values.split(",")
            indices, rest = [int(v) for v in items if v.isdigit()], [v for v in items if not v.isdigit()]
        return ",".join(blocks(indices, k) + rest)

    return resolver


def packing_subdirs(run_subdir: Callable[..., str]) -> Callable[..., str]:
    """The resolver of a job's directory: hydra_conf.run_subdir's, and pack_aaa-bbb[,overrides]
    for a pack job (its models' own directories are run_subdir's sample_NNN ones)."""

    def resolver(kind: str, sample: Any, override_dirname: str, job_num: Any, seed: Any = 0) -> str:
        block = block_of(sample) if kind == "sampled" else None
        if block is None:
            return run_subdir(kind, sample, override_dirname, job_num, seed)
        name = job_dir_name(*block)
        return f"{name},{override_dirname}" if override_dirname else name

    return resolver
