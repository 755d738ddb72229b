"""What Hydra needs before it composes a config: OmegaConf resolvers and generated options.

The options of `space`, `regime`, `block` and `model` are data of the registries in
netspaces.space (spaces, regimes, block types, zoo models) plus the timm baselines, so they
are generated here rather than written as YAML files: a new space or regime is one registry
entry, and it shows in `python train.py --help`. Import-light on purpose (no torch):
`python train.py bad=value` fails in a second.
"""

from __future__ import annotations

import warnings
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from netspaces.space.regimes import regime_names
from netspaces.space.spaces import SPACES
from netspaces.space.spec import BLOCK_TYPES
from netspaces.space.zoo import zoo_names

# timm baselines of the paper's comparisons (DESIGN.md): EfficientNet's own recipe is
# lr 0.2·batch/128 and weight decay 1e-5 (pycls dds_baselines), applied over the schedule's.
EFFICIENTNETS = [f"efficientnet_b{i}" for i in range(6)]
TIMM_BASELINES = {**{n: {"base_lr": 0.2, "weight_decay": 1e-5} for n in EFFICIENTNETS},
                  "resnext50_32x4d": {}}


def zoo_option(name: str) -> str:
    """The Hydra option of a zoo model: RegNetY-4.0GF → regnety_4.0gf, ResNet-50 → resnet50."""
    lower = name.lower()
    return lower.replace("-", "_") if lower.startswith("regnet") else lower.replace("-", "")


def space_tag(space: str, space_block: str, block: str, regime: str) -> str:
    """regnetx-400mf, or regnetx_y-400mf when the block is not the space's own."""
    return f"{space}-{regime}" if block == space_block else f"{space}_{block}-{regime}"


def run_subdir(kind: str, sample: Any, override_dirname: str, job_num: Any) -> str:
    """A sweep job's directory inside the sweep directory: stable across reruns.

    Sampled models: sample_003 (plus any other overrides that change the run, so two jobs
    never share a directory); other models: their distinguishing overrides, else `run`.
    """
    parts = [f"sample_{int(sample):03d}"] if kind == "sampled" else []
    if override_dirname:
        parts.append(override_dirname)
    return ",".join(parts) or "run"


def gpus_per_node(accelerator: str, devices: Any) -> int | None:
    """GPUs a SLURM job asks for: one per device for GPU trainers, none for trainer=cpu."""
    return int(devices) if str(accelerator) in ("gpu", "cuda", "auto") else None


def _override_values(overrides: list[str], key: str) -> list[str] | None:
    for line in overrides:
        k, _, v = str(line).partition("=")
        if k.lstrip("+~") == key:
            return [x.strip() for x in v.split(",")]
    return None


def sample_sweep(kind: str, n: Any, task_overrides: Any) -> str:
    """The `sample` sweep the basic sweeper adds under -m: range(0, n) for sampled models.

    Reads the command-line overrides because a swept `model=a,b` is not applied yet when the
    sweeper starts; an explicit `sample=...` on the command line replaces this value.
    """
    models = _override_values(list(task_overrides or []), "model")
    sampled = "sampled" in models if models is not None else kind == "sampled"
    return f"range(0,{int(n)})" if sampled and int(n) >= 1 else "0"


def register() -> None:
    """Register resolvers and generated model options (idempotent)."""
    # conf/hydra/launcher/submitit_slurm.yaml replaces the plugin's defaults by name, and Hydra
    # validates it against the plugin's schema (good: typos fail) but warns that this matching
    # is deprecated; the pinned Hydra keeps the behaviour.
    warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema with the same name")
    for name, fn in (("ns.space_tag", space_tag), ("ns.run_subdir", run_subdir),
                     ("ns.sample_sweep", sample_sweep), ("ns.gpus_per_node", gpus_per_node)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    cs = ConfigStore.instance()
    for name, space in SPACES.items():
        # the space picks its own block; `block=...` on the command line still wins
        cs.store(group="space", name=name, node={"defaults": [{"override /block@_global_.block": space.block}],
                                                 "name": name, "block": space.block})
    for name in BLOCK_TYPES:
        cs.store(group="block", name=name, node={"name": name})
    for name in regime_names():
        # flops (multiply-adds at 224 px) in [0.9·F, F]; tolerance t: F·(1 ± t); limits are absolute counts
        cs.store(group="regime", name=name, node={"name": name, "tolerance": None, "max_params": None,
                                                  "max_acts": None})
    common = {"stem": None, "base_lr": None, "weight_decay": None}
    for name in zoo_names():
        option = zoo_option(name)
        cs.store(group="model", name=option, node={"kind": "zoo", "name": name, "tag": option, **common})
    for name, recipe in TIMM_BASELINES.items():
        if name in {zoo_option(z) for z in zoo_names()}:
            continue  # the native zoo model wins (e.g. resnet50 is the paper's reference build)
        cs.store(group="model", name=name, node={"kind": "timm", "name": name, "tag": name, **common, **recipe})


def model_options() -> list[str]:
    return ["sampled", "timm", *(zoo_option(n) for n in zoo_names()), *TIMM_BASELINES]
