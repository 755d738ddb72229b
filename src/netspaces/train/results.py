"""A run's result record, built from its settings, its network and its history (the schema
is netspaces.record's), and the one line printed when a run ends."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from netspaces.record import Record
from netspaces.train.settings import RunSettings, precision_used
from netspaces.train.snapshot import git_commit, running_code_hash


def network_stub(s: RunSettings) -> dict:
    """What a record says of the network when the run failed before it existed."""
    m = s.model
    sampled = m.kind == "sampled"
    return {
        "model": "sampled" if sampled else m.name,
        "space": m.space,
        "regime": m.regime.name if m.regime else None,
        "block": m.block,
        "sample": m.sample if sampled else None,
        "sweep_seed": m.sweep_seed if sampled else None,
    }


def command_line(task_overrides: list[str] | None, multirun: bool, hydra_overrides: tuple[str, ...] = ()) -> str:
    """The command that started the run: Hydra's overrides after `train.py` (the user's
    hydra/... ones first, Hydra's own hydra.mode left out); a sweep's job drops the `sample=`
    its sweep generated, so every model of a sweep shows the same line."""
    if task_overrides is None:
        return " ".join(["python", *sys.argv])
    args = [a for a in hydra_overrides if not a.startswith("hydra.mode=")]
    args += [a for a in task_overrides if not (multirun and a.startswith("sample="))]
    return " ".join(["python", "train.py", *(["-m"] if multirun else []), *args])


def _hydra_command() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return command_line(None, False)
    if not HydraConfig.initialized():
        return command_line(None, False)
    hc = HydraConfig.get()
    return command_line(list(hc.overrides.task), hc.mode == RunMode.MULTIRUN, tuple(hc.overrides.hydra))


def _outcome(history: list[dict], status: str) -> dict:
    errs = [h["top1_err"] for h in history if h.get("top1_err") is not None]
    last = history[-1] if history else {}
    return {
        "top1_err": last.get("top1_err") if status == "ok" else None,
        "top1_err_best": min(errs) if errs else None,
        "top5_err": last.get("top5_err") if status == "ok" else None,
        "epochs": len(history),
    }


def make_record(
    s: RunSettings,
    cfg: DictConfig,
    info: dict,
    status: str,
    *,
    identity: str,
    history: list[dict],
    train_time_s: float | None,
    train_cpu_s: float | None = None,
    diverged_at: dict | None = None,
    error: str | None = None,
    resumed_from_epoch: int | None = None,
    attempt: int = 1,
) -> Record:
    import lightning
    import torch

    import netspaces

    return Record(
        status=status,
        name=info.get("name"),
        space=info.get("space"),
        regime=info.get("regime"),
        block=info.get("block"),
        sample=info.get("sample"),
        sweep_seed=info.get("sweep_seed"),
        seed=s.seed,
        model=info.get("model"),
        arch=info.get("arch") or {},
        flops=info.get("flops"),
        params=info.get("params"),
        acts=info.get("acts"),
        **_outcome(history, status),
        epochs_planned=s.trainer.epochs,
        train_time_s=None if train_time_s is None else round(train_time_s, 3),
        train_cpu_s=None if train_cpu_s is None else round(train_cpu_s, 3),
        diverged_at=diverged_at,
        error=error,
        resumed_from_epoch=resumed_from_epoch,
        attempt=attempt,
        identity=identity,
        precision=precision_used(s.trainer),
        data=s.data.name,
        schedule=OmegaConf.select(cfg, "schedule.name"),
        sweep=s.sweep_name,
        lr=s.optim.lr,
        global_batch=s.optim.global_batch,
        world_size=s.trainer.world_size,
        trained=info.get("trained"),
        history=history,
        run_dir=str(s.run_dir),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        host=platform.node(),
        versions={"netspaces": netspaces.__version__, "torch": torch.__version__, "lightning": lightning.__version__},
        git_commit=git_commit(),
        command=_hydra_command(),
        code_hash=running_code_hash(),
        allow_code_change=OmegaConf.select(cfg, "sweep.allow_code_change") is True,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def result_line(record: Record, path: Path) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}%"

    seconds = "n/a" if record.train_time_s is None else f"{record.train_time_s:.1f} s"
    return (
        f"{record.name}: {record.status}, top-1 error {pct(record.top1_err)} (best {pct(record.top1_err_best)}), "
        f"top-5 error {pct(record.top5_err)}, {record.epochs} epochs in {seconds} -> {path}"
    )
