"""population: models per hour of `python train.py -m sweep.n=8 schedule=quick data=digits
space=regnetx regime=400mf`, run sequentially (Hydra's basic launcher, 2 torch threads)
against `hydra/launcher=joblib` with 2 jobs (1 thread each, so 2 jobs fill the 2 cores
without oversubscription). Each run gets a fresh output directory (nothing is skipped).
R = joblib / sequential models per hour: the speed-up of local parallel sweeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, Result, main, median, worker_env

SWEEP = ["-m", "schedule=quick", "data=digits", "space=regnetx", "regime=400mf", "trainer.progress_bar=false"]
# per mode: models per sweep, sweeps per side, extra overrides
PLAN = {
    "full": (8, 2, []),
    "quick": (4, 1, []),
    "toy": (2, 1, ["schedule.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]),
}
SEQUENTIAL = ["trainer.threads=2"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.threads=1"]


def _env(tmp: Path, mode: str) -> dict[str, str]:
    env = worker_env(WANDB_MODE="offline", WANDB_DIR=str(tmp), WANDB_SILENT="true")
    if mode == "toy":  # tests share the machine: sleeping OpenMP workers survive oversubscription
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    env.pop("WANDB_API_KEY", None)
    return env


def sweep_seconds(out: Path, n: int, launcher: list[str], extra: list[str], mode: str) -> tuple[float, int]:
    """Wall seconds of one sweep and how many models it finished (status ok)."""
    cmd = [sys.executable, str(REPO / "train.py"), *SWEEP, f"sweep.n={n}", f"paths.output={out}", *launcher, *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=_env(out, mode), capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"sweep failed ({' '.join(cmd[2:])}):\n{done.stderr[-2000:]}")
    ok = sum(json.loads(p.read_text()).get("status") == "ok" for p in out.rglob("result.json"))
    return seconds, ok


def run(mode: str = "full") -> list[Result]:
    n, repeats, extra = PLAN[mode]
    t_seq, t_job, finished = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # alternate ABBA
            order = (("seq", SEQUENTIAL, t_seq), ("joblib", JOBLIB, t_job))
            for name, launcher, out in order[:: 1 if i % 2 == 0 else -1]:
                seconds, ok = sweep_seconds(Path(tmp) / f"{name}{i}", n, launcher, extra, mode)
                out.append(seconds)
                finished.append(ok)
    per_hour = lambda ts: n / median(ts) * 3600  # noqa: E731
    return [
        Result(
            "population",
            per_hour(t_job),
            per_hour(t_seq),
            "models/h",
            True,
            None,
            {
                "models_per_sweep": n,
                "sweeps_per_side": repeats,
                "sequential_s": t_seq,
                "joblib_s": t_job,
                "models_ok": finished,
                "sequential": SEQUENTIAL,
                "joblib": JOBLIB,
                "sweep": SWEEP + extra,
            },
        )
    ]


if __name__ == "__main__":
    main(run, __doc__)
