"""`make reproduce-small`: the paper's main finding end to end on 2 CPU cores in under 30 min,
under the committed protocol protocols/reproduce_small.yaml.

sample → train → collect → analyze → verdict, for RegNetX against AnyNetX_A with every choice
(draws, stem, regime, schedule, data subset, models per space, statistic and threshold) read
from the protocol. SEED defaults to its first confirmatory seed; a confirmatory seed runs
only while the protocol file equals its committed version. Any knob changed from the
protocol (N, EPOCHS, REGIME, PER_CLASS, SPACES) makes the run exploratory, said loudly, and
its records do not carry the protocol's hash. Ends with n per space, medians with bootstrap
CIs, KS D with its exact p, the power, and a one-line verdict.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import populations as pop  # noqa: E402
from netspaces.errors import UserError  # noqa: E402
from netspaces.protocol import load_protocol  # noqa: E402

PROG = "reproduce-small"


def main(argv: list[str] | None = None) -> int:
    import argparse

    try:
        protocol = load_protocol("reproduce_small")
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    defaults = {
        "n": protocol["models_per_space"],
        "epochs": protocol["epochs"],
        "regime": protocol["regime"],
        "per_class": protocol["per_class"],
        "seed": protocol["confirmatory_seeds"][0],
    }
    pop.add_arguments(p, spaces=" ".join(protocol["spaces"]), out="outputs/paper/reproduce_small", defaults=defaults)
    a = p.parse_args(argv)
    try:
        s = pop.setup_from(a)
        if len(s.spaces) != 2:
            raise UserError(f"{PROG} compares 2 spaces; got SPACES={' '.join(s.spaces)}")
        setting = {
            "spaces": list(s.spaces),
            "draw": protocol["draw"],
            "regime": s.regime,
            "stem": protocol["stem"],
            "epochs": s.epochs,
            "per_class": s.per_class or "all",
            "models_per_space": s.n,
        }
        deviations = protocol.deviations(setting)
        confirmatory = not deviations and s.seed in protocol["confirmatory_seeds"]
        if confirmatory and protocol.is_committed() is False:
            raise UserError(
                f"{protocol.path} differs from its committed version; a confirmatory seed ({s.seed}) runs only "
                "under a committed protocol (commit it, or pick another SEED for an exploratory run)"
            )
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    from dataclasses import replace

    s = replace(s, stem=protocol["stem"], draw=protocol["draw"], protocol=None if deviations else protocol.hash)
    if deviations:
        print(f"EXPLORATORY run: differs from protocol {protocol.label} in " + ", ".join(deviations), flush=True)
    else:
        kind = "confirmatory" if confirmatory else "exploratory (not a confirmatory seed)"
        print(f"protocol {protocol.label}: sweep seed {s.seed}, {kind}", flush=True)

    t0 = time.perf_counter()
    pop.step(f"1/5 sample: {s.n} models per space in {s.regime} (draw {s.draw})")
    pop.show_samples(s)
    for space in s.spaces:
        pop.step(
            f"2/5 train {space}: {s.epochs} epochs, {s.per_class or 'all'} CIFAR-10 images per class, stem {s.stem}"
        )
        pop.train_population(s, space)
    pop.step("3/5 collect")
    for space in s.spaces:
        pop.netspaces("collect", str(s.sweep_dir(space)))
    pop.step("4/5 analyze and 5/5 verdict")
    out = s.out / "analysis"
    pop.analyze(s, out)
    minutes = (time.perf_counter() - t0) / 60
    from netspaces.analysis.verdict import errors_from_edf_table, verdict

    errors = errors_from_edf_table(out / "edf.csv")
    lines = verdict(errors, alpha=float(protocol["alpha"]), power=float(protocol["power_target"]))
    print(f"\nreport: {out / 'report.html'}  ({minutes:.1f} min end to end)")
    print("\n".join(lines[:-1]))
    label = protocol.label if not deviations else "exploratory, outside the protocol"
    print(f"{lines[-1]}  [{label}, sweep seed {s.seed}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
