"""The seed noise floor (sweep.replicas): pooled within-model σ over training seeds, beside the
population's spread, drawn as a band on the EDF; replicas never enter n or the EDF."""

import numpy as np
import pandas as pd

from netspaces.analysis.plots import edf_plot
from netspaces.analysis.populations import Population


def _population(replicas: pd.DataFrame | None) -> Population:
    table = pd.DataFrame({"top1_err": [50.0, 52.0, 55.0, 61.0], "sample": [0, 1, 2, 3], "seed": [0, 0, 0, 0]})
    return Population("p", "test", table, replicas=replicas)


REPLICAS = pd.DataFrame(
    {
        "sample": [0, 0, 0, 1, 1, 1],
        "seed": [0, 1, 2, 0, 1, 2],
        "error": [50.0, 51.0, 52.0, 52.0, 52.0, 55.0],
    }
)


def test_seed_sigma_is_the_pooled_within_model_standard_deviation():
    p = _population(REPLICAS)
    noise = p.seed_noise()
    # sample 0: var(50, 51, 52) = 1; sample 1: var(52, 52, 55) = 3; pooled σ = sqrt((1 + 3) / 2)
    assert noise["seed_sigma"] == np.sqrt(2.0)
    assert (noise["models"], noise["seeds_per_model"]) == (2, 3.0)
    assert noise["population_sigma"] == np.std([50.0, 52.0, 55.0, 61.0], ddof=1)
    assert len(p.errors) == 4  # replicas are not population members


def test_no_replicas_no_noise_floor_and_single_seed_models_do_not_count():
    assert _population(None).seed_noise() is None
    one_seed = pd.DataFrame({"sample": [0, 1], "seed": [0, 0], "error": [50.0, 52.0]})
    assert _population(one_seed).seed_noise() is None


def test_the_edf_plot_draws_the_band_only_with_replicas():
    plain = edf_plot([_population(None)], None, "t")
    banded = edf_plot([_population(REPLICAS)], None, "t")
    assert plain[:8] == banded[:8] == b"\x89PNG\r\n\x1a\n" and plain != banded


def test_summary_and_report_state_the_noise_floor_beside_the_spread():
    from netspaces.analysis.report import build_html
    from netspaces.analysis.summary import format_summary, summarize

    analysis = summarize([_population(REPLICAS)], norm="none", n_boot=200)
    noise = analysis.summary["populations"]["p"]["seed_noise"]
    assert noise["seed_sigma"] == np.sqrt(2.0) and analysis.summary["populations"]["p"]["n"] == 4
    assert "seed noise floor: sigma 1.414 over training seeds (2 models x 3 seeds) vs population sigma 4.796" in (
        format_summary(analysis)
    )
    assert "seed noise σ" in build_html(analysis, {})
    assert "seed_noise" not in summarize([_population(None)], norm="none", n_boot=200).summary["populations"]["p"]
