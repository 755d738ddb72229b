"""`make figures`: small-scale versions of the paper's Figures 5-9 on CIFAR-10.

Trains populations of AnyNetX_A, AnyNetX_E and RegNetX (12 models each in the 200mf
regime, 5 epochs on a class-balanced 10k-image subset by default), then `netspaces analyze`
draws the error EDFs (plain and normalized), error against each design parameter with its
bootstrap good range, the per-block widths of the best models with their quantized-linear
fits, and the complexity scatter, plus report.html — under OUT (outputs/paper/figures).
Sizes, epochs, regime, data and launcher come from flags or environment variables
(N, EPOCHS, REGIME, PER_CLASS, DATA_ROOT, SPACES, OUT, LAUNCHER, JOBS).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import populations as pop  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    s = pop.parse_setup("figures", __doc__, argv, spaces="anynetx_a anynetx_e regnetx", out="outputs/paper/figures")
    if s is None:
        return 2
    steps = len(s.spaces) + 2  # sample, one sweep per space, analyze
    pop.step(f"1/{steps} sample: {s.n} models per space in {s.regime}")
    pop.show_samples(s)
    for i, space in enumerate(s.spaces, 2):
        pop.step(f"{i}/{steps} train {space}: {s.epochs} epochs, {s.per_class or 'all'} CIFAR-10 images per class")
        pop.train_population(s, space)
    pop.step(f"{steps}/{steps} analyze")
    out = s.out / "analysis"
    pop.analyze(s, out)
    pngs = sorted(out.rglob("*.png"))
    print(f"\n{len(pngs)} figures in {out}:")
    for png in pngs:
        print(f"  {png.relative_to(out)}")
    print(f"report: {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
