"""logger=wandb without a key: offline runs read back from their files, never the W&B service.

A tiny sweep and its analysis: one W&B run per sample (job_type train, group = population
identity, id derived from identity and sample, the architecture in the config, a per-step
loss curve, the record in the summary), then the analysis run linked to it. A resumed sample
continues its W&B run. `netspaces wandb-sync` finds a sweep's offline runs and builds one
`wandb sync` command (never run here).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, compose_train, subprocess_env
from wandb_offline import read_run, wait_for_exit

PYCLS_REGNETX = REPO / "tests" / "data" / "analysis" / "pycls_regnetx.jsonl"
# three training batches per epoch, two epochs: six logged steps at the default interval (1)
THREE_BATCHES = [o for o in TINY if not o.startswith("trainer.limit_train_batches")] + ["trainer.limit_train_batches=3"]


class ConnectionCounter:
    """A local TCP listener standing in for the internet: it counts who tried to connect."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _run_id(identity: str, name: str) -> str:
    return hashlib.sha256(f"{identity}/{name}".encode()).hexdigest()[:16]


def _table(run_dir: Path, run, key: str) -> dict:
    """A logged wandb.Table as {"columns", "data"}, from the file its history entry names."""
    (entry,) = run.series(key)
    return json.loads((run_dir / "files" / entry["path"]).read_text())


def _rows(table: dict) -> list[dict]:
    return [dict(zip(table["columns"], row)) for row in table["data"]]


def test_a_tiny_sweep_and_its_analysis_land_in_offline_wandb_runs_without_network(tmp_path):
    proxy, api = ConnectionCounter(), ConnectionCounter()
    env = subprocess_env(tmp_path)
    env.pop("WANDB_MODE")  # no key: netspaces must choose offline by itself
    env.pop("WANDB_DIR")  # run files next to each run, analysis files under --out
    env.update(
        {
            "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
            "http_proxy": f"http://127.0.0.1:{proxy.port}",
            "https_proxy": f"http://127.0.0.1:{proxy.port}",
            "WANDB_BASE_URL": f"http://127.0.0.1:{api.port}",
            "HOME": str(tmp_path),  # no ~/.netrc key
            "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR") or str(Path.home() / ".config" / "matplotlib"),
        }
    )
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    sweep = tmp_path / "out" / "sweeps" / "regnetx-400mf-digits-quick-s0"
    try:
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "train.py"),
                "-m",
                "sweep.n=2",
                "logger=wandb",
                "logger.tags=[mine]",
                *THREE_BATCHES,
                f"paths.output={tmp_path / 'out'}",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        analysis = subprocess.run(
            [
                sys.executable,
                "-m",
                "netspaces.cli",
                "analyze",
                str(sweep),
                str(PYCLS_REGNETX),
                "--label",
                "tiny",
                "--label",
                "pycls",
                "--n-boot",
                "200",
                "--out",
                str(tmp_path / "analysis"),
                "--wandb",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        proxy.close()
        api.close()
    assert analysis.returncode == 0, analysis.stderr[-3000:]
    assert (proxy.count, api.count) == (0, 0)  # no connection was even attempted
    assert "WANDB_API_KEY" not in env
    for printed in (out.stdout + out.stderr, analysis.stdout + analysis.stderr):
        for failure in ("anonymous setting", "start failed", "W&B unavailable", "not written", "logging failed"):
            assert failure not in printed

    records = {}
    for record_path in sorted(sweep.rglob("result.json")):
        if "wandb" in record_path.parts:
            continue
        record = json.loads(record_path.read_text())
        records[record["name"]] = record
        (run_dir,) = record_path.parent.glob("wandb/offline-run-*")
        run = read_run(run_dir)
        identity = record["identity"]
        # one run per sample: id from identity and sample, group = the population identity
        assert (run.run_id, run.group, run.job_type, run.name) == (
            _run_id(identity, record["name"]),
            identity,
            "train",
            record["name"],
        )
        assert {"regnetx", "400mf", "digits", "quick", "regnetx-400mf-digits-quick-s0", "mine"} <= set(run.tags)
        # the sampled architecture and its complexity in the config: W&B groups and filters by them
        assert run.config["arch"] == record["arch"] and run.config["identity"] == identity
        assert {k: record["arch"][k] for k in ("ws", "ds", "gs", "bs", "depth", "w0", "wa", "wm")} == {
            k: run.config["arch"][k] for k in ("ws", "ds", "gs", "bs", "depth", "w0", "wa", "wm")
        }
        assert [run.config[k] for k in ("flops", "params", "acts")] == [record[k] for k in ("flops", "params", "acts")]
        assert run.config["schedule"]["name"] == "quick" and run.config["sweep"]["n"] == 2
        # a per-step loss curve: 2 epochs x 3 steps, each the mean of its interval, and the lr
        losses, steps = run.series("train/loss"), [r["trainer/global_step"] for r in run.history if "train/loss" in r]
        assert steps == [0, 1, 2, 3, 4, 5] and all(math.isfinite(x) and x > 0 for x in losses)
        lrs = [h["lr"] for h in record["history"]]
        assert run.series("train/lr") == pytest.approx([lrs[0]] * 3 + [lrs[1]] * 3, rel=1e-5)
        # the epoch means in the record are the means of the per-step losses (one step per point)
        assert sum(losses[:3]) / 3 == pytest.approx(record["history"][0]["train_loss"], abs=1e-5)
        assert run.series("train/epoch_loss") == pytest.approx([h["train_loss"] for h in record["history"]], abs=1e-5)
        assert run.series("val/top1_err") == pytest.approx([record["top1_err"]])
        # the record in the summary and among the run's files; the run ended ok
        assert run.summary["top1_err"] == record["top1_err"] and run.summary["status"] == "ok"
        assert json.loads((run_dir / "files" / "result.json").read_text()) == record
        assert run.exit_code == 0
    assert len(records) == 2
    # one line per offline run says how to upload the sweep
    assert out.stdout.count(f"upload it with: netspaces wandb-sync {sweep}") == 2

    # the analysis: its own run, in a group named after the comparison, linked to the sweep
    (run_dir,) = (tmp_path / "analysis" / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert (run.job_type, run.group) == ("analysis", "tiny vs pycls")
    (identity,) = {r["identity"] for r in records.values()}
    links = {link["label"]: link for link in run.config["inputs"]}
    assert links["tiny"]["wandb_groups"] == [identity] and links["tiny"]["source"] == str(sweep)
    assert links["pycls"]["identities"] == [] and links["pycls"]["n"] == 12
    # the native EDF chart: a W&B line chart over a table whose series are the populations
    chart = run.config["_wandb"]["visualize"]["edf_chart"]["panel_config"]
    assert chart["panelDefId"] == "wandb/line/v0"
    assert chart["fieldSettings"] == {"x": "error", "y": "F", "stroke": "series"}
    points = _rows(_table(run_dir, run, "edf_chart_table"))
    tiny = [p for p in points if p["series"] == "tiny"]
    assert {p["series"] for p in points} == {"tiny", "pycls"}
    assert sorted({p["error"] for p in tiny}) == sorted({r["top1_err"] for r in records.values()})
    assert max(p["F"] for p in tiny) == 1.0 and min(p["F"] for p in tiny) == 0.0
    summary = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    population_rows = _rows(_table(run_dir, run, "population_table"))
    assert [r["population"] for r in population_rows].count("tiny") == 2 and len(population_rows) == 14
    (ks,) = _rows(_table(run_dir, run, "ks_table"))
    assert ks["pair"] == "tiny vs pycls" and ks["p_value"] == pytest.approx(summary["ks"]["tiny vs pycls"]["p_value"])
    ranges = _rows(_table(run_dir, run, "bootstrap_table"))
    assert {(r["population"], r["parameter"]) for r in ranges} >= {("tiny", "depth"), ("pycls", "w0")}
    assert all(r["lo"] <= r["median"] <= r["hi"] for r in ranges if r["lo"] is not None)
    (report,) = [a for a in run.artifacts if a.type == "analysis-report"]  # W&B adds one per table
    assert {entry.path for entry in report.manifest.contents} == {"report.html", "summary.json", "edf.csv"}
    assert f"upload it with: netspaces wandb-sync {tmp_path / 'analysis'}" in analysis.stdout


@pytest.mark.usefixtures("restore_torch_state")
def test_a_resumed_sample_logs_into_the_same_wandb_run(tmp_path, monkeypatch):
    from netspaces.train.module import Classifier
    from netspaces.train.run import train

    for key in ("WANDB_API_KEY", "WANDB_ENTITY"):
        monkeypatch.delenv(key, raising=False)
    for key in ("WANDB_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(key, "http://127.0.0.1:9")  # any connection would be refused at once
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("CONFIG", "CACHE", "DATA", "ARTIFACT"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / name.lower()))
    run_dir = tmp_path / "out" / "sweeps" / "s" / "sample_000"
    cfg = compose_train(
        [*THREE_BATCHES, "logger=wandb", f"paths.run_dir={run_dir}", f"paths.output={tmp_path / 'out'}"]
    )
    start = Classifier.on_train_epoch_start

    def crash_in_epoch_two(self):
        if self.current_epoch == 1:
            raise RuntimeError("simulated crash")
        start(self)

    monkeypatch.setattr(Classifier, "on_train_epoch_start", crash_in_epoch_two)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg)
    monkeypatch.setattr(Classifier, "on_train_epoch_start", start)
    # wandb names an offline run's directory by its start second: the retry starts in a later one
    second = int(time.time())
    while int(time.time()) == second:
        time.sleep(0.05)
    done = train(cfg)
    assert done["status"] == "ok" and done["resumed_from_epoch"] == 1

    first, again = (wait_for_exit(d) for d in sorted(run_dir.glob("wandb/offline-run-*")))
    assert first.run_id == again.run_id == _run_id(done["identity"], done["name"])
    assert first.group == again.group == done["identity"]
    assert (first.exit_code, again.exit_code) == (1, 0)  # the crashed attempt ended its run as failed
    # the retry continues the curve where the crash left it: steps 0-2, then 3-5
    steps = [[r["trainer/global_step"] for r in run.history if "train/loss" in r] for run in (first, again)]
    assert steps == [[0, 1, 2], [3, 4, 5]]
    assert first.summary["status"] == "failed" and again.summary["status"] == "ok"


def _offline_run(parent: Path, stamp: str, run_id: str) -> Path:
    run = parent / "wandb" / f"offline-run-{stamp}-{run_id}"
    run.mkdir(parents=True)
    (run / f"run-{run_id}.wandb").write_bytes(b":W&B")
    return run


def test_wandb_sync_finds_every_offline_run_of_a_sweep_and_builds_one_command(tmp_path, monkeypatch, capsys):
    from netspaces import cli
    from netspaces.wandb_mode import offline_runs, sync_command, sync_hint

    sweep = tmp_path / "sweeps" / "regnetx-400mf-digits-quick-s0"
    (sweep / "identity.json").parent.mkdir(parents=True)
    (sweep / "identity.json").write_text("{}")
    wanted = [
        _offline_run(sweep / "sample_000", "20261205_070000", "aaaa"),
        _offline_run(sweep / "sample_000", "20261205_070500", "aaaa"),  # the same sample, resumed
        _offline_run(sweep / "sample_001", "20261205_070100", "bbbb"),
        _offline_run(sweep / "replicas" / "seed_1" / "sample_000", "20261205_071000", "cccc"),
    ]
    online = sweep / "sample_002" / "wandb" / "run-20261205_070200-dddd"  # uploaded as it ran
    online.mkdir(parents=True)
    (online / "run-dddd.wandb").write_bytes(b":W&B")
    (sweep / "sample_003" / "wandb" / "offline-run-20261205_070300-eeee").mkdir(parents=True)  # no log: nothing
    assert offline_runs(sweep) == sorted(wanted)
    assert offline_runs(wanted[2]) == [wanted[2]]
    assert sync_command(wanted[:1], project="p", entity="e") == [
        sys.executable,
        "-m",
        "wandb",
        "sync",
        "--project",
        "p",
        "--entity",
        "e",
        str(wanted[0]),
    ]
    assert sync_hint(wanted[0]).endswith(f"netspaces wandb-sync {sweep}")  # a sample names its sweep
    assert sync_hint(tmp_path / "a" / "wandb" / "offline-run-x").endswith(f"netspaces wandb-sync {tmp_path / 'a'}")

    assert cli.main(["wandb-sync", str(sweep), "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"4 offline W&B run(s) below {sweep}"
    assert printed[1].split() == [sys.executable, "-m", "wandb", "sync", *map(str, sorted(wanted))]
    called = []
    monkeypatch.setattr(subprocess, "call", lambda command: called.append(command) or 0)  # never the service
    assert cli.main(["wandb-sync", str(sweep / "sample_001"), str(sweep / "sample_001"), "--include-synced"]) == 0
    assert called == [[sys.executable, "-m", "wandb", "sync", "--include-synced", str(wanted[2])]]


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_wandb_sync_refuses_a_directory_without_offline_runs_in_one_line(tmp_path, capsys, where):
    from netspaces import cli

    target = tmp_path / where
    if where == "empty":
        target.mkdir()
    assert cli.main(["wandb-sync", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "wandb-sync" in err


def test_the_default_log_interval_gives_a_short_run_a_curve():
    from netspaces.train.module import default_log_every

    assert [default_log_every(n) for n in (1, 3, 9, 10, 11, 78, 500, 10_000)] == [1, 1, 1, 1, 2, 8, 50, 50]
    assert default_log_every(float("inf")) == 50  # an iterable data set without a length


def test_a_bad_log_interval_is_refused():
    from netspaces.errors import UserError
    from netspaces.train.settings import trainer_settings

    assert trainer_settings(compose_train([])).log_every_n_steps is None  # the default: derived
    for key in ("trainer.log_every_n_steps", "trainer.check_every_n_steps"):
        with pytest.raises(UserError, match=f"{key}=0 is not allowed: must be >= 1"):
            trainer_settings(compose_train([f"{key}=0"]))
