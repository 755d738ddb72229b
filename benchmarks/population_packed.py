"""population_packed: models per hour of a slice of `make reproduce-small` (the 32 px CIFAR-10
populations, `hydra/launcher=joblib` 2 jobs x 1 thread, as scripts/populations.py runs them)
trained with `sweep.pack=K` against the same sweep without packing. K = models per space / 2:
each of the two workers trains one pack of K models on one data stream. Same samples, data,
schedule and evaluation: the packed models must reach exactly the same errors (compared).
End-to-end wall time of the commands, process start included, in alternating rounds after an
untimed warm-up (the decoded-data cache warm, as a user's second population finds it).
R = packed / solo models per hour (medians). On a 2-core CPU expect little beyond the shared
data loading and start-up; the GPU numbers are scripts/gpu_check.sh's (benchmarks/gpu_check.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import Result, main, median
from benchmarks.population_vs_plain_loop import DATA, JOBS, _env, netspaces_side

# per mode: spaces, models per space, epochs, images per class (both splits), timed rounds
PLAN = {
    "full": (("regnetx", "anynetx_a"), 8, 5, 500, 2),
    "quick": (("regnetx",), 4, 1, 50, 1),
    "toy": (("regnetx",), 2, 1, 5, 1),
}


def pack_size(n: int) -> int:
    """Models per pack: one pack per joblib worker."""
    return max(1, -(-n // JOBS))


def run(mode: str = "full") -> list[Result]:
    if not (DATA / "train").is_dir():
        raise RuntimeError(f"population_packed needs CIFAR-10 as image files under {DATA}")
    spaces, n, epochs, per_class, rounds = PLAN[mode]
    k = pack_size(n)
    packed_args = [f"sweep.pack={k}"]
    models = len(spaces) * n
    t_solo, t_packed, same = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = _env(tmp, mode)
        if mode != "toy":  # untimed: the decoded-data cache, the page cache, Python's bytecode
            warm = ["trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]
            netspaces_side(tmp / "warm", spaces[:1], 1, 1, per_class, env, warm)
        for i in range(rounds):  # alternating: solo, packed | packed, solo | ...
            sides = [("solo", [], t_solo), ("packed", packed_args, t_packed)]
            errors = {}
            for name, extra, times in sides[:: 1 if i % 2 == 0 else -1]:
                seconds, errors[name] = netspaces_side(tmp / f"{name}{i}", spaces, n, epochs, per_class, env, extra)
                times.append(seconds)
            if len(errors["solo"]) != models or len(errors["packed"]) != models:
                raise RuntimeError(
                    f"not every model trained ok: solo {len(errors['solo'])}, packed "
                    f"{len(errors['packed'])} of {models}"
                )
            same.append(errors["solo"] == errors["packed"])
    per_hour = lambda ts: models / median(ts) * 3600  # noqa: E731
    return [
        Result(
            "population_packed",
            per_hour(t_packed),
            per_hour(t_solo),
            "models/h",
            True,
            None,
            {
                "pack": k,
                "models": models,
                "epochs": epochs,
                "images_per_class": per_class,
                "rounds": rounds,
                "solo_s": t_solo,
                "packed_s": t_packed,
                "same_errors": same,  # packed models compute what their solo runs compute
                "launcher": f"joblib {JOBS} jobs x 1 thread",
            },
        )
    ]


if __name__ == "__main__":
    main(run, __doc__)
