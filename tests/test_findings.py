"""docs/findings.md regenerates from the committed tables, and the scale study runs only as declared."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO, subprocess_env
from netspaces.protocol import load_protocol

sys.path.insert(0, str(REPO / "scripts"))
import findings  # noqa: E402


def test_the_findings_document_is_what_its_tables_give():
    study = load_protocol("scale_study")
    body, plots = findings.scale_block(findings.TABLES / "scale", study)
    text = findings.DOC.read_text()
    block = text.split("<!-- findings:scale -->\n", 1)[1].split("\n<!-- /findings:scale -->", 1)[0]
    assert body in block and block.startswith(f"Study {study.label}")  # then the table, then the images
    assert all((findings.TABLES / "scale" / name).is_file() for name, _ in plots)
    assert len(plots) >= 1 and "| 5 | 500 | 100 | 20/20, 20/20 |" in body  # the protocol's seeds are the first row


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
