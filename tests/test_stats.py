"""How sure we are (analysis/stats.py), validated by simulation.

Every confidence interval is checked against the known true value over thousands of seeded
synthetic populations of known shape (normal, and skewed lognormal / gamma errors like those
of a design space), all populations of a case in one vectorized call; the permutation p is
checked under the null; the power estimate against the rejection rate of fresh draws from
the true distributions. docs/statistics.md lists what was measured.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as sps

from netspaces.analysis import stats
from netspaces.analysis.edf import complexity_bin_edges, complexity_weights, ks_statistic
from netspaces.analysis.populations import Population
from netspaces.analysis.summary import format_summary, summarize
from netspaces.cli import main

SIMS = 2000  # synthetic populations per case: the coverage's Monte Carlo SE is 0.005
BOOT = 1000  # bootstrap resamples per synthetic population (10,000 in `analyze`)
BAND = (0.93, 0.97)

# Error-like distributions (top-1 error in %), frozen so the truth is known exactly.
SHAPES = {
    "normal": sps.norm(30, 3),
    "lognormal": sps.lognorm(0.6, loc=20, scale=np.exp(1.5)),  # right-skewed
    "gamma": sps.gamma(2.0, loc=15, scale=3.0),  # right-skewed
}


def draw(shape: str, size, rng) -> np.ndarray:
    return SHAPES[shape].rvs(size=size, random_state=rng)


def covered(lo, hi, truth) -> float:
    lo = np.nan_to_num(np.asarray(lo, float), nan=-np.inf)
    return float(np.mean((lo <= truth) & (truth <= np.asarray(hi, float))))


# --- medians ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [9, 10])
def test_median_bootstrap_equals_resampling_the_interpolated_edf(n):
    # One Beta draw per resample stands for n draws from the Hazen-interpolated EDF.
    rng = np.random.default_rng(0)
    x = np.sort(draw("lognormal", n, rng))
    fast = stats.bootstrap_medians(x, 20_000, rng)
    u = rng.random((20_000, n))
    slow = np.median(stats._interpolated_quantile(np.broadcast_to(x, (20_000, n)), u), axis=1)
    assert sps.ks_2samp(fast, slow).pvalue > 0.01
    assert fast.mean() == pytest.approx(slow.mean(), abs=0.02 * x.std())


@pytest.mark.parametrize("shape, n", [("normal", 20), ("lognormal", 21), ("gamma", 50), ("lognormal", 100)])
def test_median_ci_covers_95_percent(shape, n):
    rng = np.random.default_rng(1)
    lo, hi = stats.median_interval(draw(shape, (SIMS, n), rng), BOOT, rng)
    assert BAND[0] <= covered(lo, hi, SHAPES[shape].median()) <= BAND[1]


@pytest.mark.parametrize(
    "shape_a, shape_b, na, nb",
    [("normal", "lognormal", 20, 50), ("lognormal", "gamma", 30, 30), ("gamma", "gamma", 50, 50)],
)
def test_median_diff_ci_covers_95_percent(shape_a, shape_b, na, nb):
    rng = np.random.default_rng(2)
    a, b = draw(shape_a, (SIMS, na), rng), draw(shape_b, (SIMS, nb), rng)
    if shape_a == shape_b:
        b = b * 1.1  # a real difference
    truth = SHAPES[shape_a].median() - SHAPES[shape_b].median() * (1.1 if shape_a == shape_b else 1.0)
    lo, hi = stats.median_diff_interval(a, b, BOOT, rng)
    assert BAND[0] <= covered(lo, hi, truth) <= BAND[1]


def test_median_ci_of_one_population_and_its_json_form():
    ci = stats.median_ci(np.arange(1.0, 21.0), n_boot=2000, seed=3)
    assert 5 < ci["lo"] < 10.5 < ci["hi"] < 16 and ci["level"] == 0.95
    assert stats.median_ci([4.0])["lo"] is None
    assert stats.median_ci(np.arange(10.0), seed=7) == stats.median_ci(np.arange(10.0), seed=7)


# --- the 10th-percentile error (what the minimum can honestly be turned into) -------------------


@pytest.mark.parametrize(
    "shape, n, sides", [("lognormal", 20, "upper bound"), ("gamma", 50, "two-sided"), ("normal", 100, "two-sided")]
)
def test_low_quantile_ci_covers_95_percent(shape, n, sides):
    rng = np.random.default_rng(4)
    _, lo, hi, got = stats.quantile_interval(draw(shape, (SIMS, n), rng), stats.LOW_QUANTILE)
    assert got == sides
    assert BAND[0] <= covered(lo, hi, SHAPES[shape].ppf(stats.LOW_QUANTILE)) <= BAND[1]


def test_low_quantile_needs_36_models_for_a_lower_end():
    assert stats.low_quantile_ci(np.arange(35.0))["lo"] is None
    two = stats.low_quantile_ci(np.arange(36.0))
    assert two["sides"] == "two-sided" and two["lo"] <= two["estimate"] <= two["hi"]
    assert stats.low_quantile_ci([3.0])["sides"] == "none"


# --- the KS distance -------------------------------------------------------------------------


@pytest.mark.parametrize("na, nb", [(12, 12), (13, 17), (20, 50), (100, 80)])
def test_ks_critical_count_gives_scipys_exact_decisions(na, nb):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(150, na)), rng.normal(0.9, 1.2, size=(150, nb))
    b[:50] = rng.normal(size=(50, nb))
    counts = stats._ks_counts(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = np.array([sps.ks_2samp(a[i], b[i], method="exact").pvalue for i in range(150)])
    for alpha in (0.05, 0.001):
        v = stats.ks_critical_count(na, nb, alpha)
        assert ((counts >= v) == (p <= alpha)).all()
    assert np.allclose(counts / (na * nb), [ks_statistic(a[i], b[i]) for i in range(150)])


def _scale_d() -> float:  # sup |Φ(x) − Φ(x/2)|: N(0,1) against N(0,2)
    gap = optimize.minimize_scalar(
        lambda x: -abs(sps.norm.cdf(x) - sps.norm.cdf(x / 2)), bounds=(0, 5), method="bounded"
    )
    return -gap.fun


@pytest.mark.parametrize("na, nb", [(20, 50), (50, 50)])
def test_ks_ci_covers_D_equal_0_as_often_as_the_exact_test_accepts(na, nb):
    # D = 0: the interval covers exactly when the exact 5% test accepts, 1 − its actual size
    # (>= 95%; D is discrete, so the size is below 5%: 95.1% at 20/50, 96.1% at 50/50).
    rng = np.random.default_rng(6)
    _, lo, hi = stats.ks_interval(draw("gamma", (10_000, na), rng), draw("gamma", (10_000, nb), rng))
    size = stats._exact_sf(na, nb, stats.ks_critical_count(na, nb, 0.05))
    assert 0.95 <= 1 - size <= 0.975
    assert covered(lo, hi, 0.0) == pytest.approx(1 - size, abs=0.007)  # 3 Monte Carlo SEs


@pytest.mark.parametrize("case", ["shift 0.5", "shift 1", "shift 2", "scale"])
def test_ks_ci_is_conservative_when_the_populations_differ(case):
    rng = np.random.default_rng(7)
    if case == "scale":
        a, b, truth = rng.normal(0, 1, (SIMS, 30)), rng.normal(0, 2, (SIMS, 30)), _scale_d()
    else:  # lognormal errors shifted by delta on the log scale: D = 2Φ(delta/2) − 1
        delta = float(case.split()[1])
        a, b = np.exp(rng.normal(0, 1, (SIMS, 30))), np.exp(rng.normal(delta, 1, (SIMS, 30)))
        truth = 2 * sps.norm.cdf(delta / 2) - 1
    _, lo, hi = stats.ks_interval(a, b)
    assert covered(lo, hi, truth) >= 0.95


# --- P(A better) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, na, nb", [("shift 0", 20, 20), ("shift 1", 20, 50), ("shift 2", 30, 30), ("scale", 50, 50)]
)
def test_prob_a_better_ci_covers_95_percent(case, na, nb):
    rng = np.random.default_rng(8)
    if case == "scale":  # lognormal errors, B three times as spread on the log scale
        a, b = rng.lognormal(-0.5, 0.5, (SIMS, na)), rng.lognormal(0, 1.5, (SIMS, nb))
        truth = sps.norm.cdf(0.5 / np.sqrt(0.25 + 2.25))
    else:
        delta = float(case.split()[1])
        a, b = np.exp(rng.normal(-delta, 1, (SIMS, na))), np.exp(rng.normal(0, 1, (SIMS, nb)))
        truth = sps.norm.cdf(delta / np.sqrt(2))
    _, lo, hi = stats.prob_better_interval(a, b)
    assert BAND[0] <= covered(lo, hi, truth) <= BAND[1]


def test_prob_a_better_counts_ties_half_and_survives_separation():
    got = stats.prob_a_better([1.0, 2.0, 3.0], [2.0, 4.0])
    assert got["estimate"] == pytest.approx((1 + 1 + 0.5 + 1 + 0 + 1) / 6)
    separated = stats.prob_a_better(np.arange(10.0), np.arange(20.0, 30.0))
    assert separated["estimate"] == 1.0 and 0.7 < separated["lo"] < 1.0 and separated["hi"] == pytest.approx(1.0)


# --- the permutation p of the normalized KS ------------------------------------------------------


def test_permutation_statistic_is_the_summarys_normalized_D():
    rng = np.random.default_rng(9)
    ea, eb = np.round(rng.normal(30, 2, 25), 1), np.round(rng.normal(31, 2, 18), 1)  # rounded: ties
    ca, cb = rng.uniform(1, 100, 25), rng.uniform(1, 100, 18)
    edges = complexity_bin_edges(np.concatenate([ca, cb]), 4)
    _, d = stats.permutation_pvalue(ea, eb, ca, cb, edges, n_perm=10)
    expected = ks_statistic(ea, eb, complexity_weights(ca, edges), complexity_weights(cb, edges))
    assert d == pytest.approx(expected, abs=1e-12)
    _, plain = stats.permutation_pvalue(ea, eb, n_perm=10)
    assert plain == pytest.approx(ks_statistic(ea, eb), abs=1e-12)


def test_permutation_p_is_uniform_under_the_null():
    # Error and complexity drawn jointly (correlated) from the same law for both populations.
    rng = np.random.default_rng(10)
    rejections = []
    for run in range(1000):
        flops = rng.uniform(1, 10, 30)
        errors = 40 - flops + rng.normal(0, 1.5, 30)
        edges = complexity_bin_edges(flops, 3)
        p, _ = stats.permutation_pvalue(errors[:15], errors[15:], flops[:15], flops[15:], edges, 99, seed=run)
        rejections.append(p <= 0.05)
    assert 0.03 <= np.mean(rejections) <= 0.07


def test_permutation_p_is_small_when_the_populations_differ():
    rng = np.random.default_rng(11)
    flops_a, flops_b = rng.uniform(1, 10, 40), rng.uniform(1, 10, 40)
    errors_a, errors_b = 40 - flops_a + rng.normal(0, 1, 40), 42 - flops_b + rng.normal(0, 1, 40)
    edges = complexity_bin_edges(np.concatenate([flops_a, flops_b]), 5)
    p, _ = stats.permutation_pvalue(errors_a, errors_b, flops_a, flops_b, edges, n_perm=999)
    assert p == pytest.approx(1 / 1000)


# --- power ----------------------------------------------------------------------------------

POWER_CASES = {  # true error distributions of two spaces
    "shift": (sps.lognorm(0.5, loc=20, scale=np.exp(1.5)), sps.lognorm(0.5, loc=20, scale=np.exp(1.75))),
    "spread": (sps.lognorm(0.3, loc=20, scale=np.exp(1.5)), sps.lognorm(0.6, loc=20, scale=np.exp(1.5))),
    "shape": (sps.gamma(2.0, loc=15, scale=3.0), sps.norm(22, 4.5)),
}


def true_power(case: str, m: int, alpha: float, rng, draws: int = 4000) -> float:
    a, b = POWER_CASES[case]
    critical = stats.ks_critical_count(m, m, alpha)
    return float(
        np.mean(stats._ks_counts(a.rvs((draws, m), random_state=rng), b.rvs((draws, m), random_state=rng)) >= critical)
    )


@pytest.mark.parametrize("case, m", [("shift", 80), ("shift", 160), ("spread", 160), ("spread", 240), ("shape", 160)])
def test_power_from_a_large_sample_matches_fresh_draws(case, m):
    rng = np.random.default_rng(12)
    a, b = POWER_CASES[case]
    observed_a, observed_b = a.rvs(200_000, random_state=rng), b.rvs(200_000, random_state=rng)
    estimated = stats.power_at(observed_a, observed_b, m, alpha=0.001, reps=2000, seed=1)
    assert estimated == pytest.approx(true_power(case, m, 0.001, rng), abs=0.05)


def test_models_needed_from_a_large_sample_reaches_the_target_in_truth():
    rng = np.random.default_rng(13)
    a, b = POWER_CASES["shift"]
    needed = stats.models_needed(a.rvs(200_000, random_state=rng), b.rvs(200_000, random_state=rng), reps=1000)
    assert needed.reason is None and 150 < needed.models < 400
    assert true_power("shift", needed.models, 0.001, rng) == pytest.approx(0.9, abs=0.05)


def test_power_from_small_samples_is_an_order_of_magnitude():
    # From 50 models per space the estimate scatters widely around the truth (plug-in: the
    # observed difference is part noise); the truth stays inside its central 80%.
    rng = np.random.default_rng(14)
    a, b = POWER_CASES["shift"]
    estimates = [
        stats.power_at(a.rvs(50, random_state=rng), b.rvs(50, random_state=rng), 160, reps=200, seed=i)
        for i in range(100)
    ]
    low, high = np.quantile(estimates, [0.1, 0.9])
    assert low < true_power("shift", 160, 0.001, rng) < high


def test_models_needed_says_why_when_there_is_no_answer():
    rng = np.random.default_rng(15)
    same = stats.models_needed(rng.normal(30, 2, 40), rng.normal(30, 2, 40) + 0.0)
    if same.reason is None:  # this seed's draw happens to differ: use identical samples
        x = rng.normal(30, 2, 40)
        same = stats.models_needed(x, x.copy())
    assert same.models is None and same.reason.startswith("indistinguishable")
    x = np.linspace(20, 30, 60)
    capped = stats.models_needed(x, x + 3.0, max_models=30)
    assert capped.models is None and capped.reason.startswith("even 30 models per space give power")


def test_power_is_zero_where_the_test_can_never_reject():
    assert stats.ks_critical_count(3, 3, 0.001) is None
    assert stats.power_at(np.arange(3.0), np.arange(3.0) + 100, 3) == 0.0


# --- summary.json, the terminal, the CLI ----------------------------------------------------------


def population(label, errors, **columns):
    return Population(label=label, source=f"{label}.csv", table=pd.DataFrame({"top1_err": errors, **columns}))


def test_summary_reports_every_statistic_and_the_power_warning():
    rng = np.random.default_rng(16)
    a = population("A", np.round(rng.normal(30, 2, 12), 2), flops=rng.uniform(1, 10, 12))
    b = population("B", np.round(rng.normal(32, 2, 12), 2), flops=rng.uniform(1, 10, 12))
    analysis = summarize([a, b], n_boot=1000)
    s = analysis.summary
    json.dumps(s, allow_nan=False)  # strict JSON: missing values are null, never NaN
    for label in "AB":
        p = s["populations"][label]
        assert p["median_ci"]["lo"] <= p["median"] <= p["median_ci"]["hi"]
        assert p["low_quantile_ci"]["quantile"] == 0.1 and p["low_quantile_ci"]["sides"] == "upper bound"
    k = s["ks"]["A vs B"]
    assert k["ks_ci"]["lo"] <= k["plain"] <= k["ks_ci"]["hi"]
    assert 0 < k["normalized_p_value"] <= 1 and "permutation" in k["normalized_p_method"]
    assert k["median_diff_ci"]["lo"] <= k["median_diff_ci"]["estimate"] <= k["median_diff_ci"]["hi"]
    assert k["prob_a_better"]["lo"] <= k["prob_a_better"]["estimate"] <= k["prob_a_better"]["hi"]
    power = k["power"]
    assert {"alpha", "target", "achieved_at_n", "models_needed"} <= set(power)
    assert (power["alpha"], power["target"]) == (0.001, 0.9) and power["achieved_at_n"] < 0.9
    assert power["models_needed"] > 12
    (warning,) = [w for w in analysis.warnings if "per space gives power" in w]
    assert re.fullmatch(
        r"A vs B: n=12 per space gives power 0\.\d\d at alpha 0\.001; ~\d+ models per space would be needed for power 0\.9",
        warning,
    )
    text = format_summary(analysis)
    assert "95% CI: median [" in text and "P(A better)=" in text and "normalized p=" in text
    assert max(len(line) for line in text.splitlines() if not line.startswith(("WARNING", "note"))) <= 120


def write_sweep(directory, errors, space):
    for i, error in enumerate(errors):
        run = directory / f"sample_{i:03d}"
        run.mkdir(parents=True)
        (run / "result.json").write_text(
            json.dumps({"status": "ok", "space": space, "flops": 4e8 - i, "top1_err": float(error)})
        )
    return directory


def test_power_command_on_two_sweeps(tmp_path, capsys):
    rng = np.random.default_rng(17)
    a = write_sweep(tmp_path / "x", np.round(rng.normal(30, 2, 20), 2), "regnetx")
    b = write_sweep(tmp_path / "y", np.round(rng.normal(32, 2, 20), 2), "anynetx_a")
    (a / "population.jsonl").write_text('{"top1_err": 1.0}\n')  # stale: the records are read
    assert main(["power", str(a), str(b), "--reps", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "n per space: regnetx 20, anynetx_a 20"
    assert re.match(r"power at the current n: 0\.\d\d \(exact KS test at alpha 0\.001; 300 ", lines[1])
    assert re.match(r"models per space needed for power 0\.9: ~\d+ \(estimated power 0\.9\d\)$", lines[2])
    assert len(lines) == 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--alpha", "0"], "argument --alpha: must be a number strictly between 0 and 1, got '0'"),
        (["--alpha", "1"], "argument --alpha: must be a number strictly between 0 and 1, got '1'"),
        (["--power", "1.5"], "argument --power: must be a number strictly between 0 and 1, got '1.5'"),
        (["--power", "nan"], "argument --power: must be a number strictly between 0 and 1, got 'nan'"),
        (["--reps", "0"], "argument --reps: must be a positive integer, got '0'"),
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got '-1'"),
    ],
)
def test_power_command_bad_values_are_one_line(tmp_path, capsys, args, needle):
    assert main(["power", str(tmp_path), str(tmp_path), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and needle in captured.err


# --- the full validation grid (slow): the numbers docs/statistics.md quotes ------------------------


@pytest.mark.slow
def test_coverage_over_the_full_grid():
    rng = np.random.default_rng(100)
    sizes = [(20, 20), (20, 50), (50, 50), (100, 100)]
    for shape in SHAPES:
        for n in (20, 21, 50, 100):
            lo, hi = stats.median_interval(draw(shape, (SIMS, n), rng), BOOT, rng)
            assert BAND[0] <= covered(lo, hi, SHAPES[shape].median()) <= BAND[1], (shape, n)
            _, lo, hi, _ = stats.quantile_interval(draw(shape, (SIMS, n), rng))
            assert BAND[0] <= covered(lo, hi, SHAPES[shape].ppf(0.1)) <= BAND[1], (shape, n)
    for shape_a, shape_b in [("normal", "lognormal"), ("lognormal", "gamma"), ("gamma", "normal")]:
        truth = SHAPES[shape_a].median() - SHAPES[shape_b].median()
        for na, nb in sizes:
            lo, hi = stats.median_diff_interval(
                draw(shape_a, (SIMS, na), rng), draw(shape_b, (SIMS, nb), rng), BOOT, rng
            )
            assert BAND[0] <= covered(lo, hi, truth) <= BAND[1], (shape_a, shape_b, na, nb)
    for delta in (0.0, 0.5, 1.0, 2.0):
        for na, nb in sizes:
            a, b = np.exp(rng.normal(-delta, 1, (SIMS, na))), np.exp(rng.normal(0, 1, (SIMS, nb)))
            _, lo, hi = stats.prob_better_interval(a, b)
            assert BAND[0] <= covered(lo, hi, sps.norm.cdf(delta / np.sqrt(2))) <= BAND[1], (delta, na, nb)
            _, lo, hi = stats.ks_interval(b, np.exp(rng.normal(delta, 1, (SIMS, na))))
            floor = 0.94 if delta == 0 else 0.95  # D = 0: 1 − the exact test's size (95.1-96.9%), ± noise
            assert covered(lo, hi, 2 * sps.norm.cdf(delta / 2) - 1) >= floor, (delta, na, nb)
