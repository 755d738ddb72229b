"""`make chain`: the paper's design-space chain at CPU scale (protocols/chain.yaml).

Trains one population per space of the chain (AnyNetX_A, B, C, D, E, RegNetX, RegNetY) under
the base protocol's choices, at the setting the chain's rule picks from the scale study (as soon
as the study's finished rows decide it), with the number of models per space its budget rule
gives; exports each population's small table to docs/findings/chain/ and regenerates
docs/findings.md. The first training run freezes the setting and the models per space in
docs/findings/chain/plan.json: the study's later rows change the measured cost per model, and
a resumed chain must train the same populations. Rerunning the same command resumes (finished
models are never trained again). `--plan` prints the choice and trains nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
import findings  # noqa: E402
import populations as pop  # noqa: E402
from netspaces.errors import UserError  # noqa: E402
from netspaces.protocol import load_protocol  # noqa: E402

PROG = "chain"
CHAIN_TABLES = findings.TABLES / "chain"


def choose_setting(chain, study) -> tuple[int, int]:
    """(epochs, images per class) by the chain's rule; UserError while the study's finished rows
    do not yet decide it."""
    return findings.chain_setting(study, findings.scale_block(findings.TABLES / "scale", study)[2])


def core_seconds_per_model(epochs: int, per_class: int) -> float:
    """From the scale study's tables with CPU times: core-seconds per epoch x image per class."""
    import pandas as pd

    seconds = work = 0.0
    for m, path in findings.study_tables(findings.TABLES / "scale"):
        t = pd.read_csv(path)
        if "train_cpu_s" in t and t["train_cpu_s"].notna().all():
            seconds += float(t["train_cpu_s"].sum())
            work += len(t) * int(m["epochs"]) * int(m["per_class"])
    if work == 0:
        raise UserError("no scale-study table with CPU times yet: the models per space cannot be sized")
    return seconds / work * epochs * per_class


def models_per_space(chain, t_model: float) -> int:
    n = int(float(chain["budget_core_hours"]) * 3600 / (len(chain["spaces"]) * t_model))
    return max(4, min(64, n - n % 4))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", type=Path, default=Path(pop._env("DATA_ROOT", str(pop.DEFAULT_DATA))))
    p.add_argument("--out", type=Path, default=Path(pop._env("OUT", str(pop.REPO / "outputs/paper/chain"))))
    p.add_argument("--jobs", type=int, default=int(pop._env("JOBS", str(len(os.sched_getaffinity(0))))))


def plan(a: argparse.Namespace, *, committed: bool = True) -> pop.Setup:
    """The chain's populations: the frozen plan if the chain has started, else the setting and
    models per space its rules give now (UserError while the study does not decide them, or,
    with `committed`, while the protocol is edited)."""
    chain = load_protocol("chain")
    base, study = load_protocol(chain["base"]), load_protocol("scale_study")
    if committed and chain.is_committed() is False:
        raise UserError(f"{chain.path} differs from its committed version; the chain runs only as committed")
    frozen = findings.chain_plan(CHAIN_TABLES, chain)
    if frozen is not None:
        epochs, per_class, n = frozen["epochs"], frozen["per_class"], frozen["models_per_space"]
        source = f"frozen in {CHAIN_TABLES / findings.PLAN_NAME} on {frozen['frozen_at']}"
    else:
        epochs, per_class = choose_setting(chain, study)
        n = models_per_space(chain, core_seconds_per_model(epochs, per_class))
        source = "by the rules, from the scale study's tables"
    print(
        f"chain {chain.label}: {epochs} epochs, {per_class} images/class, {n} models per space, sweep seed {chain['sweep_seed']} ({source})"
    )
    return pop.Setup(
        tuple(chain["spaces"]), n, epochs, str(base["regime"]), per_class, a.data_root.resolve(), a.out.resolve(),
        int(chain["sweep_seed"]), "joblib", a.jobs, stem=str(base["stem"]), draw=str(base["draw"]), protocol=chain.hash,
    )  # fmt: skip


def freeze(s: pop.Setup) -> None:
    """Write the plan the chain's first training run uses (kept as it is once written)."""
    import json

    from netspaces.record import atomic_target

    path = CHAIN_TABLES / findings.PLAN_NAME
    if path.is_file():
        return
    plan = {"protocol": s.protocol, "epochs": s.epochs, "per_class": s.per_class, "models_per_space": s.n}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps({**plan, "frozen_at": time.strftime("%Y-%m-%d %H:%M %Z")}, indent=1) + "\n")


def train(s: pop.Setup) -> None:
    """Train (or finish) every population of the chain and export its table to docs/findings/chain/."""
    freeze(s)
    for space in s.spaces:
        pop.step(f"train {space}")
        pop.train_and_export(s, space, CHAIN_TABLES / f"{space}.csv", s.protocol, {"space": space})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument("--plan", action="store_true", help="print the setting and models per space; train nothing")
    a = p.parse_args(argv)
    try:
        s = plan(a, committed=not a.plan)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if a.plan:
        return 0
    train(s)
    return findings.main([])


if __name__ == "__main__":
    raise SystemExit(main())
