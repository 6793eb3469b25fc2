"""Notebook 03's inference on data where the truth is known and the series is not ideal.

These tests would have caught the review's findings: a growth model without period effects on a
volume curve that is not log-linear, events closer than ``min_side`` months, unadjusted event
tests, and recovery checked on one seed only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from civitai_study import trends
from civitai_study.synthetic import SampleConfig, write_sample


def _noisy_series(seed: int, months: int = 31, slope: float = 1.2, jump: float = 0.0,
                  at: str = "2099-01", sd: float = 0.08) -> pd.DataFrame:
    """Monthly counts with a volume that rises ~45-fold and falls again, and month noise."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range("2022-11", periods=months, freq="M").strftime("%Y-%m")
    t = np.arange(months) / 12
    volume = np.round(200 * np.exp(3.8 * np.sin(np.pi * np.arange(months) / (months + 6))))
    eta = -1 + slope * t + rng.normal(0, sd, months) + jump * (np.asarray(periods) >= at)
    k = rng.binomial(volume.astype(int), 1 / (1 + np.exp(-eta)))
    frame = pd.DataFrame({"period": periods, "n": volume.astype(int), "k": k})
    return trends.add_time(frame, "month")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_growth_ratio_is_the_share_model_on_a_non_log_linear_series(seed):
    counts = _noisy_series(seed)
    assert counts["n"].max() / counts["n"].min() > 20  # far from log-linear volume
    share = trends.fit_binomial(counts, ["t"], "quasi").tidy().set_index("term").loc["t"]
    ratio = trends.growth_ratio(None, counts=trends.stack_counts(counts)).tidy().set_index("term")
    ratio = ratio.loc["t_x_nsfw"]
    assert ratio["estimate"] == pytest.approx(share["estimate"], rel=1e-6)
    assert ratio["ci_low"] == pytest.approx(share["ci_low"], rel=1e-6)
    assert ratio["ci_high"] == pytest.approx(share["ci_high"], rel=1e-6)
    assert share["ci_low"] < 1.2 < share["ci_high"]


@pytest.fixture(scope="module", params=[20250507, 1, 2, 3])
def seeded_sample(request, tmp_path_factory):
    """The default-size sample for the default seed and three others."""
    return write_sample(tmp_path_factory.mktemp(f"s{request.param}"),
                        SampleConfig(seed=request.param))


def test_every_growth_interval_covers_the_truth(seeded_sample):
    con = seeded_sample.connect()
    truth = seeded_sample.manifest["truth"]["nsfw_above_pg_logit"]
    table = trends.growth_table(trends.nsfw_trend(con), trends.growth_ratio(con),
                                trends.within_group_trend(con), truth)
    assert len(table) == 3 and table["null_hypothesis"].str.startswith("H0:").all()
    assert table["covered"].all(), table[["quantity", "ci_low", "ci_high", "true_value"]]
    # the counts model is the share model, not a second estimate
    assert table["estimate"].iloc[1] == pytest.approx(table["estimate"].iloc[0], rel=1e-6)


def test_within_group_trend_sees_through_composition():
    """Shares constant within groups, mix moving towards the NSFW-heavy group: the pooled trend
    rises, the within-group odds ratio stays at 1."""
    rng = np.random.default_rng(5)
    rows = []
    for m, period in enumerate(pd.period_range("2022-11", periods=31, freq="M").strftime("%Y-%m")):
        mix = np.exp(np.array([-1.0, 0.0, 1.0]) * m / 12)
        n_g = rng.multinomial(3000, mix / mix.sum())
        noise = rng.normal(0, 0.08)
        for g, (n, logit) in enumerate(zip(n_g, (-1.5, 0.0, 1.5), strict=True)):
            rows.append((period, f"g{g}", n, rng.binomial(n, 1 / (1 + np.exp(-logit - noise)))))
    data = trends.add_time(pd.DataFrame(rows, columns=["period", "group", "n", "k"]), "month")
    pooled = data.groupby(["period", "month", "t"], as_index=False)[["n", "k"]].sum()
    assert trends.fit_binomial(pooled, ["t"]).tidy().set_index("term").loc["t", "ci_low"] > 0.3
    within = trends.within_group_trend(None, counts=data, by="group").tidy().set_index("term")
    # interval coverage of 0 is a 95% matter, counted over many seeds in test_simulation.py;
    # here: the estimate is near 0 (its standard error is about 0.02), far from the pooled rise
    assert abs(within.loc["t", "estimate"]) < 0.08


def _events(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame({"date": [r[0] for r in rows], "event": [f"e{i}" for i in
                                                                   range(len(rows))],
                          "source": "unit test", "kind": [r[1] for r in rows]})
    frame["break_month"] = [trends.break_month(d) for d in frame["date"]]
    return frame


def test_events_closer_than_min_side_are_dropped_and_said_so():
    months = pd.period_range("2022-11", periods=31, freq="M").strftime("%Y-%m").tolist()
    events = _events(("2022-11", "behaviour"), ("2023-11", "behaviour"), ("2024-01", "behaviour"),
                     ("2024-03-13", "measurement"), ("2025-05-20", "behaviour"))
    chosen = trends.select_events(events, months, min_side=3).set_index("break_month")
    assert chosen["status"].to_dict() == {"2022-11": "dropped", "2023-11": "used",
                                          "2024-01": "dropped", "2024-04": "used",
                                          "2025-06": "dropped"}
    assert "only 2 month(s) of data after break 2023-11" in chosen.loc["2024-01", "reason"]
    used = [months[0]] + sorted(chosen.index[chosen["status"] == "used"]) + ["2025-06"]
    gaps = [trends.month_index(b) - trends.month_index(a) for a, b in zip(used[:-1], used[1:],
                                                                          strict=True)]
    assert min(gaps) >= 3  # no segment shorter than min_side
    no_measure = trends.select_events(events, months, 3, measurement=False)
    assert no_measure.set_index("break_month").loc["2024-04", "status"] == "dropped"


def test_segmented_on_a_noisy_series_finds_the_break_and_adjusts():
    data = _noisy_series(11, jump=0.6, at="2023-11")
    events = _events(("2023-05", "behaviour"), ("2023-11", "behaviour"), ("2024-01", "behaviour"),
                     ("2024-03-13", "measurement"), ("2024-08", "behaviour"))
    table, fits = trends.segmented(data, events, ["t"], "test", "built series", 3)
    single = table[(table["specification"] == "single event")
                   & (table["change"] == "event F (level + slope)")].set_index("break_month")
    assert single.loc["2023-11", "p_holm"] < 0.05
    assert (single["p_holm"] >= single["p_value"] - 1e-12).all()
    assert (single["p_bh"] <= single["p_holm"] + 1e-12).all()
    omnibus = table[table["change"] == "omnibus F (any event)"]
    assert len(omnibus) == 1 and omnibus["p_value"].iloc[0] < 0.05
    measurement = table[table["kind"] == "measurement"]
    assert set(measurement["change"]) == {"level"}  # a level shift only
    assert measurement["p_holm"].isna().all()  # a nuisance, not a tested event
    dropped = table[table["specification"] == "dropped"]
    assert list(dropped["break_month"]) == ["2024-01"]
    joint = trends.joint_fit(fits)
    assert "slope[2024-04]" not in joint.result.params.index


def test_segmented_on_a_noisy_series_without_break_stays_quiet():
    fired = 0
    events = _events(("2023-05", "behaviour"), ("2023-08", "behaviour"), ("2023-11", "behaviour"),
                     ("2024-08", "behaviour"))
    for seed in range(20):
        table, _ = trends.segmented(_noisy_series(100 + seed), events, ["t"], "t", "p", 3)
        fired += bool((table.loc[table["change"] == "omnibus F (any event)", "p_value"]
                       < 0.05).any())
    assert fired <= 4  # 20 seeds at a 5% level: more than 4 happens with probability < 2%


def test_model_comparison_penalises_parameters():
    data = _noisy_series(3)
    events = _events(("2023-05", "behaviour"), ("2023-11", "behaviour"), ("2024-08", "behaviour"))
    linear = trends.fit_binomial(data, ["t"], "quasi")
    _, fits = trends.segmented(data, events, ["t"], "x", "p", 3)
    table = trends.segmented_comparison(linear, fits, "nsfw_share").set_index("fit")
    joint = table.loc["segmented (joint)"]
    assert trends.binomial_loglik(trends.joint_fit(fits)) > trends.binomial_loglik(linear)
    assert joint["qaic"] > table.loc["linear trend", "qaic"]  # better fit, but not worth it
    assert (table["c_hat"] == joint["c_hat"]).all()


def test_ljung_box_on_standardised_residuals_has_df_adjustment():
    fit = trends.fit_binomial(_noisy_series(4), ["t"], "quasi")
    resid = trends.standardised_residuals(fit)
    assert len(resid) == 31 and abs(resid.std() - 1) < 0.35
    lb = trends.ljung_box(fit)
    assert lb["model_df"] == 1
    assert lb["p_value"] < lb["p_value_plain_df"]  # one df fewer: the same Q is more extreme
    # strongly autocorrelated month noise is caught
    rng = np.random.default_rng(9)
    data = _noisy_series(4, sd=0.0)
    wave = 0.4 * np.sin(np.arange(31) / 2.5)
    data["k"] = rng.binomial(data["n"], 1 / (1 + np.exp(-(-1 + 1.2 * data["t"] + wave))))
    assert trends.ljung_box(trends.fit_binomial(data, ["t"], "quasi"))["p_value"] < 0.01


def test_beta_binomial_alternative_recovers_the_slope():
    from civitai_study.betabinomial import fit_betabinomial

    covered = 0
    for seed in range(10):
        row = fit_betabinomial(_noisy_series(200 + seed), ["t"]).tidy().set_index("term").loc["t"]
        covered += row["ci_low"] <= 1.2 <= row["ci_high"]
    assert covered >= 8


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 20):
        p = rng.uniform(0, 0.2, size)
        p[:1] = p[-1]  # a tie
        assert trends.holm(p) == pytest.approx(multipletests(p, method="holm")[1])
