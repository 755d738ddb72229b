"""Train one model, or with -m a population of models sampled from a design space.

    python train.py                                   # the default model on digits (CPU)
    python train.py -m space=regnetx regime=400mf     # sweep.n models, one record each
    python train.py model=regnety_4.0gf data=imagenet data.root=/data/imagenet trainer=ddp

Configs live in conf/ (see conf/train.yaml); the work is done by netspaces.train.
"""

import os
import sys
from pathlib import Path

# Run from a plain checkout too: this checkout's package first, also in launched workers.
_SRC = str(Path(__file__).resolve().parent / "src")
sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)
# How idle OpenMP threads wait is fixed once torch loads: spin (2x faster) on CPUs we have to
# ourselves, sleep when other processes already use them (spinning there cost up to 45x).
from netspaces.openmp import choose_wait_policy  # noqa: E402  (torch-free)

_why = choose_wait_policy()
if _why:
    print(f"netspaces: {_why}", file=sys.stderr, flush=True)

import hydra  # noqa: E402

from netspaces.train.hydra_conf import register  # noqa: E402

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    from netspaces.train.run import hydra_job  # torch/Lightning load only once a run starts

    return hydra_job(cfg)


if __name__ == "__main__":
    main()
