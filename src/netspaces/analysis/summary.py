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

from netspaces.analysis import bootstrap, stats
from netspaces.analysis.baselines import BaselineSet, baseline_section
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
MIN_N_VALIDATED = 12  # the confidence intervals were validated by simulation from here up (docs/statistics.md)


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
    weights, _, notes = _normalization(populations, norm, bins)
    return weights, notes


def _normalization(
    populations: list[Population], norm: str, bins: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None, list[str]]:
    """normalization_weights, plus the shared bin edges (None when the weights are equal)."""
    equal = {p.label: np.full(len(p.errors), 1.0 / len(p.errors)) for p in populations}
    if norm == "none":
        return equal, None, ["normalized EDF: --norm none, so it equals the plain EDF"]
    complexities = {p.label: p.complexity(norm) for p in populations}
    lacking = [label for label, c in complexities.items() if c is None]
    if lacking:
        return (
            equal,
            None,
            [f"normalized EDF: no complete '{norm}' column in {', '.join(lacking)}; it equals the plain EDF"],
        )
    k = default_bin_count(min(len(p.errors) for p in populations), bins)
    edges = complexity_bin_edges(np.concatenate(list(complexities.values())), k)
    spacing = "log-spaced" if edges[0] > 0 and len(edges) > 2 else "linear"
    note = (
        f"normalized EDF: models binned by {norm} into {len(edges) - 1} {spacing} bin(s) "
        f"from {edges[0]:.4g} to {edges[-1]:.4g}, shared by all populations"
    )
    return {label: complexity_weights(c, edges) for label, c in complexities.items()}, edges, [note]


def summarize(
    populations: list[Population],
    norm: str = "flops",
    bins: int | None = None,
    n_boot: int = bootstrap.DEFAULT_N_BOOT,
    seed: int = 0,
    alpha: float = stats.DEFAULT_ALPHA,
    power: float = stats.DEFAULT_POWER,
    n_perm: int = stats.DEFAULT_N_PERM,
    power_reps: int = stats.DEFAULT_POWER_REPS,
    baselines: BaselineSet | None = None,
) -> Analysis:
    """`n_boot` serves the good ranges and the median intervals; `alpha`/`power` are the
    KS test's level and the power asked for; `n_perm` relabellings give the permutation p
    of the normalized KS; `power_reps` draws give each power estimate; `baselines` (trained
    baselines, analysis/baselines.py) are placed in every population."""
    weights, edges, notes = _normalization(populations, norm, bins)
    for population in populations:
        notes.extend(population.notes)
    if baselines is not None:
        notes.extend(baselines.notes)

    per_population = {}
    for i, p in enumerate(populations):
        e = p.errors
        per_population[p.label] = {
            "n": int(len(e)),
            "min": float(e.min()),
            "mean": float(e.mean()),
            "median": float(np.median(e)),
            "excluded": int(p.excluded),
            "median_ci": stats.median_ci(e, n_boot, seed=(seed, 1, i)),
            "low_quantile_ci": stats.low_quantile_ci(e),
        }
        noise = p.seed_noise()
        if noise is not None:  # sweep.replicas: the seed noise floor beside the population's spread
            per_population[p.label]["seed_noise"] = noise

    warnings = []
    unvalidated = [f"{p.label} (n={len(p.errors)})" for p in populations if len(p.errors) < MIN_N_VALIDATED]
    if unvalidated:
        warnings.append(
            f"confidence intervals of {', '.join(unvalidated)} rest on fewer than {MIN_N_VALIDATED} models, "
            "below the sizes at which their coverage was validated (docs/statistics.md)"
        )
    ks = {}
    for (i, a), (j, b) in combinations(enumerate(populations), 2):
        pair = f"{a.label} vs {b.label}"
        p_value, method = ks_pvalue(a.errors, b.errors)
        complexity_a = complexity_b = None
        if edges is not None:
            complexity_a, complexity_b = a.complexity(norm), b.complexity(norm)
        normalized_p, _ = stats.permutation_pvalue(
            a.errors, b.errors, complexity_a, complexity_b, edges, n_perm, seed=(seed, 3, i, j)
        )
        ks[pair] = {
            "plain": ks_statistic(a.errors, b.errors),
            "normalized": ks_statistic(a.errors, b.errors, weights[a.label], weights[b.label]),
            "p_value": p_value,
            "p_method": method,
            "ks_ci": stats.ks_ci(a.errors, b.errors),
            "normalized_p_value": normalized_p,
            "normalized_p_method": f"permutation ({n_perm:,} relabellings"
            + (", weights from the shared bins)" if edges is not None else "; equal weights: no bins)"),
            "median_diff_ci": stats.median_diff_ci(a.errors, b.errors, n_boot, seed=(seed, 2, i, j)),
            "prob_a_better": stats.prob_a_better(a.errors, b.errors) | {"a": a.label, "b": b.label},
            "power": stats.pair_power(a.errors, b.errors, alpha, power, power_reps, seed),
        }
        too_weak = stats.power_warning(pair, ks[pair]["power"])
        if too_weak:
            warnings.append(too_weak)
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

    summary = {"populations": per_population, "ks": ks, "bootstrap": boot, "warnings": warnings, "notes": notes}
    if baselines is not None:
        summary["baselines"] = baseline_section(baselines, populations, weights)
    return Analysis(summary=summary, edf_table=edf_table, weights=weights, notes=notes, warnings=warnings)


def format_summary(analysis: Analysis) -> str:
    """A few lines for the terminal: per population n/min/mean/median and 95% CIs, then per
    pair the KS tests, CIs, P(first better) and the KS test's power."""
    lines = []
    pops = analysis.summary["populations"]
    width = max(len(label) for label in pops)
    for label, s in pops.items():
        excluded = f"  ({s['excluded']} excluded)" if s["excluded"] else ""
        lines.append(
            f"{label:<{width}}  n={s['n']:<4d} min={s['min']:.3f}  mean={s['mean']:.3f}"
            f"  median={s['median']:.3f}{excluded}"
        )
        if "median_ci" in s:
            q = s["low_quantile_ci"]
            lines.append(
                f"{'':<{width}}  95% CI: median {stats.ci_text(s['median_ci'])}, "
                f"p{100 * q['quantile']:g} error {stats.ci_text(q)}"
            )
        if "seed_noise" in s:
            z = s["seed_noise"]
            lines.append(
                f"{'':<{width}}  seed noise floor: sigma {z['seed_sigma']:.3f} over training seeds "
                f"({z['models']} models x {z['seeds_per_model']:g} seeds) vs population sigma {z['population_sigma']:.3f}"
            )
    for pair, k in analysis.summary["ks"].items():
        lines.append(
            f"KS {pair}: D={k['plain']:.4f} (normalized {k['normalized']:.4f}), p={k['p_value']:.4g} ({k['p_method']})"
        )
        if "ks_ci" not in k:
            continue
        better, diff, pw = k["prob_a_better"], k["median_diff_ci"], k["power"]
        lines.append(
            f"  D 95% CI {stats.ci_text(k['ks_ci'])}, normalized p={k['normalized_p_value']:.4g} (permutation), "
            f"median diff {diff['estimate']:+.3f} {stats.ci_text(diff)}"
        )
        needed = f"~{pw['models_needed']} per space" if pw["models_needed"] is not None else "not estimable"
        lines.append(
            f"  P({better['a']} better)={better['estimate']:.2f} {stats.ci_text(better, 2)}, "
            f"power {pw['achieved_at_n']:.2f} at n={'/'.join(map(str, pw['n']))} (alpha {pw['alpha']:g}); "
            f"for power {pw['target']:g}: {needed}"
        )
    for name, b in analysis.summary.get("baselines", {}).items():
        flops = "" if b["flops"] is None else f", {b['flops'] / 1e6:.0f} MF"
        shares = ", ".join(f"{s['beats_pct']:.0f}% of {label} (n={s['n']})" for label, s in b["populations"].items())
        lines.append(f"baseline {name}: error {b['error']:.3f}{flops}; beats {shares}")
    for warning in analysis.warnings:
        lines.append(f"WARNING: {warning}")
    for note in analysis.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)
