"""How sure we are: confidence intervals, a permutation test and the power of the KS test.

numpy + scipy only (no torch). Every random quantity comes from a seeded numpy Generator,
so the same inputs and seed give the same numbers. The methods were chosen by simulation
(tests/test_stats.py; docs/statistics.md lists the coverages measured) and the functions
that the simulations run take arrays with leading batch axes, so a thousand synthetic
populations are one call.

- **Median** (`median_ci`): smoothed-bootstrap percentile interval. Resamples are drawn
  from the piecewise-linear interpolation of the sorted errors at the median-unbiased
  plotting positions (j - 1/3)/(n + 1/3) (Hyndman-Fan type 8; flat beyond the smallest and
  largest error) rather than from the errors themselves; the plain bootstrap of a median
  jumps between a few order statistics and covers 92-95%. (Hazen positions (j - 1/2)/n
  cover 93.4-94.7% for one median, Weibull positions j/(n + 1) 96.3-97.9% for a
  difference.) Drawing n values from a continuous quantile function Q and taking their
  median equals Q at the median of n uniforms, a Beta(k, n - k + 1) variable, so one
  resample costs one Beta draw (two for even n), not n draws: 10,000 resamples are free.
- **Difference of medians, A - B** (`median_diff_ci`): the same smoothed bootstrap, drawn
  independently for A and B, percentile interval of the differences.
- **The minimum**: the bootstrap of a sample minimum is inconsistent, and the population
  minimum is not estimable without a model of the tail. The target reported instead is the
  10th-percentile error (`LOW_QUANTILE`: the error that the best tenth of the space
  reaches), with a distribution-free interval from fractional order statistics (Hutson
  1999): the lower end is X_(u) with I_q(u, n + 1 - u) = 1 - a/2 (I the regularized
  incomplete beta function, X_(u) interpolated linearly between order statistics), the
  upper end likewise with a/2. Its coverage depends only on n, not on the error
  distribution (up to the interpolation). When n is too small for any lower end
  (1 - (1 - q)^n < 1 - a/2, i.e. n < 36 for q = 0.1) it is a one-sided 95% upper bound and
  `lo` is None. No interval is given for the difference of two such quantiles: the
  smoothed bootstrap used for medians covers only 91.8-94.3% of it at n = 20 (96.2-96.9%
  at n = 50-100), and two 95% intervals do not make one for a difference.
- **KS distance D** (`ks_ci`): D-hat +- c, c half a count below the exact critical value
  of the two-sample KS test at 5% for these sizes (P(D-hat >= critical) <= 5% when the
  populations are equal), so `lo` > 0 exactly when the exact KS test rejects at 5%. The
  sample D is biased upward (it is > 0 for equal populations) and its bootstrap intervals
  cover the true D only 0-84% (percentile) and 74-93% (basic) of the time at n = 20-100
  (near a flat maximum of |F_A - F_B| the bias shrinks like n^(-2/3) against a spread of
  n^(-1/2)). |D-hat - D| <= sup |noise of the two EDFs|, which c bounds with 95%
  probability when the populations are equal. So the interval covers D = 0 with
  probability 1 - the exact test's actual size (95.1-96.9% for n = 12-100: D is
  discrete), and a D > 0 more often (97.6-100% in every case simulated): conservative,
  never optimistic. It cannot be made 93-97% for every D; that is what is validated.
- **Permutation p of the complexity-normalized KS** (`permutation_pvalue`): the (error,
  complexity) pairs are pooled and the labels permuted; each permutation recomputes the
  normalized weights with the same shared bin edges and the weighted KS. p = (1 + #{D_perm
  >= D_obs}) / (1 + n_perm), exact (valid at every n) under exchangeability.
- **P(A better)** (`prob_a_better`): P(error of a random model of A < one of B) + 1/2 P(tie),
  the Mann-Whitney / AUC statistic, with DeLong's variance on the logit scale; where A and
  B are completely separated (estimate 0 or 1, DeLong's variance 0) the score interval of
  Newcombe (2006, method 5) is used instead.
- **Power** (`power_at`, `models_needed`): the probability that the exact two-sample KS
  test (scipy.stats.ks_2samp, method "exact") rejects at alpha with m models per space,
  estimated by drawing m models per space from the observed populations, smoothed with
  Gaussian kernel noise (Silverman's bandwidth 0.9·min(sd, IQR/1.349)·n^(-1/5),
  variance-preserving) so that resamples do not repeat the same few values. (The n^(-1/3)
  rate that suits a distribution function changed nothing from large samples and made the
  estimate from 50 models more optimistic still.) The test's decision is D >= the exact critical value of
  `ks_critical_count`, the same decision as comparing scipy's p with alpha. This is a
  plug-in estimate: it treats the observed populations as the truth. From large samples it
  matches the true power; from 20-100 models it is an order of magnitude, not a
  measurement (docs/statistics.md). `models_needed` returns None with a reason when the
  observed populations differ no more than equal ones typically do (plain KS p >= 0.5),
  or when even `MAX_MODELS` models per space would not reach the target.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from netspaces.analysis.edf import ks_pvalue, ks_statistic

LEVEL = 0.95  # every confidence interval here
DEFAULT_ALPHA = 0.001  # significance level of the KS test whose power is estimated
DEFAULT_POWER = 0.9  # the power asked for
DEFAULT_N_BOOT = 10_000
DEFAULT_N_PERM = 9_999
DEFAULT_POWER_REPS = 300  # per power estimate inside `analyze` (Monte Carlo SE <= 0.03)
MAX_MODELS = 2_000  # models_needed searches m = 1 .. MAX_MODELS
LOW_QUANTILE = 0.10
INDISTINGUISHABLE_P = 0.5  # plain KS p at or above: the observed difference is typical of equal populations
_MAX_CELLS = 2_000_000  # bound on the floats of one chunk of resamples or permutations

MEDIAN_METHOD = "smoothed bootstrap (EDF interpolated at (j-1/3)/(n+1/3)), percentile"
LOW_QUANTILE_METHOD = "fractional order statistics (Hutson 1999), distribution-free"
KS_CI_METHOD = "D ± exact 5% KS critical value (conservative for D > 0)"
PROB_METHOD = "DeLong variance, logit scale (Newcombe score interval when separated)"
POWER_METHOD = "exact KS test on smoothed-bootstrap draws from the observed populations"


def _rng(seed: int | tuple[int, ...] | list[int]) -> np.random.Generator:
    return np.random.default_rng(list(seed) if isinstance(seed, (tuple, list)) else seed)


def _num(value: float) -> float | None:
    """A float for summary.json: None where it is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------- medians


def _interpolated_quantile(sorted_x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Q(u) of the piecewise-linear EDF through (x_(j), (j - 1/3)/(n + 1/3)), flat outside;
    batched: sorted_x (..., n), u (..., B) -> (..., B)."""
    n = sorted_x.shape[-1]
    if n == 1:
        return np.broadcast_to(sorted_x, u.shape).astype(float)
    pos = np.clip(u * (n + 1.0 / 3.0) + 1.0 / 3.0, 1.0, float(n))  # 1-based fractional order
    j = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    frac = pos - j
    below = np.take_along_axis(sorted_x, j - 1, axis=-1)
    above = np.take_along_axis(sorted_x, j, axis=-1)
    return below + frac * (above - below)


def bootstrap_medians(errors: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `n_boot` smoothed-bootstrap resamples of each row: (..., n) -> (..., n_boot).

    The k-th smallest of n draws Q(U_i) is Q(U_(k)), U_(k) ~ Beta(k, n - k + 1); for even n
    the next one is U_(k) + (1 - U_(k))·Beta(1, n - k).
    """
    x = np.sort(np.asarray(errors, dtype=float), axis=-1)
    n = x.shape[-1]
    lead = x.shape[:-1]
    rows = int(np.prod(lead)) if lead else 1
    out = np.empty((*lead, n_boot))
    chunk = max(1, _MAX_CELLS // max(1, rows))
    for start in range(0, n_boot, chunk):
        size = (*lead, min(n_boot, start + chunk) - start)
        if n % 2:
            k = (n + 1) // 2
            out[..., start : start + size[-1]] = _interpolated_quantile(x, rng.beta(k, n - k + 1, size=size))
        else:
            k = n // 2
            u = rng.beta(k, n - k + 1, size=size)
            v = u + (1.0 - u) * rng.beta(1, n - k, size=size)
            out[..., start : start + size[-1]] = 0.5 * (_interpolated_quantile(x, u) + _interpolated_quantile(x, v))
    return out


def _percentiles(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(draws, [tail, 100.0 - tail], axis=-1)
    return lo, hi


def median_interval(
    errors: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of each row's median, batched over leading axes."""
    return _percentiles(bootstrap_medians(errors, n_boot, rng), level)


def median_diff_interval(
    errors_a: np.ndarray, errors_b: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of median(A) - median(B), batched over leading axes (A and B drawn independently)."""
    draws = bootstrap_medians(errors_a, n_boot, rng) - bootstrap_medians(errors_b, n_boot, rng)
    return _percentiles(draws, level)


def median_ci(errors: np.ndarray, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = LEVEL) -> dict[str, Any]:
    """{"lo", "hi", "level", "method"} for the median error; lo/hi None below 2 models."""
    errors = np.asarray(errors, dtype=float)
    if len(errors) < 2:
        return {"lo": None, "hi": None, "level": level, "method": MEDIAN_METHOD}
    lo, hi = median_interval(errors, n_boot, _rng(seed), level)
    return {"lo": _num(lo), "hi": _num(hi), "level": level, "method": MEDIAN_METHOD}


def median_diff_ci(
    errors_a: np.ndarray, errors_b: np.ndarray, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, level: float = LEVEL
) -> dict[str, Any]:
    """{"estimate", "lo", "hi", "level", "method"} for median(A) - median(B)."""
    a, b = np.asarray(errors_a, dtype=float), np.asarray(errors_b, dtype=float)
    result: dict[str, Any] = {"estimate": _num(np.median(a) - np.median(b)), "lo": None, "hi": None}
    if min(len(a), len(b)) >= 2:
        lo, hi = median_diff_interval(a, b, n_boot, _rng(seed), level)
        result.update(lo=_num(lo), hi=_num(hi))
    return result | {"level": level, "method": MEDIAN_METHOD}


# ------------------------------------------------------------------- a low quantile


def _beta_position(n: int, q: float, target: float) -> float | None:
    """u in [1, n] with P(U_(u) <= q) = I_q(u, n + 1 - u) = target, or None outside [1, n]."""

    def excess(u: float) -> float:
        return float(special.betainc(u, n + 1.0 - u, q)) - target

    if n < 1 or excess(1.0) < 0.0 or excess(float(n)) > 0.0:
        return None
    if n == 1:
        return 1.0
    return float(optimize.brentq(excess, 1.0, float(n), xtol=1e-12))


def _fractional_order_statistic(sorted_x: np.ndarray, u: float) -> np.ndarray:
    n = sorted_x.shape[-1]
    j = min(int(math.floor(u)), n)
    if j >= n:
        return sorted_x[..., n - 1]
    frac = u - j
    return sorted_x[..., j - 1] + frac * (sorted_x[..., j] - sorted_x[..., j - 1])


def quantile_interval(
    errors: np.ndarray, q: float = LOW_QUANTILE, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(estimate, lo, hi, sides) for the q-quantile of each row, batched over leading axes.

    sides is "two-sided", or "upper bound" (lo NaN: n too small to bound it from below;
    hi is then a one-sided `level` bound), or "none" (both NaN).
    """
    x = np.sort(np.asarray(errors, dtype=float), axis=-1)
    n = x.shape[-1]
    estimate = np.quantile(x, q, axis=-1, method="weibull")
    tail = 1.0 - level
    u_lo, u_hi = _beta_position(n, q, 1.0 - tail / 2.0), _beta_position(n, q, tail / 2.0)
    nan = np.full(x.shape[:-1], np.nan)
    if u_lo is not None and u_hi is not None:
        return estimate, _fractional_order_statistic(x, u_lo), _fractional_order_statistic(x, u_hi), "two-sided"
    u_one = _beta_position(n, q, tail)
    if u_one is not None:
        return estimate, nan, _fractional_order_statistic(x, u_one), "upper bound"
    return estimate, nan, nan.copy(), "none"


def low_quantile_ci(errors: np.ndarray, q: float = LOW_QUANTILE, level: float = LEVEL) -> dict[str, Any]:
    """{"quantile", "estimate", "lo", "hi", "level", "sides", "method"} of the q-quantile error."""
    estimate, lo, hi, sides = quantile_interval(errors, q, level)
    return {
        "quantile": q,
        "estimate": _num(estimate),
        "lo": _num(lo),
        "hi": _num(hi),
        "level": level,
        "sides": sides,
        "method": LOW_QUANTILE_METHOD,
    }


# ------------------------------------------------------------------ the KS distance


def _ks_counts(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """D·na·nb (an integer) of each row pair: xa (R, na), xb (R, nb); ties are handled (the
    EDFs are compared only after each run of equal values)."""
    na, nb = xa.shape[-1], xb.shape[-1]
    z = np.concatenate([xa, xb], axis=-1)
    order = np.argsort(z, axis=-1, kind="stable")
    steps = np.where(order < na, nb, -na).astype(np.int64)
    gap = np.abs(np.cumsum(steps, axis=-1))
    zs = np.take_along_axis(z, order, axis=-1)
    last = np.ones(zs.shape, dtype=bool)
    last[..., :-1] = zs[..., 1:] != zs[..., :-1]
    return np.where(last, gap, 0).max(axis=-1)


def _greedy_sample(na: int, nb: int, v: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Two samples whose KS distance is v/(na·nb) (the path hugs |i·nb - j·na| <= v);
    returns them and the count they reach."""
    i = j = 0
    a, b = [], []
    reached = 0
    for position in range(na + nb):
        if i < na and (j == nb or (i + 1) * nb - j * na <= v):
            a.append(position)
            i += 1
        else:
            b.append(position)
            j += 1
        reached = max(reached, abs(i * nb - j * na))
    return np.asarray(a, float), np.asarray(b, float), reached


def _exact_sf(na: int, nb: int, v: int) -> float:
    """P(D >= v/(na·nb)) for two equal populations of sizes na, nb (scipy's exact KS)."""
    a, b, reached = _greedy_sample(na, nb, v)
    return ks_pvalue(a, b)[0] if reached == v else float("nan")


@functools.lru_cache(maxsize=1024)
def ks_critical_count(na: int, nb: int, alpha: float) -> int | None:
    """The smallest v such that the exact KS test at `alpha` rejects when D·na·nb >= v, or
    None when no D (not even 1) is that rare for these sizes."""
    if na == nb:
        candidates = np.arange(1, na + 1, dtype=np.int64) * na
    elif (na + 1) * (nb + 1) <= 4_000_000:
        grid = np.arange(na + 1, dtype=np.int64)[:, None] * nb - np.arange(nb + 1, dtype=np.int64)[None, :] * na
        candidates = np.unique(grid[grid > 0])
    else:  # beyond scipy's exact range anyway: the asymptotic critical value
        d = stats.kstwobign.isf(alpha) * math.sqrt((na + nb) / (na * nb))
        return int(math.ceil(d * na * nb)) if d <= 1 else None
    lo, hi = 0, len(candidates) - 1
    if not _exact_sf(na, nb, int(candidates[hi])) <= alpha:
        return None
    while lo < hi:  # the p-value falls as D grows: bisect for the first candidate with p <= alpha
        mid = (lo + hi) // 2
        p = _exact_sf(na, nb, int(candidates[mid]))
        if p <= alpha:
            hi = mid
        else:  # also when p is NaN: D not reached by the greedy path (only tiny D, where p is large)
            lo = mid + 1
    return int(candidates[lo])


def ks_interval(
    errors_a: np.ndarray, errors_b: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, lo, hi) per row pair, batched: rows of A (R, na) against rows of B (R, nb)."""
    a, b = np.atleast_2d(np.asarray(errors_a, float)), np.atleast_2d(np.asarray(errors_b, float))
    na, nb = a.shape[-1], b.shape[-1]
    d = _ks_counts(a, b) / (na * nb)
    v = ks_critical_count(na, nb, round(1.0 - level, 12))
    # Half a count below the critical value: lo > 0 exactly when the exact test rejects.
    c = 1.0 if v is None else (v - 0.5) / (na * nb)
    return d, np.maximum(0.0, d - c), np.minimum(1.0, d + c)


def ks_ci(errors_a: np.ndarray, errors_b: np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """{"estimate", "lo", "hi", "level", "method"} for the plain KS distance D."""
    d, lo, hi = ks_interval(errors_a, errors_b, level)
    return {
        "estimate": ks_statistic(errors_a, errors_b),
        "lo": float(lo[0]),
        "hi": float(hi[0]),
        "level": level,
        "method": KS_CI_METHOD,
    }


def _bin_index(complexity: np.ndarray | None, edges: np.ndarray | None, n: int) -> np.ndarray:
    """Each model's complexity bin under the shared edges (as edf.complexity_weights bins them)."""
    if complexity is None or edges is None:
        return np.zeros(n, dtype=np.int64)
    return np.searchsorted(np.asarray(edges, float)[1:-1], np.asarray(complexity, float), side="right")


def _normalized_ks_rows(is_a: np.ndarray, bins: np.ndarray, n_bins: int, last: np.ndarray) -> np.ndarray:
    """Weighted KS of each row's labelling; is_a (P, N) in error order, bins (N,), last (N,)
    marks the last model of each run of equal errors."""
    onehot = np.zeros((len(bins), n_bins))
    onehot[np.arange(len(bins)), bins] = 1.0
    count_a = is_a.astype(float) @ onehot
    count_b = onehot.sum(axis=0) - count_a
    nonempty_a = (count_a > 0).sum(axis=1, keepdims=True)
    nonempty_b = (count_b > 0).sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_a = 1.0 / (nonempty_a * count_a[:, bins])
        w_b = 1.0 / (nonempty_b * count_b[:, bins])
    gap = np.cumsum(np.where(is_a, w_a, -w_b), axis=1)
    return np.abs(gap[:, last]).max(axis=1)


def permutation_pvalue(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    complexity_a: np.ndarray | None = None,
    complexity_b: np.ndarray | None = None,
    edges: np.ndarray | None = None,
    n_perm: int = DEFAULT_N_PERM,
    seed: int | tuple[int, ...] = 0,
) -> tuple[float, float]:
    """(p, D) of the complexity-normalized KS distance by permuting the population labels of
    the pooled (error, complexity) pairs; weights always from the same `edges`. Without
    complexity or edges every model weighs the same (the plain KS)."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    na, nb = len(a), len(b)
    errors = np.concatenate([a, b])
    bins = np.concatenate([_bin_index(complexity_a, edges, na), _bin_index(complexity_b, edges, nb)])
    order = np.argsort(errors, kind="stable")
    errors, bins = errors[order], bins[order]
    n_bins = int(bins.max()) + 1
    last = np.ones(len(errors), dtype=bool)
    last[:-1] = errors[1:] != errors[:-1]
    labels = order < na
    d_obs = float(_normalized_ks_rows(labels[None, :], bins, n_bins, last)[0])
    rng = _rng(seed)
    at_least = 0
    chunk = max(1, _MAX_CELLS // len(errors))
    for start in range(0, n_perm, chunk):
        rows = min(n_perm, start + chunk) - start
        permuted = rng.permuted(np.broadcast_to(labels, (rows, len(labels))), axis=1)
        at_least += int((_normalized_ks_rows(permuted, bins, n_bins, last) >= d_obs - 1e-12).sum())
    return (1 + at_least) / (1 + n_perm), d_obs


# -------------------------------------------------------------------- P(A better)


def _newcombe_interval(theta: np.ndarray, na: int, nb: int, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's (2006) method 5: the theta with (theta_hat - theta)^2 = z^2·V(theta), V the
    Hanley-McNeil variance with both sizes replaced by their mean."""
    n_star = (na + nb) / 2.0

    def excess(t):
        v = t * (1 - t) / (na * nb) * (1 + (n_star - 1) * ((1 - t) / (2 - t) + t / (1 + t)))
        return (theta - t) ** 2 - z * z * v

    lo_a, hi_a = np.zeros_like(theta), theta.copy()  # excess(0) >= 0 >= excess(theta)
    lo_b, hi_b = theta.copy(), np.ones_like(theta)  # excess(theta) <= 0 <= excess(1)
    for _ in range(60):
        mid = (lo_a + hi_a) / 2
        above = excess(mid) > 0
        lo_a, hi_a = np.where(above, mid, lo_a), np.where(above, hi_a, mid)
        mid = (lo_b + hi_b) / 2
        above = excess(mid) > 0
        lo_b, hi_b = np.where(above, lo_b, mid), np.where(above, mid, hi_b)
    return (lo_a + hi_a) / 2, (lo_b + hi_b) / 2


def prob_better_interval(
    errors_a: np.ndarray, errors_b: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, lo, hi), theta = P(a < b) + P(a = b)/2, batched over leading axes (both >= 2 models)."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    na, nb = a.shape[-1], b.shape[-1]
    pooled = stats.rankdata(np.concatenate([a, b], axis=-1), axis=-1)
    # Placements: the share of B above each a (ties 1/2), the share of A below each b.
    v_a = 1.0 - (pooled[..., :na] - stats.rankdata(a, axis=-1)) / nb
    v_b = (pooled[..., na:] - stats.rankdata(b, axis=-1)) / na
    theta = v_a.mean(axis=-1)
    var = v_a.var(axis=-1, ddof=1) / na + v_b.var(axis=-1, ddof=1) / nb
    z = stats.norm.ppf(0.5 + level / 2)
    degenerate = (theta <= 0) | (theta >= 1) | (var <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.clip(theta, 1e-12, 1 - 1e-12)
        half = z * np.sqrt(var) / (t * (1 - t))
        logit = np.log(t / (1 - t))
        lo, hi = special.expit(logit - half), special.expit(logit + half)
    if np.any(degenerate):
        n_lo, n_hi = _newcombe_interval(theta, na, nb, z)
        lo, hi = np.where(degenerate, n_lo, lo), np.where(degenerate, n_hi, hi)
    return theta, lo, hi


def prob_a_better(errors_a: np.ndarray, errors_b: np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """{"estimate", "lo", "hi", "level", "method"}: P(a random model of A has the lower error)."""
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    if min(len(a), len(b)) < 2:
        theta = float(np.mean((a[:, None] < b[None, :]) + 0.5 * (a[:, None] == b[None, :])))
        return {"estimate": theta, "lo": None, "hi": None, "level": level, "method": PROB_METHOD}
    theta, lo, hi = prob_better_interval(a, b, level)
    return {"estimate": float(theta), "lo": _num(lo), "hi": _num(hi), "level": level, "method": PROB_METHOD}


# ------------------------------------------------------------------------- power


def _smoothed_draws(x: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """`shape` draws from the observed errors plus Gaussian noise (Silverman's bandwidth),
    rescaled so the draws keep the sample's mean and variance."""
    x = np.asarray(x, float)
    n = len(x)
    picked = x[rng.integers(0, n, size=shape)]
    s = float(np.std(x, ddof=1)) if n > 1 else 0.0
    if not s > 0:
        return picked
    iqr = float(np.subtract(*np.percentile(x, [75, 25])))
    h = 0.9 * (min(s, iqr / 1.349) if iqr > 0 else s) * n**-0.2
    mean = float(x.mean())
    return mean + (picked - mean + h * rng.standard_normal(shape)) / math.sqrt(1.0 + (h / s) ** 2)


def power_at(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    m: int | tuple[int, int],
    alpha: float = DEFAULT_ALPHA,
    reps: int = DEFAULT_POWER_REPS,
    seed: int = 0,
) -> float:
    """Estimated probability that the exact two-sample KS test at `alpha` rejects with m
    models per space (or (m_a, m_b)), drawing them from the observed populations."""
    ma, mb = (m, m) if isinstance(m, (int, np.integer)) else (int(m[0]), int(m[1]))
    if min(ma, mb) < 1:
        return 0.0
    critical = ks_critical_count(ma, mb, float(alpha))
    if critical is None:
        return 0.0
    rng = _rng(seed)
    rejected = 0
    chunk = max(1, _MAX_CELLS // (ma + mb))
    for start in range(0, reps, chunk):
        rows = min(reps, start + chunk) - start
        xa = _smoothed_draws(errors_a, (rows, ma), rng)
        xb = _smoothed_draws(errors_b, (rows, mb), rng)
        rejected += int((_ks_counts(xa, xb) >= critical).sum())
    return rejected / reps


@dataclass
class ModelsNeeded:
    models: int | None  # models per space for the target power; None: see reason
    power: float | None  # the estimated power there
    reason: str | None = None


def models_needed(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    reps: int = DEFAULT_POWER_REPS,
    seed: int = 0,
    max_models: int = MAX_MODELS,
) -> ModelsNeeded:
    """The smallest m (models per space) whose estimated power reaches `power` (bisection on
    1..max_models, each m with the same seed), or None with the reason."""
    p_obs = ks_pvalue(np.asarray(errors_a, float), np.asarray(errors_b, float))[0]
    if p_obs >= INDISTINGUISHABLE_P:
        return ModelsNeeded(
            None,
            None,
            f"indistinguishable: the observed populations differ no more than equal ones typically do (KS p={p_obs:.2f})",
        )
    top = power_at(errors_a, errors_b, max_models, alpha, reps, seed)
    if top < power:
        return ModelsNeeded(None, top, f"even {max_models:,} models per space give power {top:.2f} at alpha {alpha:g}")
    lo, hi, at_hi = 1, max_models, top  # power(lo) < target <= power(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p = power_at(errors_a, errors_b, mid, alpha, reps, seed)
        if p >= power:
            hi, at_hi = mid, p
        else:
            lo = mid
    return ModelsNeeded(hi, at_hi)


def pair_power(
    errors_a: np.ndarray,
    errors_b: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    reps: int = DEFAULT_POWER_REPS,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary.json "power" entry of a pair."""
    na, nb = len(errors_a), len(errors_b)
    needed = models_needed(errors_a, errors_b, alpha, power, reps, seed)
    return {
        "alpha": alpha,
        "target": power,
        "n": [na, nb],
        "achieved_at_n": power_at(errors_a, errors_b, (na, nb), alpha, reps, seed),
        "models_needed": needed.models,
        "power_at_models_needed": needed.power,
        "reason": needed.reason,
        "reps": reps,
        "method": POWER_METHOD,
    }


def power_warning(pair: str, p: dict[str, Any]) -> str | None:
    """The warning when the populations were too small for the target power, else None."""
    if p["achieved_at_n"] >= p["target"]:
        return None
    na, nb = p["n"]
    sizes = f"n={na}" if na == nb else f"n={na}/{nb}"
    head = f"{pair}: {sizes} per space gives power {p['achieved_at_n']:.2f} at alpha {p['alpha']:g}"
    if p["models_needed"] is None:
        return f"{head}; {p['reason']}"
    return f"{head}; ~{p['models_needed']} models per space would be needed for power {p['target']:g}"


def ci_text(ci: dict[str, Any] | None, digits: int = 3) -> str:
    """Text for an interval: "[lo, hi]"; "<= hi" for a one-sided upper bound; "n/a" for none."""
    if ci is None or (ci.get("lo") is None and ci.get("hi") is None):
        return "n/a"
    if ci.get("lo") is None:
        return f"<= {ci['hi']:.{digits}f}"
    lo = "…" if ci.get("lo") is None else f"{ci['lo']:.{digits}f}"
    hi = "…" if ci.get("hi") is None else f"{ci['hi']:.{digits}f}"
    return f"[{lo}, {hi}]"
