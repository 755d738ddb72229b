"""Every benchmark runs once at toy size and reports well-formed lines. Speed is measured by
`make bench`, never asserted here."""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import LINE, Result, side_by_side  # noqa: E402
from benchmarks.run import BENCHMARKS, main, table  # noqa: E402

CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10"

# what each benchmark must report (data_pipeline's CIFAR-10 loaders need the shared data)
EXPECTED = {
    "train_step_vs_timm": {"train_step_vs_timm_32px", "train_step_vs_timm_64px"},
    "sampler": {"sampler_anynetx_a", "sampler_regnetx"},
    "memory": {"memory"},
    "data_pipeline": {"data_pipeline_digits"}
    | ({"data_pipeline_cifar10", "data_pipeline_imagefolder"} if CIFAR10.is_dir() else set()),
    "fit_loop_overhead": {"fit_loop_overhead"},
    "population": {"population"},
    "population_vs_plain_loop": {"population_vs_plain_loop"},
    "population_packed": {"population_packed"},
    "sweep_scale": {"sweep_scale_stub_sweep", "sweep_scale_collect", "sweep_scale_job_finish", "sweep_scale_launcher"},
}
# toy runs that start several training processes (tens of seconds): `make test-slow`
SLOW_TOY = {"population_vs_plain_loop", "population_packed", "sweep_scale"}


@pytest.fixture(autouse=True)
def _restore_torch_state():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.mark.parametrize("name", [pytest.param(b, marks=pytest.mark.slow) if b in SLOW_TOY else b for b in BENCHMARKS])
def test_each_benchmark_reports_well_formed_lines_at_toy_size(name):
    if name in ("population_vs_plain_loop", "population_packed") and not CIFAR10.is_dir():
        pytest.skip(f"needs CIFAR-10 image files under {CIFAR10}")
    results = importlib.import_module(f"benchmarks.{name}").run("toy")
    assert {r.name for r in results} == EXPECTED[name]
    for r in results:
        m = LINE.match(r.line())
        assert m, r.line()
        assert m["unit"] == r.unit
        assert r.ours > 0 and r.ref > 0 and math.isfinite(r.ratio) and r.ratio > 0
        json.dumps(r.as_dict())  # results.json can hold it


def test_train_step_checks_the_architectures_are_the_same():
    from benchmarks.train_step_vs_timm import models

    _, _, params = models()
    assert params == 5_157_512  # RegNetX-400MF = timm regnetx_004, pycls's published count


def test_mechanisms_compares_each_leave_out_with_the_full_runs_around_it():
    from benchmarks.mechanisms import results, speedups

    seconds = [("full", 10.0), ("a", 11.0), ("b", 10.0), ("full", 12.0), ("b", 12.0), ("a", 14.3), ("full", 14.0)]
    runs = [{"label": label, "seconds": t, "load_1m": 0.0} for label, t in seconds]
    assert speedups(runs, "a") == pytest.approx([1.0, 1.1])  # 11 / mean(10, 12), 14.3 / mean(12, 14)
    a, b = results(runs, "digits", ["a", "b"])
    assert a.ratio == pytest.approx(1.0) and a.details["keep"] is False  # its lowest round decides
    assert b.ratio == pytest.approx(10 / 11) and a.ours == b.ours == 12.0  # the full runs' median


@pytest.mark.slow
def test_mechanisms_leaves_each_perf_switch_out_in_alternating_rounds():
    from benchmarks import mechanisms

    results = mechanisms.run("toy")
    names = {f"mechanism_{m}_digits" for m in mechanisms.mechanisms()}
    assert {r.name for r in results} == names and names
    labels = [run["label"] for run in results[0].details["runs"]]
    assert labels[0] == labels[-1] == "full" and sorted(set(labels) - {"full"}) == sorted(mechanisms.mechanisms())
    for r in results:
        assert LINE.match(r.line()) and r.unit == "s" and r.ratio == pytest.approx(min(r.details["rounds"]), abs=1e-3)


def test_ratio_direction_means_at_least_as_good():
    faster = Result("x", ours=200.0, ref=100.0, unit="img/s", higher_is_better=True)
    smaller = Result("y", ours=100.0, ref=200.0, unit="MB", higher_is_better=False)
    assert faster.ratio == 2.0 and smaller.ratio == 2.0
    assert faster.line() == "x: ratio=2.000 ours=200 ref=100 unit=img/s"


def test_side_by_side_alternates_after_warmup():
    calls = []
    t_ours, t_ref = side_by_side(lambda: calls.append("o"), lambda: calls.append("r"), warmup=1, repeats=3)
    assert calls == ["o", "r", "o", "r", "r", "o", "o", "r"]
    assert len(t_ours) == len(t_ref) == 3


def test_run_writes_results_json_and_prints_lines_and_a_table(tmp_path, capsys):
    out = tmp_path / "bench" / "results.json"
    assert main(["--toy", "--only", "sampler", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    lines = [s for s in printed if LINE.match(s)]
    assert [LINE.match(s)["name"] for s in lines] == ["sampler_anynetx_a", "sampler_regnetx"]
    assert any(s.startswith("benchmark  ") for s in printed)
    saved = json.loads(out.read_text())
    assert saved["mode"] == "toy" and not saved["failed"]
    assert [r["line"] for r in saved["results"]] == lines
    assert saved["results"][0]["details"]["naive_extrapolated"] is True


def test_table_marks_missed_targets():
    text = table([Result("train_step_vs_timm_32px", 90.0, 100.0, "img/s", True, 1.05)])
    assert "MISSED" in text and "0.900" in text


def test_memory_reads_the_worker_s_own_peak_not_its_parent_s():
    import subprocess

    ballast = b"\x01" * (400 * 2**20)  # this (parent) process now holds 400 MB more
    code = (
        "import resource, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.memory import _peak_rss_mb; "
        "print(_peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    own, inherited = map(
        float,
        subprocess.run(
            [sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True
        ).stdout.split(),
    )
    assert own < 100 < 400 < inherited  # a bare interpreter; ru_maxrss carries the parent's peak over fork
    del ballast


def test_population_vs_plain_loop_alternates_rounds_and_reports_min_and_median(monkeypatch):
    from benchmarks import population_vs_plain_loop as bench

    calls, seconds = [], iter([10.0, 9.0, 8.0, 10.0, 12.0, 9.0])

    def side(name):
        def fake(*args, **kwargs):
            calls.append(name)
            return next(seconds), {"regnetx-200mf-s0-000": 90.0}

        return fake

    monkeypatch.setattr(bench, "PLAN", {"toy": (("regnetx",), 1, 1, 5, 3)})
    monkeypatch.setattr(bench, "netspaces_side", side("ns"))
    monkeypatch.setattr(bench, "plain_side", side("plain"))
    (r,) = bench.run("toy")
    assert calls == ["ns", "plain", "plain", "ns", "ns", "plain"]
    assert r.details["netspaces_s"] == [10.0, 10.0, 12.0] and r.details["plain_s"] == [9.0, 8.0, 9.0]
    assert r.details["round_ratios"] == [0.9, 0.8, 0.75] and r.details["ratio_min"] == 0.75
    assert r.details["ratio_median"] == 0.8 and r.ratio == pytest.approx(9.0 / 10.0)
    assert r.target == 0.95 and all(r.details["same_top1_errors"]) and LINE.match(r.line())


def test_plain_loop_is_given_the_schedule_train_py_composes():
    from benchmarks.common import compose_train
    from benchmarks.population_vs_plain_loop import overrides, plain_args
    from netspaces.train.settings import run_settings

    flags = dict(a[2:].split("=", 1) for a in plain_args("anynetx_a", 3, 4, 5))
    composed = [o for o in overrides("anynetx_a", 3, 4, 5) if not o.startswith("hydra")]
    s = run_settings(compose_train([*composed, "paths.run_dir=/nonexistent"]))
    assert [flags[k] for k in ("spaces", "n", "epochs", "per-class", "stem")] == ["anynetx_a", "3", "4", "5", "cifar"]
    assert float(flags["base-lr"]) * int(flags["batch"]) / 128 == s.optim.lr
    assert float(flags["weight-decay"]) == s.optim.weight_decay and int(flags["eval-every"]) == (
        s.trainer.eval_every or s.trainer.epochs
    )
    # what the plain loop hard-codes
    assert s.optim.nesterov and s.optim.momentum == 0.9 and s.optim.weight_decay_norm_bias
    assert s.optim.warmup_epochs == 0 and s.model.zero_init_final_gamma and s.data.augment
