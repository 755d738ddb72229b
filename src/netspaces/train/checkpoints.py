"""Checkpoint files of a run: one `checkpoints/last.ckpt`, overwritten after every epoch, is
what a rerun resumes from (loaded with weights_only=True)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from netspaces.record import atomic_target

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file, then rename: a kill mid-save leaves the old checkpoint."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any = None) -> None:
        # torch.save straight to the file: Lightning's own writer serializes into memory
        # first and copies that out through fsspec (0.35 s against 0.1 s for 38 MB here)
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(path) as tmp:
            torch.save(checkpoint, tmp)
