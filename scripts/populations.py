"""Small-scale populations on CIFAR-10, shared by `make figures` and `make reproduce-small`:
train a population per design space with train.py's multirun, then compare them with
`netspaces analyze`.

The set-up (DESIGN.md, environment facts): a class-balanced CIFAR-10 train subset (1,000
images per class by default), 32 px, the population schedule for a few epochs, sampled
models of a flop regime (200mf). Every knob has an environment variable (the Makefile passes
them through) and a flag. Runs land in OUT/sweeps/<space>-…/; rerunning the same
command skips finished models and resumes interrupted ones (train.py's sweep layout).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10"
KEEP = (  # the columns a findings table keeps (a few KB per population)
    "status name space regime sample sweep_seed seed flops params acts top1_err top5_err epochs train_time_s train_cpu_s "
    "identity data schedule depth w0 wa wm group_w bot_mul ds ws gs bs"
).split()


@dataclass(frozen=True)
class Setup:
    spaces: tuple[str, ...]
    n: int  # models per space
    epochs: int
    regime: str
    per_class: int | None  # train images per class (the test split is capped the same way)
    data_root: Path
    out: Path
    seed: int  # sweep seed: which models are sampled
    launcher: str  # basic (sequential) | joblib
    jobs: int  # joblib jobs
    stem: str | None = None  # model.stem (None: the spec's own, stride 2)
    draw: str | None = None  # space.draw (None: the default, pycls's conventions)
    protocol: str | None = None  # hash of the protocol file the run follows (a label in records)

    def sweep_name(self, space: str) -> str:
        extra = "".join(f"-{v}" for v in (self.stem and f"{self.stem}stem", self.draw) if v)
        return f"{space}-{self.regime}-cifar10-{self.per_class or 'all'}pc-e{self.epochs}{extra}-s{self.seed}"

    def sweep_dir(self, space: str) -> Path:
        return self.out / "sweeps" / self.sweep_name(space)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value.strip() else default


def add_arguments(p: argparse.ArgumentParser, *, spaces: str, out: str, defaults: dict | None = None) -> None:
    """Flags with defaults from the environment (SPACES, N, EPOCHS, REGIME, PER_CLASS,
    DATA_ROOT, OUT, SEED, LAUNCHER, JOBS) so `make figures N=24` works; `defaults` (a
    protocol's values) replace the built-in ones."""
    d = {"n": "12", "epochs": "5", "regime": "200mf", "per_class": "1000", "seed": "0", **(defaults or {})}
    p.add_argument("--spaces", nargs="+", default=_env("SPACES", spaces).split())
    p.add_argument("--n", type=int, default=int(_env("N", str(d["n"]))), help="models per space")
    p.add_argument("--epochs", type=int, default=int(_env("EPOCHS", str(d["epochs"]))))
    p.add_argument("--regime", default=_env("REGIME", str(d["regime"])))
    p.add_argument(
        "--per-class",
        default=_env("PER_CLASS", str(d["per_class"])),
        help="train images per class (1000: a 10k subset); 'all' for the full set",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=Path(_env("DATA_ROOT", str(DEFAULT_DATA))),
        help="CIFAR-10: an ImageFolder tree {train,test}/<class>/ or torchvision's format",
    )
    p.add_argument("--out", type=Path, default=Path(_env("OUT", str(REPO / out))))
    p.add_argument("--seed", type=int, default=int(_env("SEED", str(d["seed"]))), help="sweep seed")
    # joblib by default: JOBS one-thread jobs trained 1.25x more models per hour than one
    # two-thread process on 2 cores (benchmarks/population.py)
    p.add_argument(
        "--launcher",
        choices=("basic", "joblib"),
        default=_env("LAUNCHER", "joblib"),
        help="joblib: JOBS models at once, one thread each (default); basic: one after another",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=int(_env("JOBS", str(len(os.sched_getaffinity(0))))),
        help="joblib jobs (default: the CPUs)",
    )


def setup_from(a: argparse.Namespace) -> Setup:
    from netspaces.errors import UserError
    from netspaces.space.regimes import get_regime
    from netspaces.space.spaces import get_space

    for s in a.spaces:
        get_space(s)  # one clear line for an unknown space
    get_regime(a.regime)
    if a.n < 2 or a.epochs < 1 or a.jobs < 1:
        raise UserError(f"N must be >= 2 and EPOCHS, JOBS >= 1; got N={a.n} EPOCHS={a.epochs} JOBS={a.jobs}")
    per_class = None if str(a.per_class).lower() == "all" else int(a.per_class)
    if per_class is not None and per_class < 1:
        raise UserError(f"PER_CLASS must be >= 1 or 'all'; got {a.per_class}")
    root = a.data_root.resolve()
    if not ((root / "train").is_dir() or (root / "cifar-10-batches-py").is_dir()):
        raise UserError(
            f"DATA_ROOT={root} holds no CIFAR-10 (want {root}/train/<class>/*.jpg or "
            f"{root}/cifar-10-batches-py); point DATA_ROOT at a copy"
        )
    return Setup(
        tuple(s.lower() for s in a.spaces),
        a.n,
        a.epochs,
        a.regime.lower(),
        per_class,
        root,
        a.out.resolve(),
        a.seed,
        a.launcher,
        a.jobs,
    )


def parse_setup(
    prog: str, doc: str, argv: list[str] | None, *, spaces: str, out: str, n_spaces: int | None = None
) -> Setup | None:
    """A script's flags as a Setup; a bad value prints one line `PROG: error: …` and gives None."""
    from netspaces.errors import UserError

    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    add_arguments(p, spaces=spaces, out=out)
    a = p.parse_args(argv)
    try:
        s = setup_from(a)
        if n_spaces is not None and len(s.spaces) != n_spaces:
            raise UserError(f"{prog} compares {n_spaces} spaces; got SPACES={' '.join(s.spaces)}")
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return None
    return s


def train_overrides(s: Setup, space: str) -> list[str]:
    ov = [
        "-m",
        f"space={space}",
        f"regime={s.regime}",
        "data=cifar10",
        f"data.root={s.data_root}",
        "schedule=population",
        f"schedule.epochs={s.epochs}",
        f"sweep.n={s.n}",
        f"sweep.seed={s.seed}",
        f"hydra.sweep.dir={s.sweep_dir(space)}",
        "trainer.progress_bar=false",
    ]  # paths.output stays outputs/: its cache/ of decoded CIFAR-10 is shared
    if s.per_class is not None:
        ov.append(f"data.limit_per_class={s.per_class}")
    if s.stem is not None:
        ov.append(f"model.stem={s.stem}")
    if s.draw is not None:
        ov.append(f"space.draw={s.draw}")
    if s.protocol is not None:
        ov.append(f"protocol={s.protocol}")
    if s.launcher == "joblib":  # one thread per job: JOBS jobs share the cores without oversubscription
        ov += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={s.jobs}", "trainer.threads=1"]
    return ov


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("WANDB_MODE", "offline")
    return env


STARTED = time.perf_counter()  # when the script started: every step says how long it has run


def step(title: str) -> None:
    """A step's heading with the time since the script started (a sweep inside it prints
    "model k of N done, ETA" after each model)."""
    print(f"\n== {title}  [{_clock(time.perf_counter() - STARTED)} elapsed]", flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def show_samples(s: Setup) -> None:
    """What each population will hold (the sweep re-derives exactly these models)."""
    from netspaces.space.sampling import sample_models

    for space in s.spaces:
        got = sample_models(space, s.regime, s.n, s.seed, draw=s.draw)
        flops = [x.flops / 1e6 for x in got]
        print(
            f"{space:>12}: {len(got)} models, {min(flops):.0f}-{max(flops):.0f} MF at 224 px, "
            f"depths {min(x.spec.depth for x in got)}-{max(x.spec.depth for x in got)}"
        )


def train_population(s: Setup, space: str) -> Path:
    cmd = [sys.executable, str(REPO / "train.py"), *train_overrides(s, space)]
    print("$ " + " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=child_env())
    if done.returncode != 0:
        raise SystemExit(
            f"training the {space} population failed (exit {done.returncode}); "
            "rerun the same command to finish the missing models"
        )
    print(f"{space}: trained in {time.perf_counter() - t0:.0f} s -> {s.sweep_dir(space)}", flush=True)
    return s.sweep_dir(space)


def netspaces(*args: str) -> None:
    cmd = [sys.executable, "-m", "netspaces", *args]
    print("$ netspaces " + " ".join(args), flush=True)
    done = subprocess.run(cmd, cwd=REPO, env=child_env())
    if done.returncode != 0:
        raise SystemExit(f"`netspaces {args[0]}` failed (exit {done.returncode})")


def export(sweep_dir: Path, dest: Path, protocol_hash: str) -> int:
    """The sweep's population table, trimmed to KEEP, as dest; returns its rows. Only records
    made under `protocol_hash` are exported (anything else in the directory is refused)."""
    import pandas as pd

    from netspaces.errors import UserError
    from netspaces.record import atomic_target, find_records, table_row

    records = find_records(sweep_dir)
    other = sorted({str((r.get("config") or {}).get("protocol")) for r in records} - {protocol_hash})
    if other:
        raise UserError(f"{sweep_dir} holds records of protocol {', '.join(other)}, not {protocol_hash}")
    rows = [table_row(r) for r in sorted(records, key=lambda r: r.get("sample") or 0)]
    table = pd.DataFrame(rows)
    table = table[[c for c in KEEP if c in table.columns]].assign(protocol=protocol_hash)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(dest) as tmp:  # fsynced, renamed: never half a table
        table.to_csv(tmp, index=False)
    return len(table)


LEDGER = "ledger.jsonl"  # beside a findings table: one line per invocation that trained it


def read_ledger(folder: Path) -> list[dict]:
    """The ledger's lines beside a findings table, oldest first; [] before the first run."""
    path = folder / LEDGER
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _ledger_write(folder: Path, line: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LEDGER, "a") as f:
        f.write(json.dumps(line) + "\n")


def append_ledger(folder: Path, wall_s: float, sweep_dir: Path, began: datetime, **keys) -> None:
    """Wall time of one sweep invocation (a resumed sweep adds a line), for the findings' run
    times, and how many models it finished (0: a re-run over a finished population, which the
    run times leave out); `keys` say which population it trained (row, seed, space)."""
    line = {**keys, "wall_s": round(wall_s, 1), "models": len(_finished_since(sweep_dir, began))}
    _ledger_write(folder, {**line, "at": datetime.now(timezone.utc).strftime("%FT%T%z")})


def _finished_since(sweep_dir: Path, began: datetime) -> list[datetime]:
    from netspaces.record import find_records

    ends = [datetime.fromisoformat(r["finished_at"]) for r in find_records(sweep_dir) if r.get("finished_at")]
    return [e for e in ends if e > began]


def open_ledger(folder: Path, sweep_dir: Path, **keys) -> datetime:
    """Note that an invocation starts, and return when. An earlier one that was killed (its
    start line has no wall line after it) is first closed, timed to its last finished model: a
    run cut by a stop still counts in the run times, not the model it lost."""
    mine = [e for e in read_ledger(folder) if all(e.get(k) == v for k, v in keys.items())]
    if mine and "started" in mine[-1]:
        began = datetime.fromisoformat(mine[-1]["started"])
        ends = _finished_since(sweep_dir, began)
        end = max(ends, default=began)
        line = {**keys, "wall_s": round((end - began).total_seconds(), 1), "models": len(ends)}
        _ledger_write(folder, {**line, "at": end.strftime("%FT%T%z"), "cut": True})
    now = datetime.now(timezone.utc).replace(microsecond=0)
    _ledger_write(folder, {**keys, "started": now.strftime("%FT%T%z")})
    return now


def train_and_export(s: Setup, space: str, dest: Path, protocol_hash: str, ledger: dict) -> None:
    """Train (or finish) one population, collect it, export its table as dest and add its wall
    time, keyed by `ledger` (row, seed, space), to the ledger beside dest."""
    began = open_ledger(dest.parent, s.sweep_dir(space), **ledger)
    t0 = time.perf_counter()
    train_population(s, space)
    netspaces("collect", str(s.sweep_dir(space)))
    print(f"{dest.name}: {export(s.sweep_dir(space), dest, protocol_hash)} models", flush=True)
    append_ledger(dest.parent, time.perf_counter() - t0, s.sweep_dir(space), began, **ledger)


def analyze(s: Setup, out: Path, *, n_boot: int = 10_000) -> dict:
    """`netspaces analyze` over the spaces' sweeps; returns summary.json."""
    dirs = [str(s.sweep_dir(space)) for space in s.spaces]
    netspaces("analyze", *dirs, "--out", str(out), "--n-boot", str(n_boot))
    return json.loads((out / "summary.json").read_text())
