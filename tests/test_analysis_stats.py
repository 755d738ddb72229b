"""EDF, normalized EDF, KS and bootstrap on small populations whose answers are worked out by hand."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from netspaces.analysis.bootstrap import bootstrap_best_values, good_range, sample_size
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
from netspaces.analysis.summary import summarize


def population(label, errors, **columns):
    table = pd.DataFrame({"top1_err": np.asarray(errors, dtype=float), **columns})
    return Population(label=label, source=f"{label}.csv", table=table)


# --- plain EDF ------------------------------------------------------------------------------


def test_edf_counts_strictly_smaller_errors_so_ties_share_a_value():
    errors = np.array([1.0, 2.0, 2.0, 3.0])
    # F(e) = (1/4)·#{e_i < e}: nothing below 1; only the 1 below 2; 1,2,2 below 2.5 and 3.
    assert edf(errors, np.array([0.5, 1, 2, 2.5, 3, 3.5])).tolist() == [0, 0, 0.25, 0.75, 0.75, 1]


def test_edf_does_not_depend_on_input_order():
    assert edf(np.array([3.0, 1, 2, 2]), np.array([2.0, 3])).tolist() == [0.25, 0.75]


# --- KS statistic ---------------------------------------------------------------------------


def test_ks_with_ties_and_unequal_sizes():
    # A = [1,2,2,3], B = [2,4]. Fraction ≤ e on the union {1,2,3,4}:
    #   A: 1/4, 3/4, 1, 1     B: 0, 1/2, 1/2, 1     |A−B|: 1/4, 1/4, 1/2, 0  →  D = 1/2
    # (reached for 3 < e ≤ 4 in the strict form: F_A = 1, F_B = 1/2).
    a, b = np.array([1.0, 2, 2, 3]), np.array([2.0, 4])
    assert ks_statistic(a, b) == 0.5
    assert ks_statistic(b, a) == 0.5
    assert ks_statistic(a, b) == stats.ks_2samp(a, b).statistic


def test_ks_identical_and_disjoint_populations():
    assert ks_statistic(np.array([1.0, 1, 1]), np.array([1.0])) == 0.0
    assert ks_statistic(np.array([1.0, 2]), np.array([3.0, 4, 5])) == 1.0


def test_ks_pvalue_is_exact_for_small_populations_and_names_its_method():
    a, b = np.arange(20.0), np.arange(10.0) + 8.5
    d = ks_statistic(a, b)
    # B = 8.5..17.5. For 8 < e ≤ 8.5: F_A = 9/20 (0..8), F_B = 0; nowhere is the gap larger
    # (at the top, F_A(≤17.5) = 18/20 against F_B = 1).
    assert d == pytest.approx(9 / 20)
    p, method = ks_pvalue(a, b)
    assert method == "exact" and p == pytest.approx(stats.ks_2samp(a, b, method="exact").pvalue)
    # three models each, fully separated: the exact two-sided p is 2/C(6,3) = 0.1; the
    # asymptotic approximation says ~0.02, far too sure of itself at this n
    p, method = ks_pvalue(np.array([1.0, 2, 3]), np.array([4.0, 5, 6]))
    assert method == "exact" and p == pytest.approx(0.1)
    assert stats.ks_2samp([1.0, 2, 3], [4.0, 5, 6], method="asymp").pvalue < 0.05


def test_ks_pvalue_is_asymptotic_beyond_scipys_exact_range():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=10_001), rng.normal(0.05, size=300)
    p, method = ks_pvalue(a, b)
    assert method == "asymptotic" and p == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue)


# --- normalized EDF -------------------------------------------------------------------------


def test_complexity_weights_give_each_nonempty_bin_equal_mass():
    flops = np.array([1.0, 1, 1, 100])
    edges = complexity_bin_edges(flops, 2)  # log-spaced: 1, 10, 100
    assert edges == pytest.approx([1, 10, 100])
    # bin [1,10) holds 3 models, bin [10,100] 1: weights 1/(2·3) and 1/(2·1).
    assert complexity_weights(flops, edges) == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])
    errors = np.array([1.0, 2, 3, 4])
    f_norm = weighted_edf(errors, complexity_weights(flops, edges), errors)
    assert f_norm == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6])


def test_empty_bins_do_not_count():
    flops = np.array([1.0, 2, 900, 1000])  # 3 log bins over [1, 1000]: the middle one is empty
    assert complexity_weights(flops, complexity_bin_edges(flops, 3)) == pytest.approx([0.25] * 4)


def test_normalized_ks_uses_bins_shared_by_both_populations():
    a = population("A", [1, 2, 3, 4], flops=[1, 1, 1, 100])
    b = population("B", [1, 2], flops=[100, 100])
    analysis = summarize([a, b], norm="flops", bins=2, n_boot=10)
    # Shared edges 1, 10, 100. A: weights 1/6,1/6,1/6,1/2; B: both in the top bin, 1/2 each.
    # ≤ e on {1,2,3,4}: A 1/6, 2/6, 3/6, 1;  B 1/2, 1, 1, 1  →  gaps 1/3, 2/3, 1/2, 0.
    ks = analysis.summary["ks"]["A vs B"]
    assert ks["normalized"] == pytest.approx(2 / 3)
    # Plain: A 1/4, 1/2, 3/4, 1; B 1/2, 1, 1, 1  →  D = 1/2.
    assert ks["plain"] == 0.5
    rows = analysis.edf_table[analysis.edf_table.label == "A"]
    assert rows["F"].tolist() == [0, 0.25, 0.5, 0.75]
    assert rows["F_norm"].to_numpy() == pytest.approx([0, 1 / 6, 2 / 6, 3 / 6])


def test_normalized_equals_plain_without_complexity_or_with_norm_none():
    a = population("A", [1, 2, 2, 3])
    b = population("B", [2, 4], flops=[1, 2])
    missing = summarize([a, b], norm="flops", n_boot=10)
    assert missing.summary["ks"]["A vs B"]["normalized"] == 0.5
    assert any("no complete 'flops'" in note for note in missing.notes)
    none = summarize([population("A", [1, 2], flops=[1, 9]), b], norm="none", n_boot=10)
    assert none.summary["ks"]["A vs B"]["normalized"] == none.summary["ks"]["A vs B"]["plain"]


def test_default_bin_count_shrinks_for_small_populations():
    assert [default_bin_count(n) for n in (1, 3, 12, 99, 100, 5000)] == [1, 1, 3, 9, 10, 10]
    assert default_bin_count(12, requested=7) == 7


def test_population_statistics():
    analysis = summarize([population("A", [4, 1, 3, 2, 10])], n_boot=10)
    stats = analysis.summary["populations"]["A"]
    assert {k: stats[k] for k in ("n", "min", "mean", "median", "excluded")} == {
        "n": 5,
        "min": 1.0,
        "mean": 4.0,
        "median": 3.0,
        "excluded": 0,
    }
    # 95% intervals (analysis/stats.py; coverage validated in tests/test_stats.py)
    assert 1.0 <= stats["median_ci"]["lo"] <= 3.0 <= stats["median_ci"]["hi"] <= 10.0
    assert stats["low_quantile_ci"]["quantile"] == 0.1 and stats["low_quantile_ci"]["lo"] is None
    assert analysis.summary["ks"] == {}
    assert any("fewer than 12 models" in w for w in analysis.warnings)


# --- bootstrap ------------------------------------------------------------------------------


def test_sample_size_is_a_quarter_rounded_up_at_least_one():
    assert [sample_size(n) for n in (1, 3, 4, 10, 100)] == [1, 1, 1, 3, 25]


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(123)
    errors, values = rng.random(40), rng.integers(1, 30, 40).astype(float)
    first = bootstrap_best_values(errors, values, n_boot=500, seed=7)
    assert np.array_equal(first, bootstrap_best_values(errors, values, n_boot=500, seed=7))
    assert not np.array_equal(first, bootstrap_best_values(errors, values, n_boot=500, seed=8))
    assert good_range(errors, values, 500, seed=7) == good_range(errors, values, 500, seed=7)


def test_bootstrap_when_the_parameter_decides_the_error():
    # error = depth for depths 1..100 (shuffled rows). Each repeat draws m = 25 models, so the
    # best model's depth is the minimum of 25 uniform draws from 1..100:
    #   P(best ≤ k) = 1 − (1 − k/100)^25.
    # P(best = 1) = 1 − 0.99^25 = 0.222 > 2.5%, so lo = 1; P(≤2) = 0.397 < 0.5 < P(≤3) = 0.533,
    # so the median is 3; P(≤13) = 0.969 < 0.975 < P(≤14) = 0.977, so hi is 14 give or take
    # sampling noise (standard error of a proportion at 10,000 repeats: 0.0016).
    depth = np.random.default_rng(0).permutation(np.arange(1, 101)).astype(float)
    best = bootstrap_best_values(depth, depth, n_boot=10_000, seed=1)
    assert set(np.unique(best)) <= set(range(1, 101))
    assert np.mean(best == 1) == pytest.approx(1 - 0.99**25, abs=0.02)
    assert np.mean(best <= 3) == pytest.approx(1 - 0.97**25, abs=0.02)
    r = good_range(depth, depth, n_boot=10_000, seed=1)
    assert r["lo"] == 1 and r["median"] == 3 and 13 <= r["hi"] <= 15


def test_bootstrap_with_one_model_per_draw_spans_all_values():
    # 4 models → m = 1: the "best" is a uniformly drawn model, so the range is the full span.
    r = good_range(np.array([4.0, 3, 2, 1]), np.array([10.0, 20, 30, 40]), n_boot=2000, seed=0)
    assert r["lo"] == 10 and r["hi"] == 40


def test_bootstrap_ignores_models_without_the_parameter():
    errors = np.array([1.0, 2, 3, 4])
    r = good_range(errors, np.array([np.nan, 5, 5, 5]), n_boot=100)
    assert r == {"lo": 5.0, "median": 5.0, "hi": 5.0}


def test_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    errors, values = rng.random(100), rng.random(100)
    start = time.perf_counter()
    good_range(errors, values, n_boot=10_000, seed=0)
    assert time.perf_counter() - start < 0.5
