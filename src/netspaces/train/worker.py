"""A DDP rank started by its job (netspaces.train.ddp): `python -m netspaces.train.worker
CONFIG` trains exactly the job's resolved config as rank LOCAL_RANK. Its output reaches the
job's log prefixed `[rank k]`; its last lines go into the record if it dies."""

from __future__ import annotations

import logging
import os
import sys


def main(config: str) -> int:
    # first, before the imports: a rank that dies early still says it started
    print(f"DDP worker started (pid {os.getpid()})", flush=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from omegaconf import OmegaConf

    from netspaces.train.run import train
    from netspaces.train.signals import Interrupted

    try:
        train(OmegaConf.load(config))
    except Interrupted as sig:  # stopped by its job (another rank failed, or a signal): nothing to add
        return sig.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
