"""A finishing job adds its own row to the population table without walking the sweep (O(1) in
its size), and the table it leaves holds the same rows as a rebuild from the records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from netspaces import record

MAIN, OTHER = "a" * 64, "b" * 64
SINCE = "2026-01-01T00:00:00+00:00"  # when this sweep command started
EARLIER = "2025-12-31T10:00:00+00:00"  # a record of an earlier command


def _record(sweep: Path, sample: int, status: str = "ok", identity: str = MAIN, **extra) -> dict:
    run_dir = sweep / f"sample_{sample:03d}"
    arch = {} if status == "failed" else {"ws": [24, 56], "ds": [1, 2], **extra.pop("arch", {})}
    rec = record.Record(
        status=status,
        name=f"m{sample}",
        sample=sample,
        arch=arch,
        top1_err=None if status != "ok" else 40.0 + sample,
        identity=identity,
        run_dir=str(run_dir),
        finished_at=extra.pop("finished_at", "2026-01-01T10:00:00+00:00"),
        history=[{"epoch": 1, "top1_err": 40.0}],
        config={"sample": sample},
        **extra,
    )
    record.write_record(run_dir, rec)
    return rec.to_dict()


def _finish(sweep: Path, sample: int, status: str = "ok", **kw) -> record.Added:
    """What a sweep's job does: write its record, then add it to the table."""
    prior = record.read_record(sweep / f"sample_{sample:03d}")
    return record.add_to_population(sweep, _record(sweep, sample, status, **kw), prior=prior, since=SINCE)


def _tables(sweep: Path, stem: str = "population") -> tuple[list[dict], list[dict]]:
    """The JSONL's and the CSV's rows, in sample order."""
    order = lambda r: (int(r["sample"]), r["run_dir"])  # noqa: E731
    jsonl = [json.loads(line) for line in (sweep / f"{stem}.jsonl").read_text().splitlines()]
    with open(sweep / f"{stem}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return sorted(jsonl, key=order), sorted(rows, key=order)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    d = tmp_path / "sweep"
    d.mkdir()
    (d / record.IDENTITY_FILE).write_text(json.dumps({"hash": MAIN}))
    _record(d, 0, finished_at=EARLIER)
    _record(d, 1, "failed", finished_at=EARLIER)
    record.write_population(d)  # what a sweep does when it starts
    record.start_progress(d, SINCE)
    return d


def test_finishing_jobs_leave_the_table_a_rebuild_would_write(sweep, monkeypatch):
    def walk(*args, **kwargs):
        raise AssertionError("a finishing job walked the sweep's records")

    monkeypatch.setattr(record, "scan_records", walk)
    added = [
        _finish(sweep, 2),  # a new model
        _finish(sweep, 1),  # the failed one, retried: its row is replaced
        _finish(sweep, 3, "interrupted"),  # a preempted one: in the table, not ended
        _finish(sweep, 3),  # ... resumed
        _finish(sweep, 4, "failed"),  # no network: no arch columns
        _finish(sweep, 5, arch={"wa": 36.0}),  # a column the CSV's header lacks
        _finish(sweep, 6, identity=OTHER),  # another experiment: its own table
    ]
    assert [a.ended for a in added] == [3, 3, 3, 4, 5, 6, 6]  # samples 0 1 2, then 3, 4, 5
    assert [a.mine for a in added] == [1, 2, 2, 3, 4, 5, 5] and not any(a.rebuilt for a in added)
    incremental = _tables(sweep), _tables(sweep, f"population-{OTHER[:6]}")
    assert [r["sample"] for r in incremental[0][0]] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in incremental[0][0]] == ["ok", "ok", "ok", "ok", "failed", "ok"]
    monkeypatch.undo()

    got = record.write_population(sweep)  # the full rebuild, from the records
    assert (_tables(sweep), _tables(sweep, f"population-{OTHER[:6]}")) == incremental
    assert got.records and [r["sample"] for r in got.others[OTHER]] == [6]


@pytest.mark.parametrize("table", ["population.jsonl", "population.csv"])
def test_an_update_killed_half_way_is_repaired_from_the_records(sweep, table):
    with open(sweep / table, "a") as f:  # a job was killed while it appended its row
        f.write('{"status": "ok", "sam')
    added = _finish(sweep, 2)
    assert added.rebuilt and added.ended == 3
    assert [r["sample"] for r in _tables(sweep)[0]] == [0, 1, 2]
    assert [r["sample"] for r in _tables(sweep)[1]] == ["0", "1", "2"]
    assert not _finish(sweep, 3).rebuilt  # and the next job appends again


def test_a_sweep_without_a_table_yet_gets_one_from_its_records(tmp_path):
    d = tmp_path / "sweep"
    d.mkdir()
    (d / record.IDENTITY_FILE).write_text(json.dumps({"hash": MAIN}))
    _record(d, 0)  # e.g. a job of a sweep whose start this process did not see
    added = _finish(d, 1)
    assert added.rebuilt and added.ended == 2
    assert [r["sample"] for r in _tables(d)[0]] == [0, 1]


@pytest.mark.slow  # three trainings in two sweeps; the fast suite has its parts: the sampler's stream is
# prefix-stable (test_spaces) and sweep.n is not identity (test_identity)
def test_raising_sweep_n_keeps_the_first_models_and_trains_only_the_new_ones(tmp_path):
    from conftest import TINY, run_train
    from netspaces.space.sampling import sample_models

    args = ["-m", *TINY, f"paths.output={tmp_path}"]
    first = run_train([*args, "sweep.n=1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "regnetx-400mf-digits-quick-s0"
    (kept,) = sweep.glob("sample_000*/result.json")
    before = kept.stat().st_mtime_ns, kept.read_text()

    more = run_train([*args, "sweep.n=2"], tmp_path)  # the same population, grown
    assert more.returncode == 0, more.stderr[-3000:]
    assert (kept.stat().st_mtime_ns, kept.read_text()) == before  # not retrained
    assert "model 2 of 2 done (ok" in more.stdout and "model 1 of" not in more.stdout
    recs = sorted((json.loads(p.read_text()) for p in sweep.glob("sample_*/result.json")), key=lambda r: r["sample"])
    drawn = sample_models("regnetx", "400mf", n=2, seed=0)  # what a sweep of 2 draws from the start
    assert [r["arch"]["ws"] for r in recs] == [list(s.spec.ws) for s in drawn]
    assert len({r["identity"] for r in recs}) == 1 and [r["status"] for r in recs] == ["ok", "ok"]
    assert [r["sample"] for r in _tables(sweep)[0]] == [0, 1]


def test_a_model_a_job_found_done_and_skipped_is_not_added_again(sweep):
    from netspaces.train.sweep import refresh_population

    done = record.read_record(sweep / "sample_000")  # the job found it and returned it as it was
    before = [(sweep / f).read_text() for f in ("population.jsonl", "population.csv")]
    refresh_population(sweep, done, prior=done)
    assert [(sweep / f).read_text() for f in ("population.jsonl", "population.csv")] == before
