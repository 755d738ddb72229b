"""The HTML report: self-contained, and rendered by a real headless browser (Debian's chromium)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netspaces.analysis import analyze

DATA = Path(__file__).parent / "data" / "analysis"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "out"
    analyze(
        [str(DATA / "pycls_regnetx.jsonl"), str(DATA / "pycls_regnety.jsonl")],
        out,
        labels=["RegNetX", "RegNetY"],
        n_boot=1000,
    )
    return out


def test_report_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text()
    assert '<table id="summary">' in page and '<table id="ks">' in page
    assert '<table id="bootstrap">' in page
    assert '<table id="confidence">' in page and '<table id="pairs">' in page  # 95% CIs, power
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    for png in sorted(report_dir.glob("*.png")):
        assert f'id="{png.stem}"' in page
    assert not list(report_dir.glob(".*")), "temporary files left behind"


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; `make install` does it when it can)")
    url = (report_dir / "report.html").resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="summary">' in dom.stdout
    assert re.search(r'<img id="edf" alt="EDF" src="data:image/png;base64,', dom.stdout)
    assert "RegNetX vs RegNetY" in dom.stdout

    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:4] == b"\x89PNG"
