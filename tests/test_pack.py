"""sweep.pack=K: K sampled models trained by one job on one data stream, each equal to its solo run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from conftest import IMAGENETTE, TINY, compose_train, needs, run_train
from netspaces import record as records
from netspaces.errors import UserError
from netspaces.train import pack_plan
from netspaces.train.hydra_conf import run_subdir, sample_sweep
from netspaces.train.module import Classifier
from netspaces.train.pack import run_pack
from netspaces.train.pack_stream import Relay
from netspaces.train.run import train
from netspaces.train.settings import model_choice

pytestmark = pytest.mark.usefixtures("restore_torch_state")

K = 3
NAN_SAMPLE, NAN_FROM = 1, 5  # sample 1's 5th forward (epoch 2, batch 2) gives NaN logits
SETTINGS = [*TINY, "regime=200mf", "trainer.limit_train_batches=3", "trainer.keep_checkpoint=true"]
TIMINGS = {"train_time_s", "train_cpu_s", "finished_at"}


def configs(root: Path, *extra: str) -> list:
    return [
        compose_train(
            [*SETTINGS, f"sample={i}", f"paths.run_dir={root / f'sample_{i:03d}'}", f"paths.output={root}", *extra]
        )
        for i in range(K)
    ]


@pytest.fixture
def nan_in_one_model(monkeypatch):
    """Sample NAN_SAMPLE's network returns NaN from its NAN_FROM-th forward on (a hook: the
    state_dict is untouched), in solo and packed runs alike."""
    import netspaces.train.network as network

    real = network.build_network

    def build(choice):
        net = real(choice)
        if choice.sample == NAN_SAMPLE:
            calls = [0]

            def hook(module, args, out):
                calls[0] += 1
                return out * float("nan") if calls[0] >= NAN_FROM else out

            net.module.register_forward_hook(hook)
        return net

    monkeypatch.setattr(network, "build_network", build)


def comparable(rec: dict, root: Path) -> dict:
    """A record without its timings, its directories relative to its sweep."""
    out = {k: v for k, v in rec.items() if k not in TIMINGS}
    out["history"] = [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in rec["history"]]
    out = json.loads(json.dumps(out).replace(str(root), "ROOT"))
    out["config"]["sweep"].pop("pack")
    return out


def checkpoint(run_dir: Path) -> dict:
    import torch

    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def assert_same_state(a: Path, b: Path) -> None:
    import torch

    ca, cb = checkpoint(a), checkpoint(b)
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key
    moments = [s["momentum_buffer"] for s in ca["optimizer_states"][0]["state"].values()]
    others = [s["momentum_buffer"] for s in cb["optimizer_states"][0]["state"].values()]
    assert len(moments) == len(others) and all(torch.equal(x, y) for x, y in zip(moments, others))


def test_packed_models_equal_their_solo_runs_and_a_nan_in_one_leaves_the_others_ok(tmp_path, nan_in_one_model):
    solo_root, pack_root = tmp_path / "solo", tmp_path / "pack"
    solo = [train(c, in_sweep=True) for c in configs(solo_root)]
    outcomes, relay = run_pack(configs(pack_root, f"sweep.pack={K}"), train)

    assert [r["status"] for r in solo] == ["ok", "diverged", "ok"]
    assert solo[NAN_SAMPLE]["diverged_at"] == {"epoch": 2, "step": 5} and len(solo[NAN_SAMPLE]["history"]) == 1
    packed = [o.result for o in outcomes]
    assert all(o.error is None for o in outcomes)
    for i in range(K):
        on_disk = records.read_record(pack_root / f"sample_{i:03d}")
        assert on_disk == packed[i]  # the record train() returned is the one written
        assert comparable(packed[i], pack_root) == comparable(solo[i], solo_root), i
        assert_same_state(solo_root / f"sample_{i:03d}", pack_root / f"sample_{i:03d}")
    # one stream: 2 epochs x 3 batches fetched once for all three models (the diverged one left in epoch 2)
    assert relay.fetched == 6 and relay.batches == {}


def test_a_model_out_of_memory_leaves_the_others_and_resumes_alone_on_a_rerun(tmp_path, monkeypatch, nan_in_one_model):
    import torch

    whole = train(configs(tmp_path / "whole")[2], in_sweep=True)
    original = Classifier.on_train_epoch_start

    def out_of_memory_in_epoch_two(self):
        if self.current_epoch == 1 and "sample_002" in str(self.trainer.default_root_dir):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        original(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", out_of_memory_in_epoch_two)
    root = tmp_path / "pack"
    first, _ = run_pack(configs(root, f"sweep.pack={K}"), train)
    assert [o.result["status"] if o.result else None for o in first] == ["ok", "diverged", None]
    assert isinstance(first[2].error, torch.OutOfMemoryError)
    failed = records.read_record(root / "sample_002")
    assert failed["status"] == "failed" and failed["epochs"] == 1
    assert failed["error"] == "OutOfMemoryError: CUDA out of memory (simulated)"

    monkeypatch.setattr(Classifier, "on_train_epoch_start", original)
    kept = [(root / f"sample_{i:03d}" / records.RECORD_FILE).read_text() for i in (0, 1)]
    again, relay = run_pack(configs(root, f"sweep.pack={K}"), train)
    assert [
        (root / f"sample_{i:03d}" / records.RECORD_FILE).read_text() for i in (0, 1)
    ] == kept  # ok, diverged: skipped
    resumed = again[2].result
    assert resumed["status"] == "ok" and resumed["resumed_from_epoch"] == 1
    assert relay.fetched == 3  # only epoch 2, for the one model still training
    assert comparable(resumed, root) | {"resumed_from_epoch": None} == comparable(whole, tmp_path / "whole")
    assert_same_state(tmp_path / "whole" / "sample_002", root / "sample_002")


def test_ema_and_bf16_autocast_per_model_equal_solo_too(tmp_path):
    """Each model's own EMA callback and autocast (thread-local) in a pack, as in its solo run."""
    options = ["schedule.ema_decay=0.9", "trainer.precision=bf16-mixed", "trainer.limit_train_batches=2"]
    solo = [train(c, in_sweep=True) for c in configs(tmp_path / "solo", *options)[:2]]
    outcomes, _ = run_pack(configs(tmp_path / "pack", "sweep.pack=2", *options)[:2], train)
    for i in range(2):
        assert solo[i]["status"] == "ok" and solo[i]["precision"] == "bf16-mixed"
        assert comparable(outcomes[i].result, tmp_path / "pack") == comparable(solo[i], tmp_path / "solo")
        assert_same_state(tmp_path / "solo" / f"sample_{i:03d}", tmp_path / "pack" / f"sample_{i:03d}")


# ---------------------------------------------------------------------- the relay alone


class CountingLoader:
    """(epoch, batch) pairs: what a loader whose sampler was set to `epoch` yields."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch, self.iterations = n, None, 0
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        self.iterations += 1
        return iter([(self.epoch, b) for b in range(self.n)])


def run_members(member, ids) -> None:
    """member(i) for each id in its own thread, as a pack runs its models; all must end."""
    threads = [threading.Thread(target=member, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)


def test_the_relay_fetches_each_batch_once_and_runs_one_model_at_a_time():
    relay, loader = Relay(3), CountingLoader(4)
    relay.data, relay.loader = object(), loader
    plans = {0: (0, 3, None), 1: (0, 3, (0, 2)), 2: (1, 3, None)}  # (first epoch, epochs, leaves after)
    seen: dict[int, list] = {i: [] for i in plans}
    inside, overlaps, most_kept = [0], [0], [0]

    def member(i: int) -> None:
        first, epochs, leave_after = plans[i]
        relay.start(i)
        try:
            for pos in [(e, b) for e in range(first, epochs) for b in range(4)]:
                batch = relay.take(i, pos)
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                most_kept[0] = max(most_kept[0], len(relay.batches))
                seen[i].append(batch)
                inside[0] -= 1
                if pos == leave_after:
                    return
        finally:
            relay.leave(i)

    run_members(member, plans)
    assert seen[0] == [(e, b) for e in range(3) for b in range(4)]
    assert seen[1] == [(0, 0), (0, 1), (0, 2)]
    assert seen[2] == [(e, b) for e in (1, 2) for b in range(4)]  # resumed at epoch 1: joins the stream there
    assert loader.iterations == 3 and relay.fetched == 12  # one pass per epoch, each batch once
    assert overlaps[0] == 0 and most_kept[0] == 1 and relay.batches == {}


class FailingInEpochOne(CountingLoader):
    def __iter__(self):
        if self.epoch == 1:
            raise OSError("a loader worker did not start")
        return super().__iter__()


def test_a_failing_loader_fails_every_model_asking_and_never_stalls_the_relay():
    relay = Relay(2)
    relay.loader = FailingInEpochOne(2)
    errors, seen = {}, {0: [], 1: []}

    def member(i: int) -> None:
        relay.start(i)
        try:
            for pos in [(e, b) for e in range(2) for b in range(2)]:
                seen[i].append(relay.take(i, pos))
        except OSError as exc:
            errors[i] = str(exc)
        finally:
            relay.leave(i)

    run_members(member, range(2))
    assert errors == {0: "a loader worker did not start", 1: "a loader worker did not start"}
    assert seen == {0: [(0, 0), (0, 1)], 1: [(0, 0), (0, 1)]}


def test_a_signal_stops_every_waiting_model():
    from netspaces.train.signals import Interrupted

    relay = Relay(2)
    relay.data, relay.loader = object(), CountingLoader(2)
    raised = []

    def member(i: int) -> None:
        try:
            relay.start(i)
            if i == 0:
                relay.interrupt(15)  # arrives while model 1 waits for its first turn
            relay.take(i, (0, 0))
        except Interrupted as sig:
            raised.append((i, sig.exit_code))
        finally:
            relay.leave(i)

    run_members(member, range(2))
    assert sorted(raised) == [(0, 143), (1, 143)]


# ---------------------------------------------------------------------- the plan


def test_blocks_jobs_and_directories():
    subdir = pack_plan.packing_subdirs(run_subdir)
    assert pack_plan.blocks(list(range(8)), 3) == ["0-2", "3-5", "6-7"]
    assert pack_plan.blocks(list(range(7)), 3) == ["0-2", "3-5", "6"]  # a block of one is a solo job
    assert pack_plan.block_of("3-5") == (3, 5) and pack_plan.block_of("3") is None and pack_plan.block_of("0r1") is None
    assert subdir("sampled", "3-5", "", 0) == "pack_003-005"
    assert subdir("sampled", "3-5", "schedule.epochs=5", 0) == "pack_003-005,schedule.epochs=5"
    assert subdir("sampled", "4", "", 0) == "sample_004"
    assert pack_plan.member_dir_name("pack_003-005,schedule.epochs=5", 3, 5, 4) == "sample_004,schedule.epochs=5"


def test_the_sweep_has_ceil_n_over_k_jobs_and_replicas_stay_single():
    root = compose_train(["sweep.pack=3"], hydra=True)
    packed_sample_sweep = pack_plan.packing_samples(sample_sweep)
    sweep = packed_sample_sweep("sampled", 8, [], 0, 5, 3, _root_=root)
    assert sweep == "0-2,3-5,6-7"
    with_replicas = packed_sample_sweep("sampled", 4, [], 1, 2, 3, _root_=root)
    assert with_replicas == "0-2,3,0r1,1r1"
    assert packed_sample_sweep("sampled", 8, [], 0, 5, 1, _root_=root) == "range(0,8)"


def test_auto_k_is_evened_out_over_local_workers():
    assert pack_plan.balanced(8, 20, workers=2) == 5  # 4 jobs of 5, not 8, 8 and a lone 4
    assert pack_plan.balanced(8, 100, workers=1) == 8
    assert pack_plan.balanced(8, 3, workers=2) == 2
    assert pack_plan.balanced(1, 10, workers=2) == 1
    joblib = compose_train(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], hydra=True)
    assert pack_plan.local_workers(joblib) == 2
    assert pack_plan.local_workers(compose_train([], hydra=True)) == 1


def test_auto_k_from_memory_and_counts():
    assert pack_plan.pack_for(free_bytes=10_000, state_bytes=1_000, act_bytes=2_000, n=100) == 6  # 0.8*10k-2k = 6k
    assert pack_plan.pack_for(free_bytes=10**12, state_bytes=1, act_bytes=1, n=100) == pack_plan.MAX_PACK
    assert pack_plan.pack_for(free_bytes=10**12, state_bytes=1, act_bytes=1, n=3) == 3
    assert pack_plan.pack_for(free_bytes=1_000, state_bytes=1_000, act_bytes=5_000, n=9) == 1  # never below 1
    cfg = compose_train(["regime=200mf", "sweep.n=4", "sweep.pack=auto"])
    choice_k = pack_plan.check_pack(cfg)
    assert 1 <= choice_k <= 4
    state, acts = pack_plan.model_bytes(model_choice(cfg, 10, 32), 4, 128, ema=False)
    assert 0 < state < 50 * 2**20 and acts > 0  # 200MF models: a few million parameters


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["sweep.pack=0"], "sweep.pack=0 is not allowed: an integer >= 1 (models per job) or auto"),
        (["sweep.pack=two"], "sweep.pack='two' is not allowed"),
        (["sweep.pack=2", "model=regnetx_200mf"], "packs sampled models only"),
        (["sweep.pack=2", "logger=wandb"], "not allowed with logger=wandb"),
        (["sweep.pack=2", "data=imagefolder", "data.root=/x", "data.workers=0"], "data.workers >= 1"),
        (["sweep.pack=auto", "trainer.accelerator=gpu"], None),  # checked below: depends on CUDA
    ],
)
def test_bad_pack_values_are_refused_with_one_line(overrides, message):
    cfg = compose_train(overrides)
    if message is None:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU: auto sizes packs for it")
        message = "sweep.pack=auto needs the GPU it sizes packs for"
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pack_plan.check_pack(cfg)


def test_a_packed_sweep_from_the_command_line(tmp_path):
    """ceil(n/K) jobs, a record per model where its solo job writes it, one table."""
    args = ["-m", *TINY, "regime=200mf", "sweep.n=3", "sweep.pack=2", "schedule.epochs=1", f"paths.output={tmp_path}"]
    done = run_train(args, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Launching 2 jobs" in done.stdout + done.stderr
    sweep = tmp_path / "sweeps" / "regnetx-200mf-digits-quick-s0"
    names = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    suffix = ",schedule.epochs=1,trainer.limit_train_batches=2,trainer.limit_val_batches=2"
    assert names == [f"pack_000-001{suffix}", *(f"sample_{i:03d}{suffix}" for i in range(3))]
    assert [r["status"] for r in records.find_records(sweep)] == ["ok"] * 3
    assert (sweep / f"sample_001{suffix}" / "train.log").is_file()  # each model's log where its solo job's is
    assert len((sweep / "population.csv").read_text().strip().splitlines()) == 4


def test_ddp_with_packing_is_refused_in_one_line(tmp_path):
    done = run_train(
        ["-m", *TINY, "trainer=ddp", "trainer.devices=2", "sweep.pack=2", f"paths.output={tmp_path}"], tmp_path
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "error: sweep.pack=2 is not allowed with trainer.strategy=ddp: packing is for single-device"
    )
    assert not (tmp_path / "sweeps").exists()


def test_image_folder_workers_are_seeded_by_seed_and_epoch_only():
    """A DataLoader draws its workers' base seed from its generator when an epoch starts:
    the sampler reseeds it from (seed, epoch), whatever else used the global RNG before."""
    import torch

    from netspaces.train.datamodules import EpochSeededSampler

    def base_seed(epoch: int, noise: int) -> int:
        torch.manual_seed(noise)  # another model's initialisation, say
        g = torch.Generator()
        sampler = EpochSeededSampler(list(range(10)), generator=g, num_replicas=1, rank=0, shuffle=True, seed=3)
        sampler.set_epoch(epoch)
        return int(torch.empty((), dtype=torch.int64).random_(generator=g))

    assert base_seed(2, noise=1) == base_seed(2, noise=2) != base_seed(1, noise=1)


@pytest.mark.slow
@needs(IMAGENETTE)
def test_packed_image_folder_models_equal_their_solo_runs(tmp_path):
    """Real JPEGs decoded and augmented (random-resized crop, flip) in a loader worker."""
    folder = [
        "data=imagefolder",
        f"data.root={IMAGENETTE}",
        "data.resolution=32",
        "data.limit_per_class=8",
        "data.workers=1",
        "schedule.batch_size=16",
    ]

    def two(root: Path, *extra: str) -> list:
        return [
            compose_train(
                [
                    *SETTINGS,
                    *folder,
                    f"sample={i}",
                    f"paths.run_dir={root / f'sample_{i:03d}'}",
                    f"paths.output={root}",
                    *extra,
                ]
            )
            for i in range(2)
        ]

    solo = [train(c, in_sweep=True) for c in two(tmp_path / "solo")]
    outcomes, relay = run_pack(two(tmp_path / "pack", "sweep.pack=2"), train)
    assert relay.fetched == 6  # 2 epochs x 3 batches, decoded once for both models
    for i in range(2):
        assert solo[i]["status"] == "ok"
        assert comparable(outcomes[i].result, tmp_path / "pack") == comparable(solo[i], tmp_path / "solo")
        assert_same_state(tmp_path / "solo" / f"sample_{i:03d}", tmp_path / "pack" / f"sample_{i:03d}")


@pytest.mark.slow
def test_sigterm_interrupts_every_model_of_a_pack_and_the_same_command_resumes_them(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO, subprocess_env

    args = ["-m", *TINY, "regime=200mf", "sweep.n=3", "sweep.pack=3", "schedule.epochs=10", f"paths.output={tmp_path}"]
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=subprocess_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while len(list(tmp_path.rglob("last.ckpt"))) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    assert "rerun the same command to resume" in err.decode().strip().splitlines()[-1]
    sweep = tmp_path / "sweeps" / "regnetx-200mf-digits-quick-s0"
    assert [r["status"] for r in records.find_records(sweep)] == ["interrupted"] * 3
    again = run_train(args, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    done = records.find_records(sweep)
    assert [r["status"] for r in done] == ["ok"] * 3 and all(r["resumed_from_epoch"] >= 1 for r in done)
