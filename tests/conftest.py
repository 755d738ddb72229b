"""Shared test helpers: repository paths, the shared data, and running train.py.

Real data only: sklearn's bundled digits, and ../shared/data (CIFAR-10 and Imagenette as
ImageFolder trees) resolved relative to the repository root, as CI lays it out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Before torch is first imported (its OpenMP runtime reads this once): worker threads sleep
# instead of spinning at a barrier. With other work on the cores, spinning threads of an
# in-process run wait for each other's time slices: the toy benchmark tests took 84 s instead
# of 12 s beside a two-job population. Tests must not depend on the machine's load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CIFAR10 = DATA / "cifar10"
IMAGENETTE = DATA / "imagenette"

# The smallest real run: digits, 2 short epochs, one thread (the machine has 2 cores and
# tests may share it), few batches.
TINY = ["schedule=quick", "trainer.threads=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2"]


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "WANDB_MODE": "offline",
            "WANDB_DIR": str(tmp_path),
            "WANDB_SILENT": "true",
            # tests share a 2-core machine with each other and whatever else runs: sleeping (not
            # spinning) OpenMP workers keep an oversubscribed run from slowing down by orders of
            # magnitude, so no test's duration depends on the machine's load
            "OMP_WAIT_POLICY": "PASSIVE",
        }
    )
    env.pop("WANDB_API_KEY", None)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_train(args: list[str], tmp_path: Path, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python train.py ARGS` from the repository root; outputs under tmp_path."""
    cmd = [sys.executable, str(REPO / "train.py"), *args]
    return subprocess.run(cmd, cwd=REPO, env=subprocess_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def needs(path: Path):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} not present (../shared/data)")


def compose_train(overrides: list[str] | None = None, *, hydra: bool = False):
    """The composed `train` config (Hydra's compose API), as train.py would see it."""
    from hydra import compose, initialize_config_dir

    from netspaces.train.hydra_conf import register

    register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3", job_name="train"):
        return compose("train", overrides=list(overrides or []), return_hydra_config=hydra)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests are skipped where torch sees no CUDA GPU (scripts/gpu_check.sh runs them)."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="no CUDA GPU")
        for item in items:
            if item.get_closest_marker("gpu"):
                item.add_marker(skip)


@pytest.fixture
def restore_torch_state():
    """In-process runs switch on deterministic algorithms and set threads: undo it after."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


def group_options(group: str) -> list[str]:
    """The options of a config group as Hydra sees them: YAML files and generated ones."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from netspaces.train.hydra_conf import register

    register()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3", job_name="train"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))
