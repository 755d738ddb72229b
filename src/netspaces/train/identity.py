"""A population's identity: the hash of everything that changes what its runs compute.

The register (train/register.py) says which config keys count. Identity keys enter the hash
with their values; three facts replace keys that spell the same computation in several ways:
the global batch (not batch size × devices × nodes), the precision the run actually uses
(16-mixed on a CPU runs as bf16-mixed) and a fingerprint of the data's content (not its
path). A key added after populations exist carries the value that matches the behaviour
before it existed (`before`): at that value it is left out of the hash, so existing
populations keep theirs. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from netspaces.record import IDENTITY_FILE, read_json_object, write_atomic
from netspaces.train.register import ABSENT, leaf_keys, rule

VERSION = 1


def payload(cfg: DictConfig) -> dict[str, Any]:
    """What the hash covers: the identity keys' values and the three facts."""
    from netspaces.train import settings

    container = OmegaConf.to_container(cfg, resolve=False)  # only identity keys get resolved
    container.pop("hydra", None)
    out: dict[str, Any] = {}
    for key in leaf_keys(container):
        k = rule(key)
        if k is None or not k.identity:
            continue
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        if k.before is not ABSENT and value == k.before:
            continue
        out[key] = value
    t = settings.trainer_settings(cfg)
    out["global_batch"] = settings.optim_settings(cfg, t.world_size).global_batch
    out["precision"] = settings.precision_used(t)
    out["data_fingerprint"] = data_fingerprint(settings.data_settings(cfg, t))
    return out


def identity_hash(p: dict[str, Any]) -> str:
    text = json.dumps({"version": VERSION, **p}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def of(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    p = payload(cfg)
    return identity_hash(p), p


def data_fingerprint(d) -> str | None:
    """The content of the data a run reads: image trees by their files' names and sizes,
    other files under data.root by names and sizes, sklearn's digits by its data file; None
    for a data set without files (its name and options are its identity)."""
    from netspaces.train.image_tree import fingerprint

    cache = Path(d.cache_dir) if d.cache_dir else None
    if d.name == "digits":  # bundled with scikit-learn: its data file is the content
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        data = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        return hashlib.sha256(data.read_bytes()).hexdigest() if data.is_file() else None
    if d.root in (None, "", "???"):
        return None
    root = Path(d.root)
    if (root / d.train_split).is_dir() and (root / d.val_split).is_dir():
        parts = [fingerprint(root, split, cache) for split in (d.train_split, d.val_split)]
        return hashlib.sha256(" ".join(parts).encode()).hexdigest()
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(root)} {path.stat().st_size}\n".encode())
    return h.hexdigest()


def describe_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """`schedule.epochs 10 -> 5, trainer.limit_train_batches null -> 3`: what two payloads differ in."""
    keys = sorted(set(a) | set(b))
    diffs = [f"{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}" for k in keys if a.get(k) != b.get(k)]
    return ", ".join(diffs) or "nothing"


def read_identity(sweep_dir: Path) -> dict | None:
    data = read_json_object(Path(sweep_dir) / IDENTITY_FILE)
    return data if data is not None and "hash" in data else None


def write_identity(sweep_dir: Path, h: str, p: dict[str, Any]) -> None:
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    write_atomic(
        Path(sweep_dir) / IDENTITY_FILE,
        json.dumps({"hash": h, "version": VERSION, "payload": p}, indent=1, sort_keys=True, default=str) + "\n",
    )
