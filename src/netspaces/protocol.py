"""Committed experiment protocols (protocols/*.yaml): every choice of a reproduction fixed,
with its source, before its confirmatory results are seen.

A run that follows a protocol carries the hash of the protocol file (config key `protocol`,
a label); a run that deviates from it is exploratory and says so. A confirmatory seed runs
only while the file is exactly the committed one, so its results cannot have shaped it.
Torch-free.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from netspaces.errors import UserError

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"

# protocol key -> (the run's setting it fixes, how it is spelled on the command line)
FIXED = {
    "spaces": "SPACES",
    "draw": "space.draw",
    "regime": "REGIME",
    "stem": "model.stem",
    "epochs": "EPOCHS",
    "per_class": "PER_CLASS",
    "models_per_space": "N",
}
STUDY_KEYS = ("name", "version", "base", "spaces", "models_per_space", "grid", "confirmatory_seeds", "alpha")
STUDY_KEYS += ("power_target", "cpu_hours_cap")
CHAIN_KEYS = ("name", "version", "base", "spaces", "steps", "rules", "sweep_seed", "budget_core_hours", "trends")


@dataclass(frozen=True)
class Protocol:
    path: Path
    values: dict
    hash: str  # first 12 hex of the file's sha256

    def __getitem__(self, key: str):
        return self.values[key]

    @property
    def label(self) -> str:
        return f"{self.values['name']} v{self.values['version']} ({self.hash})"

    def deviations(self, setting: dict) -> list[str]:
        """'N=12 (protocol: 20)' for each fixed choice `setting` does not follow."""
        out = []
        for key, spelled in FIXED.items():
            want, got = self.values[key], setting.get(key)
            if key == "spaces":
                want, got = " ".join(want), " ".join(got or ())
            if str(got).lower() != str(want).lower():
                out.append(f"{spelled}={got} (protocol: {want})")
        return out

    def is_committed(self) -> bool | None:
        """True when the file equals its committed version; None outside a git checkout."""
        try:
            tracked = subprocess.run(
                ["git", "ls-files", "--error-unmatch", self.path.name],
                cwd=self.path.parent,
                capture_output=True,
            )
            if tracked.returncode != 0:
                return False if _in_git(self.path.parent) else None
            diff = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", self.path.name], cwd=self.path.parent)
            return diff.returncode == 0
        except FileNotFoundError:  # no git
            return None


def _in_git(folder: Path) -> bool:
    r = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "true"


def load_protocol(name_or_path: str | Path) -> Protocol:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROTOCOLS / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(PROTOCOLS.glob("*.yaml")))
        raise UserError(f"no protocol {str(name_or_path)!r}; known: {known}")
    raw = path.read_bytes()
    values = OmegaConf.to_container(OmegaConf.create(raw.decode()))
    # a study (a grid of settings) and a chain (steps between spaces) refine a base protocol
    needed = (
        STUDY_KEYS
        if "grid" in values
        else CHAIN_KEYS
        if "steps" in values
        else (*FIXED, "name", "version", "alpha", "confirmatory_seeds")
    )
    missing = [k for k in needed if k not in values]
    if missing:
        raise UserError(f"protocol {path} lacks {', '.join(missing)}")
    return Protocol(path.resolve(), values, hashlib.sha256(raw).hexdigest()[:12])
