"""`make reproduce-small`: the paper's main finding end to end on 2 CPU cores in under 30 min.

sample → train → collect → analyze → report, for RegNetX against AnyNetX_A: 12 models each
from the 200mf regime, 5 epochs on a class-balanced 10k-image CIFAR-10 subset (DESIGN.md:
at this scale RegNetX's error distribution is clearly better and narrower). Ends by printing
the KS statistic of the two error EDFs and its p-value. Knobs as for `make figures`
(N, EPOCHS, REGIME, PER_CLASS, DATA_ROOT, OUT, LAUNCHER, JOBS).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import populations as pop  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    s = pop.parse_setup(
        "reproduce-small", __doc__, argv, spaces="regnetx anynetx_a", out="outputs/paper/reproduce_small", n_spaces=2
    )
    if s is None:
        return 2
    t0 = time.perf_counter()
    pop.step(f"1/5 sample: {s.n} models per space in {s.regime}")
    pop.show_samples(s)
    for space in s.spaces:
        pop.step(f"2/5 train {space}: {s.epochs} epochs, {s.per_class or 'all'} CIFAR-10 images per class")
        pop.train_population(s, space)
    pop.step("3/5 collect")
    for space in s.spaces:
        pop.netspaces("collect", str(s.sweep_dir(space)))
    pop.step("4/5 analyze and 5/5 report")
    out = s.out / "analysis"
    summary = pop.analyze(s, out)
    ((pair, ks),) = summary["ks"].items()
    minutes = (time.perf_counter() - t0) / 60
    print(f"\nreport: {out / 'report.html'}  ({minutes:.1f} min end to end)")
    print(f"KS {pair}: D = {ks['plain']:.3f} (normalized EDFs {ks['normalized']:.3f}), p-value = {ks['p_value']:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
