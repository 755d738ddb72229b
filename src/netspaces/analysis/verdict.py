"""A two-space comparison's verdict, stated with its uncertainty: n per space, medians with
bootstrap CIs, the KS distance with its exact p, the power at this n, and one line that
either reaches significance at the protocol's alpha or says it did not and how many
models per space would be needed. Reads the analysis's edf.csv, never training code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from netspaces.analysis import stats
from netspaces.analysis.edf import ks_pvalue, ks_statistic


def errors_from_edf_table(path: Path) -> dict[str, np.ndarray]:
    """label -> errors, in the order the labels appear in edf.csv."""
    table = pd.read_csv(path)
    return {str(label): g["error"].to_numpy(float) for label, g in table.groupby("label", sort=False)}


def verdict(errors: dict[str, np.ndarray], *, alpha: float, power: float, seed: int = 0) -> list[str]:
    """Lines for the terminal; the last is the one-line verdict: "<A> better, p = …" when the
    exact KS test rejects at `alpha` (the better space has the lower median error), else
    "not significant at this scale" with the models per space a test at `alpha` would need
    for `power`, estimated from these populations."""
    (la, a), (lb, b) = errors.items()
    d = ks_statistic(a, b)
    p, method = ks_pvalue(a, b)
    ca, cb = stats.median_ci(a, seed=seed), stats.median_ci(b, seed=seed)
    diff = stats.median_diff_ci(a, b, seed=seed)
    dci = stats.ks_ci(a, b)
    better = stats.prob_a_better(a, b)
    n = min(len(a), len(b))
    achieved = stats.power_at(a, b, n, alpha=alpha, seed=seed)
    needed = stats.models_needed(a, b, alpha=alpha, power=power, seed=seed)
    lines = [
        f"n per space: {la} {len(a)}, {lb} {len(b)}",
        f"median error: {la} {np.median(a):.2f}% {stats.ci_text(ca, 2)}, {lb} {np.median(b):.2f}% {stats.ci_text(cb, 2)}; "
        f"difference {diff['estimate']:+.2f} {stats.ci_text(diff, 2)} (bootstrap 95% CIs)",
        f"KS D = {d:.3f} {stats.ci_text(dci, 3)}, {method} p = {p:.3g} (alpha {alpha:g}); "
        f"P({la} model beats {lb} model) = {better['estimate']:.2f} {stats.ci_text(better, 2)}",
        f"power at n = {n}: {achieved:.2f} (KS at alpha {alpha:g}, resampled from these populations); "
        + (
            f"~{needed.models} models per space for power {power:g}"
            if needed.models is not None
            else f"models per space for power {power:g}: unknown ({needed.reason})"
        ),
    ]
    if p < alpha:
        winner = la if np.median(a) < np.median(b) else lb
        lines.append(f"verdict: {winner} better, p = {p:.3g} < {alpha:g}")
    else:
        need = (
            f"; ~{needed.models} models per space would be needed"
            if needed.models is not None
            else f"; no estimate of the models needed ({needed.reason.split(':')[0]})"
        )
        lines.append(f"verdict: not significant at this scale (p = {p:.3g} >= {alpha:g}){need}")
    return lines
