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


class FailInEpochTwo(Callback):
    """Sample `sample` raises at the start of its second epoch, the first `times` times (one
    line in `log` per failure; the line count survives processes)."""

    def __init__(self, sample: int, times: int, log: str) -> None:
        self.sample, self.times, self.log = int(sample), int(times), Path(log)
        self.original = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if int(config.sample) != self.sample:
            return
        from netspaces.train.module import Classifier

        self.original = original = Classifier.on_train_epoch_start
        log, times = self.log, self.times

        def fail(module) -> None:
            failures = log.read_text().count("\n") if log.is_file() else 0
            if module.current_epoch == 1 and failures < times:
                with open(log, "a") as f:
                    f.write("injected\n")
                raise RuntimeError("injected failure")
            original(module)

        Classifier.on_train_epoch_start = fail

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.original is not None:
            from netspaces.train.module import Classifier

            Classifier.on_train_epoch_start = self.original
            self.original = None
