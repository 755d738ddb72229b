"""W&B logging of an analysis: offline, no key, no network, and it never raises."""

import time

import pandas as pd
import pytest

from netspaces.analysis.wandb_log import log_to_wandb, read_wandb_records
from netspaces.errors import UserError


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


def test_offline_logging_writes_a_local_run(tmp_path, offline_wandb, capsys):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [0, 1])
    edf_png = tmp_path / "edf.png"
    figure.savefig(edf_png)
    tables = {
        "A": pd.DataFrame({"top1_err": [1.0, 2.0], "ws": [[8, 16], [8, 24]]}),
        "B": pd.DataFrame({"top1_err": [3.0], "depth": [7]}),
    }
    summary = {
        "populations": {"A": {"n": 2, "min": 1.0}, "B": {"n": 1, "min": 3.0}},
        "ks": {"A vs B": {"plain": 1.0, "normalized": 1.0, "p_value": 0.5}},
    }

    run_dir = log_to_wandb(tables, summary, {"edf.png": edf_png}, project="netspaces-test", group="sweep-1")

    assert run_dir is not None, capsys.readouterr().err
    assert run_dir.is_dir() and run_dir.is_relative_to(tmp_path)
    assert run_dir.name.startswith("offline-run-")  # offline: nothing was sent
    (log,) = run_dir.glob("*.wandb")  # the offline transaction log, for `wandb sync`
    # wandb's service process may still be flushing it after finish() returns.
    deadline = time.monotonic() + 20
    while b"ks/A vs B/plain" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b"ks/A vs B/plain" in log.read_bytes() and b"sweep-1" in log.read_bytes()
    files = run_dir / "files"
    assert list(files.glob("media/images/edf_*.png"))
    assert list(files.glob("media/table/population_table_*.table.json"))


def test_analyze_with_wandb_flag_logs_offline(tmp_path, offline_wandb, capsys):
    from netspaces.cli import build_parser

    table = tmp_path / "sweep-7" / "population.csv"
    table.parent.mkdir()
    table.write_text("top1_err,flops\n3.0,1e8\n2.0,2e8\n")
    args = build_parser().parse_args(
        ["analyze", str(table.parent), "--out", str(tmp_path / "out"), "--n-boot", "10", "--wandb"]
    )
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "W&B run (group sweep-7)" in printed
    assert list((tmp_path / "wandb").glob("offline-run-*/files/media/images/edf_*.png"))


def test_logging_failures_only_warn(tmp_path, offline_wandb, capsys):
    # A plot path that does not exist makes wandb.Image fail: one warning, no exception.
    result = log_to_wandb(
        {"A": pd.DataFrame({"top1_err": [1.0]})}, {}, {"edf.png": tmp_path / "missing.png"}, group="g", run_dir=tmp_path
    )
    assert result is None
    err = capsys.readouterr().err
    assert "warning: W&B logging failed" in err and err.count("\n") == 1


def test_wandb_uri_must_name_entity_project_group():
    # Checked before any API call, so this touches no network.
    with pytest.raises(UserError, match="wandb://entity/project/group"):
        read_wandb_records("wandb://only-project")
