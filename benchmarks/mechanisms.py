"""mechanisms: does each CPU speed mechanism pay on the workloads users run? End-to-end wall
time of two real workloads with every mechanism on, and with each one left out in turn.

Workloads (as users run them on a CPU):
  population  a fixed 4-model slice of `make reproduce-small`: RegNetX samples 0-3 of the
              200mf window, CIFAR-10 at 32 px (10k-image subset), 5 epochs, validation only
              after the last epoch, `hydra/launcher=joblib` with 2 one-thread jobs
  digits      `make train`'s run: `python train.py` (10 epochs on digits, 2 threads)

Method: rounds alternate their order (F, W1..Wk, F, Wk..W1, F, ...: ABBA at the round level),
F being the full set and Wj the full set without mechanism j. A mechanism's speed-up in a
round is t(Wj) / mean of the F runs around it; it is kept only if its lowest round is >= 1.05.
Each run is a fresh `train.py` process tree writing into a fresh directory; the decoded
CIFAR-10 cache is warmed once before timing. Prints `NAME: ratio=R ours=X ref=Y unit=s`
with R the lowest speed-up over the rounds, ours/ref the median seconds with/without.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CIFAR = REPO.parent / "shared" / "data" / "cifar10"
KEEP_THRESHOLD = 1.05

# name -> how the run leaves it out (the switch each mechanism has)
MECHANISMS = {
    "fused_bn": {"NETSPACES_PERF_OFF": "fused_bn"},
    "malloc": {"NETSPACES_PERF_OFF": "malloc"},
    "wait_policy": {"NETSPACES_PERF_OFF": "wait_policy"},
    "share_cpus": {"NETSPACES_PERF_OFF": "share_cpus"},
    "flush_denormal": {"NETSPACES_PERF_OFF": "flush_denormal"},
    "skip_nan_fill": {"NETSPACES_PERF_OFF": "skip_nan_fill"},
    "gc_freeze": {"NETSPACES_PERF_OFF": "gc_freeze"},
    "fold_bn_eval": {"NETSPACES_PERF_OFF": "fold_bn_eval"},
}


def workload_args(name: str, out: Path, cache: Path) -> list[str]:
    if name == "population":
        return ["-m", "space=regnetx", "regime=200mf", "data=cifar10", f"data.root={CIFAR}",
                "data.limit_per_class=1000", "schedule=population", "schedule.epochs=5", "schedule.eval_every=5",
                "sweep.n=4", "sweep.seed=0", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                "trainer.threads=1", "trainer.progress_bar=false", f"paths.output={cache}",
                f"hydra.sweep.dir={out}"]
    if name == "digits":
        return ["trainer.progress_bar=false", f"paths.output={out}"]
    raise ValueError(name)


def run_once(workload: str, env_extra: dict[str, str], out: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NETSPACES_PERF_OFF")}
    env.update({"PYTHONPATH": str(REPO / "src"), "WANDB_MODE": "offline", **env_extra})
    cmd = [sys.executable, str(REPO / "train.py"), *workload_args(workload, out, cache)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{workload} failed ({env_extra}):\n{done.stderr[-3000:]}")
    recs = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    return {"seconds": seconds, "ok": sum(r["status"] == "ok" for r in recs),
            "train_time_s": sum(r["train_time_s"] for r in recs),
            "top1_err": sorted(r["top1_err"] for r in recs if r["top1_err"] is not None),
            "load_1m": os.getloadavg()[0]}


def measure(workload: str, mechanisms: list[str], rounds: int, scratch: Path) -> dict:
    cache = scratch / "cache-out"
    runs: list[dict] = []
    counter = 0

    def go(label: str) -> dict:
        nonlocal counter
        counter += 1
        env = {} if label == "full" else MECHANISMS[label]
        r = run_once(workload, env, scratch / f"{workload}-{counter:03d}-{label}", cache)
        r |= {"label": label, "index": counter}
        runs.append(r)
        print(f"  {workload} {label:<15} {r['seconds']:8.1f} s  (train {r['train_time_s']:.1f} s, load "
              f"{r['load_1m']:.2f}, err {r['top1_err']})", flush=True)
        return r

    go("full")  # warm-up (decoded-data cache, page cache): not counted
    runs.clear()
    for i in range(rounds):
        order = mechanisms if i % 2 == 0 else mechanisms[::-1]
        go("full")
        for m in order:
            go(m)
    go("full")
    return {"runs": runs}


def speedups(runs: list[dict], mechanism: str) -> list[float]:
    """Per round: t(without) / mean of the full runs just before and after that round."""
    out = []
    fulls = [i for i, r in enumerate(runs) if r["label"] == "full"]
    for a, b in zip(fulls, fulls[1:]):
        ref = (runs[a]["seconds"] + runs[b]["seconds"]) / 2
        out += [r["seconds"] / ref for r in runs[a + 1:b] if r["label"] == mechanism]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["digits", "population"], choices=["digits", "population"])
    ap.add_argument("--mechanisms", nargs="+", default=list(MECHANISMS), choices=list(MECHANISMS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "mechanisms.json")
    a = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mechanisms-") as tmp:
        for w in a.workloads:
            results[w] = measure(w, a.mechanisms, a.rounds, Path(tmp))
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(results, indent=1))
    for w, res in results.items():
        full = statistics.median(r["seconds"] for r in res["runs"] if r["label"] == "full")
        for m in a.mechanisms:
            s = speedups(res["runs"], m)
            without = statistics.median(r["seconds"] for r in res["runs"] if r["label"] == m)
            keep = "keep" if min(s) >= KEEP_THRESHOLD else "drop"
            print(f"mechanism_{m}_{w}: ratio={min(s):.3f} ours={full:.4g} ref={without:.4g} unit=s "
                  f"rounds={[round(x, 3) for x in s]} {keep}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
