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

from netspaces.record import REPLICAS_DIR
from netspaces.space.draws import DEFAULT_DRAW
from netspaces.space.matched import BASELINES, EFFICIENTNET_RECIPE, member_dir
from netspaces.space.regimes import regime_names
from netspaces.space.spaces import SPACES
from netspaces.space.spec import BLOCK_TYPES
from netspaces.space.zoo import zoo_names

# timm baselines of the paper's comparisons (DESIGN.md): EfficientNet's own recipe is
# lr 0.2·batch/128 and weight decay 1e-5 (pycls dds_baselines), applied over the schedule's.
EFFICIENTNETS = [f"efficientnet_b{i}" for i in range(6)]
TIMM_BASELINES = {**{n: dict(EFFICIENTNET_RECIPE) for n in EFFICIENTNETS}, "resnext50_32x4d": {}}


def zoo_option(name: str) -> str:
    """The Hydra option of a zoo model: RegNetY-4.0GF → regnety_4.0gf, ResNet-50 → resnet50."""
    lower = name.lower()
    return lower.replace("-", "_") if lower.startswith("regnet") else lower.replace("-", "")


def space_tag(space: str, space_block: str, block: str, regime: str) -> str:
    """regnetx-400mf, or regnetx_y-400mf when the block is not the space's own."""
    return f"{space}-{regime}" if block == space_block else f"{space}_{block}-{regime}"


def replica_of(sample: Any) -> tuple[int, int] | None:
    """(sample index, replica j) of a seed-replica job's `sample` value "<i>r<j>", else None."""
    text = str(sample)
    i, sep, j = text.partition("r")
    return (int(i), int(j)) if sep and i.isdigit() and j.isdigit() and int(j) >= 1 else None


def run_subdir(kind: str, sample: Any, override_dirname: str, job_num: Any, seed: Any = 0) -> str:
    """A sweep job's directory inside the sweep directory: stable across reruns.

    Sampled models: sample_003 (plus any other overrides that change the run, so two jobs
    never share a directory); seed replica j of sample 3 (sweep.replicas):
    replicas/seed_<seed + j>/sample_003; model=baselines: the member's key (efficientnet_b0);
    other models: their distinguishing overrides, else `run`.
    """
    replica = replica_of(sample) if kind == "sampled" else None
    if replica is not None:
        i, j = replica
        base = f"{REPLICAS_DIR}/seed_{int(seed) + j}/sample_{i:03d}"
        return f"{base},{override_dirname}" if override_dirname else base
    if kind == "matched":  # every job of the sweep says model=baselines: it distinguishes none
        others = [p for p in str(override_dirname).split(",") if p and p != "model=baselines"]
        return ",".join([member_dir(sample), *others])
    parts = [f"sample_{int(sample):03d}"] if kind == "sampled" else []
    if override_dirname:
        parts.append(override_dirname)
    return ",".join(parts) or "run"


def sweep_dir(output: Any, name: Any, *, _root_: Any) -> str:
    """A sweep's directory: outputs/sweeps/<name>, or <name>-<first 6 hex of the identity>
    when that directory already holds a population of another identity (train/identity.py).
    Every process that resolves it (the launching one, joblib workers, cluster jobs) reads
    the same identity.json, so all agree."""
    from pathlib import Path

    from netspaces.train import identity

    base = Path(str(output)) / "sweeps" / str(name)
    try:
        h, _ = identity.of(_root_)
    except Exception:  # noqa: BLE001 — a bad value: the callback refuses it with one line
        return str(base)
    existing = identity.read_identity(base)
    return str(base) if existing is None or existing["hash"] == h else f"{base}-{h[:6]}"


def gpus_per_node(accelerator: str, devices: Any) -> int | None:
    """GPUs a SLURM job asks for: one per device for GPU trainers, none for trainer=cpu."""
    return int(devices) if str(accelerator) in ("gpu", "cuda", "auto") else None


def _override_values(overrides: list[str], key: str) -> list[str] | None:
    for line in overrides:
        k, _, v = str(line).partition("=")
        if k.lstrip("+~") == key:
            return [x.strip() for x in v.split(",")]
    return None


def sample_sweep(kind: str, n: Any, task_overrides: Any, replicas: Any = 0, replica_models: Any = 0) -> str:
    """The `sample` sweep the basic sweeper adds under -m: range(0, n) for sampled models,
    then with sweep.replicas=k the first sweep.replica_models samples once more per extra
    training seed ("<i>r<j>": sample i, seed + j; see run_subdir).

    model=baselines (kind matched): one job per baseline of the regime (space/matched.py).

    Reads the command-line overrides because a swept `model=a,b` is not applied yet when the
    sweeper starts; an explicit `sample=...` on the command line replaces this value.
    """
    models = _override_values(list(task_overrides or []), "model")
    sampled = "sampled" in models if models is not None else kind == "sampled"
    if not sampled and ("baselines" in models if models is not None else kind == "matched"):
        return ",".join(BASELINES)
    if not sampled or int(n) < 1:
        return "0"
    k, m = _count(replicas), min(_count(replica_models), int(n))
    if k == 0 or m == 0:
        return f"range(0,{int(n)})"
    return ",".join([str(i) for i in range(int(n))] + [f"{i}r{j}" for j in range(1, k + 1) for i in range(m)])


def _count(value: Any) -> int:
    """A non-negative count, 0 for anything else (the sweep callback refuses bad values)."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def register() -> None:
    """Register resolvers and generated model options (idempotent)."""
    from netspaces.train.pack_plan import packing_samples, packing_subdirs

    # conf/hydra/launcher/submitit_slurm.yaml replaces the plugin's defaults by name, and Hydra
    # validates it against the plugin's schema (good: typos fail) but warns that this matching
    # is deprecated; the pinned Hydra keeps the behaviour.
    warnings.filterwarnings("ignore", message="(?s).*is validated against ConfigStore schema with the same name")
    for name, fn in (
        ("ns.space_tag", space_tag),
        ("ns.run_subdir", run_subdir),
        ("ns.sweep_dir", sweep_dir),
        ("ns.sample_sweep", sample_sweep),
        ("ns.gpus_per_node", gpus_per_node),
        ("ns.packed_sample_sweep", packing_samples(sample_sweep)),  # sweep.pack (train/pack_plan.py)
        ("ns.packed_run_subdir", packing_subdirs(run_subdir)),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    cs = ConfigStore.instance()
    for name, space in SPACES.items():
        # the space picks its own block; `block=...` on the command line still wins
        cs.store(
            group="space",
            name=name,
            node={
                "defaults": [{"override /block@_global_.block": space.block}],
                "name": name,
                "block": space.block,
                "draw": DEFAULT_DRAW,  # the rule set it draws with (space/draws.py)
            },
        )
    for name in BLOCK_TYPES:
        cs.store(group="block", name=name, node={"name": name})
    for name in regime_names():
        # flops (multiply-adds at 224 px) in [0.9·F, F]; tolerance t: F·(1 ± t); limits are absolute counts
        cs.store(
            group="regime", name=name, node={"name": name, "tolerance": None, "max_params": None, "max_acts": None}
        )
    common = {"stem": None, "base_lr": None, "weight_decay": None}
    for name in zoo_names():
        option = zoo_option(name)
        cs.store(group="model", name=option, node={"kind": "zoo", "name": name, "tag": option, **common})
    for name, recipe in TIMM_BASELINES.items():
        if name in {zoo_option(z) for z in zoo_names()}:
            continue  # the native zoo model wins (e.g. resnet50 is the paper's reference build)
        cs.store(group="model", name=name, node={"kind": "timm", "name": name, "tag": name, **common, **recipe})


def model_options() -> list[str]:
    return ["sampled", "baselines", "timm", *(zoo_option(n) for n in zoo_names()), *TIMM_BASELINES]


def command_line_error(argv: list[str], config_dir: str) -> str | None:
    """Compose the config once with the command line's overrides (a sweep's first values),
    with Hydra's own parser and no side effect, and turn Hydra's 10-50 line message for an
    unknown option or key into one line naming it and what is allowed. None when it
    composes (Hydra then runs as usual) or when the command line asks Hydra for something
    else (--help, --cfg, …)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, MissingConfigException

    args = [a for a in argv if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in args):
        return None
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except HydraException as exc:
        return "cannot parse the command line: " + str(exc).strip().splitlines()[0]
    overrides = [_first_value(o) for o in parsed]
    register()
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="train"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        str(cfg.sweep.name)  # what the run and sweep directories are named after
    except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
        import re

        missing = re.search(r"Missing mandatory value: ([\w.]+)", str(exc))
        key = missing.group(1) if missing else "a key"
        if key == "model.name":
            return "model.name is required with model=timm: e.g. model.name=efficientnet_b0"
        return f"{key} has no value and needs one: {key}=..."
    except MissingConfigException as exc:
        group = (exc.missing_cfg_file or "").rsplit("/", 1)
        if exc.options and len(group) == 2:
            return f"{group[0]}={group[1]} is not an option of {group[0]}; allowed: {', '.join(exc.options)}"
        return " ".join(str(exc).split("\n\n")[0].split())
    except HydraException as exc:
        return _unknown_key(str(exc), overrides, config_dir) or " ".join(str(exc).strip().splitlines()[:1])
    except Exception:  # noqa: BLE001 — anything else: let Hydra report it as it does
        return None
    return None


def _first_value(override) -> str:
    """`key=a,b` (a sweep) becomes `key=a`: the values of a sweep share keys and groups."""
    if override.is_sweep_override():
        value = next(iter(override.sweep_string_iterator()), "")
        return f"{override.get_key_element()}={value}"
    return override.input_line


def _unknown_key(message: str, overrides: list[str], config_dir: str) -> str | None:
    """`schedule.epochz is not a key of schedule; its keys: …` for Hydra's "Could not override"."""
    import re

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    match = re.search(r"Could not override '([^']+)'", message)
    if not match:
        return None
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    clean = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(key)]
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3", job_name="train"):
            cfg = compose("train", overrides=clean)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = ", ".join(sorted(str(k) for k in node)) if OmegaConf.is_dict(node) else ""
    except Exception:  # noqa: BLE001
        keys = ""
    where = f"a key of {parent}" if parent else "a key or group of the config"
    return f"{key} is not {where}" + (f"; its keys: {keys}" if keys else "")
