"""`netspaces` command line, every subcommand in one place: describe, sample, spaces (the
design-space maths), analyze (populations), collect (a sweep's table), wandb-sync (upload
offline W&B runs), time (a model's speed), load-weights (published checkpoints in our models).

Heavy modules (torch, pandas, matplotlib) load only in the handler that needs them, so
`netspaces describe` stays fast. Bad input ends with one line `netspaces: error: …` and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from netspaces import record
from netspaces.errors import UserError
from netspaces.space.spec import BLOCK_TYPES

NORM_CHOICES = (*record.COMPLEXITY_FIELDS, "none")
DEFAULT_N_BOOT = 10_000


class _Version(argparse.Action):
    def __init__(self, **kwargs) -> None:
        super().__init__(nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import netspaces

        print(f"netspaces {netspaces.__version__} ({Path(netspaces.__file__).parent})")  # unwrapped: scripts read it
        parser.exit()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default also prints usage)
        raise UserError(f"{self.prog}: {message}")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _probability(text: str) -> float:
    """A number strictly between 0 and 1 (a significance level, a power)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


# ---------------------------------------------------------------- describe, sample, spaces


def _spec_from_args(a) -> tuple[str, object]:
    from netspaces.space.regnet import RegNetParams
    from netspaces.space.zoo import canonical_name, get_model_spec

    regnet_flags = [a.depth, a.w0, a.wa, a.wm, a.group_w]
    if a.name:
        if any(v is not None for v in regnet_flags):
            raise UserError("give either a model name or --depth/--w0/--wa/--wm/--group-w, not both")
        return canonical_name(a.name), get_model_spec(a.name)
    if any(v is None for v in regnet_flags):
        missing = [f for f, v in zip(("--depth", "--w0", "--wa", "--wm", "--group-w"), regnet_flags) if v is None]
        raise UserError(
            f"describe needs a model name or all of --depth --w0 --wa --wm --group-w (missing {' '.join(missing)})"
        )
    p = RegNetParams(a.depth, a.w0, a.wa, a.wm, a.group_w, a.bot_mul, a.se_r)
    name = f"RegNet(d={a.depth}, w0={a.w0}, wa={a.wa:g}, wm={a.wm:g}, g={a.group_w}, b={a.bot_mul:g}" + (
        f", se={a.se_r:g})" if a.se_r else ")"
    )
    return name, p.to_spec()


def cmd_describe(a) -> int:
    from netspaces.space.complexity import complexity

    if a.resolution < 1:
        raise UserError(f"--resolution must be >= 1; got {a.resolution}")
    name, spec = _spec_from_args(a)
    cx = complexity(spec, a.resolution).as_dict()
    out = {"name": name, "ws": list(spec.ws), "ds": list(spec.ds), "gs": list(spec.gs), "bs": list(spec.bs), **cx}
    if a.json:
        print(json.dumps(out))
        return 0
    print(f"{name}  ({spec.block.upper()} block, {spec.stem} stem w{spec.stem_w}, {a.resolution} px)")
    print(f"{'stage':>5} {'width':>6} {'depth':>5} {'group_w':>7} {'groups':>6} {'bot_mul':>7} {'stride':>6}")
    for i, (w, d, g, b, s) in enumerate(zip(spec.ws, spec.ds, spec.gs, spec.bs, spec.strides), 1):
        w_b = round(w * b)
        print(f"{i:>5} {w:>6} {d:>5} {g:>7} {w_b // g:>6} {b:>7g} {s:>6}")
    print(
        f"flops {cx['flops']:,} ({cx['flops'] / 1e9:.3f} G)  params {cx['params']:,} ({cx['params'] / 1e6:.2f} M)  "
        f"acts {cx['acts']:,} ({cx['acts'] / 1e6:.2f} M)"
    )
    return 0


def cmd_sample(a) -> int:
    from netspaces.space.sampling import sample_models

    if a.max_candidates < 1:
        raise UserError(f"--max-candidates must be >= 1; got {a.max_candidates}")
    for s in sample_models(a.space, a.regime, a.n, a.seed, block=a.block, max_candidates=a.max_candidates):
        d = s.to_dict()
        if a.json:
            print(json.dumps(d))
        else:
            print(
                f"{d['name']}  ws={d['ws']} ds={d['ds']} gs={d['gs']} bs={d['bs']}  "
                f"flops={d['flops'] / 1e6:.1f}M params={d['params'] / 1e6:.2f}M acts={d['acts'] / 1e6:.2f}M"
            )
    return 0


def cmd_spaces(a) -> int:
    from netspaces.space.table1 import table1

    if a.draw:
        from netspaces.space.draws import get_draw

        get_draw(a.draw)  # one line for an unknown rule set, before any output
    rows = table1()
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"{'space':<16} {'dim':>3} {'size':>8} {'exact':>10}  restriction")
    for r in rows:
        print(f"{r['space']:<16} {r['dim']:>3} {r['size_paper']:>8.1e} {r['size_exact']:>10.2e}  {r['restriction']}")
    if a.verbose:
        from netspaces.space.draws import DRAWS, get_draw
        from netspaces.space.spaces import SPACES

        chosen = [get_draw(a.draw)] if a.draw else list(DRAWS.values())
        for draw in chosen:
            print(f"\ndraw {draw.name}: {draw.source}")
            print("  ranges: the paper's (AnyNetX section 3.1: d<=16, w<=1024, b in {1,2,4}, g<=32; RegNet section 4)")
            for name, sp in SPACES.items():
                rules = draw.anynet if hasattr(sp, "shared_b") else draw.regnet
                allowed = sp.allowed()
                print(f"  {name:<16} " + "; ".join(f"{k} {r.text(allowed[k])}" for k, r in rules.items()))
    return 0


def cmd_baselines(a) -> int:
    from netspaces.space.regimes import get_regime

    regime = get_regime(a.regime)  # a bad name fails before torch loads

    from netspaces.models.matched import matched_baselines

    found = matched_baselines(regime)
    if a.json:
        for m in found:
            print(json.dumps(m.as_dict()))
        return 0
    middle = (regime.lo + regime.hi) / 2e6
    print(
        f"baselines matched to {regime.name}: flops (multiply-adds at 224 px) in "
        f"[{regime.lo / 1e6:g}, {regime.hi / 1e6:g}] MF (docs/baselines.md)"
    )
    print(f"{'name':<22} {'key':<16} {'width':>7} {'depth':>5} {'MF':>8} {'params M':>8} {'acts M':>7}  how")
    for m in found:
        how = "published, as is" if not m.scaled else f"width solved for {middle:g} MF"
        print(
            f"{m.name:<22} {m.key:<16} {m.width_mult:>7g} {m.depth_mult:>5g} {m.flops / 1e6:>8.1f} "
            f"{m.params / 1e6:>8.2f} {m.acts / 1e6:>7.2f}  {how}"
        )
    print(f"train them: python train.py -m model=baselines regime={regime.name} (+ the population's data, schedule)")
    return 0


# ---------------------------------------------------------------- analyze, collect


def cmd_analyze(a) -> int:
    from netspaces.analysis.pipeline import analyze
    from netspaces.analysis.summary import format_summary

    result = analyze(
        a.inputs,
        a.out,
        labels=a.label,
        norm=a.norm,
        bins=a.bins,
        n_boot=a.n_boot,
        seed=a.seed,
        alpha=a.alpha,
        power=a.power,
        baselines=a.baselines,
    )
    print(format_summary(result.analysis))
    print(f"wrote {len(result.written)} files in {a.out}:")
    for path in result.written:
        print(f"  {path}")
    if a.wandb:
        from netspaces.analysis.wandb_log import log_analysis

        options = {
            k: getattr(a, k, None) for k in ("inputs", "baselines", "norm", "bins", "n_boot", "seed", "alpha", "power")
        }
        log_analysis(
            result.populations,
            result.analysis,
            result.written,
            project=a.wandb_project,
            group=a.wandb_group,
            run_dir=Path(os.environ.get("WANDB_DIR") or a.out),
            options=options,
        )
    return 0


def cmd_collect(a) -> int:
    if not a.sweep_dir.is_dir():
        raise UserError(
            f"collect: {a.sweep_dir} is not a directory (give a sweep directory, "
            "e.g. outputs/sweeps/regnetx-400mf-digits-population-s0)"
        )
    got = record.write_population(a.sweep_dir)
    if not got.records and not got.broken and not got.others:
        raise UserError(f"collect: no {record.RECORD_FILE} below {a.sweep_dir}")
    print(
        f"{len(got.records)} records ({record.status_counts(got.records) or 'none'}) -> {got.paths[1]}, {got.paths[0]}"
    )
    problems = got.problem_lines()
    for line in problems:
        print(f"netspaces: {line}", file=sys.stderr)
    return 1 if problems else 0


def cmd_wandb_sync(a) -> int:
    import shlex
    import subprocess

    from netspaces.wandb_mode import offline_runs, sync_command

    runs = list(dict.fromkeys(run for d in a.dirs for run in offline_runs(d)))
    where = ", ".join(str(d) for d in a.dirs)
    if not runs:
        raise UserError(f"wandb-sync: no offline W&B run (wandb/offline-run-*/*.wandb) below {where}")
    command = sync_command(runs, project=a.project, entity=a.entity, include_synced=a.include_synced)
    print(f"{len(runs)} offline W&B run(s) below {where}")
    if a.dry_run:
        print(shlex.join(command))
        return 0
    return subprocess.call(command)


def cmd_power(a) -> int:
    from netspaces.analysis import stats
    from netspaces.analysis.populations import load_populations

    populations = []
    for source in (a.first, a.second):
        found = load_populations(str(source))
        if len(found) > 1:
            raise UserError(
                f"power: {source} holds {len(found)} experiments ({', '.join(p.label for p in found)}); "
                "give one population per INPUT"
            )
        populations.append(found[0])
    pa, pb = populations
    ea, eb = pa.errors, pb.errors
    achieved = stats.power_at(ea, eb, (len(ea), len(eb)), a.alpha, a.reps, a.seed)
    needed = stats.models_needed(ea, eb, a.alpha, a.power, a.reps, a.seed)
    print(f"n per space: {pa.label} {len(ea)}, {pb.label} {len(eb)}")
    print(
        f"power at the current n: {achieved:.2f} (exact KS test at alpha {a.alpha:g}; "
        f"{a.reps:,} smoothed-bootstrap draws from the observed populations)"
    )
    if needed.models is None:
        print(f"models per space needed for power {a.power:g}: not estimable ({needed.reason})")
    else:
        print(f"models per space needed for power {a.power:g}: ~{needed.models} (estimated power {needed.power:.2f})")
    return 0


# ---------------------------------------------------------------- time


def cmd_time(a) -> int:
    from netspaces.models.timing import time_model

    t = time_model(
        a.model,
        batch=a.batch,
        resolution=a.resolution,
        device=a.device,
        repeats=a.repeats,
        warmup=a.warmup,
        threads=a.threads,
    )
    if a.json:
        print(json.dumps(t.as_dict()))
        return 0
    print(f"{t.model}: batch {t.batch} at {t.resolution} px on {t.device} ({t.threads} threads), median of {t.repeats}")
    print(f"  forward           {t.forward_ms:9.1f} ms/batch  {t.forward_ms_per_image:8.2f} ms/image")
    print(f"  forward+backward  {t.train_ms:9.1f} ms/batch  {t.train_ms_per_image:8.2f} ms/image")
    return 0


# ---------------------------------------------------------------- load-weights


def cmd_load_weights(a) -> int:
    from netspaces.models.baselines import get_network, native_resolution
    from netspaces.models.evaluate import evaluate_folder
    from netspaces.models.pretrained import load_weights
    from netspaces.space.zoo import canonical_name

    name = canonical_name(a.name)
    if not a.path.is_file():
        raise UserError(f"{a.path}: no such file" if not a.path.exists() else f"{a.path} is not a file")
    if a.device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {a.device!r}; allowed: cpu, cuda")
    if a.eval_root is not None:
        import torch

        from netspaces.train import image_tree

        if a.device == "cuda" and not torch.cuda.is_available():
            raise UserError("device cuda is not available on this machine; use --device cpu")
        if not a.eval_root.is_dir():
            raise UserError(f"--eval-root {a.eval_root}: no such directory (expected {a.eval_root}/<class>/<image>)")
        image_tree.list_split(a.eval_root.parent, a.eval_root.name)  # one line if it is not an image tree
    model = get_network(name, num_classes=1000)
    loaded = load_weights(model, a.path, source=a.source, model_name=name)
    print(f"loaded {loaded.tensors} tensors ({loaded.naming} naming) into {name}")
    if a.eval_root is None:
        return 0
    from netspaces.models.evaluate import IMAGENET_MEAN, IMAGENET_STD
    from netspaces.train.data import folder_transforms, open_rgb
    from netspaces.train.settings import DataSettings

    res = native_resolution(name)
    s = DataSettings(name="imagenet", batch_size=a.batch, resolution=res, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    e = evaluate_folder(
        model,
        a.eval_root,
        transform=folder_transforms(s, train=False),  # training's evaluation transform: resize 256, crop 224
        image_loader=open_rgb,
        num_classes=1000,
        batch=a.batch,
        limit_per_class=a.limit,
        device=a.device,
    )
    labels = "ImageNet-1k indices of the wnid folders" if e.imagenet_labels else "classes in folder order"
    print(
        f"{name} on {a.eval_root} ({e.images} images, {e.classes} classes, {labels}; {res} px center crop): "
        f"top-1 error {e.top1_err:.3f}%, top-5 error {e.top5_err:.3f}%"
    )
    return 0


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="netspaces", description="Design network design spaces (RegNet, CVPR 2020).")
    p.add_argument("--version", action=_Version, help="the version and where this netspaces runs from")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("describe", help="widths, depths, groups, flops/params/acts of a model")
    d.add_argument("name", nargs="?", help="a zoo model, e.g. RegNetX-400MF or regnety_1.6gf")
    d.add_argument("--depth", type=int, help="d: number of blocks")
    d.add_argument("--w0", type=int, help="initial width (multiple of 8)")
    d.add_argument("--wa", type=_finite_float, help="width slope")
    d.add_argument("--wm", type=_finite_float, help="width multiplier (> 1)")
    d.add_argument("--group-w", type=int, help="group width g")
    d.add_argument("--bot-mul", type=_finite_float, default=1.0, help="bottleneck multiplier (1/b), default 1")
    d.add_argument("--se-r", type=_finite_float, default=0.0, help="squeeze-excitation ratio (Y block: 0.25)")
    d.add_argument("--resolution", type=int, default=224)
    d.add_argument("--json", action="store_true", help="one JSON object")
    d.set_defaults(func=cmd_describe)

    s = sub.add_parser("sample", help="sample models from a design space inside a flop regime")
    s.add_argument("--space", required=True)
    s.add_argument("--regime", required=True)
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--block", choices=BLOCK_TYPES, help="override the space's block")
    s.add_argument("--max-candidates", type=int, default=2_000_000, help="try budget before giving up")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_sample)

    t = sub.add_parser("spaces", help="Table 1: design spaces, dimensions and sizes (--verbose: how each draws)")
    t.add_argument("--json", action="store_true")
    t.add_argument("--verbose", "-v", action="store_true", help="each space's draw rules per rule set, with sources")
    t.add_argument("--draw", default=None, help="with --verbose: only this rule set (pycls, loguniform, uniform)")
    t.set_defaults(func=cmd_spaces)

    bl = sub.add_parser(
        "baselines",
        help="EfficientNet and ResNe(X)t baselines matched to a flop regime, with flops/params/acts",
        description="The baselines `python train.py -m model=baselines regime=R` trains: EfficientNet-B0, "
        "EfficientNet-B0 at B1's depth, ResNet-50 and ResNeXt-50 32x4d, each the published model where its "
        "flops lie in the regime's window, else with its width multiplier solved for the window's midpoint.",
    )
    bl.add_argument("--regime", required=True, help="a flop regime, e.g. 200mf, 400mf, 1.6gf")
    bl.add_argument("--json", action="store_true", help="one JSON object per baseline")
    bl.set_defaults(func=cmd_baselines)

    an = sub.add_parser(
        "analyze",
        help="compare populations: EDFs, KS, bootstrap, plots, HTML report",
        description="Each INPUT is one population: a sweep directory, a CSV/JSONL table with "
        "one row per model and a top1_err column, or wandb://entity/project/group.",
    )
    an.add_argument("inputs", nargs="+", metavar="INPUT")
    an.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory for summary.json, edf.csv, plots and report.html",
    )
    an.add_argument(
        "--label",
        action="append",
        default=None,
        metavar="NAME",
        help="population label, once per INPUT in order (default: the table's space, else the file/dir name)",
    )
    an.add_argument(
        "--norm", choices=NORM_CHOICES, default="flops", help="complexity used by the normalized EDF (default: flops)"
    )
    an.add_argument(
        "--bins",
        type=_positive_int,
        default=None,
        metavar="K",
        help="complexity bins of the normalized EDF (default: min(10, floor(sqrt(n))) for the smallest population)",
    )
    an.add_argument(
        "--n-boot",
        type=_positive_int,
        default=DEFAULT_N_BOOT,
        metavar="N",
        help=f"bootstrap repeats (default: {DEFAULT_N_BOOT})",
    )
    an.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    an.add_argument(
        "--alpha",
        type=_probability,
        default=0.001,
        help="significance level of the KS test whose power is reported (default: 0.001)",
    )
    an.add_argument(
        "--power", type=_probability, default=0.9, help="power asked for: models per space needed (default: 0.9)"
    )
    an.add_argument(
        "--baselines",
        action="append",
        default=None,
        metavar="DIR_OR_TABLE",
        help="trained baselines (a `train.py -m model=baselines` sweep directory, or a CSV/JSONL table with name "
        "and top1_err): a line on every EDF, the share of each population they beat (repeatable)",
    )
    an.add_argument(
        "--wandb",
        action="store_true",
        help="also log the analysis as a W&B run: tables, EDF charts, plots, the report as an artifact "
        "(offline without a key; run files go under WANDB_DIR, else under --out)",
    )
    an.add_argument("--wandb-project", default="netspaces", metavar="NAME")
    an.add_argument("--wandb-group", default=None, metavar="NAME", help="W&B group (default: the comparison, 'A vs B')")
    an.set_defaults(func=cmd_analyze)

    c = sub.add_parser(
        "collect",
        help="rebuild population.csv/.jsonl of a sweep from its result.json records",
        description="Reads every result.json below SWEEP_DIR and writes SWEEP_DIR/population.csv "
        "and SWEEP_DIR/population.jsonl (one row per trained model).",
    )
    c.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR")
    c.set_defaults(func=cmd_collect)

    ws = sub.add_parser(
        "wandb-sync",
        help="upload every offline W&B run below DIR (a sweep, a run, an analysis output) with one `wandb sync`",
    )
    ws.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    ws.add_argument("--project", default=None, help="upload into this project (default: the runs' own)")
    ws.add_argument("--entity", default=None, help="upload under this entity (default: your default entity)")
    ws.add_argument("--include-synced", action="store_true", help="upload runs already uploaded again")
    ws.add_argument("--dry-run", action="store_true", help="print the runs and the command, upload nothing")
    ws.set_defaults(func=cmd_wandb_sync)

    pw = sub.add_parser(
        "power",
        help="power of the KS test between two populations, and the models per space it needs",
        description="A and B are populations as `analyze` reads them (a sweep directory's records, or a "
        "CSV/JSONL table). Estimates, by drawing from the observed populations, the probability that the "
        "exact two-sample KS test at --alpha tells them apart at their current size, and the smallest number "
        "of models per space that reaches --power (docs/statistics.md).",
    )
    pw.add_argument("first", metavar="A", help="a population: sweep directory or CSV/JSONL table")
    pw.add_argument("second", metavar="B", help="the population to compare it with")
    pw.add_argument("--alpha", type=_probability, default=0.001, help="significance level (default: 0.001)")
    pw.add_argument("--power", type=_probability, default=0.9, help="power asked for (default: 0.9)")
    pw.add_argument("--seed", type=_seed, default=0, help="seed of the draws (default: 0)")
    pw.add_argument("--reps", type=_positive_int, default=1000, metavar="N", help="draws per estimate (default: 1000)")
    pw.set_defaults(func=cmd_power)

    tm = sub.add_parser("time", help="forward and forward+backward time per batch of a model")
    tm.add_argument("model", help="zoo name (RegNetX-400MF, ResNet-50) or timm baseline (efficientnet_b0)")
    tm.add_argument("--batch", type=int, default=64)
    tm.add_argument("--resolution", type=int, default=None, help="default: the model's native resolution")
    tm.add_argument("--device", default="cpu", help="cpu or cuda")
    tm.add_argument("--repeats", type=int, default=10, help="timed batches (median reported)")
    tm.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    tm.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    tm.add_argument("--json", action="store_true", help="one JSON object")
    tm.set_defaults(func=cmd_time)

    lw = sub.add_parser(
        "load-weights",
        help="load a published checkpoint (timm or pycls naming) into a zoo model, optionally check its error",
        description="Builds the zoo model NAME, loads the local checkpoint PATH (a state dict, or one under "
        "'state_dict', 'model_state' (pycls) or 'model'; .safetensors too) strictly, and with --eval-root "
        "measures its top-1/top-5 error on an ImageFolder tree (resize 256, center crop 224, ImageNet mean/std).",
    )
    lw.add_argument("name", metavar="NAME", help="a zoo model, e.g. RegNetX-400MF or regnety_1.6gf")
    lw.add_argument("path", metavar="PATH", type=Path, help="the checkpoint file")
    lw.add_argument(
        "--source", choices=("auto", "timm", "pycls", "netspaces"), default="auto", help="tensor naming (default: auto)"
    )
    lw.add_argument(
        "--eval-root", type=Path, default=None, metavar="DIR", help="ImageFolder tree DIR/<class>/<image>, e.g. .../val"
    )
    lw.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="first N images per class")
    lw.add_argument("--batch", type=_positive_int, default=50, metavar="B", help="evaluation batch (default: 50)")
    lw.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    lw.set_defaults(func=cmd_load_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"netspaces: error: {e}", file=sys.stderr)
        return 2
    except record.DiskFull as e:
        print(f"netspaces: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `netspaces sample ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
