"""Empirical bootstrap of a design parameter's good range (paper section 3.2).

Each repeat draws 25% of the models (rounded up, at least 1) with replacement and keeps
the parameter value of the best (lowest-error) model drawn. The 2.5/50/97.5 percentiles
of those values are the good range and its median.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_N_BOOT = 10_000
DEFAULT_FRACTION = 0.25
# Bound on one chunk of drawn indices, so large populations do not need n_boot·m memory.
_MAX_DRAWS_PER_CHUNK = 4_000_000


def sample_size(n_models: int, fraction: float = DEFAULT_FRACTION) -> int:
    """Models drawn per repeat: ceil(fraction·n), at least 1."""
    return max(1, math.ceil(fraction * n_models))


def bootstrap_best_values(
    errors: np.ndarray,
    values: np.ndarray,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    fraction: float = DEFAULT_FRACTION,
) -> np.ndarray:
    """The best drawn model's parameter value in each of `n_boot` repeats."""
    errors = np.asarray(errors, dtype=float)
    values = np.asarray(values, dtype=float)
    # After a stable sort by error, the best model of a draw is the one with the smallest
    # index (ties go to the earlier row), so each repeat reduces to a minimum of integers.
    order = np.argsort(errors, kind="stable")
    sorted_values = values[order]
    n = len(errors)
    m = sample_size(n, fraction)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // m)
    best_rank = np.empty(n_boot, dtype=np.int64)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        best_rank[start:stop] = rng.integers(0, n, size=(stop - start, m)).min(axis=1)
    return sorted_values[best_rank]


def good_range(
    errors: np.ndarray,
    values: np.ndarray,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    fraction: float = DEFAULT_FRACTION,
) -> dict[str, float]:
    """{"lo", "median", "hi"}: 2.5, 50 and 97.5 percentiles of the bootstrapped best values.

    Models with no value for the parameter (NaN) are left out.
    """
    errors = np.asarray(errors, dtype=float)
    values = np.asarray(values, dtype=float)
    known = ~np.isnan(values)
    if not known.any():
        return {"lo": float("nan"), "median": float("nan"), "hi": float("nan")}
    best = bootstrap_best_values(errors[known], values[known], n_boot, seed, fraction)
    lo, median, hi = np.percentile(best, [2.5, 50.0, 97.5])
    return {"lo": float(lo), "median": float(median), "hi": float(hi)}
