"""W&B logging of an analysis: its own offline run (no key, no network), read back from the
run's files; and it never raises."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from netspaces.analysis.populations import load_population
from netspaces.analysis.wandb_log import (
    baseline_errors,
    comparison_name,
    edf_chart_table,
    edf_steps,
    log_analysis,
    read_wandb_records,
    section_table,
)
from netspaces.errors import UserError
from wandb_offline import wait_for_exit

DATA = REPO / "tests" / "data" / "analysis"
ZOO = REPO.parent / "shared" / "reference" / "pycls_zoo.csv"


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """No key, offline, and every W&B directory under tmp_path (no user settings either)."""
    pytest.importorskip("wandb")
    for key in ("WANDB_API_KEY", "WANDB_ENTITY"):
        monkeypatch.delenv(key, raising=False)
    # Any attempt to reach a server or proxy would be refused at once (port 9 = discard).
    for key in ("WANDB_BASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(key, "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    for name in ("CONFIG", "CACHE", "DATA", "ARTIFACT"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / name.lower()))


def _rows(run_dir: Path, run, key: str) -> list[dict]:
    (entry,) = run.series(key)
    table = json.loads((run_dir / "files" / entry["path"]).read_text())
    return [dict(zip(table["columns"], row)) for row in table["data"]]


def _errors(path: Path) -> list[float]:
    return [json.loads(line)["top1_err"] for line in path.read_text().splitlines()]


def test_analyze_with_wandb_logs_tables_edf_charts_and_the_report(tmp_path, offline_wandb, capsys):
    from netspaces.cli import build_parser

    inputs = [str(DATA / "pycls_regnetx.jsonl"), str(DATA / "pycls_regnety.jsonl")]
    args = build_parser().parse_args(
        ["analyze", *inputs, "--label", "X", "--label", "Y", "--n-boot", "100", "--out", str(tmp_path / "out")]
        + ["--wandb"]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert f"W&B run (job analysis, group X vs Y): {run_dir}" in printed
    assert f"upload it with: netspaces wandb-sync {tmp_path}" in printed
    run = wait_for_exit(run_dir)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())

    assert (run.job_type, run.group, run.name, run.exit_code) == ("analysis", "X vs Y", "analysis: X vs Y", 0)
    assert [(i["label"], i["source"], i["n"]) for i in run.config["inputs"]] == [
        ("X", inputs[0], 12),
        ("Y", inputs[1], 12),
    ]
    assert run.config["options"]["n_boot"] == 100 and run.config["comparison"] == "X vs Y"
    # one native line chart per EDF: populations as series, the staircase of each EDF
    for key in ("edf_chart", "edf_normalized_chart"):
        chart = run.config["_wandb"]["visualize"][key]["panel_config"]
        assert chart["panelDefId"] == "wandb/line/v0"
        assert chart["fieldSettings"] == {"x": "error", "y": "F", "stroke": "series"}
        points = _rows(run_dir, run, f"{key}_table")
        for label, path in (("X", inputs[0]), ("Y", inputs[1])):
            mine = [p for p in points if p["series"] == label]
            assert sorted({p["error"] for p in mine}) == sorted(set(_errors(Path(path))))
            assert mine[0]["F"] == 0.0 and mine[-1]["F"] == pytest.approx(1.0)
            assert all(a["F"] <= b["F"] + 1e-12 for a, b in zip(mine, mine[1:]))  # never decreasing
    plain = [p for p in _rows(run_dir, run, "edf_chart_table") if p["series"] == "X"]
    assert [p["F"] for p in plain[:4]] == pytest.approx([0.0, 1 / 12, 1 / 12, 2 / 12])  # 12 distinct errors
    # the per-model table, and one table per section of summary.json
    assert len(_rows(run_dir, run, "population_table")) == 24
    populations = {r["population"]: r for r in _rows(run_dir, run, "populations_table")}
    assert populations["X"]["median"] == pytest.approx(summary["populations"]["X"]["median"])
    assert populations["Y"]["median_ci.lo"] == pytest.approx(summary["populations"]["Y"]["median_ci"]["lo"])
    (ks,) = _rows(run_dir, run, "ks_table")
    assert ks["pair"] == "X vs Y" and 0 < ks["p_value"] <= 1
    assert ks["p_value"] == pytest.approx(summary["ks"]["X vs Y"]["p_value"]) and ks["p_method"]
    ranges = {(r["population"], r["parameter"]): r for r in _rows(run_dir, run, "bootstrap_table")}
    assert ranges[("X", "depth")]["median"] == pytest.approx(summary["bootstrap"]["X"]["depth"]["median"])
    assert "baselines_table" not in {k for row in run.history for k in row}  # no baselines section
    # the PNG plots, the numbers in the summary, the report as an artifact
    assert list((run_dir / "files").glob("media/images/edf_*.png"))
    assert run.summary["ks/X vs Y/plain"] == pytest.approx(summary["ks"]["X vs Y"]["plain"])
    (report,) = [a for a in run.artifacts if a.type == "analysis-report"]  # W&B adds one per table
    assert report.name == "analysis-X_vs_Y"
    assert {entry.path for entry in report.manifest.contents} == {"report.html", "summary.json", "edf.csv"}


def _published(name: str) -> dict:
    """A baseline's published error and flops (pycls's model zoo, shared reference data)."""
    with ZOO.open() as f:
        row = next(r for r in csv.DictReader(f) if r["name"] == name)
    notes = dict(part.split("=", 1) for part in row["notes"].replace(";", " ").split() if "=" in part)
    return {"error": float(notes["top1_err_exact"]), "flops": int(notes["flops"])}


@pytest.mark.skipif(not ZOO.is_file(), reason=f"{ZOO} not present (../shared/reference)")
def test_baselines_become_a_table_and_vertical_lines_on_the_edf():
    population = load_population(str(DATA / "pycls_regnetx.jsonl"), "RegNetX")
    b0, x50 = _published("EfficientNet-B0"), _published("ResNeXt-50")
    beats = float(100 * np.mean(population.errors > b0["error"]))
    # summary.json's baselines section: name -> error, complexity, and its standing per population
    summary = {
        "baselines": {
            "EfficientNet-B0": {**b0, "populations": {"RegNetX": {"beats_pct": beats}}},
            "ResNeXt-50": {**x50, "populations": {"RegNetX": {"beats_pct": 100 * np.mean(population.errors > 21.884)}}},
        }
    }

    points = edf_chart_table([population], None, summary)
    line = points[points["series"] == "baseline: EfficientNet-B0"]
    assert line["error"].tolist() == [24.92, 24.92] and line["F"].tolist() == [0.0, 1.0]
    assert set(points["series"]) == {"RegNetX", "baseline: EfficientNet-B0", "baseline: ResNeXt-50"}
    table = section_table("baselines", summary["baselines"])
    assert table["baseline"].tolist() == ["EfficientNet-B0", "ResNeXt-50"]
    # RegNetX-200MF, -400MF and -600MF have published errors above EfficientNet-B0's 24.92
    assert table["populations.RegNetX.beats_pct"].iloc[0] == pytest.approx(beats) == pytest.approx(100 * 3 / 12)
    assert table["flops"].tolist() == [385825092, 4230480872]
    # a list of entries is read too, by name or label; entries without a finite error are not drawn
    listed = [{"name": "B0", **b0}, {"label": "X50", "top1_err": 21.884}, {"name": "none", "error": None}]
    assert baseline_errors({"baselines": listed}) == {"B0": 24.92, "X50": 21.884}
    assert baseline_errors({}) == {}


def test_edf_steps_draw_the_staircase_of_a_weighted_edf():
    xs, ys = edf_steps(np.array([3.0, 1.0, 2.0, 2.0]), np.full(4, 0.25))
    assert xs.tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert ys.tolist() == [0.0, 0.25, 0.25, 0.75, 0.75, 1.0]  # F counts errors strictly below: ties jump at once
    xs, ys = edf_steps(np.array([1.0, 2.0]), np.array([0.8, 0.2]))
    assert ys.tolist() == [0.0, 0.8, 0.8, 1.0]


def test_summary_sections_are_read_generically():
    boot = section_table("bootstrap", {"A": {"depth": {"lo": 10.0, "median": 12.0, "hi": float("nan")}}})
    assert boot.to_dict("records") == [
        {"population": "A", "parameter": "depth", "lo": 10.0, "median": 12.0, "hi": None}
    ]
    ks = section_table("ks", {"A vs B": {"plain": 0.5, "ks_ci": {"lo": 0.1, "hi": 0.9}, "power": {"n": [3, 4]}}})
    assert ks.to_dict("records") == [
        {"pair": "A vs B", "plain": 0.5, "ks_ci.lo": 0.1, "ks_ci.hi": 0.9, "power.n": "[3, 4]"}
    ]
    mixed = section_table("other", [{"v": 1}, {"v": "text"}])
    assert mixed["v"].tolist() == ["1", "text"]  # W&B rejects a column of mixed types
    assert section_table("baselines", None) is None and section_table("baselines", {}) is None


def test_comparison_names_stay_within_a_wandb_group_name():
    assert comparison_name(["a", "b", "c"]) == "a vs b vs c"
    long = [f"regnetx-400mf-cifar10-population-s{i}" for i in range(6)]
    name = comparison_name(long)
    assert len(name) <= 120 and name != comparison_name(long[:5] + ["other"])


def test_logging_failures_only_warn(tmp_path, offline_wandb, capsys):
    # A plot path that does not exist makes wandb.Image fail: one warning, no exception.
    population = load_population(str(DATA / "pycls_regnetx.jsonl"), "A")

    class Bare:
        summary: dict = {}
        weights = {"A": np.full(12, 1 / 12)}

    result = log_analysis([population], Bare(), [tmp_path / "missing.png"], run_dir=tmp_path)
    assert result is None
    err = capsys.readouterr().err
    assert "warning: W&B logging failed" in err and err.count("\n") == 1


def test_wandb_uri_must_name_entity_project_group():
    # Checked before any API call, so this touches no network.
    with pytest.raises(UserError, match="wandb://entity/project/group"):
        read_wandb_records("wandb://only-project")


def test_tables_with_lists_become_json_text():
    from netspaces.analysis.wandb_log import _loggable_table

    table = _loggable_table(
        {"A": pd.DataFrame({"top1_err": [1.0], "ws": [[8, 16]]}), "B": pd.DataFrame({"top1_err": [2.0]})}
    )
    assert table.columns[0] == "population" and table["ws"].tolist()[0] == "[8, 16]"
