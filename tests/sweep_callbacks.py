"""Hydra callbacks that tests add to a real `train.py -m` (`+hydra.callbacks.NAME._target_=...`,
with this directory on PYTHONPATH): they act at a fixed point of the sweep, in whichever
process Hydra runs that point, so a test needs neither timing nor a hook in netspaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# what EditCheckout changes: a conf value that is not identity (it shows in a record's config)
# and the package's version (it shows in a record's versions)
CONF_EDIT = ("conf/train.yaml", "  replica_models: 5 ", "  replica_models: 4 ")
CODE_EDIT = ("src/netspaces/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.1.0+edited"')


def edit_checkout(checkout: Path, undo: bool = False) -> None:
    for rel, before, after in (CONF_EDIT, CODE_EDIT):
        path = Path(checkout) / rel
        text = path.read_text()
        old, new = (after, before) if undo else (before, after)
        assert old in text, (path, old)
        path.write_text(text.replace(old, new))


class EditCheckout(Callback):
    """Edits the checkout once the sweep has started and before any job runs: what a user
    does while a SLURM array is queued."""

    def __init__(self, checkout: str) -> None:
        self.checkout = Path(checkout)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        edit_checkout(self.checkout)
