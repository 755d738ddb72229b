"""`netspaces` command line: describe, sample, spaces (+ analyze, collect, time when present).

Bad input ends with one line `netspaces: error: …` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from netspaces.errors import UserError

# Subcommands that live with their subsystems: module path → provides register(subparsers).
PLUGINS = ("netspaces.analysis.cli", "netspaces.train.cli", "netspaces.timing")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default also prints usage)
        raise UserError(f"{self.prog}: {message}")


def _describe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a zoo model, e.g. RegNetX-400MF or regnety_1.6gf")
    p.add_argument("--depth", type=int, help="d: number of blocks")
    p.add_argument("--w0", type=int, help="initial width (multiple of 8)")
    p.add_argument("--wa", type=float, help="width slope")
    p.add_argument("--wm", type=float, help="width multiplier (> 1)")
    p.add_argument("--group-w", type=int, help="group width g")
    p.add_argument("--bot-mul", type=float, default=1.0, help="bottleneck multiplier (1/b), default 1")
    p.add_argument("--se-r", type=float, default=0.0, help="squeeze-excitation ratio (Y block: 0.25)")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--json", action="store_true", help="one JSON object")


def _spec_from_args(a) -> tuple[str, object]:
    from netspaces.regnet import RegNetParams
    from netspaces.zoo import canonical_name, get_model_spec

    regnet_flags = [a.depth, a.w0, a.wa, a.wm, a.group_w]
    if a.name:
        if any(v is not None for v in regnet_flags):
            raise UserError("give either a model name or --depth/--w0/--wa/--wm/--group-w, not both")
        return canonical_name(a.name), get_model_spec(a.name)
    if any(v is None for v in regnet_flags):
        missing = [f for f, v in zip(("--depth", "--w0", "--wa", "--wm", "--group-w"), regnet_flags) if v is None]
        raise UserError(f"describe needs a model name or all of --depth --w0 --wa --wm --group-w (missing {' '.join(missing)})")
    p = RegNetParams(a.depth, a.w0, a.wa, a.wm, a.group_w, a.bot_mul, a.se_r)
    name = f"RegNet(d={a.depth}, w0={a.w0}, wa={a.wa:g}, wm={a.wm:g}, g={a.group_w}, b={a.bot_mul:g}" + (f", se={a.se_r:g})" if a.se_r else ")")
    return name, p.to_spec()


def cmd_describe(a) -> int:
    from netspaces.complexity import complexity

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
    print(f"flops {cx['flops']:,} ({cx['flops'] / 1e9:.3f} G)  params {cx['params']:,} ({cx['params'] / 1e6:.2f} M)  "
          f"acts {cx['acts']:,} ({cx['acts'] / 1e6:.2f} M)")
    return 0


def cmd_sample(a) -> int:
    from netspaces.sampling import sample_models

    if a.max_candidates < 1:
        raise UserError(f"--max-candidates must be >= 1; got {a.max_candidates}")
    for s in sample_models(a.space, a.regime, a.n, a.seed, block=a.block, max_candidates=a.max_candidates):
        d = s.to_dict()
        if a.json:
            print(json.dumps(d))
        else:
            print(f"{d['name']}  ws={d['ws']} ds={d['ds']} gs={d['gs']} bs={d['bs']}  "
                  f"flops={d['flops'] / 1e6:.1f}M params={d['params'] / 1e6:.2f}M acts={d['acts'] / 1e6:.2f}M")
    return 0


def cmd_spaces(a) -> int:
    from netspaces.tables import table1

    rows = table1()
    if a.json:
        print(json.dumps(rows))
        return 0
    print(f"{'space':<16} {'dim':>3} {'size':>8} {'exact':>10}  restriction")
    for r in rows:
        print(f"{r['space']:<16} {r['dim']:>3} {r['size_paper']:>8.1e} {r['size_exact']:>10.2e}  {r['restriction']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="netspaces", description="Design network design spaces (RegNet, CVPR 2020).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("describe", help="widths, depths, groups, flops/params/acts of a model")
    _describe_args(d)
    d.set_defaults(func=cmd_describe)

    s = sub.add_parser("sample", help="sample models from a design space inside a flop regime")
    s.add_argument("--space", required=True)
    s.add_argument("--regime", required=True)
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--block", choices=["x", "y", "r", "v"], help="override the space's block")
    s.add_argument("--max-candidates", type=int, default=2_000_000, help="try budget before giving up")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_sample)

    t = sub.add_parser("spaces", help="Table 1: design spaces, dimensions and sizes")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_spaces)

    for mod in PLUGINS:
        try:
            importlib.import_module(mod).register(sub)
        except ModuleNotFoundError as e:  # a subsystem not installed in this checkout
            if not (e.name and mod.startswith(e.name)):
                raise
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"netspaces: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `netspaces sample ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
