"""`python train.py` end to end: the default run, and bad values (one line, non-zero exit)."""

from __future__ import annotations

import json

import pytest

from conftest import run_train


def test_default_run_writes_a_valid_record_and_prints_the_error(tmp_path):
    # the default command, clamped to one short epoch
    out = run_train(
        [
            "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=2",
            "schedule.epochs=1",
            "trainer.threads=1",
            f"paths.output={tmp_path}",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = list((tmp_path / "runs" / "regnetx-400mf-digits-population-s0").glob("*/result.json"))
    assert len(found) == 1
    record = json.loads(found[0].read_text())
    assert record["status"] == "ok" and record["epochs"] == 1 and record["data"] == "digits"
    assert record["model"] == "sampled" and record["sample"] == 0 and record["schedule"] == "population"
    assert f"top-1 error {record['top1_err']:.2f}%" in out.stdout
    assert (found[0].parent / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize(
    "args,expected",
    [
        (["schedule.base_lr=-0.1"], "schedule.base_lr=-0.1 is not allowed: must be > 0"),
        (["data=imagenet", "data.root=/nonexistent/imagenet"], "data.root=/nonexistent/imagenet does not exist"),
        (["data=imagefolder"], "data.root is required for data=imagefolder"),
    ],
)
def test_bad_values_give_one_line_and_exit_2(tmp_path, args, expected):
    out = run_train([*args, f"paths.output={tmp_path}"], tmp_path, timeout=120)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {expected}"] or (len(lines) == 1 and expected in lines[0]), out.stderr
    assert not list(tmp_path.rglob("result.json"))  # nothing half-written


def test_bad_values_stop_a_sweep_before_any_job(tmp_path):
    out = run_train(["-m", "sweep.n=2", "schedule.base_lr=-1", f"paths.output={tmp_path}"], tmp_path, timeout=120)
    assert out.returncode == 2
    assert "error: schedule.base_lr=-1 is not allowed: must be > 0" in out.stderr
    assert not list(tmp_path.rglob("result.json"))


def test_unknown_space_lists_the_choices(tmp_path):
    out = run_train(["space=regnetz", f"paths.output={tmp_path}"], tmp_path, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: space=regnetz is not an option of space; allowed: anynetx_a, anynetx_b, anynetx_c, anynetx_d, "
        "anynetx_e, regnetx, regnetx_refined, regnety"
    ]
    assert not tmp_path.joinpath("runs").exists()
