"""A DDP rank started by its job (netspaces.train.ddp): `python -m netspaces.train.worker
CONFIG` trains exactly the job's resolved config as rank LOCAL_RANK."""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from netspaces.train.run import train

if __name__ == "__main__":
    train(OmegaConf.load(sys.argv[1]))
