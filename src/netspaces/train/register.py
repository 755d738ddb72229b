"""The identity register: every key of the composed config, classified as identity (it
changes what a run computes) or not (where or how fast a run goes, or a label). A key the
register does not know is refused (`+key=value` would otherwise be silently ignored), and
tests/test_identity.py fails on any key of any config option that is not classified, so every
new option is classified when it is added. docs/reliability.md lists it. Torch-free.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

ABSENT = object()


@dataclass(frozen=True)
class Key:
    pattern: str  # a dotted config key; * matches within one level
    identity: bool
    why: str
    before: Any = ABSENT  # for keys added later: the behaviour before they existed


REGISTER: tuple[Key, ...] = (
    # what is sampled and built
    Key("space.name", True, "the design space the models are drawn from"),
    Key("space.draw", True, "how the space draws its parameters: which models it holds", before="loguniform"),
    Key("space.block", False, "the space's default block; block.name is the block built"),
    Key("block.name", True, "the block type built"),
    Key("regime.*", True, "the flop window (and limits) models are drawn from"),
    Key("sweep.seed", True, "the sampler's seed: which models the population holds"),
    Key("sweep.n", False, "how many models: a population grows by raising it"),
    Key("sweep.replicas", False, "extra training seeds for the first models: a linked sub-population"),
    Key("sweep.replica_models", False, "how many of the first models get seed replicas"),
    Key("sweep.pack", False, "models one job trains on one data stream: packing changes how, not what, a run computes"),
    Key("sweep.retries", False, "how often a failed sample is tried again; a retry resumes the same computation"),
    Key(
        "sweep.allow_code_change",
        False,
        "an opt-in to continue a population with new code; records carry the code hash and the choice",
    ),
    Key("sweep.name", False, "a label derived from identity keys"),
    Key("protocol", False, "a label: the protocol file's hash; its training choices are identity keys"),
    Key("sample", False, "which member of the population a run is"),
    Key("model.tag", False, "a label derived from space, block and regime"),
    Key("model.*", True, "which network and its own recipe"),
    # the data
    Key("data.root", False, "where the data lives; the data fingerprint is identity"),
    Key("data.workers", False, "loader processes: how fast"),
    Key("data.pin_memory", False, "host memory pinning: how fast"),
    Key("data.persistent_workers", False, "loader processes kept between epochs: how fast"),
    Key("data.download", False, "whether torchvision may fetch CIFAR-10; the fingerprint is identity"),
    Key("data.verify", False, "an up-front decode check; it changes nothing trained"),
    Key("data.loader", False, "which decoder (PIL, DALI, GPU decode_jpeg) runs the same augmentation: how fast"),
    Key("data.on_device", False, "in-memory data held on the GPU, augmented there: how fast"),
    Key("data.*", True, "which data set, split, resolution, augmentation and normalisation"),
    # the schedule
    Key("schedule.name", False, "a label; the schedule's values are identity"),
    Key("schedule.batch_size", False, "per device; the global batch is identity"),
    Key("schedule.eval_every", False, "evaluation cadence: training and the final evaluation are unchanged"),
    Key("schedule.*", True, "the optimiser, lr schedule and regularisation"),
    Key("seed", True, "the training seed: initial weights, data order, augmentation"),
    # where and how fast
    Key("trainer.precision", False, "as spelled; the precision actually used is identity"),
    Key("trainer.limit_train_batches", True, "fewer batches per epoch train another model"),
    Key("trainer.limit_val_batches", True, "fewer validation batches measure another error"),
    Key("trainer.compile", False, "torch.compile: the same network, compiled for speed"),
    Key(
        "trainer.collective_timeout_s",
        False,
        "how long a DDP rank waits for the others before the run fails: when a hang ends, not what is computed",
    ),
    Key("trainer.*", False, "where and how fast a run goes (devices, threads, layout, logging)"),
    Key("paths.*", False, "where files go"),
    Key("logger.*", False, "where metrics go"),
    Key("perf.tf32", False, "TF32 only in mixed precision, where the precision used is identity"),
    Key("perf.*", False, "speed switches"),
)


def rule(key: str) -> Key | None:
    """The first register entry matching a dotted key (specific entries come first)."""
    for k in REGISTER:
        if fnmatch.fnmatchcase(key, k.pattern) and key.count(".") == k.pattern.count("."):
            return k
    return None


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    """Dotted paths of a config's leaves (a list or an empty mapping is a leaf)."""
    if isinstance(node, dict) and node:
        return [k for name, value in node.items() for k in leaf_keys(value, f"{prefix}{name}.")]
    return [prefix[:-1]]


def unclassified(cfg: DictConfig) -> list[str]:
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return [k for k in leaf_keys(container) if rule(k) is None]
