"""scripts/paper_tables.py at toy settings: our numbers against the published ones
(reference/pycls_zoo.csv, from ../shared), our runs' errors from a results directory, bad input."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import paper_reference  # noqa: E402
import paper_tables  # noqa: E402

pytestmark = pytest.mark.skipif(not paper_reference.ZOO_CSV.is_file(), reason=f"{paper_reference.ZOO_CSV} missing")


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def read_rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def test_published_numbers_are_parsed_exactly():
    pub = paper_reference.published()
    x400 = pub["RegNetX-400MF"]
    assert (x400.flops, x400.params, x400.acts, x400.top1_err) == (397_678_568, 5_157_512, 3_143_272, 27.382)
    assert (x400.infer_ms, x400.train_hr, x400.train_res) == (15, 4.2, 224)
    assert pub["EfficientNet-B3"].train_res == 300
    assert len(pub) == 36


def test_every_regnet_and_resnet_counted_by_our_tools_equals_the_published_numbers():
    pub = paper_reference.published()
    zoo = [n for n in pub if not n.startswith("EfficientNet")]
    assert len(zoo) == 30
    for name in zoo:
        cx = paper_tables.complexity_of(name)
        assert (cx.flops, cx.params, cx.acts) == (pub[name].flops, pub[name].params, pub[name].acts), name


def test_efficientnets_by_the_flop_counter_match_the_published_numbers():
    pub = paper_reference.published()
    for i in range(6):
        name = f"EfficientNet-B{i}"
        cx = paper_tables.complexity_of(name)  # at the model's own resolution (B3: 300 px)
        assert (cx.params, cx.acts) == (pub[name].params, pub[name].acts), name
        assert abs(cx.flops - pub[name].flops) / pub[name].flops < 0.001, name
    b0 = paper_tables.complexity_of("EfficientNet-B0").flops
    assert 0.38e9 < b0 < 0.40e9  # the paper's 0.4 GF


def test_table2_with_toy_timing_writes_csv_and_markdown(tmp_path, capsys):
    assert (
        paper_tables.main(
            ["table2", "--out", str(tmp_path), "--batch", "2", "--repeats", "1", "--warmup", "0", "--threads", "1"]
        )
        == 0
    )
    rows = read_rows(tmp_path / "table2.csv")
    assert list(rows) == [m for _, m in paper_tables.TABLE2]
    x600 = rows["RegNetX-600MF"]
    assert (int(x600["flops"]), int(x600["params"])) == (600_891_112, 6_196_040)  # pycls model zoo
    assert x600["err_paper"] == "25.9" and x600["err_ours"] == "—"
    assert float(x600["infer_ms_per_img_cpu"]) > 0 and float(x600["train_ms_per_img_cpu"]) > 0
    assert rows["mobilenetv2_100"]["err_paper"] == "—"  # not in the reference
    md = (tmp_path / "table2.md").read_text()
    assert md.startswith("## Table 2: mobile regime") and "| RegNetY-600MF | 224 | 0.60 |" in md
    assert "| RegNetY-600MF | 224 | 0.60 |" in capsys.readouterr().out


def test_tables_2_and_4_keep_their_row_order_and_units_with_timing_medians_and_spread(tmp_path, monkeypatch, capsys):
    """A small subset of each table's rows (the cheapest models, toy batch): rows in the declared
    order, ms per image as plain numbers, the spread of the repeats as %, the note naming the
    median of the repeats; a spread above the limit gives a warning naming the model."""
    subset = {
        "table2": [("mobile", "RegNetX-400MF"), ("mobile", "RegNetY-400MF"), ("mobile", "mobilenetv2_100")],
        "table4": [("B0", "EfficientNet-B0"), ("B0", "RegNetY-400MF")],
    }
    for name, rows in subset.items():
        monkeypatch.setitem(paper_tables.TABLES, name, (paper_tables.TABLES[name][0], rows))
    args = ["--out", str(tmp_path), "--batch", "2", "--repeats", "3", "--warmup", "1", "--threads", "1"]
    assert paper_tables.main(["table2", "table4", *args]) == 0
    for name, declared in subset.items():
        with open(tmp_path / f"{name}.csv", newline="") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == paper_tables.COLUMNS
            rows = list(reader)
        assert [(r["group"], r["model"]) for r in rows] == declared
        for r in rows:
            for column in ("infer_ms_per_img_cpu", "train_ms_per_img_cpu"):
                assert float(r[column]) > 0, (name, r["model"], column)
            for column in ("infer_spread_pct_cpu", "train_spread_pct_cpu"):
                assert float(r[column]) >= 0 and r[column].isdigit(), (name, r["model"], column)
        md = (tmp_path / f"{name}.md").read_text()
        assert "median of 3 after 1 warm-up" in md and "(max - min) / median of the repeats, %" in md
        header = md.splitlines()[2]
        assert "infer_ms_per_img_cpu | train_ms_per_img_cpu | infer_spread_pct_cpu" in header
    err = capsys.readouterr().err
    assert "table4 [2/2] RegNetY-400MF done" in err and "s left" in err


def test_a_timing_whose_repeats_spread_too_far_is_flagged():
    from netspaces.models.timing import SPREAD_WARN_PCT, Timing, spread_pct

    assert spread_pct([10.0, 11.0, 12.0]) == pytest.approx(100 * 2 / 11) and spread_pct([7.0]) == 0.0
    steady = Timing("RegNetX-400MF", "cpu", 4, 224, 2, 5, 10.0, 30.0, 5.0, 8.0)
    busy = Timing("EfficientNet-B1", "cpu", 4, 240, 2, 5, 458.0, 286.0, 61.0, 12.0)
    assert steady.spread_warning() is None
    assert busy.spread_warning().startswith("EfficientNet-B1: repeats spread 61% (forward)")
    assert f"over {SPREAD_WARN_PCT:g}%" in busy.spread_warning()


def test_tables_3_and_4_pair_models_of_matched_flops(tmp_path):
    assert paper_tables.main(["table3", "table4", "--out", str(tmp_path), "--no-timing"]) == 0
    t3, t4 = read_rows(tmp_path / "table3.csv"), read_rows(tmp_path / "table4.csv")
    for rows in (t3, t4):
        groups: dict[str, list[int]] = {}
        for r in rows.values():
            groups.setdefault(r["group"], []).append(int(r["flops"]))
            assert r["infer_ms_per_img_cpu"] == "—"
        for flops in groups.values():  # within a group, flops within a factor 1.6 of each other
            assert max(flops) / min(flops) < 1.6
    assert t4["EfficientNet-B5"]["res"] == "456" and t4["RegNetY-8.0GF"]["err_paper"] == "20.1"
    assert t3["ResNeXt-50"]["flops"] == "4230480872"


def test_table1_lists_every_design_space(tmp_path):
    assert paper_tables.main(["table1", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "table1.csv", newline="") as f:
        rows = {r["space"]: r for r in csv.DictReader(f)}
    assert rows["anynetx_a"]["size_paper"] == "1.8e+18" and rows["anynetx_a"]["dim"] == "16"
    assert rows["regnetx"]["size_paper"] == "3.0e+08"


def test_our_errors_come_from_run_records(tmp_path):
    runs = tmp_path / "results"
    records = [
        ("a", {"status": "ok", "model": "RegNetX-600MF", "top1_err": 30.0, "data": "cifar10"}),
        ("b", {"status": "ok", "model": "RegNetX-600MF", "top1_err": 34.0, "data": "cifar10"}),
        ("c", {"status": "diverged", "model": "RegNetX-600MF", "top1_err": None, "data": "cifar10"}),
        ("d", {"status": "ok", "model": "efficientnet_b0", "top1_err": 41.5, "data": "cifar10"}),
        ("e", {"status": "ok", "model": "sampled", "top1_err": 10.0, "data": "digits"}),
    ]
    for sub, rec in records:
        (runs / sub).mkdir(parents=True)
        (runs / sub / "result.json").write_text(json.dumps(rec))
    ours = paper_reference.our_errors(runs)
    assert set(ours) == {"RegNetX-600MF", "efficientnet_b0"}
    assert str(ours["RegNetX-600MF"]) == "32.0 (cifar10, 2 runs)"
    out = tmp_path / "paper"
    assert paper_tables.main(["table2", "--out", str(out), "--no-timing", "--results", str(runs)]) == 0
    rows = read_rows(out / "table2.csv")
    assert rows["RegNetX-600MF"]["err_ours"] == "32.0 (cifar10, 2 runs)"
    assert rows["EfficientNet-B0"]["err_ours"] == "41.5 (cifar10)"  # EfficientNet-B0 is timm's efficientnet_b0
    assert rows["RegNetY-600MF"]["err_ours"] == "—"


def test_population_tables_are_read_when_there_are_no_records(tmp_path):
    (tmp_path / "population.jsonl").write_text(
        json.dumps({"status": "ok", "model": "regnety_600mf", "top1_err": 12.25, "data": "imagenette"}) + "\n"
    )
    assert str(paper_reference.our_errors(tmp_path)["RegNetY-600MF"]) == "12.2 (imagenette)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["table9"], "paper_tables: error: unknown table 'table9'; allowed: table1, table2, table3, table4"),
        (
            ["table2", "--no-timing", "--results", "/no/such/dir"],
            "paper_tables: error: RESULTS=/no/such/dir is not a directory",
        ),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    assert paper_tables.main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("figures.py", ["--n", "1"], "figures: error: N must be >= 2 and EPOCHS, JOBS >= 1; got N=1 EPOCHS=5"),
        ("reproduce_small.py", ["--spaces", "regnetx"], "reproduce-small: error: reproduce-small compares 2 spaces"),
        (
            "reproduce_small.py",
            ["--spaces", "regnetx", "anynetx_q"],
            "reproduce-small: error: unknown space 'anynetx_q'; allowed: anynetx_a",
        ),
    ],
)
def test_population_scripts_refuse_bad_input_in_one_line(script, args, message, tmp_path):
    import subprocess

    (tmp_path / "cifar10" / "train").mkdir(parents=True)  # a data root that passes, whatever is beside the clone
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / script),
            *args,
            "--out",
            str(tmp_path / "out"),
            "--data-root",
            str(tmp_path / "cifar10"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10"


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR10.is_dir(), reason=f"{CIFAR10} not present")
def test_reproduce_small_runs_end_to_end_at_toy_size(tmp_path):
    """sample → train → collect → analyze → report on a tiny CIFAR-10 subset; ends with KS and p."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "WANDB_MODE": "offline", "OMP_WAIT_POLICY": "PASSIVE"}
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "reproduce_small.py"),
            "--n",
            "3",
            "--epochs",
            "1",
            "--per-class",
            "10",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip().splitlines()
    assert out[0].startswith("EXPLORATORY run: differs from protocol reproduce_small v1")
    assert "N=3 (protocol: 20)" in out[0]
    assert out[-1].startswith("verdict: ") and out[-1].endswith("[exploratory, outside the protocol, sweep seed 100]")
    assert any(line.startswith("KS D = ") and "exact p = " in line for line in out)
    summary = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    assert summary["populations"]["regnetx"]["n"] == 3 and (tmp_path / "analysis" / "report.html").is_file()
