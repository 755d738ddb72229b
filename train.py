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

import hydra  # noqa: E402

from netspaces.train.hydra_conf import register  # noqa: E402  (torch-free)

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg):
    from netspaces.train.run import hydra_job  # torch/Lightning load only once a run starts

    return hydra_job(cfg)


if __name__ == "__main__":
    from netspaces.train.hydra_conf import command_line_error  # noqa: E402

    problem = command_line_error(sys.argv[1:], str(Path(__file__).resolve().parent / "conf"))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    from netspaces.train.signals import Interrupted  # noqa: E402

    try:
        main()
    except Interrupted as sig:  # between the samples of a sweep (within one, the run says so itself)
        print(f"{sig}: the sweep stopped; rerun the same command to resume", file=sys.stderr)
        sys.exit(sig.exit_code)
