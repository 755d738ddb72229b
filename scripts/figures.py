"""`make figures`: small-scale versions of the paper's Figures 5-14 on CIFAR-10.

By default it trains the paper's chain under protocols/chain.yaml (AnyNetX_A, B, C, D, E,
RegNetX and RegNetY, at the setting the scale study picked; `make chain`, resumable, ~2 hours
of 2 cores), then `netspaces analyze` draws the error EDFs (plain and normalized), error
against each design parameter with its bootstrap good range, the per-block widths of the best
models with their quantized-linear fits, and the complexity scatter, plus report.html, under
OUT/analysis (outputs/paper/chain/analysis).

Setting any of N, EPOCHS, REGIME, PER_CLASS, SPACES or SEED (flag or environment variable)
trains ad hoc populations instead (not the protocol: nothing goes to docs/findings/), e.g.
`make figures N=8 EPOCHS=2 SPACES="anynetx_a regnetx"` for a quick look, under
outputs/paper/figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import chain  # noqa: E402
import populations as pop  # noqa: E402
from netspaces.errors import UserError  # noqa: E402

PROG = "figures"
AD_HOC = {"N": "--n", "EPOCHS": "--epochs", "REGIME": "--regime", "PER_CLASS": "--per-class", "SPACES": "--spaces", "SEED": "--seed"}  # fmt: skip
CHAIN_SPACES = "anynetx_a anynetx_b anynetx_c anynetx_d anynetx_e regnetx regnety"


def ad_hoc(argv: list[str]) -> bool:
    """Whether a knob of the ad hoc populations was given (flag or environment variable)."""
    flags = {arg.split("=", 1)[0] for arg in argv}
    return any(os.environ.get(env, "").strip() or flag in flags for env, flag in AD_HOC.items())


def protocol_setup(argv: list[str]) -> pop.Setup | None:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    chain.add_arguments(p)
    try:
        return chain.plan(p.parse_args(argv))
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if ad_hoc(argv):
        s = pop.parse_setup(PROG, __doc__, argv, spaces=CHAIN_SPACES, out="outputs/paper/figures")
        train = lambda: [pop.train_population(s, space) for space in s.spaces]  # noqa: E731
    else:
        s = protocol_setup(argv)
        train = lambda: chain.train(s)  # noqa: E731
    if s is None:
        return 2
    pop.step(f"sample: {s.n} models per space in {s.regime}, {s.epochs} epochs, {s.per_class or 'all'} images/class")
    pop.show_samples(s)
    train()
    pop.step("analyze")
    out = s.out / "analysis"
    pop.analyze(s, out)
    pngs = sorted(out.rglob("*.png"))
    print(f"\n{len(pngs)} figures in {out}:")
    for png in pngs:
        print(f"  {png.relative_to(out)}")
    print(f"report: {out / 'report.html'}")
    if s.protocol is not None:
        import findings

        return findings.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
