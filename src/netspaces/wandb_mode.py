"""W&B without surprises, for training and analysis alike. Torch-free, W&B-free.

Online only with a key (WANDB_API_KEY or ~/.netrc from `wandb login`), never waiting on the
network without one; WANDB_MODE or an explicit setting wins. Offline runs stay in
`.../wandb/offline-run-*` directories until `netspaces wandb-sync DIR` uploads every one of
them below DIR (a sweep, a run, an analysis output) with one `wandb sync` command.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path

from netspaces.errors import UserError
from netspaces.record import IDENTITY_FILE

MODES = ("online", "offline", "disabled")
OFFLINE_PREFIX = "offline-run-"


def has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None) -> str:
    """The explicit setting, else WANDB_MODE, else online only when a key is available."""
    return requested or os.environ.get("WANDB_MODE") or ("online" if has_key() else "offline")


def offline_runs(root: Path) -> list[Path]:
    """Every offline run directory below `root` (or `root` itself): the ones holding a `.wandb`
    transaction log, sorted by path (a resumed sample's directories sort by their start time)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"wandb-sync: {root} is not a directory (give a sweep, run or analysis output directory)")
    candidates = [root] if root.name.startswith(OFFLINE_PREFIX) else root.rglob(f"{OFFLINE_PREFIX}*")
    return sorted(p for p in candidates if p.is_dir() and any(p.glob("*.wandb")))


def sync_command(
    run_dirs: list[Path], project: str | None = None, entity: str | None = None, include_synced: bool = False
) -> list[str]:
    """The one `wandb sync` command line that uploads `run_dirs` (wandb syncs directories of the
    same run id one after the other, in order of start time: a resumed sample stays one run)."""
    command = [sys.executable, "-m", "wandb", "sync"]
    if project:
        command += ["--project", project]
    if entity:
        command += ["--entity", entity]
    if include_synced:
        command.append("--include-synced")
    return command + [str(p) for p in run_dirs]


def sync_hint(run_dir: Path) -> str:
    """The line printed at the end of an offline run: where it is and how to upload it."""
    run_dir = Path(run_dir)
    target = run_dir
    # the run's own directory is `<dir>/wandb/offline-run-*`; a sweep syncs all of its samples
    # at once, so name the sweep when the run belongs to one (its directory has an identity file)
    for parent in run_dir.parents:
        if parent.name == "wandb":
            target = parent.parent
            if (target.parent / IDENTITY_FILE).is_file():
                target = target.parent
            break
    return f"W&B: offline run saved in {run_dir}; upload it with: netspaces wandb-sync {target}"
