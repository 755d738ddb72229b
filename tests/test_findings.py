"""docs/findings.md regenerates from the committed tables, and the scale study runs only as declared."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from conftest import CIFAR10, REPO, needs, subprocess_env
from netspaces.protocol import load_protocol

sys.path.insert(0, str(REPO / "scripts"))
import findings  # noqa: E402


def test_the_findings_document_is_what_its_tables_give():
    study = load_protocol("scale_study")
    body, plots, statuses = findings.scale_block(findings.TABLES / "scale", study)
    text = findings.DOC.read_text()
    block = text.split("<!-- findings:scale -->\n", 1)[1].split("\n<!-- /findings:scale -->", 1)[0]
    assert body in block and block.startswith(f"Protocol {study.label}, over ")  # then the table, then the images
    assert all((findings.TABLES / "scale" / name).is_file() for name, _ in plots)
    assert len(plots) >= 1 and "| 5 | 500 | 100 | 20/20, 20/20 |" in body  # the protocol's seeds are the first row
    assert statuses[(5, 500)] == "not decisive"  # p = 0.004, 0.012, 0.034 against alpha 1e-3
    agreement = findings.rank_agreement(findings.TABLES / "scale")
    assert agreement in block and agreement.endswith("pairs of rows)")  # seeds 200, 201: two rows each
    chain = load_protocol("chain")
    chain_body, _ = findings.chain_block(
        findings.TABLES / "chain", chain, findings.chain_setting_text(study, statuses, chain)
    )
    chain_doc = text.split("<!-- findings:chain -->\n", 1)[1].split("\n<!-- /findings:chain -->", 1)[0]
    assert chain_body in chain_doc and "48 models per space (frozen on" in chain_body  # the committed plan's
    done = [line for line in chain_body.splitlines() if line.startswith("| anynetx_") and "| not run |" not in line]
    assert len(done) >= 1 and all(
        line.endswith(("**agree** |", "**disagree** |", "**inconclusive** |")) for line in done
    )


def test_the_study_is_declared_and_its_plan_fits_the_cap(tmp_path):
    study = load_protocol("scale_study")
    assert (
        study["base"] == "reproduce_small"
        and load_protocol(study["base"])["models_per_space"] == study["models_per_space"]
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "scale_study.py"), "--plan", "--out", str(tmp_path)],
        cwd=REPO,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    estimates = [float(line.split("~")[1].split()[0]) for line in done.stdout.splitlines() if line.startswith("row ")]
    assert len(estimates) == len(study["grid"]) - 1 and sum(estimates) <= float(study["cpu_hours_cap"])
    assert f"({study.hash})" in done.stdout


def test_chain_verdicts_follow_the_declared_rules():
    ci = lambda lo, hi: {"estimate": (lo + hi) / 2, "lo": lo, "hi": hi}  # noqa: E731
    assert findings.step_verdict("no_loss", ci(-0.5, 0.8), 0.5, 60, 60) == "agree"
    assert findings.step_verdict("no_loss", ci(1.2, 3.0), 0.5, 62, 60) == "disagree"
    assert findings.step_verdict("no_loss", ci(-2.0, -1.5), 0.5, 58, 60) == "disagree"
    assert findings.step_verdict("no_loss", ci(-0.5, 1.5), 0.5, 60, 60) == "inconclusive"
    assert findings.step_verdict("better", ci(-3, -1), 0.004, 58, 62) == "agree"
    assert findings.step_verdict("better", ci(1, 3), 0.004, 62, 58) == "disagree"
    assert findings.step_verdict("better", ci(-3, 0.5), 0.03, 58, 60) == "inconclusive"


def test_the_chain_block_reads_population_tables(tmp_path):
    import shutil

    scale = findings.TABLES / "scale"
    # real tables standing in for two adjacent spaces of the chain (the protocol's seed 100)
    shutil.copy(scale / "e5-pc500-s100-anynetx_a.csv", tmp_path / "anynetx_e.csv")
    shutil.copy(scale / "e5-pc500-s100-regnetx.csv", tmp_path / "regnetx.csv")
    body, plots = findings.chain_block(tmp_path, load_protocol("chain"), "5 epochs, 500 images per class")
    setting = "Setting: 5 epochs, 500 images per class; 2 of 7 populations, 1.19 core-hours of training."
    assert body.startswith(setting)  # 1.19: the scale table's core-h of the same seed-100 row
    step = next(line for line in body.splitlines() if line.startswith("| anynetx_e → regnetx"))
    assert "62.50 [59.22, 64.85] → 57.86 [57.26, 60.26]" in step and "0.00397" in step and "**agree**" in step
    assert "| anynetx_a → anynetx_b |" in body and "not run" in body.split("anynetx_a → anynetx_b")[1].split("\n")[0]
    assert "| depth |" in body and "| wm |" in body and [n for n, _ in plots] == ["edf-chain.png"]


def test_the_chain_setting_waits_only_for_rows_that_could_come_first():
    from findings import setting_from
    from netspaces.errors import UserError

    first = (5, 500)
    rows = {(5, 500): "not decisive", (10, 500): "not decisive", (5, 1000): "decisive", (20, 500): "not run"}
    assert setting_from(rows, set(), first) == (5, 1000)  # 20x500 costs more: it cannot come first
    with pytest.raises(UserError, match=r"unfinished rows \(e10-pc500\)"):  # a tie in cost, fewer images: first
        setting_from({**rows, (10, 500): "partial"}, set(), first)
    with pytest.raises(UserError, match="e20-pc500"):  # nothing decisive yet: every open row may decide
        setting_from({**rows, (5, 1000): "not decisive"}, set(), first)
    assert setting_from({**rows, (5, 1000): "not decisive"}, {"e20-pc500"}, first) == first  # capped: finished
    assert setting_from({**rows, (20, 500): "decisive"}, set(), first) == (5, 1000)


def test_the_chain_waits_for_the_scale_study():
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chain.py"), "--plan"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    import chain

    try:
        chain.choose_setting(load_protocol("chain"), load_protocol("scale_study"))
    except chain.UserError:
        assert done.returncode == 2 and "unfinished rows" in done.stderr
    else:
        assert done.returncode == 0 and "models per space" in done.stdout


def test_figures_trains_the_chain_unless_a_knob_asks_for_ad_hoc_populations(monkeypatch, capsys):
    import chain
    import figures

    for env in figures.AD_HOC:
        monkeypatch.delenv(env, raising=False)
    assert not figures.ad_hoc([]) and not figures.ad_hoc(["--jobs", "1"])
    assert figures.ad_hoc(["--n", "8"]) and figures.ad_hoc(["--epochs=2"])
    monkeypatch.setenv("SPACES", "regnetx")
    assert figures.ad_hoc([])
    monkeypatch.delenv("SPACES")
    try:
        chain.choose_setting(load_protocol("chain"), load_protocol("scale_study"))
    except chain.UserError as e:  # the study does not decide the setting yet: figures says so
        assert figures.protocol_setup([]) is None
        assert capsys.readouterr().err == f"figures: error: {e}\n"
    else:
        s = figures.protocol_setup([])
        assert s.spaces == tuple(load_protocol("chain")["spaces"]) and s.protocol == load_protocol("chain").hash


@needs(CIFAR10)
def test_the_chain_trains_and_exports_each_population_under_its_protocol(tmp_path, monkeypatch):
    """make chain's training step at toy size: a population per space, its table exported with
    the protocol's hash, which findings then reads as a population of the chain."""
    import pandas as pd

    import chain
    import populations as pop

    protocol = load_protocol("chain")
    monkeypatch.setattr(chain, "CHAIN_TABLES", tmp_path / "tables")
    s = pop.Setup(
        ("regnety",), 2, 1, "200mf", 2, CIFAR10, tmp_path / "out", 300, "basic", 1,
        stem="cifar", draw="pycls", protocol=protocol.hash,
    )  # fmt: skip
    chain.train(s)
    frozen = findings.chain_plan(tmp_path / "tables", protocol)
    assert (frozen["epochs"], frozen["per_class"], frozen["models_per_space"]) == (1, 2, 2)
    table = pd.read_csv(tmp_path / "tables" / "regnety.csv")
    assert len(table) == 2 and set(table["status"]) == {"ok"} and set(table["protocol"]) == {protocol.hash}
    assert set(table["epochs"]) == {1} and table["top1_err"].between(0, 100).all()
    body, _ = findings.chain_block(tmp_path / "tables", protocol, "1 epoch, 2 images per class")
    assert "| regnetx → regnety |" in body and "1 of 7 populations" in body
    assert "Wall time of the sweeps (2 one-thread jobs): regnety " in body  # chain.py's ledger


def test_a_started_chain_keeps_its_frozen_plan(tmp_path, monkeypatch, capsys):
    """The study's later rows change the cost per model; a resumed chain must still train the
    same populations, so the plan written by its first run wins over the rules."""
    import argparse
    import json

    import chain

    protocol = load_protocol("chain")
    monkeypatch.setattr(chain, "CHAIN_TABLES", tmp_path)
    plan = {"protocol": protocol.hash, "epochs": 7, "per_class": 300, "models_per_space": 8, "frozen_at": "then"}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    a = argparse.Namespace(data_root=tmp_path, out=tmp_path / "out", jobs=2)
    s = chain.plan(a, committed=False)
    assert (s.epochs, s.per_class, s.n, s.seed) == (7, 300, 8, protocol["sweep_seed"])
    assert "frozen in" in capsys.readouterr().out
    chain.freeze(replace(s, n=12))  # an existing plan is never rewritten
    assert json.loads((tmp_path / "plan.json").read_text()) == plan
    (tmp_path / "plan.json").write_text(json.dumps({**plan, "protocol": "0123456789ab"}))
    with pytest.raises(chain.UserError, match="made under chain protocol 0123456789ab"):
        chain.plan(a, committed=False)


def test_a_run_cut_by_a_stop_still_counts_in_the_run_times_and_a_rerun_that_trains_nothing_does_not(
    tmp_path, monkeypatch
):
    import json
    from datetime import timezone

    import populations as pop

    class Clock(datetime):  # the ledger's clock, moved by hand between invocations
        at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)

        @classmethod
        def now(cls, tz=None):
            return cls.at

    monkeypatch.setattr(pop, "datetime", Clock)
    sweep, tables = tmp_path / "sweep", tmp_path / "tables"

    def finish(i: int, at: datetime) -> None:
        (sweep / f"sample_{i:03d}").mkdir(parents=True)
        record = {"status": "ok", "finished_at": at.isoformat()}
        (sweep / f"sample_{i:03d}" / "result.json").write_text(json.dumps(record))

    t0 = pop.open_ledger(tables, sweep, space="regnetx")  # the first invocation starts ... and is killed
    assert json.loads((tables / pop.LEDGER).read_text())["started"] == t0.strftime("%FT%T%z")
    for i, minutes in enumerate((3, 7)):  # after the two models it finished
        finish(i, t0 + timedelta(minutes=minutes))
    Clock.at = t0 + timedelta(minutes=20)
    t1 = pop.open_ledger(tables, sweep, space="regnetx")  # the rerun closes the cut invocation first
    finish(2, t1 + timedelta(seconds=90))
    pop.append_ledger(tables, 180.0, sweep, t1, space="regnetx")  # ... and finishes the third in 3 minutes
    Clock.at = t1 + timedelta(minutes=10)
    t2 = pop.open_ledger(tables, sweep, space="regnetx")  # `make figures` again: every model is done
    pop.append_ledger(tables, 23.0, sweep, t2, space="regnetx")
    lines = [json.loads(line) for line in (tables / pop.LEDGER).read_text().splitlines()]
    assert [(e["space"], e.get("wall_s"), e.get("models"), e.get("cut")) for e in lines if "wall_s" in e] == [
        ("regnetx", 420.0, 2, True),  # to its last finished model, 7 minutes in
        ("regnetx", 180.0, 1, None),
        ("regnetx", 23.0, 0, None),
    ]
    assert findings.run_times(tables, key="space") == (
        "Wall time of the sweeps (2 one-thread jobs): regnetx 10 min "
        "(1 invocation cut by a stop, counted to the last finished model; 1 re-run that finished no model not counted)"
    )
