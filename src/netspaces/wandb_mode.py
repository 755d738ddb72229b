"""Whether W&B runs online or offline: one decision for training and analysis. Torch-free.

Online only with a key (WANDB_API_KEY or ~/.netrc from `wandb login`), never waiting on the
network without one; WANDB_MODE or an explicit setting wins.
"""

from __future__ import annotations

import netrc
import os

MODES = ("online", "offline", "disabled")


def has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None) -> str:
    """The explicit setting, else WANDB_MODE, else online only when a key is available."""
    return requested or os.environ.get("WANDB_MODE") or ("online" if has_key() else "offline")
