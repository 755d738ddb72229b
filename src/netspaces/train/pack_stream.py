"""The shared data stream and the baton of a pack (sweep.pack; train/pack.py runs the pack).

Each model of a pack trains in a thread of its own with its own Lightning Trainer; the Relay
lets one of them run at a time and feeds all of them from one DataLoader:

- the baton: a model computes only while it holds it and hands it on when it asks for its
  next batch (or ends), so the models train one step after another (no oversubscribed CPU
  threads; on a GPU their kernels queue back to back), preparation included: each model
  seeds the global RNG and draws its initial weights exactly as its solo job does.
- the stream: batch b of epoch e is fetched once from the one loader (its sampler set to
  epoch e, as Lightning does for a solo run's loader) and given to every model that asks for
  (e, b); augmentation that depends on (seed, step) is applied by each model's DataModule,
  as solo. A model resuming at a later epoch joins the stream when it gets there. A batch is
  dropped once every model still training has asked for a later one.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from netspaces.train import own_time

_member = threading.local()  # in a member's thread: .relay and .index


@dataclass
class _Failed:
    """A batch the loader could not give (an unreadable image): every model that asks gets it."""

    error: BaseException


class Relay:
    """The baton and the shared data stream of one pack (see the module's docstring)."""

    def __init__(self, members: int) -> None:
        self.cond = threading.Condition()
        self.state = ["new"] * members  # new | running | waiting | gone
        self.want: list[tuple[int, int] | None] = [None] * members  # the batch last asked for
        self.turn: int | None = None  # the member holding the baton
        self.batches: dict[tuple[int, int], Any] = {}
        self.data = None  # the shared DataModule, set up once (by the first member needing it)
        self.data_settings = None
        self.loader = None  # its train DataLoader: the pack's one data stream
        self._iterator: Iterator | None = None
        self._cursor: tuple[int, int] | None = None  # (epoch, batch) the iterator yields next
        self.stop_signal: int | None = None
        self.fetched = 0  # batches taken from the loader (each given to every model asking)

    # ------------------------------------------------------------------ the baton

    def start(self, i: int) -> None:
        """Wait for member i's first turn."""
        with own_time.waiting(), self.cond:
            if self.turn is None:
                self._schedule()
            self._wait_for_turn(i)

    def take(self, i: int, pos: tuple[int, int]):
        """Member i asks for batch pos: hand the baton on, get it back with the batch."""
        with own_time.waiting(), self.cond:  # the other models' steps are not this model's time
            self.want[i], self.state[i] = pos, "waiting"
            if self.turn == i:
                self.turn = None
            self._drop_taken()
            if self.turn is None:
                self._schedule()
            self._wait_for_turn(i)
            batch = self.batches[pos]
        if isinstance(batch, _Failed):
            raise batch.error
        return batch

    def leave(self, i: int) -> None:
        with self.cond:
            self.state[i], self.want[i] = "gone", None
            if self.turn == i:
                self.turn = None
            self._drop_taken()
            if self.turn is None:
                self._schedule()
            self.cond.notify_all()

    def interrupt(self, signum: int) -> None:
        """A signal: every member raises Interrupted at its next batch."""
        with self.cond:
            self.stop_signal = signum
            self.cond.notify_all()

    def _wait_for_turn(self, i: int) -> None:
        while self.turn != i and self.stop_signal is None:
            self.cond.wait()
        if self.stop_signal is not None:
            from netspaces.train.signals import Interrupted

            if self.turn == i:
                self.turn = None
            self.state[i] = "running"
            raise Interrupted(self.stop_signal)

    def _schedule(self) -> None:
        """Give the baton (lock held, nobody holding it): first to members not started yet, in
        order; then to the lowest member waiting for the earliest batch, fetched if needed.
        After a signal nobody gets it (each model raises Interrupted instead)."""
        if self.stop_signal is not None:
            return
        new = [i for i, s in enumerate(self.state) if s == "new"]
        waiting = [i for i, s in enumerate(self.state) if s == "waiting"]
        if new:
            chosen = new[0]
        elif waiting:
            pos = min(self.want[i] for i in waiting)
            if pos not in self.batches:
                self._fetch(pos)
            chosen = min(i for i in waiting if self.want[i] == pos)
        else:
            return
        self.turn, self.state[chosen] = chosen, "running"
        self.cond.notify_all()

    def _drop_taken(self) -> None:
        live = [w for s, w in zip(self.state, self.want) if s != "gone"]
        if any(w is None for w in live):
            return
        for pos in [p for p in self.batches if all(w > p for w in live)]:
            del self.batches[pos]

    # ------------------------------------------------------------------ the stream

    def _fetch(self, pos: tuple[int, int]) -> None:
        """Advance the one loader to batch pos (a new epoch: set the sampler's epoch first,
        as Lightning does for a solo run's loader). Whatever goes wrong (an unreadable image,
        a worker that did not start) is what every model asking for pos gets: the baton
        always moves on."""
        from lightning.fabric.utilities.data import _set_sampler_epoch

        epoch, index = pos
        try:
            if self._cursor is None or self._cursor[0] != epoch or self._cursor[1] > index:
                _set_sampler_epoch(self.loader, epoch)
                self._iterator, self._cursor = iter(self.loader), (epoch, 0)
            while self._cursor[1] <= index:
                batch = next(self._iterator)
                if self._cursor == pos:
                    self.batches[pos] = batch
                self._cursor = (epoch, self._cursor[1] + 1)
        except Exception as exc:  # noqa: BLE001 — StopIteration too: the models asking fail with it
            if isinstance(exc, StopIteration):
                exc = RuntimeError(f"the data stream ended before batch {index} of epoch {epoch}")
            self.batches[pos], self._cursor = _Failed(exc), None
        self.fetched += 1

    def datamodule_for(self, i: int, d):
        """Member i's DataModule: its own object (its own trainer, augmentation by its own
        step), holding the pack's data set and drawing its training batches from the stream."""
        from netspaces.train.data import make_datamodule

        if self.data is None:
            data = make_datamodule(d)
            data.setup("fit")  # decoded / loaded / listed once for the pack
            self.data, self.data_settings = data, d
        elif d != self.data_settings:
            raise RuntimeError("the models of a pack must share their data settings")
        dm = make_datamodule(d)
        dm.train_set, dm.val_set, dm.num_classes = self.data.train_set, self.data.val_set, self.data.num_classes
        solo_loader = dm.train_dataloader

        def train_dataloader():  # Lightning asks once the member's Trainer is attached (its device)
            if self.loader is None:  # the loader this model's solo run would get, made once for all
                from lightning.fabric.utilities.data import _auto_add_worker_init_fn

                self.loader = solo_loader()
                _auto_add_worker_init_fn(self.loader, 0)  # as the solo run's Trainer does
            return MemberLoader(self, i, len(self.loader))

        dm.train_dataloader = train_dataloader
        return dm


class MemberLoader:
    """What a member's Trainer iterates: the stream's batches of the epoch Lightning set
    (through `sampler.set_epoch`, as for a solo run's loader), one `take` per batch."""

    def __init__(self, relay: Relay, index: int, length: int) -> None:
        self.relay, self.index, self.length, self.epoch = relay, index, length, 0
        self.sampler = self
        self.batch_size = getattr(relay.loader, "batch_size", None)  # what Lightning reads of a loader

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        # lazy, like a DataLoader's sampler: the epoch is read at the first batch (a resumed
        # Trainer sets it after it created the iterator)
        epoch = self.epoch
        for b in range(self.length):
            yield self.relay.take(self.index, (epoch, b))


@contextmanager
def member_thread(relay: Relay, index: int) -> Iterator[None]:
    """This thread trains model `index` of the pack `relay` runs (shared_datamodule reads it)."""
    _member.relay, _member.index = relay, index
    try:
        yield
    finally:
        _member.relay = None


def shared_datamodule(d):
    """The DataModule of a run: in a pack member's thread the pack's shared one, else a new one."""
    relay = getattr(_member, "relay", None)
    if relay is None:
        from netspaces.train.data import make_datamodule

        return make_datamodule(d)
    return relay.datamodule_for(_member.index, d)
