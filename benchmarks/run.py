"""Run the benchmarks: `python benchmarks/run.py [--quick] [--only NAME ...]`.

Writes outputs/bench/results.json, prints a table and one line per benchmark:
`NAME: ratio=R ours=X ref=Y unit=U` (R >= 1: we are at least as good as the reference).
Benchmarks that need the training package come last; one that fails is reported and the
rest still run (exit status 1 then). Each waits first for the machine to be quiet (1-minute
load average below 1, up to --quiet-wait seconds); the load before and after is recorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import REPO, Result, machine, wait_for_quiet
from netspaces.record import write_atomic

# module names in benchmarks/, in run order (independent of training first)
BENCHMARKS = (
    "train_step_vs_timm",
    "sampler",
    "memory",
    "data_pipeline",
    "fit_loop_overhead",
    "population",
    "population_vs_plain_loop",
    "population_packed",
    "sweep_scale",
)


def table(results: list[Result]) -> str:
    rows = [("benchmark", "ratio", "ours", "ref", "unit", "target", "load", "note")]
    for r in results:
        note = ""
        if "wait_fraction" in r.details:
            note = f"waits for data {100 * r.details['wait_fraction']:.1f}% of the loop"
        elif "framework_cost" in r.details:
            note = f"framework cost {100 * r.details['framework_cost']:+.1f}%"
        elif "table_correct" in r.details:
            note = f"table {'correct' if r.details['table_correct'] else 'WRONG'}"
        elif "ratio" in r.details:
            note = f"time ratio {r.details['ratio']:.2f} for {r.details['records'][0] / r.details['records'][1]:g}x the records"
        elif r.details.get("naive_extrapolated"):
            note = f"naive extrapolated from {r.details['naive_timed_candidates']} built"
        target = "" if r.target is None else (f">= {r.target:g} " + ("ok" if r.ratio >= r.target else "MISSED"))
        ld = r.details.get("load_avg_1m")
        ld = f"{ld['start']:.1f}-{ld['end']:.1f}" if ld else ""
        rows.append((r.name, f"{r.ratio:.3f}", f"{r.ours:.4g}", f"{r.ref:.4g}", r.unit, target, ld, note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes: a quick look")
    ap.add_argument("--toy", action="store_true", help=argparse.SUPPRESS)  # tests: smallest sizes
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "results.json")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        metavar="S",
        help="before each benchmark wait up to S seconds for the machine's load to drop "
        "below 1 (default: 300 full, 60 quick, 0 toy)",
    )
    a = ap.parse_args(argv)
    mode = "toy" if a.toy else "quick" if a.quick else "full"
    quiet_wait = a.quiet_wait if a.quiet_wait is not None else {"full": 300, "quick": 60, "toy": 0}[mode]
    results, failed, seconds, load = [], {}, {}, {}
    env_before = machine()
    for name in a.only or BENCHMARKS:
        start_load = wait_for_quiet(quiet_wait) if quiet_wait > 0 else machine()["load_avg_1m"]
        t0 = time.perf_counter()
        print(f"[bench] {name} ({mode}, load {start_load:.2f}) ...", file=sys.stderr, flush=True)
        try:
            got = importlib.import_module(f"benchmarks.{name}").run(mode)
        except Exception as exc:  # report it, run the rest
            failed[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            print(f"{name}: failed ({failed[name].splitlines()[0]})", flush=True)
            continue
        finally:
            seconds[name] = round(time.perf_counter() - t0, 1)
            load[name] = {"start": round(start_load, 2), "end": round(machine()["load_avg_1m"], 2)}
        for r in got:
            r.details["load_avg_1m"] = load[name]
            print(r.line(), flush=True)
        results += got
    out = {
        "mode": mode,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": env_before,
        "load_avg_1m": load,
        "seconds": seconds,
        "results": [r.as_dict() for r in results],
        "failed": failed,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(a.out, json.dumps(out, indent=2) + "\n")  # fsynced, renamed: never half a file
    print()
    print(table(results))
    print(f"\n(written to {a.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
