"""A small version of the simulation study (benchmarks/simulation.py runs the full one).

Coverage and false-positive rates are checked against binomial tolerance bands around their
nominal values, so the tests fail when a method is miscalibrated, not when one seed is unlucky.
"""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from civitai_study import simulate
from civitai_study.paths import DERIVED_DIR

N_SEEDS = 60


@pytest.fixture(scope="module")
def study() -> pd.DataFrame:
    return simulate.run_study(N_SEEDS, generators=("correct", "composition", "break"), light=True)


def _rate(study: pd.DataFrame, generator: str, estimator: str) -> pd.Series:
    row = study[(study["generator"] == generator) & (study["estimator"] == estimator)]
    assert len(row) == 1, (generator, estimator)
    return row.iloc[0]


def _band(nominal: float, n: int = N_SEEDS, tail: float = 0.001) -> tuple[float, float]:
    return stats.binom.ppf(tail, n, nominal) / n, stats.binom.ppf(1 - tail, n, nominal) / n


def test_main_method_covers_at_95_percent(study):
    low, high = _band(0.95)
    for estimator in ("monthly quasi-binomial (main)", "weekly clustered by month"):
        row = _rate(study, "correct", estimator)
        assert row["n_failed"] == 0
        assert low <= row["rate"] <= high, (estimator, row["rate"], (low, high))


def test_within_group_test_covers_under_pure_composition(study):
    low, _ = _band(0.95)
    row = _rate(study, "composition", "within groups (group fixed effects, clustered by month)")
    assert row["rate"] >= low
    pooled = _rate(study, "composition", "monthly quasi-binomial (main), pooled over groups")
    assert pooled["rate"] > 0.9  # the pooled trend is all composition: it must be flagged


def test_event_tests_keep_the_familywise_error(study):
    _, high = _band(0.05)
    for estimator in ("omnibus F (any event), p < 0.05", "joint model terms, Holm p < 0.05",
                      "single-event F tests, Holm p < 0.05"):
        row = _rate(study, "correct", estimator)
        assert row["rate"] <= high, (estimator, row["rate"], high)


def test_the_true_break_is_detected(study):
    for estimator in ("omnibus F (any event), p < 0.05",
                      f"single-event F at {simulate.BREAK_MONTH}, Holm p < 0.05"):
        assert _rate(study, "break", estimator)["rate"] >= 0.8


def test_committed_study_meets_its_targets():
    """The committed full run (benchmarks/simulation.py, >= 200 seeds) shows the promised rates."""
    path = DERIVED_DIR / "simulation_coverage.csv"
    table = pd.read_csv(path)
    main = _rate(table, "correct", "monthly quasi-binomial (main)")
    assert main["n_seeds"] >= 200 and 0.93 <= main["rate"] <= 0.97
    for estimator in ("omnibus F (any event), p < 0.05", "joint model terms, Holm p < 0.05",
                      "single-event F tests, Holm p < 0.05"):
        assert _rate(table, "correct", estimator)["rate"] <= 0.07
