"""The record schema: atomic JSON records, the population table, what analysis reads, collect."""

from __future__ import annotations

import csv
import json
import os
import stat
from dataclasses import replace

import pytest

from netspaces import record
from netspaces.cli import build_parser
from netspaces.errors import UserError
from netspaces.record import Record


def _record(sample: int, err: float | None, status: str = "ok") -> Record:
    return Record(
        status=status,
        name=f"s-{sample}",
        space="regnetx",
        regime="400mf",
        sample=sample,
        top1_err=err,
        flops=1000 + sample,
        arch={"ws": [8, 16], "ds": [1, 2], "wm": 2.5},
        config={"big": "x"},
        history=[{"epoch": 1}],
    )


def test_records_are_atomic_json_and_nan_becomes_null(tmp_path):
    path = record.write_record(tmp_path / "run", replace(_record(0, float("nan")), history=[1.0, float("inf")]))
    assert json.loads(path.read_text())["top1_err"] is None and json.loads(path.read_text())["history"] == [1.0, None]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["result.json"]
    with pytest.raises(ValueError):
        Record(status="great")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text("{half a rec")
    assert record.read_record(tmp_path / "bad") is None


def test_population_table_from_records(tmp_path):
    for i, err in [(1, 30.5), (0, 25.0), (2, None)]:
        record.write_record(tmp_path / f"sample_00{i}", _record(i, err, "ok" if err else "diverged"))
    record.write_record(tmp_path / "sample_000" / "wandb" / "x", _record(9, 1.0))  # W&B's copy is not a run
    got = record.write_population(tmp_path)
    jsonl, table = got.paths
    assert len(got.records) == 3 and not got.broken and not got.others
    rows = list(csv.DictReader(table.open()))
    assert [r["sample"] for r in rows] == ["0", "1", "2"] and rows[0]["status"] == "ok"
    assert json.loads(rows[0]["ws"]) == [8, 16] and rows[0]["wm"] == "2.5"  # arch flattened, lists as JSON
    assert "config" not in rows[0] and "history" not in rows[0]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["sample"] for line in lines] == [0, 1, 2] and lines[1]["arch"]["wm"] == 2.5
    assert "config" not in lines[0]


def test_population_table_is_what_the_analysis_reads(tmp_path):
    from netspaces.analysis.populations import load_population

    for i, err in [(0, 25.0), (1, 30.5), (2, None)]:
        record.write_record(tmp_path / f"sample_00{i}", _record(i, err, "ok" if err else "diverged"))
    record.write_population(tmp_path)
    for source in (tmp_path, tmp_path / "population.csv", tmp_path / "population.jsonl"):
        population = load_population(str(source))
        assert population.errors.tolist() == [25.0, 30.5] and population.excluded == 1


def test_collect_cli(tmp_path, capsys):
    parser = build_parser()
    record.write_record(tmp_path / "sample_000", _record(0, 20.0))
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

    record.write_record(tmp_path / "sample_000", _record(0, 20.0))
    record.write_record(tmp_path / "sample_001", _record(1, None, "failed"))
    out = subprocess.run(
        [sys.executable, "-m", "netspaces", "collect", str(tmp_path)],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "2 records (1 failed, 1 ok)" in out.stdout
    assert len(list(csv.DictReader((tmp_path / "population.csv").open()))) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "netspaces", "collect", str(tmp_path / "nope")],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_atomic_writes_get_the_umask_mode_even_from_a_0600_writer(tmp_path):
    """A report or table must be readable by others under the usual umask, whatever mode the
    writer created its temporary file with (mkstemp creates 0600)."""
    old = os.umask(0o022)
    try:
        with record.atomic_target(tmp_path / "report.html") as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, b"<html></html>")
            os.close(fd)
        path = record.write_atomic(tmp_path / "summary.json", "{}")
        assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)  # a user who asks for private files gets them
        assert stat.S_IMODE(record.write_atomic(tmp_path / "private.json", "{}").stat().st_mode) == 0o600
    finally:
        os.umask(old)
