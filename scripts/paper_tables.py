"""The paper's Tables 1-4, rebuilt by our tools: `python scripts/paper_tables.py table1 table2 …`.

Table 1: design spaces and their sizes (from the space definitions).
Table 2: the mobile regime (RegNetX/Y-600MF and the models around it, mobile baselines).
Table 3: ResNe(X)t against RegNetX at matched flops.
Table 4: EfficientNet B0-B5 against RegNetY at matched flops.

Tables 2-4 show flops/params/acts computed here (our analytic counter for zoo models,
torch's flop counter for timm baselines), CPU inference and training time per image measured
here at a small batch (`--batch`; the median of `--repeats` timed batches, with their spread
and a warning when the repeats lie far apart), the published error and V100 timings of pycls's
model zoo, and our runs' error when `--results DIR` holds run records (else `—`).
Each table is written to OUT/tableN.csv and OUT/tableN.md and printed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netspaces.models.timing import SPREAD_WARN_PCT  # noqa: E402  (torch-free at import)
from paper_reference import REPO, OurError, Published, model_key, our_errors, published  # noqa: E402

DASH = "—"

# Paper Table 2 compares against published mobile networks; those numbers are not in the
# shared reference, so the mobile regime shows the RegNets around 600MF beside the mobile
# baselines we can build and count (their published error only where the reference has it).
TABLE2 = [
    ("mobile", n)
    for n in (
        "RegNetX-400MF",
        "RegNetX-600MF",
        "RegNetX-800MF",
        "RegNetY-400MF",
        "RegNetY-600MF",
        "RegNetY-800MF",
        "EfficientNet-B0",
        "mobilenetv2_100",
        "mobilenetv3_large_100",
    )
]
# Matched-flops tiers: each ResNe(X)t beside the RegNetX models of similar flops.
TABLE3 = (
    [("4GF", n) for n in ("ResNet-50", "ResNeXt-50", "RegNetX-3.2GF", "RegNetX-4.0GF")]
    + [("8GF", n) for n in ("ResNet-101", "ResNeXt-101", "RegNetX-6.4GF", "RegNetX-8.0GF")]
    + [("12GF", n) for n in ("ResNet-152", "ResNeXt-152", "RegNetX-12GF", "RegNetX-16GF")]
)
# Each EfficientNet (at its own resolution) beside the RegNetY of similar flops (224 px).
TABLE4 = [
    (f"B{i}", n)
    for i, pair in enumerate(
        [
            ("EfficientNet-B0", "RegNetY-400MF"),
            ("EfficientNet-B1", "RegNetY-600MF"),
            ("EfficientNet-B2", "RegNetY-800MF"),
            ("EfficientNet-B3", "RegNetY-1.6GF"),
            ("EfficientNet-B4", "RegNetY-4.0GF"),
            ("EfficientNet-B5", "RegNetY-8.0GF"),
        ]
    )
    for n in pair
]
TABLES = {
    "table2": ("Table 2: mobile regime", TABLE2),
    "table3": ("Table 3: ResNe(X)t vs RegNetX", TABLE3),
    "table4": ("Table 4: EfficientNet vs RegNetY", TABLE4),
}

COLUMNS = [
    "group",
    "model",
    "res",
    "flops",
    "params",
    "acts",
    "flops_G",
    "params_M",
    "acts_M",
    "err_paper",
    "err_ours",
    "infer_ms_per_img_cpu",
    "train_ms_per_img_cpu",
    "infer_spread_pct_cpu",
    "train_spread_pct_cpu",
    "infer_ms_64img_v100_paper",
    "train_hr_8v100_paper",
]


def complexity_of(name: str):
    """Our tools' numbers: the analytic counter for zoo models (224 px), the flop counter for
    timm baselines (their native resolution)."""
    from netspaces.models.baselines import baseline_complexity, is_baseline
    from netspaces.space.complexity import complexity
    from netspaces.space.zoo import get_model_spec

    if is_baseline(name):
        return baseline_complexity(name)
    return complexity(get_model_spec(name), 224)


def model_row(
    group: str,
    name: str,
    pub: dict[str, Published],
    ours: dict[str, OurError],
    timing: dict | None,
    warnings: list[str] | None = None,
) -> dict:
    """One table row; a timing whose repeats spread too far adds its line to `warnings`."""
    from netspaces.models.baselines import native_resolution
    from netspaces.models.timing import time_model

    res = native_resolution(name)
    cx = complexity_of(name)
    p = pub.get(name)
    mine = ours.get(model_key(name))
    row = {
        "group": group,
        "model": name,
        "res": res,
        "flops": int(cx.flops),
        "params": int(cx.params),
        "acts": int(cx.acts),
        "flops_G": f"{cx.flops / 1e9:.2f}",
        "params_M": f"{cx.params / 1e6:.1f}",
        "acts_M": f"{cx.acts / 1e6:.1f}",
        "err_paper": f"{p.top1_err:.1f}" if p else DASH,
        "err_ours": str(mine) if mine else DASH,
        "infer_ms_per_img_cpu": DASH,
        "train_ms_per_img_cpu": DASH,
        "infer_spread_pct_cpu": DASH,
        "train_spread_pct_cpu": DASH,
        "infer_ms_64img_v100_paper": f"{p.infer_ms:g}" if p and p.infer_ms else DASH,
        "train_hr_8v100_paper": f"{p.train_hr:g}" if p and p.train_hr else DASH,
    }
    if timing is not None:
        t = time_model(name, resolution=res, **timing)
        row["infer_ms_per_img_cpu"] = f"{t.forward_ms_per_image:.1f}"
        row["train_ms_per_img_cpu"] = f"{t.train_ms_per_image:.1f}"
        row["infer_spread_pct_cpu"] = f"{t.forward_spread_pct:.0f}"
        row["train_spread_pct_cpu"] = f"{t.train_spread_pct:.0f}"
        if warnings is not None and t.spread_warning():
            warnings.append(t.spread_warning())
    return row


def table1_rows() -> list[dict]:
    from netspaces.space.table1 import table1

    return [
        {
            "space": r["space"],
            "restriction": r["restriction"],
            "dim": r["dim"],
            "size_paper": f"{r['size_paper']:.1e}",
            "size_exact": f"{r['size_exact']:.2e}",
        }
        for r in table1()
    ]


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


# the printed/Markdown view leaves out the exact integers (they are in the CSV)
SHOWN = [c for c in COLUMNS if c not in ("flops", "params", "acts")]


def write_table(
    name: str,
    title: str,
    rows: list[dict],
    columns: list[str],
    out: Path,
    shown: list[str] | None = None,
    note: str = "",
) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    text = f"## {title}\n\n{markdown(rows, shown or columns)}\n" + (f"\n{note}\n" if note else "")
    (out / f"{name}.md").write_text(text)
    return text


def build(name: str, *, out: Path, results: Path | None, timing: dict | None) -> str:
    if name == "table1":
        rows = table1_rows()
        return write_table(
            name,
            "Table 1: design spaces",
            rows,
            list(rows[0]),
            out,
            note="size_paper: the paper's count (ordered constraints divide by s!); "
            "size_exact: non-decreasing sequences counted exactly.",
        )
    title, models = TABLES[name]
    pub, ours = published(), our_errors(results)
    rows: list[dict] = []
    warnings: list[str] = []
    started = time.perf_counter()
    for i, (group, model) in enumerate(models, 1):
        print(
            f"  {name} [{i}/{len(models)}] {model}: {'counting and timing' if timing else 'counting'}",
            file=sys.stderr,
            flush=True,
        )
        rows.append(model_row(group, model, pub, ours, timing, warnings))
        print(
            f"  {name} [{i}/{len(models)}] {model} done, {_eta(started, i, len(models))}", file=sys.stderr, flush=True
        )
    for w in warnings:
        print(f"  {name}: warning: {w}", file=sys.stderr, flush=True)
    how = (
        f"CPU times: ms per image, batch {timing['batch']}, median of {timing['repeats']} after "
        f"{timing['warmup']} warm-up, {rows and _threads()} threads; spread: (max - min) / median of the "
        f"repeats, % ({len(warnings)} model(s) over {SPREAD_WARN_PCT:g}%"
        + (
            ": " + ", ".join(w.split(":")[0] for w in warnings) + " — time them again on a quiet machine"
            if warnings
            else ""
        )
        + ")"
        if timing
        else "CPU times: not measured"
    )
    note = (
        f"flops/params/acts: computed here (multiply-adds; timm baselines by torch's flop counter). "
        f"err_paper: pycls model zoo (ImageNet top-1 %). err_ours: {'our runs under ' + str(results) if results else 'no RESULTS given'}. "
        f"{how}. Paper times: pycls MODEL_ZOO (V100s)."
    )
    return write_table(name, title, rows, COLUMNS, out, shown=SHOWN, note=note)


def _eta(started: float, done: int, total: int) -> str:
    """Elapsed time and a linear estimate of what is left (rows differ in size: a rough one)."""
    elapsed = time.perf_counter() - started
    left = elapsed / done * (total - done)
    return f"{elapsed:.0f} s elapsed, ~{left:.0f} s left"


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs="+", help="table1 table2 table3 table4")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "paper")
    p.add_argument("--results", type=Path, default=None, help="directory of our runs (result.json files)")
    p.add_argument("--batch", type=int, default=4, help="batch for the CPU timings")
    p.add_argument("--repeats", type=int, default=5, help="timed batches per model (median and spread)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-timing", action="store_true", help="skip the CPU timings")
    a = p.parse_args(argv)
    from netspaces.errors import UserError

    try:
        unknown = [t for t in a.tables if t != "table1" and t not in TABLES]
        if unknown:
            raise UserError(f"unknown table {unknown[0]!r}; allowed: table1, {', '.join(TABLES)}")
        timing = (
            None if a.no_timing else {"batch": a.batch, "repeats": a.repeats, "warmup": a.warmup, "threads": a.threads}
        )
        for t in a.tables:
            print(build(t, out=a.out, results=a.results, timing=timing))
            print(f"(written to {a.out / t}.csv and .md)\n")
    except UserError as e:
        print(f"paper_tables: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
