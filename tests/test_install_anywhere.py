"""The "bring your own torch" path, offline: a fresh environment that already has torch (it
sees the cached environment's packages through a .pth file), then `pip install -e .` leaves
torch alone, and describe, a one-epoch train.py on digits and analyze work."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def test_pip_install_into_an_environment_with_torch_keeps_its_torch(tmp_path):
    env_dir = tmp_path / "env"
    # no packages of its own: pip, setuptools, torch and the rest are the existing environment's
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = str(env_dir / "bin" / "python")
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shared = sysconfig.get_paths()["purelib"]  # the environment the tests run in: torch and the rest
    with open(os.path.join(site, "zz-existing-packages.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({shared!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "WANDB_MODE": "offline",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    torch_before = subprocess.run(
        [py, "-c", "import torch; print(torch.__version__, torch.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = subprocess.run(
        [py, "-m", "pip", "install", "--no-index", "--no-build-isolation", "-e", f"{REPO}[wandb,slurm]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Successfully installed netspaces" in done.stdout and "torch" not in done.stdout.split("Successfully")[1]
    torch_after = subprocess.run(
        [py, "-c", "import torch; print(torch.__version__, torch.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert torch_after == torch_before

    bin_dir = env_dir / "bin"
    describe = subprocess.run(
        [str(bin_dir / "netspaces"), "describe", "RegNetX-400MF"], env=env, capture_output=True, text=True, timeout=120
    )
    assert describe.returncode == 0 and "flops 397,678,568" in describe.stdout
    out = tmp_path / "out"
    run = subprocess.run(
        [
            py,
            str(REPO / "train.py"),
            "-m",
            "sweep.n=2",
            "schedule=quick",
            "schedule.epochs=1",
            "trainer.threads=1",
            "trainer.limit_train_batches=3",
            f"paths.output={out}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    sweep = next((out / "sweeps").iterdir())
    analyze = subprocess.run(
        [str(bin_dir / "netspaces"), "analyze", str(sweep), "--out", str(tmp_path / "an"), "--n-boot", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert analyze.returncode == 0 and (tmp_path / "an" / "report.html").is_file(), analyze.stderr[-2000:]
    show = subprocess.run([py, "-m", "pip", "show", "netspaces"], env=env, capture_output=True, text=True)
    assert "License: MIT" in show.stdout
