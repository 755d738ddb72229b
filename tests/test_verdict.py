"""reproduce-small's verdict: significance at the protocol's alpha or an honest 'not significant'
with the models per space needed; medians with CIs, KS with its exact p, the power."""

import numpy as np
import pandas as pd

from netspaces.analysis.verdict import errors_from_edf_table, verdict


def test_a_clear_difference_is_a_verdict_with_its_p_and_the_winner_by_median():
    rng = np.random.default_rng(0)
    lines = verdict({"regnetx": rng.normal(56, 2, 20), "anynetx_a": rng.normal(60, 4, 20)}, alpha=0.01, power=0.9)
    assert lines[0] == "n per space: regnetx 20, anynetx_a 20"
    assert "bootstrap 95% CIs" in lines[1] and "exact p = " in lines[2] and lines[3].startswith("power at n = 20: ")
    assert lines[-1].startswith("verdict: regnetx better, p = ") and lines[-1].endswith("< 0.01")
    # the winner is read from the medians, whichever space is listed first
    flipped = verdict({"a": rng.normal(60, 4, 20), "b": rng.normal(56, 2, 20)}, alpha=0.01, power=0.9)
    assert flipped[-1].startswith("verdict: b better")


def test_a_small_difference_says_not_significant_and_how_many_models_would_be_needed():
    rng = np.random.default_rng(1)
    lines = verdict({"a": rng.normal(56, 2, 12), "b": rng.normal(57.5, 2, 12)}, alpha=0.01, power=0.9)
    last = lines[-1]
    assert last.startswith("verdict: not significant at this scale (p = ") and ">= 0.01" in last
    assert "models per space would be needed" in last
    needed = int(last.split("~")[1].split()[0])
    assert needed > 12  # more than it had


def test_errors_come_from_the_analysis_edf_table(tmp_path):
    pd.DataFrame({"label": ["x", "x", "y"], "error": [1.0, 2.0, 3.0], "F": [0, 0.5, 0]}).to_csv(tmp_path / "e.csv")
    got = errors_from_edf_table(tmp_path / "e.csv")
    assert list(got) == ["x", "y"] and got["x"].tolist() == [1.0, 2.0]
