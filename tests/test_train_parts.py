"""Small parts of training: the lr schedule, weight-decay groups, records and the table, collect."""

from __future__ import annotations

import argparse
import csv
import json
import math

import pytest
import torch
from torch import nn

from netspaces.errors import UserError
from netspaces.train import cli, records
from netspaces.train.optim import EpochLR, build_optimizer, param_groups
from netspaces.train.settings import OptimSettings


def test_cosine_per_epoch_reaches_zero_at_the_end():
    lr = EpochLR(epochs=10)
    assert lr(0) == 1.0 and lr(5) == pytest.approx(0.5) and lr(10) == pytest.approx(0.0, abs=1e-12)
    assert lr(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))


def test_linear_warmup_from_factor_to_one():
    lr = EpochLR(epochs=100, warmup_epochs=5, warmup_factor=0.1)
    assert lr(0) == pytest.approx(0.1)
    assert lr(1) == pytest.approx((0.1 * 0.8 + 0.2) * 0.5 * (1 + math.cos(math.pi / 100)))
    assert lr(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 100)))


def test_sgd_nesterov_with_lr_scaled_by_the_global_batch():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 5, 5))
    s = OptimSettings(base_lr=0.1, global_batch=512, epochs=10)
    opt, sched = build_optimizer(model, s)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["lr"] == pytest.approx(0.4) and group["weight_decay"] == 5e-5
    assert all(not callable(v) for v in sched.state_dict()["lr_lambdas"][0].values())  # weights_only-safe state


def test_bn_and_bias_can_be_exempt_from_weight_decay():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 2))
    decay, no_decay = param_groups(model, OptimSettings(weight_decay_norm_bias=False))
    assert [p.shape for p in decay["params"]] == [(8, 3, 3, 3), (2, 8)]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0  # BN γ, β and the linear bias


def _record(sample: int, err: float | None, status: str = "ok") -> dict:
    return {"status": status, "name": f"s-{sample}", "space": "regnetx", "regime": "400mf", "sample": sample,
            "top1_err": err, "flops": 1000 + sample, "arch": {"ws": [8, 16], "ds": [1, 2], "wm": 2.5},
            "config": {"big": "x"}, "history": [{"epoch": 1}]}


def test_records_are_atomic_json_and_nan_becomes_null(tmp_path):
    path = records.write_record(tmp_path / "run", {**_record(0, float("nan")), "history": [1.0, float("inf")]})
    assert json.loads(path.read_text())["top1_err"] is None and json.loads(path.read_text())["history"] == [1.0, None]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["result.json"]
    with pytest.raises(ValueError):
        records.write_record(tmp_path / "run", {"status": "great"})
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text("{half a rec")
    assert records.read_record(tmp_path / "bad") is None


def test_population_table_from_records(tmp_path):
    for i, err in [(1, 30.5), (0, 25.0), (2, None)]:
        records.write_record(tmp_path / f"sample_00{i}", _record(i, err, "ok" if err else "diverged"))
    records.write_record(tmp_path / "sample_000" / "wandb" / "x", _record(9, 1.0))  # W&B's copy is not a run
    n, (jsonl, table) = records.write_population(tmp_path)
    assert n == 3
    rows = list(csv.DictReader(table.open()))
    assert [r["sample"] for r in rows] == ["0", "1", "2"] and rows[0]["status"] == "ok"
    assert json.loads(rows[0]["ws"]) == [8, 16] and rows[0]["wm"] == "2.5"  # arch flattened, lists as JSON
    assert "config" not in rows[0] and "history" not in rows[0]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["sample"] for line in lines] == [0, 1, 2] and lines[1]["arch"]["wm"] == 2.5
    assert "config" not in lines[0]


def test_population_table_is_what_the_analysis_reads(tmp_path):
    from netspaces.analysis.tables import load_population

    for i, err in [(0, 25.0), (1, 30.5), (2, None)]:
        records.write_record(tmp_path / f"sample_00{i}", _record(i, err, "ok" if err else "diverged"))
    records.write_population(tmp_path)
    for source in (tmp_path, tmp_path / "population.csv", tmp_path / "population.jsonl"):
        population = load_population(str(source))
        assert population.errors.tolist() == [25.0, 30.5] and population.excluded == 1


def test_collect_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    records.write_record(tmp_path / "sample_000", _record(0, 20.0))
    args = parser.parse_args(["collect", str(tmp_path)])
    assert args.func(args) == 0
    assert "1 records (1 ok)" in capsys.readouterr().out and (tmp_path / "population.csv").is_file()
    with pytest.raises(UserError, match="not a directory"):
        args.func(parser.parse_args(["collect", str(tmp_path / "nope")]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no result.json"):
        args.func(parser.parse_args(["collect", str(tmp_path / "empty")]))


def test_netspaces_collect_command(tmp_path):
    import subprocess
    import sys

    from conftest import REPO, subprocess_env

    records.write_record(tmp_path / "sample_000", _record(0, 20.0))
    records.write_record(tmp_path / "sample_001", _record(1, None, "failed"))
    out = subprocess.run([sys.executable, "-m", "netspaces", "collect", str(tmp_path)], cwd=REPO,
                         env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 records (1 failed, 1 ok)" in out.stdout
    assert len(list(csv.DictReader((tmp_path / "population.csv").open()))) == 2
    bad = subprocess.run([sys.executable, "-m", "netspaces", "collect", str(tmp_path / "nope")], cwd=REPO,
                         env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
