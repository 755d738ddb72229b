"""mechanisms: does each speed mechanism pay on the workloads users run? End-to-end wall time
of real workloads with every mechanism on, and with each one left out in turn.

Workloads (as users run them):
  population  a fixed 4-model slice of `make reproduce-small`: RegNetX samples 0-3 of the
              200mf window, CIFAR-10 at 32 px (10k-image subset), 5 epochs, validation only
              after the last epoch, `hydra/launcher=joblib` with 2 one-thread jobs
  digits      `make train`'s run: `python train.py` (10 epochs on digits, 2 threads)
`--extra trainer=gpu` (say) runs them on another trainer, to judge GPU mechanisms on a GPU.

Method: rounds alternate their order (F, W1..Wk, F, Wk..W1, F, ...: ABBA at the round level),
F being the full set and Wj the full set without mechanism j (its `perf.*` switch off). A
mechanism's speed-up in a round is t(Wj) / mean of the F runs around it; it is kept only if
its lowest round is >= 1.05. Each run is a fresh `train.py` process tree writing into a fresh
directory; the decoded CIFAR-10 cache is warmed once before timing. Prints
`mechanism_<name>_<workload>: ratio=R ours=X ref=Y unit=s` with R the lowest speed-up over
the rounds and X/Y the median seconds with/without.

The eight CPU mechanisms the renovation judged (a fused BN+ReLU kernel, malloc policy,
OpenMP wait policy, thread moving, denormal flush, NaN-fill skip, gc freeze, folded
validation) were measured with this script at commit 9f70eb4, where each had a switch; none
was kept (benchmarks/README.md). Today's switches are the mechanisms of netspaces.perf.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, SHARED, Result, worker_env

CIFAR = SHARED / "data" / "cifar10"
KEEP_THRESHOLD = 1.05
# per mode: workloads, rounds, overrides that shrink the workloads
PLAN = {
    "full": (("digits", "population"), 3, []),
    "quick": (("digits",), 1, []),
    "toy": (
        ("digits",),
        1,
        [
            "schedule=quick",
            "schedule.epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.threads=1",
        ],
    ),
}


def mechanisms() -> dict[str, list[str]]:
    """Each mechanism of netspaces.perf and the override that leaves it out."""
    from netspaces.perf import PerfSettings

    return {f.name: [f"perf.{f.name}=false"] for f in fields(PerfSettings)}


def workload_args(name: str, out: Path, cache: Path) -> list[str]:
    if name == "population":
        return [
            "-m",
            "space=regnetx",
            "regime=200mf",
            "data=cifar10",
            f"data.root={CIFAR}",
            "data.limit_per_class=1000",
            "schedule=population",
            "schedule.epochs=5",
            "schedule.eval_every=5",
            "sweep.n=4",
            "sweep.seed=0",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "trainer.threads=1",
            "trainer.progress_bar=false",
            f"paths.output={cache}",
            f"hydra.sweep.dir={out}",
        ]
    if name == "digits":
        return ["trainer.progress_bar=false", f"paths.output={out}"]
    raise ValueError(name)


def run_once(workload: str, overrides: list[str], out: Path, cache: Path, quiet: bool) -> dict:
    env = worker_env(WANDB_MODE="offline")
    if quiet:  # tests share the machine: sleeping OpenMP workers survive oversubscription
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, str(REPO / "train.py"), *workload_args(workload, out, cache), *overrides]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{workload} failed ({' '.join(overrides)}):\n{done.stderr[-3000:]}")
    recs = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    return {
        "seconds": seconds,
        "ok": sum(r["status"] == "ok" for r in recs),
        "top1_err": sorted(r["top1_err"] for r in recs if r["top1_err"] is not None),
        "load_1m": os.getloadavg()[0],
    }


def measure(
    workload: str, switches: dict[str, list[str]], rounds: int, extra: list[str], scratch: Path, quiet: bool = False
) -> list[dict]:
    cache, runs, count = scratch / "cache-out", [], iter(range(10**6))

    def go(label: str) -> None:
        overrides = extra + ([] if label == "full" else switches[label])
        r = run_once(workload, overrides, scratch / f"{workload}-{next(count):03d}-{label}", cache, quiet)
        runs.append(r | {"label": label})
        print(
            f"  {workload} {label:<24} {r['seconds']:8.1f} s  (load {r['load_1m']:.2f}, err {r['top1_err']})",
            file=sys.stderr,
            flush=True,
        )

    go("full")  # warm-up (decoded-data cache, page cache): not counted
    runs.clear()
    for i in range(rounds):
        go("full")
        for m in list(switches) if i % 2 == 0 else list(switches)[::-1]:
            go(m)
    go("full")
    return runs


def speedups(runs: list[dict], mechanism: str) -> list[float]:
    """Per round: t(without) / mean of the full runs just before and after that round."""
    out = []
    fulls = [i for i, r in enumerate(runs) if r["label"] == "full"]
    for a, b in zip(fulls, fulls[1:]):
        ref = (runs[a]["seconds"] + runs[b]["seconds"]) / 2
        out += [r["seconds"] / ref for r in runs[a + 1 : b] if r["label"] == mechanism]
    return out


def results(runs: list[dict], workload: str, names: list[str]) -> list[Result]:
    full = statistics.median(r["seconds"] for r in runs if r["label"] == "full")
    out = []
    for m in names:
        s = speedups(runs, m)
        without = statistics.median(r["seconds"] for r in runs if r["label"] == m)
        # ref = the full set's time scaled by the lowest round's speed-up, so R (= ref/ours)
        # is that lowest speed-up: what the keep rule reads
        out.append(
            Result(
                f"mechanism_{m}_{workload}",
                full,
                full * min(s),
                "s",
                False,
                KEEP_THRESHOLD,
                {
                    "rounds": [round(x, 3) for x in s],
                    "median_without_s": without,
                    "keep": min(s) >= KEEP_THRESHOLD,
                    "runs": [{k: r[k] for k in ("label", "seconds", "load_1m")} for r in runs],
                },
            )
        )
    return out


def run(mode: str = "full", extra: list[str] | None = None) -> list[Result]:
    workloads, rounds, shrink = PLAN[mode]
    switches = mechanisms()
    out: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mechanisms-") as tmp:
        for w in workloads:
            runs = measure(w, switches, rounds, [*shrink, *(extra or [])], Path(tmp), quiet=mode == "toy")
            out += results(runs, w, list(switches))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=tuple(PLAN), default="full")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides for every run, e.g. trainer=gpu")
    a = ap.parse_args()
    for r in run(a.mode, a.extra):
        print(r.line(), {k: v for k, v in r.details.items() if k != "runs"})
