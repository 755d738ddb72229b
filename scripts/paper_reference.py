"""The published numbers (reference/pycls_zoo.csv) and our own runs' errors (RESULTS=dir),
keyed the same way so the paper tables can put them side by side."""

from __future__ import annotations

import csv
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# pycls's published numbers, copied into the repository from ../shared/reference so that a
# clone works on its own (tests/test_zoo_golden.py checks the copy against ../shared when present)
ZOO_CSV = REPO / "reference" / "pycls_zoo.csv"


@dataclass(frozen=True)
class Published:
    name: str
    flops: int
    params: int
    acts: int
    top1_err: float
    infer_ms: float | None  # 64 images on one V100 (pycls MODEL_ZOO)
    train_hr: float | None  # 100 epochs on 8 V100
    train_res: int


def _note(notes: str, key: str) -> str | None:
    m = re.search(rf"\b{re.escape(key)}=([0-9.]+)", notes)
    return m.group(1) if m else None


def published(path: Path = ZOO_CSV) -> dict[str, Published]:
    """Name (as published: RegNetX-400MF, ResNet-50, EfficientNet-B0) → the exact published numbers
    from the notes column (flops/params/acts from pycls's complexity JSON, error re-evaluated)."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            notes = row["notes"]
            flops, params, acts = (_note(notes, k) for k in ("flops", "params", "acts"))
            err = _note(notes, "top1_err_exact") or row["top1_err"]
            infer, train_hr, res = (_note(notes, k) for k in ("infer_ms", "train_hr", "train_res"))
            out[row["name"]] = Published(
                row["name"],
                int(flops),
                int(params),
                int(acts),
                float(err),
                float(infer) if infer else None,
                float(train_hr) if train_hr else None,
                int(res or 224),
            )
    return out


def model_key(name: str) -> str:
    """One key per network whatever the spelling: zoo names canonical (RegNetX-400MF), timm
    baselines by their timm name (EfficientNet-B0 → efficientnet_b0)."""
    from netspaces.errors import UserError
    from netspaces.models.baselines import baseline_key, is_baseline
    from netspaces.space.zoo import canonical_name

    if is_baseline(name):
        return baseline_key(name)
    try:
        return canonical_name(name)
    except UserError:
        return name.strip().lower()


def _records(results: Path) -> list[dict]:
    """Every run record below `results` (result.json), else the rows of population tables."""
    found = []
    for path in sorted(results.rglob("result.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(rec, dict):
            found.append(rec)
    if found:
        return found
    for path in sorted(results.rglob("population.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for path in sorted(results.rglob("population.csv")):
        with open(path, newline="") as f:
            found += list(csv.DictReader(f))
    return found


@dataclass(frozen=True)
class OurError:
    top1_err: float  # median over our finished runs of the model
    runs: int
    data: str

    def __str__(self) -> str:
        more = f", {self.runs} runs" if self.runs > 1 else ""
        return f"{self.top1_err:.1f} ({self.data}{more})"


def our_errors(results: Path | None) -> dict[str, OurError]:
    """model key → the median top-1 error of our finished runs of that model under `results`."""
    if results is None:
        return {}
    results = Path(results)
    if not results.is_dir():
        from netspaces.errors import UserError

        raise UserError(f"RESULTS={results} is not a directory")
    by_model: dict[str, list[tuple[float, str]]] = {}
    for rec in _records(results):
        model, err = rec.get("model"), rec.get("top1_err")
        if not model or model == "sampled" or err in (None, "") or rec.get("status", "ok") != "ok":
            continue
        data = rec.get("data")
        data = data.get("name", "?") if isinstance(data, dict) else (data or "?")
        by_model.setdefault(model_key(str(model)), []).append((float(err), str(data)))
    return {
        k: OurError(statistics.median(e for e, _ in v), len(v), "/".join(sorted({d for _, d in v})))
        for k, v in by_model.items()
    }
