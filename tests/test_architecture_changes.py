"""The four common changes, made the way docs/architecture.md says, in a copy of the tree:
a new block, a new design space, a new data set and a new analysis plot each touch at most
three files, and a training run and an analysis use all of them."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow

TOY_BLOCK = '''

def toy_block(w_in, w_out, stride, bot_mul, group_w, se_r):
    """A residual block of one 3x3 conv (a test of docs/architecture.md)."""
    ops = (Conv(w_in, w_out, 3, stride), BatchNorm(w_out, final=True))
    return Block(ops, _projection(w_in, w_out, stride), _needs_projection(w_in, w_out, stride))


BLOCKS["toy"] = toy_block
'''
TOY_SPACE = """
SPACES["toynet"] = AnyNetSpace("toynet", shared_b=True, shared_g=True, increasing_w=True, stages=3,
                               restriction="3 stages, shared b and g, non-decreasing widths")
"""
TOY_DATA_YAML = """# even digits only, 5 classes (a test of docs/architecture.md)
name: digits_even
root: null
resolution: 16
num_classes: 5
val_fraction: 0.2
split_seed: 0
augment: false
limit_per_class: null
workers: 0
pin_memory: auto
"""
TOY_DATA = """

def load_digits_even(s):
    x_tr, y_tr, x_va, y_va = load_digits_split(s)
    tr, va = y_tr % 2 == 0, y_va % 2 == 0
    return x_tr[tr], y_tr[tr] // 2, x_va[va], y_va[va] // 2


DATASETS["digits_even"] = DataSet(lambda s: None, lambda s: InMemoryData(s, load_digits_even))
"""
TOY_PLOT = """

def error_hist_plot(populations):
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    ax = figure.add_subplot()
    for p in populations:
        ax.hist(p.errors, bins=10, alpha=0.5, label=p.label)
    ax.set_xlabel("top-1 error (%)")
    ax.legend()
    return _png(figure)
"""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _changed(before: dict[str, bytes], root: Path) -> set[str]:
    after = _snapshot(root)
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_block_a_space_a_data_set_and_a_plot_each_touch_at_most_three_files(tmp_path):
    tree = tmp_path / "tree"
    for part in ("src", "conf"):
        shutil.copytree(REPO / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "train.py", tree / "train.py")
    pkg = tree / "src" / "netspaces"
    touched = {}

    before = _snapshot(tree)
    _append(pkg / "space" / "plan.py", TOY_BLOCK)
    touched["block"] = _changed(before, tree)

    before = _snapshot(tree)
    _append(pkg / "space" / "spaces.py", TOY_SPACE)
    touched["space"] = _changed(before, tree)

    before = _snapshot(tree)
    (tree / "conf" / "data" / "digits_even.yaml").write_text(TOY_DATA_YAML)
    _append(pkg / "train" / "data.py", TOY_DATA)
    touched["data"] = _changed(before, tree)

    before = _snapshot(tree)
    plots = pkg / "analysis" / "plots.py"
    text = plots.read_text().replace(
        "    return plots, notes\n",
        '    plots["error_hist.png"] = error_hist_plot(populations)\n    return plots, notes\n',
    )
    plots.write_text(text + TOY_PLOT)
    touched["plot"] = _changed(before, tree)

    assert all(1 <= len(files) <= 3 for files in touched.values()), touched

    env = subprocess_env(tmp_path) | {"PYTHONPATH": str(tree / "src")}
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            str(tree / "train.py"),
            "-m",
            "sweep.n=2",
            "space=toynet",
            "block=toy",
            "regime=200mf",
            "data=digits_even",
            "schedule=quick",
            "schedule.epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.threads=1",
            f"paths.output={out}",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    sweep = out / "sweeps" / "toynet_toy-200mf-digits_even-quick-s0"
    rows = list(csv.DictReader((sweep / "population.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    record = json.loads(next(sweep.glob("sample_000*/result.json")).read_text())
    assert (record["space"], record["block"], record["data"]) == ("toynet", "toy", "digits_even")
    assert len(record["arch"]["ws"]) == 3 and record["trained"]["num_classes"] == 5
    assert 180e6 <= record["flops"] <= 200e6  # the 200mf window, counted from the toy block's plan

    report = tmp_path / "analysis"
    done = subprocess.run(
        [sys.executable, "-m", "netspaces", "analyze", str(sweep), "--out", str(report), "--n-boot", "50"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (report / "error_hist.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        'id="error_hist"' in (report / "report.html").read_text()
        or "error_hist" in (report / "report.html").read_text()
    )
