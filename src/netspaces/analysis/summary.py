"""Compute everything `analyze` reports, without writing anything.

`summarize` turns loaded populations into the summary dict (the exact content of
summary.json), the per-model EDF table (edf.csv) and the normalization weights the plots
reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from netspaces.analysis import bootstrap
from netspaces.analysis.edf import (
    complexity_bin_edges,
    complexity_weights,
    default_bin_count,
    edf,
    ks_pvalue,
    ks_statistic,
    weighted_edf,
)
from netspaces.analysis.populations import Population
from netspaces.record import COMPLEXITY_FIELDS

NORM_CHOICES = (*COMPLEXITY_FIELDS, "none")
MIN_N_KS = 5  # below this a KS distance says little: a warning
MIN_N_BOOTSTRAP = 10  # below this a bootstrap good range is mostly the few models themselves


@dataclass
class Analysis:
    """The computed results: `summary` is written as summary.json, `edf_table` as edf.csv."""

    summary: dict[str, Any]
    edf_table: pd.DataFrame
    weights: dict[str, np.ndarray]  # label -> normalized-EDF weight of each model
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # where a statistic rests on too few models


def normalization_weights(
    populations: list[Population], norm: str, bins: int | None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per population, the weight of each model in its normalized EDF, and notes.

    Falls back to equal weights (normalized EDF = plain EDF) with a note when `norm` is
    "none" or some population lacks the complexity column.
    """
    equal = {p.label: np.full(len(p.errors), 1.0 / len(p.errors)) for p in populations}
    if norm == "none":
        return equal, ["normalized EDF: --norm none, so it equals the plain EDF"]
    complexities = {p.label: p.complexity(norm) for p in populations}
    lacking = [label for label, c in complexities.items() if c is None]
    if lacking:
        return equal, [f"normalized EDF: no complete '{norm}' column in {', '.join(lacking)}; it equals the plain EDF"]
    k = default_bin_count(min(len(p.errors) for p in populations), bins)
    edges = complexity_bin_edges(np.concatenate(list(complexities.values())), k)
    spacing = "log-spaced" if edges[0] > 0 and len(edges) > 2 else "linear"
    note = (
        f"normalized EDF: models binned by {norm} into {len(edges) - 1} {spacing} bin(s) "
        f"from {edges[0]:.4g} to {edges[-1]:.4g}, shared by all populations"
    )
    return {label: complexity_weights(c, edges) for label, c in complexities.items()}, [note]


def summarize(
    populations: list[Population],
    norm: str = "flops",
    bins: int | None = None,
    n_boot: int = bootstrap.DEFAULT_N_BOOT,
    seed: int = 0,
) -> Analysis:
    weights, notes = normalization_weights(populations, norm, bins)
    for population in populations:
        notes.extend(population.notes)

    stats = {}
    for p in populations:
        e = p.errors
        stats[p.label] = {
            "n": int(len(e)),
            "min": float(e.min()),
            "mean": float(e.mean()),
            "median": float(np.median(e)),
            "excluded": int(p.excluded),
        }

    warnings = []
    ks = {}
    for a, b in combinations(populations, 2):
        p_value, method = ks_pvalue(a.errors, b.errors)
        ks[f"{a.label} vs {b.label}"] = {
            "plain": ks_statistic(a.errors, b.errors),
            "normalized": ks_statistic(a.errors, b.errors, weights[a.label], weights[b.label]),
            "p_value": p_value,
            "p_method": method,
        }
    if len(populations) > 1:
        small = [f"{p.label} (n={len(p.errors)})" for p in populations if len(p.errors) < MIN_N_KS]
        if small:
            warnings.append(
                f"KS tests involving {', '.join(small)} rest on fewer than {MIN_N_KS} models: "
                "distances this coarse are rarely significant"
            )

    boot: dict[str, dict[str, dict[str, float]]] = {}
    for p in populations:
        boot[p.label] = {}
        for param in p.param_columns:
            values = pd.to_numeric(p.table[param], errors="coerce").to_numpy(dtype=float)
            boot[p.label][param] = bootstrap.good_range(p.errors, values, n_boot, seed)
        if not p.param_columns:
            notes.append(f"{p.label}: no design-parameter columns; bootstrap and parameter plots skipped")
        elif len(p.errors) < MIN_N_BOOTSTRAP:
            warnings.append(
                f"{p.label}: bootstrap good ranges from {len(p.errors)} model(s) (fewer than "
                f"{MIN_N_BOOTSTRAP}) mostly repeat those models' own values; do not read them as ranges"
            )

    rows = []
    for p in populations:
        e = p.errors
        order = np.argsort(e, kind="stable")
        rows.append(
            pd.DataFrame(
                {
                    "label": p.label,
                    "error": e[order],
                    "F": edf(e, e[order]),
                    "F_norm": weighted_edf(e, weights[p.label], e[order]),
                }
            )
        )
    edf_table = pd.concat(rows, ignore_index=True)

    summary = {"populations": stats, "ks": ks, "bootstrap": boot, "warnings": warnings, "notes": notes}
    return Analysis(summary=summary, edf_table=edf_table, weights=weights, notes=notes, warnings=warnings)


def format_summary(analysis: Analysis) -> str:
    """A few lines for the terminal: per population n/min/mean/median, then the KS tests."""
    lines = []
    pops = analysis.summary["populations"]
    width = max(len(label) for label in pops)
    for label, s in pops.items():
        excluded = f"  ({s['excluded']} excluded)" if s["excluded"] else ""
        lines.append(
            f"{label:<{width}}  n={s['n']:<4d} min={s['min']:.3f}  mean={s['mean']:.3f}"
            f"  median={s['median']:.3f}{excluded}"
        )
    for pair, k in analysis.summary["ks"].items():
        lines.append(
            f"KS {pair}: D={k['plain']:.4f} (normalized {k['normalized']:.4f}), p={k['p_value']:.4g} ({k['p_method']})"
        )
    for warning in analysis.warnings:
        lines.append(f"WARNING: {warning}")
    for note in analysis.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
