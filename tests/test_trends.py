"""Trend regressions recover known parameters: the synthetic generator's truth and built series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from civitai_study import trends
from civitai_study.synthetic import SampleConfig, write_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The default synthetic sample (same seed and size as data/sample), built fresh."""
    return write_sample(tmp_path_factory.mktemp("sample"), SampleConfig())


@pytest.mark.parametrize("se", ["quasi", "hac"])
def test_nsfw_slope_recovers_truth(sample, se):
    truth = sample.manifest["truth"]["nsfw_above_pg_logit"]
    assert truth["time_origin"] == trends.TIME_ORIGIN
    fit = trends.nsfw_trend(sample.connect(), "above_pg", "month", se)
    check = trends.truth_check(fit, truth)
    assert check["covered"], check


def test_poi_slope_recovers_truth(sample):
    truth = sample.manifest["truth"]["poi_logit"]
    fit = trends.poi_trend(sample.connect(), "poi", "quasi")
    check = trends.truth_check(fit, truth)
    assert check["covered"], check


def test_tidy_table_columns(sample):
    table = trends.nsfw_trend(sample.connect()).tidy()
    assert list(table.columns[:6]) == ["term", "estimate", "std_err", "ci_low", "ci_high",
                                       "p_value"]
    row = table.set_index("term").loc["t"]
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["exp_estimate"] == pytest.approx(np.exp(row["estimate"]))


def _series(months: int, level_jump: float = 0.0, at: int = 99) -> pd.DataFrame:
    periods = pd.period_range("2022-11", periods=months, freq="M").strftime("%Y-%m")
    t = np.arange(months) / 12
    p = 1 / (1 + np.exp(-(-1 + 0.8 * t + level_jump * (np.arange(months) >= at))))
    n = np.full(months, 100_000)
    frame = pd.DataFrame({"period": periods, "n": n, "k": np.round(n * p).astype(int)})
    return trends.add_time(frame, "month")


def test_binomial_fit_on_exact_series():
    fit = trends.fit_binomial(_series(20), ["t"], "hac")
    assert fit.result.params["t"] == pytest.approx(0.8, abs=1e-3)


def test_segmented_finds_level_change():
    data = _series(24, level_jump=0.5, at=12)  # break at 2023-11
    events = pd.DataFrame({"date": ["2023-11-01"], "event": ["test"], "source": ["unit test"]})
    events["break_month"] = [trends.break_month(d) for d in events["date"]]
    table, fits = trends.segmented(data, events, ["t"], "test", "built series", joint=False)
    level = table.set_index("change").loc["level"]
    assert level["estimate"] == pytest.approx(0.5, abs=0.01)
    assert table.set_index("change").loc["slope", "estimate"] == pytest.approx(0, abs=0.02)


def test_break_month_and_events_file():
    assert trends.break_month("2023-04-07") == "2023-05"
    assert trends.break_month("2023-12-26") == "2024-01"
    assert trends.break_month("2024-08-01") == "2024-08"
    assert trends.break_month("2023-11") == "2023-11"
    events = trends.load_events()
    assert events["source"].notna().all() and len(events) >= 8


def test_too_few_periods_says_so():
    with pytest.raises(trends.TrendError, match=r"period\(s\) with data"):
        trends.fit_binomial(_series(2), ["t"])


def test_sensitivity_grid(sample):
    table = trends.sensitivity(sample.connect())
    assert len(table) == 20  # weekly rows: clustered by month only
    weekly = table[table["aggregation"] == "week"]
    assert set(weekly["se_method"]) == {"cluster"}
    nsfw = table[(table["outcome"] == "nsfw_share") & (table["definition"] == "above_pg")]
    assert (nsfw["ci_low"] > 0).all()


def test_weeks_belong_to_the_month_of_their_thursday():
    import pandas as pd

    from civitai_study.trends import add_time

    frame = pd.DataFrame({"period": ["2022-10-31", "2023-01-30", "2023-02-27"]})
    assert add_time(frame, "week")["month"].tolist() == ["2022-11", "2023-02", "2023-03"]
