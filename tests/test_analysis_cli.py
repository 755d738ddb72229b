"""`netspaces analyze` end to end: input formats, errors, outputs."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netspaces.analysis import analyze
from netspaces.analysis.populations import load_population
from netspaces.cli import build_parser
from netspaces.errors import UserError

DATA = Path(__file__).parent / "data" / "analysis"
HAVE_FIT = importlib.util.find_spec("netspaces.space.fit") is not None


def run_analyze(*argv: str) -> int:
    args = build_parser().parse_args(["analyze", *argv])
    return args.func(args)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_with_only_top1_err(tmp_path, capsys):
    a = write_csv(tmp_path / "a.csv", [{"top1_err": e} for e in (5.0, 3.0, 4.0, 4.0)])
    b = write_csv(tmp_path / "b.csv", [{"top1_err": e} for e in (6.0, 2.0, 7.0)])
    out = tmp_path / "out"
    assert run_analyze(str(a), str(b), "--out", str(out), "--n-boot", "100") == 0

    summary = json.loads((out / "summary.json").read_text())
    basics = ("n", "min", "mean", "median", "excluded")
    assert {k: summary["populations"]["a"][k] for k in basics} == {
        "n": 4,
        "min": 3.0,
        "mean": 4.0,
        "median": 4.0,
        "excluded": 0,
    }
    assert {k: summary["populations"]["b"][k] for k in basics} == {
        "n": 3,
        "min": 2.0,
        "mean": 5.0,
        "median": 6.0,
        "excluded": 0,
    }
    for label in "ab":
        assert {"median_ci", "low_quantile_ci"} <= set(summary["populations"][label])
    pair = summary["ks"]["a vs b"]
    assert {"ks_ci", "normalized_p_value", "median_diff_ci", "prob_a_better", "power"} <= set(pair)
    assert pair["ks_ci"]["lo"] == 0.0 and pair["median_diff_ci"]["estimate"] == -2.0
    # With 4 and 3 models no D is rare enough for the exact test at 0.001: power 0, warned.
    assert pair["power"]["achieved_at_n"] == 0.0 and pair["power"]["alpha"] == 0.001
    assert any(w.startswith("a vs b: n=4/3 per space gives power 0.00 at alpha 0.001") for w in summary["warnings"])
    # ≤ e on {2,3,4,5,6,7}: a 0, 1/4, 3/4, 1, 1, 1;  b 1/3, 1/3, 1/3, 1/3, 2/3, 1
    # gaps 1/3, 1/12, 5/12, 2/3, 1/3, 0  →  D = 2/3 (no complexity column: normalized = plain).
    assert summary["ks"]["a vs b"]["plain"] == pytest.approx(2 / 3)
    assert summary["ks"]["a vs b"]["normalized"] == pytest.approx(2 / 3)
    assert 0 < summary["ks"]["a vs b"]["p_value"] <= 1
    assert summary["bootstrap"] == {"a": {}, "b": {}}
    assert any("parameter plots skipped" in note for note in summary["notes"])
    assert any("complexity plot skipped" in note for note in summary["notes"])

    edf = pd.read_csv(out / "edf.csv")
    assert list(edf.columns) == ["label", "error", "F", "F_norm"]
    assert edf[edf.label == "a"]["error"].tolist() == [3, 4, 4, 5]
    assert edf[edf.label == "a"]["F"].tolist() == [0, 0.25, 0.25, 0.75]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["edf.csv", "edf.png", "edf_norm.png", "report.html", "summary.json"]
    assert (out / "edf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    printed = capsys.readouterr().out
    assert "KS a vs b: D=0.6667" in printed and "n=4" in printed
    assert "95% CI: median [" in printed and "P(a better)=" in printed and "power 0.00 at n=4/3" in printed
    assert str(out / "report.html") in printed


def test_table_without_top1_err_fails_with_one_line_and_writes_nothing(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", [{"top5_err": 3.0, "flops": 1e8}])
    out = tmp_path / "out"
    with pytest.raises(UserError) as caught:
        run_analyze(str(bad), "--out", str(out))
    message = str(caught.value)
    assert "top1_err" in message and "bad.csv" in message and "\n" not in message
    assert not out.exists()


def test_bad_inputs_are_user_errors(tmp_path):
    ok = write_csv(tmp_path / "ok.csv", [{"top1_err": 1.0}])
    failed = write_csv(tmp_path / "failed.csv", [{"top1_err": 1.0, "status": "failed"}])
    text = write_csv(tmp_path / "text.csv", [{"top1_err": 1.0}, {"top1_err": "abc"}])
    cases = {
        (str(failed),): "no usable models",
        (str(text),): "row 2",
        (str(tmp_path / "missing.csv"),): "does not exist",
        (str(ok), "--label", "x", "--label", "y"): "--label",
    }
    with pytest.raises(UserError, match="is a file"):
        run_analyze(str(ok), "--out", str(ok))
    for argv, expected in cases.items():
        with pytest.raises(UserError, match=expected):
            run_analyze(*argv, "--out", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_jsonl_with_list_columns(tmp_path):
    rows = [
        {
            "top1_err": 30.0 - i,
            "depth": 10 + i,
            "w0": 24 + 8 * i,
            "flops": 1e8 * (i + 1),
            "params": 2e6 * (i + 1) ** 0.5,
            "acts": 1e6 * (i + 1),
            "ws": [24 + 8 * i, 56, 152, 368],
            "ds": [1, 1, 4, 4 + i],
        }
        for i in range(6)
    ]
    rows.append({"top1_err": None, "status": "diverged", "ws": [8], "ds": [1]})
    path = tmp_path / "pop.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    population = load_population(str(path))
    assert population.table["ws"][0] == [24, 56, 152, 368]
    assert population.excluded == 1 and population.param_columns == ["depth", "w0"]

    out = tmp_path / "out"
    assert run_analyze(str(path), "--out", str(out), "--label", "mine", "--n-boot", "200") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["populations"]["mine"]["excluded"] == 1
    # Error falls as depth grows, so the best model drawn has the largest depth drawn; with
    # 2 draws of 6 models the deepest (15) is among them with probability 1 − (5/6)² = 0.31.
    assert set(summary["bootstrap"]["mine"]) == {"depth", "w0"}
    assert summary["bootstrap"]["mine"]["depth"]["hi"] == 15
    assert (out / "params_mine.png").exists() and (out / "complexity.png").exists()
    assert (out / "widths_mine.png").exists() == HAVE_FIT


def test_csv_list_columns_are_parsed(tmp_path):
    frame = pd.DataFrame({"top1_err": [1.0, 2.0], "ws": ["[24, 56, 152, 368]", "[32, 64]"]})
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    assert load_population(str(path)).table["ws"].tolist() == [[24, 56, 152, 368], [32, 64]]


def test_csv_with_nested_arch_column_is_flattened(tmp_path):
    rows = [
        {
            "top1_err": 2.0,
            "space": "regnetx",
            "status": "ok",
            "arch": json.dumps({"ws": [24, 56], "ds": [1, 2], "depth": 3, "se": True, "block": "x", "stem_w": 32}),
        },
        {
            "top1_err": 1.0,
            "space": "regnetx",
            "status": "ok",
            "arch": json.dumps({"ws": [32, 64], "ds": [1, 3], "depth": 4, "se": False, "block": "x", "stem_w": 24}),
        },
    ]
    population = load_population(str(write_csv(tmp_path / "population.csv", rows)))
    assert population.label == "regnetx"
    assert population.table["ws"].tolist() == [[24, 56], [32, 64]]
    # Numeric arch entries that vary are parameters; flags, names and lists are not.
    assert population.param_columns == ["depth", "stem_w"]


def test_sweep_directory_of_result_records(tmp_path):
    records = [line for line in (DATA / "pycls_regnetx.jsonl").read_text().splitlines()]
    for i, line in enumerate(records):
        run_dir = tmp_path / "sweep" / str(i)
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(line)
    diverged = json.loads(records[0]) | {"status": "diverged", "top1_err": None}
    (tmp_path / "sweep" / "99").mkdir()
    (tmp_path / "sweep" / "99" / "result.json").write_text(json.dumps(diverged))

    population = load_population(str(tmp_path / "sweep"))
    assert population.label == "regnetx"  # the space column
    assert len(population.table) == 12 and population.excluded == 1
    assert population.param_columns == ["depth", "w0", "wa", "wm", "group_w", "bot_mul"]
    assert population.table["ds"].map(len).eq(4).all()
    # The records themselves are read, not a population.jsonl that may be stale; the table
    # is read where there are no records (a table copied out of its sweep).
    (tmp_path / "sweep" / "population.jsonl").write_text(records[0] + "\n")
    assert len(load_population(str(tmp_path / "sweep")).table) == 12
    (tmp_path / "copied").mkdir()
    (tmp_path / "copied" / "population.jsonl").write_text(records[0] + "\n")
    assert len(load_population(str(tmp_path / "copied")).table) == 1


def test_repeated_labels_are_numbered(tmp_path):
    path = write_csv(tmp_path / "p.csv", [{"space": "regnetx", "top1_err": e} for e in (1, 2)])
    result = analyze([str(path), str(path)], tmp_path / "out", n_boot=50)
    assert list(result.analysis.summary["populations"]) == ["regnetx", "regnetx-2"]
    assert result.analysis.summary["ks"]["regnetx vs regnetx-2"]["plain"] == 0.0


def test_alpha_and_power_options(tmp_path):
    a = write_csv(tmp_path / "a.csv", [{"top1_err": 20.0 + i} for i in range(12)])
    b = write_csv(tmp_path / "b.csv", [{"top1_err": 27.0 + i} for i in range(12)])
    out = tmp_path / "out"
    assert run_analyze(str(a), str(b), "--out", str(out), "--n-boot", "100", "--alpha", "0.01", "--power", "0.8") == 0
    power = json.loads((out / "summary.json").read_text())["ks"]["a vs b"]["power"]
    assert (power["alpha"], power["target"]) == (0.01, 0.8)
    for bad in ("0", "1", "-0.1", "x"):
        with pytest.raises(
            UserError, match=f"argument --alpha: must be a number strictly between 0 and 1, got '{bad}'"
        ):
            run_analyze(str(a), "--out", str(out), "--alpha", bad)


def test_summary_floats_keep_full_precision(tmp_path):
    errors = [1 / 3, 2 / 3, 0.1 + 0.2]
    path = write_csv(tmp_path / "p.csv", [{"top1_err": repr(e)} for e in errors])
    analyze([str(path)], tmp_path / "out", n_boot=10)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["populations"]["p"]["mean"] == float(np.mean(errors))
    assert summary["populations"]["p"]["min"] == 0.1 + 0.2  # 0.30000000000000004
