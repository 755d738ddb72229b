"""Trustworthy populations: nothing silently wrong, nothing lost, every refusal one line.

Each case of the trust issue with real files: populations that would mix experiments,
truncated records and checkpoints, corrupted and changed image folders, signals to a real
sweep, refused values, and a full disk injected at every write site.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CIFAR10, REPO, TINY, compose_train, needs, run_train, subprocess_env
from netspaces import record
from netspaces.errors import DataError, UserError

SWEEP = "regnetx-400mf-digits-quick-s0"


def _table(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and "[INFO]" not in line and "[WARNING]" not in line]


# ---------------------------------------------------------------- populations never mix


def test_a_changed_training_override_starts_a_population_of_its_own(tmp_path):
    args = ["-m", "sweep.n=2", *TINY, f"paths.output={tmp_path}"]
    first = run_train(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    base = tmp_path / "sweeps" / SWEEP
    before = (base / "population.csv").read_text()
    ident = json.loads((base / "identity.json").read_text())
    assert ident["payload"]["trainer.limit_train_batches"] == 2 and len(ident["hash"]) == 64

    other = run_train([*args, "trainer.limit_train_batches=1"], tmp_path)
    assert other.returncode == 0, other.stderr[-2000:]
    moved = [d for d in base.parent.iterdir() if d.name.startswith(SWEEP + "-")]
    assert len(moved) == 1 and len(moved[0].name) == len(SWEEP) + 7
    assert (
        f"{base} holds another experiment (trainer.limit_train_batches 2 -> 1): this one goes to {moved[0]}"
        in other.stderr
    )
    assert (base / "population.csv").read_text() == before  # untouched
    assert len(_table(moved[0] / "population.csv")) == 2
    h = json.loads((moved[0] / "identity.json").read_text())["hash"]
    assert {json.loads(p.read_text())["identity"] for p in moved[0].rglob("result.json")} == {h}
    assert h[:6] == moved[0].name[-6:]

    # the original command again: its own population, nothing retrained
    again = run_train(args, tmp_path)
    assert again.returncode == 0 and "holds another experiment" not in again.stderr
    assert (base / "population.csv").read_text() == before

    # a truncated record is named by collect (exit 1) and by analyze; the sweep command redoes it
    victim = next(base.glob("sample_001*/result.json"))
    keep = next(base.glob("sample_000*/result.json"))
    kept_mtime = keep.stat().st_mtime_ns
    victim.write_text(victim.read_text()[:200])
    out = subprocess.run(
        [sys.executable, "-m", "netspaces", "collect", str(base)],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and f"{victim}: not valid JSON" in out.stderr and "Traceback" not in out.stderr
    assert len(_table(base / "population.csv")) == 1
    an = subprocess.run(
        [sys.executable, "-m", "netspaces", "analyze", str(base), "--out", str(tmp_path / "an"), "--n-boot", "20"],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert an.returncode == 0 and f"{victim}: not valid JSON" in an.stdout
    assert "1 unusable record(s) left out" in json.dumps(json.loads((tmp_path / "an" / "summary.json").read_text()))
    redo = run_train(args, tmp_path)
    assert redo.returncode == 0, redo.stderr[-2000:]
    assert json.loads(victim.read_text())["status"] == "ok" and keep.stat().st_mtime_ns == kept_mtime
    assert list(victim.parent.glob("result.json.broken-*"))  # the broken one is kept, not deleted
    assert len(_table(base / "population.csv")) == 2


def test_collect_and_analyze_split_records_of_different_experiments(tmp_path):
    def rec(i, ident, err):
        return record.Record(
            status="ok",
            name=f"m{i}",
            space="regnetx",
            sample=i,
            top1_err=err,
            flops=1e8 + i,
            identity=ident,
            run_dir=str(tmp_path / "sweep" / f"sample_{i:03d}"),
        )

    for i, (ident, err) in enumerate([("a" * 64, 10.0), ("a" * 64, 11.0), ("b" * 64, 50.0), (None, 30.0)]):
        record.write_record(tmp_path / "sweep" / f"sample_{i:03d}", rec(i, ident, err))
    got = record.write_population(tmp_path / "sweep")  # no identity.json: nothing is the population
    assert got.records == [] and sorted(map(str, got.others)) == sorted(["a" * 64, "b" * 64, "None"])
    (tmp_path / "sweep" / "identity.json").write_text(json.dumps({"hash": "a" * 64}))
    got = record.write_population(tmp_path / "sweep")
    assert [r["top1_err"] for r in got.records] == [10.0, 11.0]
    assert [r["top1_err"] for r in got.others["b" * 64]] == [50.0] and len(got.problem_lines()) == 2
    assert (tmp_path / "sweep" / "population-bbbbbb.csv").is_file()

    from netspaces.analysis.populations import load_populations

    pops = load_populations(str(tmp_path / "sweep"))
    assert sorted((p.label, len(p.errors)) for p in pops) == [
        ("regnetx-aaaaaa", 2),
        ("regnetx-bbbbbb", 1),
        ("regnetx-unknown", 1),
    ]
    assert "holds 3 experiments" in pops[0].notes[0]


# ---------------------------------------------------------------- analysis states its limits


def test_impossible_values_are_excluded_by_name_and_small_populations_warned(tmp_path):
    from netspaces.analysis import analyze

    rows = [
        {"top1_err": e, "flops": f, "run_dir": f"run{i}"}
        for i, (e, f) in enumerate(
            [(20.0, 1e8), (-5.0, 1e8), (250.0, 1e8), (30.0, float("inf")), (25.0, 2e8), (22.0, 3e8)]
        )
    ]
    table = tmp_path / "a.jsonl"
    table.write_text("".join(json.dumps(r).replace("Infinity", '"inf"') + "\n" for r in rows))
    one = tmp_path / "b.csv"
    one.write_text("top1_err,flops,depth\n21.0,1e8,13\n")
    result = analyze([str(table), str(one)], tmp_path / "out", n_boot=50)
    summary = result.analysis.summary
    assert summary["populations"]["a"]["n"] == 3 and summary["populations"]["a"]["excluded"] == 3
    note = next(n for n in summary["notes"] if "impossible values" in n)
    assert "run1, run2, run3" in note
    assert any("b (n=1)" in w for w in summary["warnings"])  # KS from one model
    assert any(w.startswith("b: bootstrap good ranges from 1 model") for w in summary["warnings"])
    ks = summary["ks"]["a vs b"]
    assert ks["p_method"] == "exact"
    assert "Warnings" in (tmp_path / "out" / "report.html").read_text()


# ---------------------------------------------------------------- broken files do not block a rerun


@pytest.mark.usefixtures("restore_torch_state")
def test_a_truncated_or_empty_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path):
    from netspaces.train.checkpoints import last_checkpoint
    from netspaces.train.run import train

    cfg = compose_train(
        [*TINY, f"paths.run_dir={tmp_path / 'run'}", f"paths.output={tmp_path}", "trainer.keep_checkpoint=true"]
    )
    whole = train(cfg)
    ckpt = last_checkpoint(tmp_path / "run")
    for damage in (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), lambda p: p.write_bytes(b"")):
        (tmp_path / "run" / "result.json").unlink()
        (tmp_path / "run" / ".result.json.1234.tmp").write_text("{half")  # an interrupted write
        damage(ckpt)
        again = train(cfg)
        assert again["status"] == "ok" and again["resumed_from_epoch"] is None
        assert [h["train_loss"] for h in again["history"]] == [h["train_loss"] for h in whole["history"]]
        assert not list((tmp_path / "run").glob(".*.tmp"))
    assert len(list(ckpt.parent.glob("last.ckpt.broken-*"))) >= 1


@pytest.mark.usefixtures("restore_torch_state")
def test_the_metrics_log_keeps_the_epochs_before_a_resume(tmp_path, monkeypatch):
    from netspaces.train.module import Classifier
    from netspaces.train.run import train

    cfg = compose_train(
        [
            *TINY,
            "schedule.epochs=3",
            "schedule.eval_every=1",
            f"paths.run_dir={tmp_path / 'run'}",
            f"paths.output={tmp_path}",
        ]
    )
    start = Classifier.on_train_epoch_start

    def crash_in_epoch_three(self):
        if self.current_epoch == 2:
            raise RuntimeError("crash")
        start(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", crash_in_epoch_three)
    with pytest.raises(RuntimeError):
        train(cfg)
    monkeypatch.setattr(Classifier, "on_train_epoch_start", start)
    done = train(cfg)
    assert done["resumed_from_epoch"] == 2
    rows = _table(tmp_path / "run" / "logs" / "metrics.csv")
    epochs = sorted({int(r["epoch"]) for r in rows if r.get("val/top1_err")})
    assert epochs == [0, 1, 2]  # the two epochs before the resume are still there, once each
    assert len([r for r in rows if r.get("val/top1_err")]) == 3


# ---------------------------------------------------------------- data checked up front, cached by content


def _tree(root: Path, classes=("airplane", "cat"), per_class=3) -> Path:
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shutil.copy(CIFAR10 / split / c / f"{i:04d}.jpg", root / split / c / f"{i}.jpg")
    return root


@needs(CIFAR10)
def test_the_decoded_cache_follows_the_content_and_classes_must_match(tmp_path):
    from netspaces.train.data import check_data, load_cifar10_split
    from netspaces.train.settings import DataSettings

    root = _tree(tmp_path / "tree")
    stats = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
    s = DataSettings(
        name="cifar10",
        batch_size=4,
        resolution=32,
        root=str(root),
        train_split="train",
        val_split="test",
        cache_dir=str(tmp_path / "cache"),
        **stats,
    )
    first = load_cifar10_split(s)
    assert first[0].shape[0] == 6 and len(list((tmp_path / "cache").glob("*.npz"))) == 2
    _tree(root, classes=("airplane", "cat", "ship"))  # a class added
    second = load_cifar10_split(s)
    assert second[0].shape[0] == 9 and set(second[1].tolist()) == {0, 1, 2}
    (root / "train" / "cat" / "1.jpg").write_bytes(b"")  # an image corrupted in place
    with pytest.raises(DataError, match=f"cannot read image {root / 'train' / 'cat' / '1.jpg'}"):
        load_cifar10_split(s)
    with pytest.raises(UserError, match="unreadable image"):
        check_data(DataSettings(**{**s.__dict__, "verify": True}))
    shutil.rmtree(root / "test" / "ship")
    (root / "test" / "dog").mkdir()
    (root / "test" / "dog" / "0.jpg").write_bytes((root / "test" / "cat" / "0.jpg").read_bytes())
    with pytest.raises(UserError) as err:
        check_data(s)
    assert "only in train/: ship; only in test/: dog" in str(err.value) and "\n" not in str(err.value)
    (root / "test" / "ship").mkdir()
    shutil.rmtree(root / "test" / "dog")
    with pytest.raises(UserError, match=f"1 empty class folder\\(s\\): {root / 'test' / 'ship'}"):
        check_data(s)


@needs(CIFAR10)
def test_an_unreadable_image_mid_run_is_one_line_and_a_failed_record(tmp_path):
    root = _tree(tmp_path / "tree", per_class=4)
    (root / "train" / "cat" / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = run_train(
        [
            "data=imagefolder",
            f"data.root={root}",
            "data.val_split=test",
            "data.resolution=32",
            "data.workers=1",
            "schedule=quick",
            "schedule.epochs=1",
            "schedule.batch_size=4",
            "trainer.threads=1",
            f"paths.output={tmp_path / 'out'}",
        ],
        tmp_path,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot read image {root / 'train' / 'cat' / '2.jpg'}" in errors[0]
    rec = json.loads(next((tmp_path / "out").rglob("result.json")).read_text())
    assert rec["status"] == "failed" and "2.jpg" in rec["error"]


# ---------------------------------------------------------------- what ran is what is recorded


@pytest.mark.usefixtures("restore_torch_state")
@pytest.mark.filterwarnings("ignore:You passed `Trainer\\(accelerator='cpu', precision='16-mixed'\\)`")
def test_the_record_says_which_precision_ran(tmp_path):
    from netspaces.train.run import train

    rec = train(
        compose_train(
            [
                *TINY,
                "schedule.epochs=1",
                "trainer.precision=16-mixed",
                "trainer.deterministic=false",
                f"paths.run_dir={tmp_path / 'run'}",
                f"paths.output={tmp_path}",
            ]
        )
    )
    assert rec["status"] == "ok" and rec["precision"] == "bf16-mixed"  # what Lightning runs on a CPU
    assert rec["config"]["trainer"]["precision"] == "16-mixed"  # what was asked


# ---------------------------------------------------------------- refusals: one line, nothing written


@pytest.mark.parametrize(
    "args,expected",
    [
        (["schedule.epochs=0"], "schedule.epochs=0 is not allowed"),
        (["data=cifar10", "data.root=/nonexistent"], "data.root=/nonexistent does not exist"),
        (["model=timm"], "model.name is required with model=timm"),
        (["trainer=gpu"], "this machine has no CUDA GPU"),
        (["+extra=1"], "extra=1 is not allowed: not a key netspaces reads"),
        (["schedule.epochz=3"], "schedule.epochz is not a key of schedule; its keys: base_lr, batch_size"),
        (["hydra/launcher=jobli"], "hydra/launcher=jobli is not an option of hydra/launcher; allowed: basic"),
    ],
)
@pytest.mark.parametrize("multirun", [False, True])
def test_a_refused_value_is_one_line_and_leaves_no_directory(tmp_path, args, expected, multirun):
    out = run_train(
        [*(["-m", "sweep.n=2"] if multirun else []), *args, f"paths.output={tmp_path / 'out'}"], tmp_path, timeout=120
    )
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--wa", "nan"], "argument --wa: must be a finite number, got 'nan'"),
        (["--wm", "inf"], "argument --wm: must be a finite number, got 'inf'"),
        (["--se-r", "-1"], "se_r (squeeze-excitation ratio) must be in [0, 1); got -1.0"),
    ],
)
def test_describe_refuses_non_finite_and_out_of_range_numbers(flags, expected, capsys):
    from netspaces.cli import main

    base = {"--depth": "13", "--w0": "24", "--wa": "36", "--wm": "2.5", "--group-w": "8"}
    base.update(dict(zip(flags[::2], flags[1::2])))
    assert main(["describe", *[x for kv in base.items() for x in kv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


# ---------------------------------------------------------------- a full disk at every write site


def _disk_full_for(monkeypatch, match: str):
    """os.fsync raises ENOSPC for files whose path contains `match` (what a full disk does at
    the flush of a write)."""
    real = os.fsync

    def fsync(fd):
        if match in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(record.os, "fsync", fsync)


def _no_partial_files(root: Path) -> None:
    assert not [p for p in root.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"


@pytest.mark.usefixtures("restore_torch_state")
@pytest.mark.parametrize("site", ["last.ckpt", "result.json"])
def test_a_full_disk_while_training_is_one_line_and_nothing_partial(tmp_path, monkeypatch, capsys, site):
    from hydra.core.hydra_config import HydraConfig

    from netspaces.train.run import hydra_job

    cfg = compose_train([*TINY, f"paths.run_dir={tmp_path / 'run'}", f"paths.output={tmp_path}"])
    _disk_full_for(monkeypatch, site)
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: False))
    with pytest.raises(SystemExit) as done:
        hydra_job(cfg)
    assert done.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert err == [
        f"error: no space left on the device writing {next(iter((tmp_path / 'run').rglob(site)), None) or ''}".rstrip()
    ] or (len(err) == 1 and "no space left on the device writing" in err[0] and site in err[0])
    _no_partial_files(tmp_path)
    assert not (tmp_path / "run" / "result.json").exists() or site != "result.json"


def test_a_full_disk_for_the_table_and_the_analysis_leaves_nothing_partial(tmp_path, monkeypatch, capsys):
    from netspaces.cli import main

    for i in range(3):
        record.write_record(
            tmp_path / "sweep" / f"sample_{i:03d}",
            record.Record(status="ok", name=f"m{i}", top1_err=10.0 + i, flops=1e8 * (i + 1)),
        )
    _disk_full_for(monkeypatch, "population")
    assert main(["collect", str(tmp_path / "sweep")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"netspaces: error: no space left on the device writing {tmp_path / 'sweep' / 'population.jsonl'}"
    ]
    _no_partial_files(tmp_path)
    assert not (tmp_path / "sweep" / "population.jsonl").exists()

    _disk_full_for(monkeypatch, "report.html")  # the last file of an analysis
    assert main(["analyze", str(tmp_path / "sweep"), "--out", str(tmp_path / "an"), "--n-boot", "10"]) == 1
    assert "no space left on the device writing" in capsys.readouterr().err
    assert not (tmp_path / "an").exists()  # no summary.json, no plots: all or nothing
    _no_partial_files(tmp_path)


@needs(CIFAR10)
def test_a_full_disk_for_the_decoded_cache_only_costs_the_cache(tmp_path, monkeypatch, caplog):
    from netspaces.train.data import load_cifar10_split
    from netspaces.train.settings import DataSettings

    root = _tree(tmp_path / "tree")
    _disk_full_for(monkeypatch, ".npz")
    s = DataSettings(
        name="cifar10",
        batch_size=4,
        resolution=32,
        root=str(root),
        train_split="train",
        val_split="test",
        cache_dir=str(tmp_path / "cache"),
    )
    x = load_cifar10_split(s)[0]
    assert x.shape[0] == 6 and "decoded data not cached: no space left" in caplog.text
    assert not list((tmp_path / "cache").glob("*"))


# ---------------------------------------------------------------- signals


@pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]], ids=["basic", "joblib"]
)
def test_sigterm_interrupts_a_sweep_which_the_same_command_resumes(tmp_path, launcher):
    args = [
        "-m",
        "sweep.n=3",
        "schedule=quick",
        "schedule.epochs=6",
        "trainer.threads=1",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=1",
        *launcher,
        f"paths.output={tmp_path}",
    ]
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=subprocess_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sweep = tmp_path / "sweeps" / SWEEP
    deadline = time.time() + 240
    while time.time() < deadline and not list(sweep.glob("sample_000*/checkpoints/last.ckpt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err
    recs = {p.parent.name.split(",")[0]: json.loads(p.read_text()) for p in sweep.rglob("result.json")}
    assert "interrupted" in {r["status"] for r in recs.values()}
    assert "sample_002" not in recs or recs["sample_002"]["status"] != "ok"  # no further sample ran to the end
    interrupted = next(r for r in recs.values() if r["status"] == "interrupted")
    assert "interrupted by SIGTERM" in interrupted["error"]
    again = subprocess.run(cmd, cwd=REPO, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    final = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert sorted(r["sample"] for r in final) == [0, 1, 2] and {r["status"] for r in final} == {"ok"}
    assert any(r["resumed_from_epoch"] for r in final)  # the interrupted one went on from its checkpoint
