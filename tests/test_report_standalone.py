"""A report that stands alone, from a real sweep: the header says what was trained and how
(read from the records), a sweep says "model k of N done" as it goes, the files are readable
by others, fits need enough models, log axes carry readable labels."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import TINY, run_train
from netspaces.analysis import analyze
from netspaces.analysis.plots import MIN_FIT_POINTS, _log_axis_labels, _width_axis_labels, power_law_fit

SWEEP = "regnetx-400mf-digits-quick-s0"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-component-update"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Three models trained by two joblib workers: the sweep's output and its directory."""
    tmp = tmp_path_factory.mktemp("sweep")
    args = ["-m", "sweep.n=3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, f"paths.output={tmp}"]
    out = run_train(args, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    return out, tmp / "sweeps" / SWEEP


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "out"
    analyze([str(sweep[1])], out, labels=["RegNetX"], n_boot=200)
    return out / "report.html"


def test_a_sweep_counts_its_finished_models_with_an_eta(sweep):
    out, sweep_dir = sweep
    lines = [line for line in (out.stdout + out.stderr).splitlines() if re.match(r"model \d of 3 done", line)]
    # workers finish in any order: k comes from the records in the sweep directory
    assert sorted(int(line.split()[1]) for line in lines) == [1, 2, 3], lines
    for line in lines:
        assert re.fullmatch(r"model \d of 3 done \(ok, top1_err \d+\.\d\d%\), ETA (\d+:\d\d|not yet known)", line), line
    assert any(line.endswith("ETA 0:00") for line in lines)  # the last to look saw every record
    records = [json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")]
    assert len(records) == 3


def test_the_header_says_what_was_trained_from_the_records(sweep, report):
    records = [json.loads(p.read_text()) for p in sweep[1].glob("*/result.json")]
    page = report.read_text()
    header = page[page.index('<table id="header">') : page.index("</table>", page.index('<table id="header">'))]
    first = records[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", header)
    assert cells[:7] == ["RegNetX", "3", "digits", "32", "quick", str(first["epochs_planned"]), "0"], cells
    assert cells[7] == first["versions"]["netspaces"]
    assert cells[8].removesuffix("+dirty") == first["git_commit"].removesuffix("+dirty")[:12]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00( to .*)?", cells[9]), cells[9]
    # every model of the sweep shows the same command: the sweep's, without the generated sample=
    assert {r["command"] for r in records} == {first["command"]}
    assert first["command"].startswith("python train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 sweep.n=3 ")
    assert "sample=" not in first["command"]
    assert f"<code>{first['command']}</code>" in page
    assert 'id="small-n"' in page and "RegNetX: n=3 models, fewer than 12" in page


def test_report_files_are_readable_by_others(report):
    mask = os.umask(0)
    os.umask(mask)
    for path in report.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


def test_headless_chromium_shows_the_header(report, tmp_path):
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("What was trained", "data set", "resolution (px)", "schedule", "epochs", "sweep seed"):
        assert text in dom.stdout, text
    for text in ("netspaces", "git commit", "trained (UTC)", '<ul id="commands">', "python train.py -m", "Report made"):
        assert text in dom.stdout, text
    assert "<td>digits</td>" in dom.stdout.replace(' class="text"', "")


def test_a_power_law_is_fitted_only_with_enough_points_and_with_its_ci():
    rng = np.random.default_rng(0)
    flops = rng.uniform(2e8, 4e8, 20)
    params = 3.0 * flops**0.8 * np.exp(rng.normal(0, 0.02, 20))
    fit = power_law_fit(flops, params)
    assert fit.n == 20 and fit.lo < 0.8 < fit.hi and fit.hi - fit.lo < 0.3
    assert abs(fit.exponent - 0.8) < 0.1
    # three models in a narrow window (the report once said params ∝ flops^43.69): no fit
    assert power_law_fit(flops[:3], params[:3]) is None
    assert power_law_fit(flops[:MIN_FIT_POINTS], params[:MIN_FIT_POINTS]) is not None


def _labels(axis_setup, values: list[float]) -> list[str]:
    """The tick labels matplotlib draws on a log y axis spanning `values`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = Figure()
    ax = figure.add_subplot()
    ax.plot([0, 1], [min(values), max(values)])
    ax.set_yscale("log")
    axis_setup(ax.yaxis, np.asarray(values))
    FigureCanvasAgg(figure).draw()
    lo, hi = ax.get_ylim()
    return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if lo <= v <= hi and t.get_text()]


def test_log_axes_label_several_ticks_whatever_the_span():
    assert _labels(_width_axis_labels, [16, 1000]) == ["20", "50", "100", "200", "500", "1000"]
    assert _labels(_width_axis_labels, [24, 368]) == ["50", "100", "200"]  # once only "100"
    assert _labels(_width_axis_labels, [24, 48]) == ["25", "30", "35", "40", "45"]
    # a regime window's flops, and a span of decades
    assert _labels(_log_axis_labels, [3.6e8, 4.4e8]) == ["360M", "380M", "400M", "420M", "440M"]
    assert _labels(_log_axis_labels, [1e6, 1e10]) == ["1M", "10M", "100M", "1G", "10G"]
