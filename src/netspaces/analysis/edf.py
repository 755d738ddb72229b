"""Error EDFs, complexity-normalized EDFs and the two-sample KS statistic.

Plain EDF: F(e) = (1/n)·Σ 1[e_i < e] (strictly below, so tied models share one value).
Normalized EDF (Radosavovic et al. 2019, "On Network Design Spaces for Visual Recognition"):
models are binned by complexity and model i gets weight 1/(k·count of its bin), k being the
number of non-empty bins, so a population counts as if its complexity were spread evenly
over the bins. The bin edges are shared by all compared populations, so all of them are
reweighted to the same complexity distribution.

Bins are log-spaced between the smallest and largest complexity over all populations.
Their number k is `--bins` when given, else min(10, floor(sqrt(n))) for the smallest
population n, so a bin holds a few models on average rather than one or none.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

DEFAULT_MAX_BINS = 10
EXACT_KS_MAX_N = 10_000


def weighted_edf(errors: np.ndarray, weights: np.ndarray, at: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """Σ weights of the models whose error is below (or with `inclusive`, at most) each `at`."""
    errors = np.asarray(errors, dtype=float)
    order = np.argsort(errors, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=float)[order])])
    return cumulative[
        np.searchsorted(errors[order], np.asarray(at, dtype=float), side="right" if inclusive else "left")
    ]


def edf(errors: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Plain EDF F(e) = (1/n)·Σ 1[e_i < e] at each value in `at`."""
    n = len(errors)
    return weighted_edf(errors, np.full(n, 1.0 / n), at)


def default_bin_count(smallest_population: int, requested: int | None = None) -> int:
    """`requested` when given, else min(10, floor(sqrt(n))), at least 1."""
    if requested is not None:
        return max(1, int(requested))
    return max(1, min(DEFAULT_MAX_BINS, math.isqrt(max(1, smallest_population))))


def complexity_bin_edges(all_complexities: np.ndarray, bins: int) -> np.ndarray:
    """`bins`+1 edges spanning all values; log-spaced when every value is positive."""
    values = np.asarray(all_complexities, dtype=float)
    low, high = float(values.min()), float(values.max())
    if low == high:
        return np.array([low, high])
    if low > 0:
        return np.geomspace(low, high, bins + 1)
    return np.linspace(low, high, bins + 1)


def complexity_weights(complexity: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Weight 1/(k_nonempty·count of the model's bin); the weights sum to 1."""
    complexity = np.asarray(complexity, dtype=float)
    # Interior edges only: values on an edge go to the upper bin, the maximum to the last.
    bin_index = np.searchsorted(edges[1:-1], complexity, side="right")
    counts = np.bincount(bin_index, minlength=len(edges) - 1)
    nonempty = int((counts > 0).sum())
    return 1.0 / (nonempty * counts[bin_index])


def ks_statistic(
    errors_a: np.ndarray, errors_b: np.ndarray, weights_a: np.ndarray | None = None, weights_b: np.ndarray | None = None
) -> float:
    """D = sup_e |F_a(e) − F_b(e)|, exact.

    Both EDFs are step functions that only change at observed errors, so the supremum is
    reached just above one of them: compare the "≤ e" sums at every value of the union.
    """
    a = np.asarray(errors_a, dtype=float)
    b = np.asarray(errors_b, dtype=float)
    wa = np.full(len(a), 1.0 / len(a)) if weights_a is None else np.asarray(weights_a, float)
    wb = np.full(len(b), 1.0 / len(b)) if weights_b is None else np.asarray(weights_b, float)
    union = np.union1d(a, b)
    gap = weighted_edf(a, wa, union, inclusive=True) - weighted_edf(b, wb, union, inclusive=True)
    return float(np.max(np.abs(gap)))


def ks_pvalue(errors_a: np.ndarray, errors_b: np.ndarray) -> tuple[float, str]:
    """Two-sample KS p-value of the plain EDFs and the method that gave it: exact where scipy
    can compute it (small and medium populations: the asymptotic value is far off there,
    0.22 against 0.6 at n = 3), asymptotic otherwise."""
    import warnings

    if max(len(errors_a), len(errors_b)) > EXACT_KS_MAX_N:  # scipy's own limit for its exact method
        return float(stats.ks_2samp(errors_a, errors_b, method="asymp").pvalue), "asymptotic"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = float(stats.ks_2samp(errors_a, errors_b, method="exact").pvalue)
    if any("exact" in str(w.message).lower() for w in caught) or not np.isfinite(p):
        return float(stats.ks_2samp(errors_a, errors_b, method="asymp").pvalue), "asymptotic"
    return p, "exact"
