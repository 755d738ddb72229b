"""population_vs_plain_loop: models per hour of a slice of `make reproduce-small` trained with
`python train.py -m` (one sweep per space, `hydra/launcher=joblib` 2 jobs x 1 thread, as
scripts/populations.py runs it) against the same models trained by benchmarks/plain_loop.py,
a minimal plain-PyTorch program (one invocation per space, 2 spawned workers x 1 thread, the
data decoded once per worker). Same samples, data subset, stem, optimiser, schedule,
augmentation and evaluation cadence (read from the composed config): both sides compute the
same numbers (their top-1 errors are compared). End-to-end wall time of the commands,
process start included, in alternating rounds after an untimed warm-up (which also leaves
netspaces's decoded-data cache warm, as a user's second population finds it).
R = netspaces / plain models per hour (medians); details hold every round's ratio, their
min and median. Target: R >= 0.95.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, SHARED, Result, compose_train, main, median, worker_env

DATA = Path(os.environ.get("NETSPACES_DATA") or SHARED / "data") / "cifar10"  # as conf/train.yaml's paths.data
TARGET = 0.95
JOBS, THREADS = 2, 1
# per mode: spaces, models per space, epochs, images per class (both splits), timed rounds.
# `full` keeps the protocol's work per model (5 epochs, 500 images per class) and trains 4 of
# its 20 models per space: each worker's start-up is spread over 2 models instead of 10, so the
# slice understates the full workload's ratio a little, never overstates it.
PLAN = {
    "full": (("regnetx", "anynetx_a"), 4, 5, 500, 2),
    "quick": (("regnetx", "anynetx_a"), 2, 1, 100, 2),
    "toy": (("regnetx",), 1, 1, 5, 1),
}


def overrides(space: str, n: int, epochs: int, per_class: int) -> list[str]:
    """What scripts/populations.py passes train.py for one space (plus model.stem=cifar)."""
    return [
        f"space={space}",
        "regime=200mf",
        "data=cifar10",
        f"data.root={DATA}",
        f"data.limit_per_class={per_class}",
        "schedule=population",
        f"schedule.epochs={epochs}",
        f"sweep.n={n}",
        "model.stem=cifar",
        "trainer.progress_bar=false",
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={JOBS}",
        f"trainer.threads={THREADS}",
    ]


def plain_args(space: str, n: int, epochs: int, per_class: int) -> list[str]:
    """The plain loop's flags for the same models, read from the config train.py composes."""
    cfg = compose_train([o for o in overrides(space, n, epochs, per_class) if not o.startswith("hydra")])
    sched = cfg.schedule
    every = int(sched.eval_every)
    return [
        f"--root={DATA}",
        f"--per-class={per_class}",
        f"--spaces={space}",
        f"--n={n}",
        f"--regime={cfg.regime.name}",
        f"--sweep-seed={cfg.sweep.seed}",
        f"--seed={cfg.seed}",
        f"--stem={cfg.model.stem}",
        f"--epochs={epochs}",
        f"--eval-every={every if every > 0 else epochs}",  # 0: only after the last epoch
        f"--batch={sched.batch_size}",
        f"--base-lr={sched.base_lr}",
        f"--weight-decay={sched.weight_decay}",
        f"--workers={JOBS}",
        f"--threads={THREADS}",
    ]


def _env(tmp: Path, mode: str) -> dict[str, str]:
    env = worker_env(WANDB_MODE="offline", WANDB_DIR=str(tmp), WANDB_SILENT="true")
    env.pop("WANDB_API_KEY", None)
    if mode == "toy":  # tests share the machine
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:4])} … failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def netspaces_side(out: Path, spaces, n: int, epochs: int, per_class: int, env, extra=()) -> tuple[float, dict]:
    """Wall seconds of one `train.py -m` per space, and {model name: top-1 error} of the ok records."""
    t0 = time.perf_counter()
    for space in spaces:
        cmd = [sys.executable, str(REPO / "train.py"), "-m", *overrides(space, n, epochs, per_class)]
        _run([*cmd, f"hydra.sweep.dir={out / space}", *extra], env)
    seconds = time.perf_counter() - t0
    errors = {}
    for path in out.rglob("result.json"):
        rec = json.loads(path.read_text())
        if rec.get("status") == "ok":
            errors[rec["name"]] = rec["top1_err"]
    return seconds, errors


def plain_side(spaces, n: int, epochs: int, per_class: int, env) -> tuple[float, dict]:
    t0 = time.perf_counter()
    errors = {}
    for space in spaces:
        cmd = [sys.executable, str(REPO / "benchmarks" / "plain_loop.py"), *plain_args(space, n, epochs, per_class)]
        for line in _run(cmd, env).splitlines():
            got = json.loads(line) if line.startswith("{") else {}
            if "name" in got:
                errors[got["name"]] = got["top1_err"]
    return time.perf_counter() - t0, errors


def run(mode: str = "full") -> list[Result]:
    if not (DATA / "train").is_dir():
        raise RuntimeError(f"population_vs_plain_loop needs CIFAR-10 as image files under {DATA}")
    spaces, n, epochs, per_class, rounds = PLAN[mode]
    models = len(spaces) * n
    t_ns, t_plain, same, ok = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = _env(tmp, mode)
        if mode != "toy":  # untimed: the decoded-data cache, the page cache, Python's bytecode
            warm = ["trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]
            netspaces_side(tmp / "warm", spaces[:1], 1, 1, per_class, env, warm)
            plain_side(spaces[:1], 1, 1, per_class, env)
        for i in range(rounds):  # alternating: ns, plain | plain, ns | …
            sides = ("ns", "plain") if i % 2 == 0 else ("plain", "ns")
            got = {}
            for side in sides:
                if side == "ns":
                    got[side] = netspaces_side(tmp / f"ns{i}", spaces, n, epochs, per_class, env)
                else:
                    got[side] = plain_side(spaces, n, epochs, per_class, env)
            t_ns.append(got["ns"][0])
            t_plain.append(got["plain"][0])
            ok.append((len(got["ns"][1]), len(got["plain"][1])))
            same.append(got["ns"][1] == got["plain"][1])
    per_hour = lambda t: models / t * 3600  # noqa: E731
    ratios = [p / s for s, p in zip(t_ns, t_plain)]
    return [
        Result(
            "population_vs_plain_loop",
            per_hour(median(t_ns)),
            per_hour(median(t_plain)),
            "models/h",
            True,
            TARGET,
            {
                "spaces": list(spaces),
                "models_per_space": n,
                "epochs": epochs,
                "limit_per_class": per_class,
                "jobs": JOBS,
                "threads": THREADS,
                "rounds": rounds,
                "netspaces_s": [round(t, 2) for t in t_ns],
                "plain_s": [round(t, 2) for t in t_plain],
                "round_ratios": [round(r, 4) for r in ratios],
                "ratio_min": min(ratios),
                "ratio_median": median(ratios),
                "models_ok": ok,  # (netspaces, plain) per round
                "same_top1_errors": same,  # both sides computed the same numbers
                "overrides": overrides("<space>", n, epochs, per_class),
            },
        )
    ]


if __name__ == "__main__":
    main(run, __doc__)
