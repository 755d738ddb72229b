"""The boundary between Hydra's config and the code: check values, build typed settings.

Everything past this module takes dataclasses, never a DictConfig. Every bad value raises a
UserError whose one line names the key, the value and what is allowed — before any run
directory content, checkpoint or record is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from netspaces.errors import UserError
from netspaces.perf import PerfSettings
from netspaces.space.draws import get_draw
from netspaces.space.regimes import Regime, get_regime
from netspaces.space.spaces import get_space
from netspaces.space.spec import BLOCK_TYPES, STEM_TYPES
from netspaces.train.register import unclassified

PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
COMPILE_MODES = ("off", "default", "max-autotune-no-cudagraphs")  # trainer.compile (perf.compile_network)
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
STRATEGIES = ("auto", "ddp")
MODEL_KINDS = ("sampled", "zoo", "timm", "matched")  # matched: model=baselines (space/matched.py)
LOGGERS = ("csv", "wandb", "tensorboard")
LOADERS = ("auto", "pil", "dali", "gpu")  # data.loader of image folders (docs/training.md, data loaders)
REFERENCE_BATCH = 128
COLLECTIVE_TIMEOUT_S = 300.0  # trainer.collective_timeout_s where a config has none (trainer=cpu, gpu)


def cpus() -> int:
    """CPUs this process may run on (its affinity: a SLURM or taskset share, not the node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpus_per_process(processes: int) -> int:
    """The CPUs of one of this job's processes: SLURM_CPUS_PER_TASK under SLURM (a task is a
    rank), else this process's affinity shared among the job's `processes` on this node."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(slurm) if slurm.isdigit() and int(slurm) > 0 else max(1, cpus() // max(1, processes))


@dataclass(frozen=True)
class DataSettings:
    name: str  # a data set netspaces.train.data knows: digits | cifar10 | imagenet | imagefolder
    batch_size: int  # per process
    resolution: int
    seed: int = 0  # shuffling and augmentation
    root: str | None = None
    num_classes: int | None = None  # None: the number of class folders
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.2  # digits
    split_seed: int = 0  # digits
    augment: bool = False
    pca_lighting: float = 0.0
    limit_per_class: int | None = None
    workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    download: bool = False
    cache_dir: str | None = None  # decoded CIFAR-10 arrays and big trees' file lists are cached here
    loader: str = "pil"  # image folders, resolved: pil (uint8 from workers) | dali | gpu (decode_jpeg on CUDA)
    on_device: bool = False  # in-memory data held on the CUDA device (only ever on CUDA)
    verify: bool = False  # decode every image up front
    mean: tuple[float, ...] | None = None  # per channel, pixels in [0, 1] (the data YAML's)
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class OptimSettings:
    base_lr: float = 0.1
    global_batch: int = 128  # batch per process × processes: the lr scales with it
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    weight_decay_norm_bias: bool = True  # False: no decay on BN γ/β and biases
    epochs: int = 10
    warmup_epochs: int = 0
    warmup_factor: float = 0.1

    @property
    def lr(self) -> float:
        return self.base_lr * self.global_batch / REFERENCE_BATCH


@dataclass(frozen=True)
class ModelChoice:
    kind: str  # sampled | zoo | timm | matched
    name: str  # zoo or timm name ("sampled" for sampled models, the baseline's key for matched ones)
    num_classes: int
    resolution: int
    stem: str | None = None  # None: the model's own stem
    zero_init_final_gamma: bool = False
    # sampled models: the design space, its flop regime (matched baselines: theirs) and the sample index
    space: str | None = None
    regime: Regime | None = None
    block: str | None = None
    sweep_seed: int = 0
    sample: int = 0
    draw: str | None = None  # the space's rule set (space/draws.py)


@dataclass(frozen=True)
class LoggerSettings:
    name: str  # csv | wandb | tensorboard
    run_dir: str
    project: str = "netspaces"
    entity: str | None = None
    mode: str | None = None  # None: online with a key, else offline
    group: str | None = None  # the sweep name
    run_name: str | None = None  # the sample id
    tags: tuple[str, ...] = ()
    init_timeout_s: float = 30.0


@dataclass(frozen=True)
class TrainerSettings:
    accelerator: str = "cpu"
    devices: int = 1  # processes per node
    device_ids: tuple[int, ...] | None = None  # trainer.devices given as a list: which GPUs
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"  # resolved: "auto" is bf16-mixed on a GPU, 32-true elsewhere
    deterministic: bool = True
    compile: str = "off"  # torch.compile mode of the network (COMPILE_MODES)
    threads: int = 1  # torch threads per process
    channels_last: bool = True
    log_every_n_steps: int | None = None  # train loss and lr; None: about ten points per epoch
    check_every_n_steps: int = 50  # the NaN/inf loss check (one host sync)
    progress_bar: bool | None = None
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    keep_checkpoint: bool | None = None
    epochs: int = 10
    eval_every: int = 1  # validate every N epochs and always after the last; 0: only after the last
    ema_decay: float = 0.0
    label_smoothing: float = 0.0
    collective_timeout_s: float = COLLECTIVE_TIMEOUT_S  # DDP: how long a rank waits for the others

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @property
    def distributed(self) -> bool:
        return self.strategy == "ddp" and self.world_size > 1


@dataclass(frozen=True)
class RunSettings:
    run_dir: Path
    seed: int
    sweep_name: str
    model: ModelChoice
    data: DataSettings
    optim: OptimSettings
    trainer: TrainerSettings
    logger: LoggerSettings
    perf: PerfSettings


def _fail(key: str, value: Any, allowed: str) -> UserError:
    return UserError(f"{key}={value!r} is not allowed: {allowed}")


def _int(cfg: DictConfig, key: str, *, lo: int | None = None, none_ok: bool = False) -> int | None:
    value = OmegaConf.select(cfg, key)
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, value, "an integer" + (f" >= {lo}" if lo is not None else ""))
    if lo is not None and value < lo:
        raise _fail(key, value, f"must be >= {lo}")
    return value


def _float(
    cfg: DictConfig,
    key: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    none_ok: bool = False,
) -> float | None:
    value = OmegaConf.select(cfg, key)
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, "a number")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        raise _fail(key, value, "must be " + " and ".join(x for x in (left, right) if x))
    return float(value)


def _choice(cfg: DictConfig, key: str, allowed: tuple[str, ...]) -> str:
    value = OmegaConf.select(cfg, key)
    if str(value) not in allowed:
        raise _fail(key, value, "one of " + ", ".join(allowed))
    return str(value)


def _limit(cfg: DictConfig, key: str, *, zero_ok: bool = False) -> int | float | None:
    value = OmegaConf.select(cfg, key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (value == 0 and not zero_ok)
        or (isinstance(value, float) and value > 1)
    ):
        lowest = "0 (none)" if zero_ok else "1"
        raise _fail(key, value, f"null, a number of batches >= {lowest}, or a fraction in (0, 1]")
    return value


def _device_ids(cfg: DictConfig) -> tuple[int, ...] | None:
    """trainer.devices as a list of GPU indices ([0, 2]); None when it is a count."""
    value = OmegaConf.select(cfg, "trainer.devices")
    if not OmegaConf.is_list(value) and not isinstance(value, (list, tuple)):
        return None
    ids = list(value)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids) or len(set(ids)) < len(ids):
        raise _fail("trainer.devices", ids, "a count >= 1, auto, or a list of distinct GPU indices >= 0 ([0, 2])")
    return tuple(ids)


def _devices(cfg: DictConfig, accelerator: str) -> int:
    ids = _device_ids(cfg)
    if ids is not None:
        return len(ids)
    value = OmegaConf.select(cfg, "trainer.devices")
    if value in ("auto", -1):
        if accelerator in ("gpu", "cuda", "auto"):
            import torch

            if torch.cuda.is_available():
                return torch.cuda.device_count()
        return 1
    return _int(cfg, "trainer.devices", lo=1)


def _threads(cfg: DictConfig, accelerator: str) -> int:
    """trainer.threads, else OMP_NUM_THREADS (joblib's workers get cpus / n_jobs there), else
    this node's CPUs shared among its ranks."""
    given = _int(cfg, "trainer.threads", lo=1, none_ok=True)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if given is None and env.isdigit() and int(env) > 0:
        return int(env)
    return given or max(1, cpus() // _devices(cfg, accelerator))


def trainer_settings(cfg: DictConfig) -> TrainerSettings:
    accelerator = _choice(cfg, "trainer.accelerator", ACCELERATORS)
    progress = OmegaConf.select(cfg, "trainer.progress_bar")
    keep = OmegaConf.select(cfg, "trainer.keep_checkpoint")
    return TrainerSettings(
        accelerator=accelerator,
        devices=_devices(cfg, accelerator),
        device_ids=_device_ids(cfg),
        num_nodes=_int(cfg, "trainer.num_nodes", lo=1),
        strategy=_choice(cfg, "trainer.strategy", STRATEGIES),
        precision=_precision(cfg, accelerator),
        deterministic=bool(OmegaConf.select(cfg, "trainer.deterministic")),
        compile=_compile(cfg),
        threads=_threads(cfg, accelerator),
        channels_last=bool(OmegaConf.select(cfg, "trainer.channels_last")),
        log_every_n_steps=_int(cfg, "trainer.log_every_n_steps", lo=1, none_ok=True),
        check_every_n_steps=_int(cfg, "trainer.check_every_n_steps", lo=1),
        progress_bar=None if progress is None else bool(progress),
        limit_train_batches=_limit(cfg, "trainer.limit_train_batches"),
        limit_val_batches=_limit(cfg, "trainer.limit_val_batches", zero_ok=True),
        keep_checkpoint=None if keep is None else bool(keep),
        epochs=_int(cfg, "schedule.epochs", lo=1),
        eval_every=_int(cfg, "schedule.eval_every", lo=0),
        ema_decay=_float(cfg, "schedule.ema_decay", lo=0.0, hi=1.0, hi_open=True),
        label_smoothing=_float(cfg, "schedule.label_smoothing", lo=0.0, hi=1.0, hi_open=True),
        collective_timeout_s=_float(cfg, "trainer.collective_timeout_s", lo=0.0, lo_open=True, none_ok=True)
        or COLLECTIVE_TIMEOUT_S,
    )


def uses_gpu(accelerator: str) -> bool:
    """A run on this accelerator trains on CUDA: gpu/cuda, or auto (trainer=ddp) where torch
    sees a GPU. Every GPU default (bf16, TF32, cuDNN autotuning) follows this, not the name."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and _cuda())


def _precision(cfg: DictConfig, accelerator: str) -> str:
    """trainer.precision; auto: bf16-mixed on a GPU (the GPU default), 32-true elsewhere."""
    precision = _choice(cfg, "trainer.precision", PRECISIONS)
    if precision == "auto":
        return "bf16-mixed" if uses_gpu(accelerator) else "32-true"
    return precision


def _compile(cfg: DictConfig) -> str:
    value = OmegaConf.select(cfg, "trainer.compile", default="off")
    value = "off" if value is False else value  # YAML reads a bare `off` as false
    if str(value) not in COMPILE_MODES:
        raise _fail("trainer.compile", value, "one of " + ", ".join(COMPILE_MODES))
    return str(value)


def precision_used(t: TrainerSettings) -> str:
    """The precision a run actually trains in: Lightning's aliases resolved, and 16-mixed on a
    CPU (where fp16 autocast does not exist) replaced by bf16-mixed, as Lightning does."""
    precision = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}.get(t.precision, t.precision)
    return "bf16-mixed" if not uses_gpu(t.accelerator) and precision == "16-mixed" else precision


def optim_settings(cfg: DictConfig, world_size: int) -> OptimSettings:
    epochs = _int(cfg, "schedule.epochs", lo=1)
    warmup = _int(cfg, "schedule.warmup_epochs", lo=0)
    if warmup > epochs:
        raise _fail("schedule.warmup_epochs", warmup, f"at most schedule.epochs ({epochs})")
    # a model family may bring its own recipe (EfficientNet: lr 0.2, wd 1e-5): model.* when
    # set, else (model=baselines) the member's family recipe, else the schedule's
    lr_key = "model.base_lr" if OmegaConf.select(cfg, "model.base_lr") is not None else "schedule.base_lr"
    wd_key = (
        "model.weight_decay" if OmegaConf.select(cfg, "model.weight_decay") is not None else "schedule.weight_decay"
    )
    base_lr, weight_decay = _float(cfg, lr_key, lo=0.0, lo_open=True), _float(cfg, wd_key, lo=0.0)
    recipe = _baseline_recipe(cfg)
    base_lr = recipe.get("base_lr", base_lr) if lr_key.startswith("schedule.") else base_lr
    weight_decay = recipe.get("weight_decay", weight_decay) if wd_key.startswith("schedule.") else weight_decay
    batch = _int(cfg, "schedule.batch_size", lo=1)
    return OptimSettings(
        base_lr=base_lr,
        global_batch=batch * world_size,
        momentum=_float(cfg, "schedule.momentum", lo=0.0, hi=1.0, hi_open=True),
        nesterov=bool(OmegaConf.select(cfg, "schedule.nesterov")),
        weight_decay=weight_decay,
        weight_decay_norm_bias=bool(OmegaConf.select(cfg, "schedule.weight_decay_norm_bias")),
        epochs=epochs,
        warmup_epochs=warmup,
        warmup_factor=_float(cfg, "schedule.warmup_factor", lo=0.0, hi=1.0, lo_open=True),
    )


def _baseline_recipe(cfg: DictConfig) -> dict:
    """model=baselines: the family recipe of the member `sample` names; {} for other models."""
    if OmegaConf.select(cfg, "model.kind") != "matched":
        return {}
    from netspaces.space.matched import get_rule

    return get_rule(OmegaConf.select(cfg, "sample")).recipe


def data_settings(cfg: DictConfig, t: TrainerSettings) -> DataSettings:
    d = cfg.data
    name = OmegaConf.select(cfg, "data.name")
    if not isinstance(name, str) or not name:
        raise _fail("data.name", name, "the name of a data set (data=digits, cifar10, imagenet, imagefolder)")
    root = OmegaConf.select(cfg, "data.root", default=None, throw_on_missing=False)
    workers = d.get("workers", 0)
    # auto: the job's CPUs per process less two (the training process and its pinning thread)
    workers = max(1, cpus_per_process(t.devices) - 2) if workers == "auto" else _int(cfg, "data.workers", lo=0)
    pin = d.get("pin_memory", "auto")
    pin = t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and _cuda()) if pin == "auto" else bool(pin)
    stats = {}
    for key in ("mean", "std"):
        value = d.get(key)
        if value is not None:
            if (
                len(value) != 3
                or not all(isinstance(v, (int, float)) for v in value)
                or (key == "std" and min(value) <= 0)
            ):
                raise _fail(f"data.{key}", list(value), "3 numbers" + (" > 0" if key == "std" else ""))
            stats[key] = tuple(float(v) for v in value)
    return DataSettings(
        name=name,
        batch_size=_int(cfg, "schedule.batch_size", lo=1),
        resolution=_int(cfg, "data.resolution", lo=8),
        seed=_int(cfg, "seed", lo=0),
        root=str(root) if root is not None else None,
        num_classes=_int(cfg, "data.num_classes", lo=2, none_ok=True),
        train_split=str(d.get("train_split", "train")),
        val_split=str(d.get("val_split", "val")),
        val_fraction=_float(cfg, "data.val_fraction", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
        if "val_fraction" in d
        else 0.2,
        split_seed=int(d.get("split_seed", 0)),
        augment=bool(d.get("augment", False)),
        pca_lighting=_float(cfg, "data.pca_lighting", lo=0.0) if "pca_lighting" in d else 0.0,
        limit_per_class=_int(cfg, "data.limit_per_class", lo=1, none_ok=True),
        workers=workers,
        pin_memory=pin,
        persistent_workers=bool(d.get("persistent_workers", False)),
        download=bool(d.get("download", False)),
        verify=bool(d.get("verify", False)),
        cache_dir=str(Path(str(OmegaConf.select(cfg, "paths.output"))) / "cache"),
        loader=_loader(d, uses_gpu(t.accelerator)) if "loader" in d else "pil",
        on_device=_on_device(d, uses_gpu(t.accelerator)) if "on_device" in d else False,
        **stats,
    )


def _loader(d: DictConfig, on_cuda: bool) -> str:
    """data.loader resolved: auto is pil on the CPU, on CUDA dali where nvidia-dali is
    installed, else gpu (torchvision's decode_jpeg on the GPU). A loader this run cannot
    use is one line naming the value and what is missing."""
    value = str(d.get("loader"))
    if value not in LOADERS:
        raise _fail("data.loader", value, "one of " + ", ".join(LOADERS))
    if value == "auto":
        return ("dali" if _dali_installed() else "gpu") if on_cuda else "pil"
    if value in ("dali", "gpu") and not on_cuda:
        raise UserError(
            f"data.loader={value} decodes on a CUDA GPU, and this run trains on the CPU: "
            "use trainer=gpu, or data.loader=pil (or auto)"
        )
    if value == "dali" and not _dali_installed():
        raise UserError(f"data.loader=dali needs the nvidia-dali package: {dali_install_hint()}")
    return value


def _dali_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):  # no `nvidia` namespace package at all
        return False


def dali_install_hint() -> str:
    """How to install DALI for this torch: netspaces[dali] is the CUDA 13 build (the pinned
    torch's); another CUDA major needs its own package."""
    import torch

    major = (torch.version.cuda or "13").split(".")[0]
    if major == "13":
        return "pip install netspaces[dali] (nvidia-dali-cuda130)"
    return f"pip install nvidia-dali-cuda{major}0 (this torch is built for CUDA {major})"


def _on_device(d: DictConfig, on_cuda: bool) -> bool:
    """data.on_device of in-memory data: auto (on the GPU when training on CUDA) | false."""
    value = d.get("on_device")
    if value not in ("auto", True, False):
        raise _fail("data.on_device", value, "auto (on the GPU when training on CUDA), true or false")
    if value is True and not on_cuda:
        raise UserError("data.on_device=true holds the data on a CUDA GPU, and this run trains on the CPU: use auto")
    return on_cuda and value is not False


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def model_choice(cfg: DictConfig, num_classes: int, resolution: int) -> ModelChoice:
    """What a run trains. For sampled models this is where space, regime and block are
    resolved: the sweep callback and the run both call it."""
    kind = _choice(cfg, "model.kind", MODEL_KINDS)
    stem = OmegaConf.select(cfg, "model.stem")
    if stem is not None and stem not in STEM_TYPES:
        raise _fail("model.stem", stem, "null (the model's own), " + ", ".join(STEM_TYPES))
    common = dict(
        kind=kind,
        num_classes=num_classes,
        resolution=resolution,
        stem=stem,
        zero_init_final_gamma=bool(OmegaConf.select(cfg, "schedule.zero_init_final_gamma")),
    )
    if kind == "matched":  # model=baselines: `sample` names the member, matched to the regime
        from netspaces.space.matched import get_rule

        return ModelChoice(name=get_rule(OmegaConf.select(cfg, "sample")).key, regime=_regime(cfg), **common)
    if kind != "sampled":
        name = OmegaConf.select(cfg, "model.name", default=None, throw_on_missing=False)
        if not name:
            raise UserError("model.name is required with model=timm: e.g. model.name=efficientnet_b0")
        return ModelChoice(name=str(name), **common)
    space = get_space(str(OmegaConf.select(cfg, "space.name"))).name
    regime = _regime(cfg)
    block = _choice(cfg, "block.name", BLOCK_TYPES)
    return ModelChoice(
        name="sampled",
        space=space,
        regime=regime,
        block=block,
        sweep_seed=_int(cfg, "sweep.seed", lo=0),
        sample=_int(cfg, "sample", lo=0),
        draw=get_draw(OmegaConf.select(cfg, "space.draw", default=None)).name,
        **common,
    )


def _regime(cfg: DictConfig) -> Regime:
    return get_regime(
        str(OmegaConf.select(cfg, "regime.name")),
        tolerance=_float(cfg, "regime.tolerance", lo=0.0, hi=1.0, lo_open=True, hi_open=True, none_ok=True),
        max_params=_float(cfg, "regime.max_params", lo=0.0, lo_open=True, none_ok=True),
        max_acts=_float(cfg, "regime.max_acts", lo=0.0, lo_open=True, none_ok=True),
    )


def logger_settings(cfg: DictConfig, run_dir: Path, run_name: str | None, tags: tuple[str, ...]) -> LoggerSettings:
    name = _choice(cfg, "logger.name", LOGGERS)
    extra = tuple(str(t) for t in (OmegaConf.select(cfg, "logger.tags") or ()))
    mode = OmegaConf.select(cfg, "logger.mode")
    if mode is not None and mode not in ("online", "offline", "disabled"):
        raise _fail("logger.mode", mode, "null (auto), online, offline or disabled")
    return LoggerSettings(
        name=name,
        run_dir=str(run_dir),
        project=str(OmegaConf.select(cfg, "logger.project") or "netspaces"),
        entity=OmegaConf.select(cfg, "logger.entity"),
        mode=mode,
        group=str(OmegaConf.select(cfg, "sweep.name")),
        run_name=run_name,
        tags=tags + extra,
    )


def perf_settings(cfg: DictConfig) -> PerfSettings:
    switches = {}
    for name in fields(PerfSettings):
        value = OmegaConf.select(cfg, f"perf.{name.name}", default=True)
        if not isinstance(value, bool):
            raise _fail(f"perf.{name.name}", value, "true or false")
        switches[name.name] = value
    unknown = sorted(set(OmegaConf.select(cfg, "perf", default={}) or {}) - set(switches))
    if unknown:
        raise _fail(
            f"perf.{unknown[0]}",
            OmegaConf.select(cfg, f"perf.{unknown[0]}"),
            "not a switch; the perf switches are " + ", ".join(switches),
        )
    return PerfSettings(**switches)


def joblib_devices(cfg: DictConfig, job_num: int, gpus: int) -> list[int] | None:
    """The GPUs of job `job_num` under the joblib launcher, round-robin over the `gpus` this
    machine has (job k of a 1-GPU trainer on GPU k mod gpus), so parallel jobs do not all
    land on cuda:0; None when nothing is to be spread (one GPU, a CPU run, devices already a
    list or `auto`)."""
    if gpus <= 1 or not uses_gpu(str(OmegaConf.select(cfg, "trainer.accelerator"))):
        return None
    devices = OmegaConf.select(cfg, "trainer.devices")
    if isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices < gpus:
        return None
    return [(job_num * devices + i) % gpus for i in range(devices)]


def check_machine(t: TrainerSettings) -> None:
    """A GPU request this machine cannot honour, or nodes nobody starts, refused before anything runs."""
    if t.distributed and t.num_nodes > 1:  # this process would start one node's ranks, never the others
        from netspaces.train.ddp import externally_launched

        if not externally_launched():
            raise _fail(
                "trainer.num_nodes",
                t.num_nodes,
                "more than 1 only where SLURM starts the ranks (hydra/launcher=submitit_slurm) or torchrun does; "
                "on one machine use trainer=ddp",
            )
    if t.distributed:
        _check_slurm_layout(t)
    if t.accelerator not in ("gpu", "cuda"):
        return
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if have == 0:
        raise _fail(
            "trainer.accelerator",
            t.accelerator,
            "this machine has no CUDA GPU that torch can use; train on the CPU with trainer=cpu",
        )
    if t.devices > have:
        raise _fail("trainer.devices", t.devices, f"at most the {have} GPU(s) this machine has")
    if t.device_ids and max(t.device_ids) >= have:
        raise _fail("trainer.devices", list(t.device_ids), f"GPU indices below {have} (this machine's GPUs)")


def _check_slurm_layout(t: TrainerSettings) -> None:
    """Under SLURM every task is a rank and Lightning takes the world size from SLURM, while
    the lr is scaled for trainer.num_nodes x trainer.devices: the two must be the same job."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return
    tasks, nodes = os.environ.get("SLURM_NTASKS", ""), os.environ.get("SLURM_NNODES", "")
    if (tasks.isdigit() and int(tasks) != t.world_size) or (nodes.isdigit() and int(nodes) != t.num_nodes):
        raise _fail(
            "trainer.num_nodes",
            t.num_nodes,
            f"this SLURM job runs {tasks} task(s) on {nodes or '?'} node(s), and trainer.num_nodes x trainer.devices "
            f"(here {t.num_nodes} x {t.devices}) must be its nodes x tasks per node",
        )


def _known_keys(cfg: DictConfig) -> None:
    """Every key is one netspaces reads and has classified (train/identity.py): a key added
    with +key=value would be silently ignored, and never part of any population's identity."""
    extra = unclassified(cfg)
    if extra:
        raise _fail(
            extra[0],
            OmegaConf.select(cfg, extra[0]),
            "not a key netspaces reads (`python train.py --cfg job` lists the keys)",
        )


def check_config(cfg: DictConfig) -> ModelChoice:
    """Every value check of run_settings without a run directory (sweeps check up front);
    returns what the runs will train."""
    _known_keys(cfg)
    t = trainer_settings(cfg)
    optim_settings(cfg, t.world_size)
    d = data_settings(cfg, t)
    logger_settings(cfg, Path("."), None, ())
    perf_settings(cfg)
    _int(cfg, "sweep.n", lo=1)
    return model_choice(cfg, d.num_classes or 10, d.resolution)


def run_settings(cfg: DictConfig) -> RunSettings:
    run_dir = OmegaConf.select(cfg, "paths.run_dir")
    if not run_dir:
        raise UserError("paths.run_dir is not set (python train.py sets it; train(cfg) callers must)")
    _known_keys(cfg)
    t = trainer_settings(cfg)
    check_machine(t)
    d = data_settings(cfg, t)
    m = model_choice(cfg, d.num_classes or 10, d.resolution)
    _int(cfg, "sweep.n", lo=1)
    return RunSettings(
        run_dir=Path(str(run_dir)),
        seed=_int(cfg, "seed", lo=0),
        sweep_name=str(OmegaConf.select(cfg, "sweep.name")),
        model=m,
        data=d,
        optim=optim_settings(cfg, t.world_size),
        trainer=t,
        logger=logger_settings(cfg, Path(str(run_dir)), None, ()),
        perf=perf_settings(cfg),
    )
