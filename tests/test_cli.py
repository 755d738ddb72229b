"""The `netspaces` command line, run as a user would (a subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "netspaces", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_describe_json_has_the_exact_numbers():
    r = run("describe", "RegNetX-400MF", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d == {
        "name": "RegNetX-400MF",
        "ws": [32, 64, 160, 384],
        "ds": [1, 2, 7, 12],
        "gs": [16, 16, 16, 16],
        "bs": [1.0, 1.0, 1.0, 1.0],
        "flops": 397678568,
        "params": 5157512,
        "acts": 3143272,
    }


def test_describe_any_regnet_equals_the_zoo_model():
    r = run(
        "describe",
        "--depth",
        "16",
        "--w0",
        "48",
        "--wa",
        "27.89",
        "--wm",
        "2.09",
        "--group-w",
        "8",
        "--se-r",
        "0.25",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["flops"], d["params"], d["acts"]) == (401849056, 4344144, 3892496)  # RegNetY-400MF


def test_describe_resolution_changes_flops():
    d = json.loads(run("describe", "regnetx_400mf", "--resolution", "32", "--json").stdout)
    assert d["params"] == 5157512 and d["flops"] < 397678568 / 40


def test_sample_json_lines():
    r = run("sample", "--space", "regnetx", "--regime", "400mf", "--n", "3", "--seed", "0", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert {"ws", "ds", "gs", "bs", "flops", "params", "acts", "depth", "w0", "wa", "wm", "group_w"} <= set(row)
        assert 360e6 <= row["flops"] <= 400e6


def test_spaces_prints_table1():
    r = run("spaces")
    assert r.returncode == 0
    assert "1.8e+18" in r.stdout and "3.0e+08" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["describe", "RegNetZ-1GF"], "unknown model 'RegNetZ-1GF'"),
        (["sample", "--space", "nospace", "--regime", "400mf"], "unknown space 'nospace'"),
        (["describe", "--depth", "10", "--w0", "24", "--wa", "20", "--wm", "1.0", "--group-w", "8"], "wm must be > 1"),
        (
            ["describe", "--depth", "10", "--w0", "20", "--wa", "20", "--wm", "2", "--group-w", "8"],
            "multiple of 8; got 20",
        ),
        (
            ["describe", "--depth", "0", "--w0", "24", "--wa", "20", "--wm", "2", "--group-w", "8"],
            "depth must be >= 1; got 0",
        ),
        (
            ["sample", "--space", "regnetx_refined", "--regime", "32gf", "--n", "1", "--max-candidates", "5000"],
            "found only 0 of 1",
        ),
        (["sample", "--space", "regnetx", "--regime", "7mf"], "unknown regime '7mf'"),
        (["describe", "--w0", "24"], "missing --depth"),
        (["power", "a", "b", "--alpha", "1.5"], "--alpha: must be a number strictly between 0 and 1, got '1.5'"),
        (["power", "a", "b", "--power", "0"], "--power: must be a number strictly between 0 and 1, got '0'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
