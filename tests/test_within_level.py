"""Coded-vocabulary trends within NSFW level: a rise that is only the NSFW mix is not a rise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from civitai_study.coding.trends import marginal_and_within, share_trends, within_level_trends
from civitai_study.figures import coded
from civitai_study.figures.style import finding_of

FOOT = {"source_label": "test", "synthetic": True}
LEVELS = ("PG", "R", "XXX")
#: Fixed within-level shares of the category; the level mix moves towards XXX over time.
WITHIN = {"PG": 0.2, "R": 0.5, "XXX": 0.85}


def _composition_only(n_months: int = 24, per_month: int = 4000, seed: int = 1) -> pd.DataFrame:
    """month × level counts where only the mix of levels changes (the category's share at each
    level is constant), plus a second category that truly rises within every level."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_months):
        month = f"{2023 + m // 12}-{m % 12 + 1:02d}"
        mix = np.array([0.7 - 0.5 * m / n_months, 0.2, 0.1 + 0.5 * m / n_months])
        totals = rng.multinomial(per_month, mix / mix.sum())
        for level, total in zip(LEVELS, totals, strict=True):
            mixed = rng.binomial(total, WITHIN[level])
            logit = np.log(WITHIN[level] / (1 - WITHIN[level])) - 1 + 0.5 * m / 12
            rising = rng.binomial(total, 1 / (1 + np.exp(-logit)))
            for cat, k in (("mix_only", mixed), ("true_rise", rising)):
                rows.append({"month": month, "nsfw_level": level, "category": cat,
                             "field": "prompt", "n_documents": int(k), "n_total": int(total),
                             "share": k / total})
    return pd.DataFrame(rows)


def test_mix_only_rise_disappears_within_level():
    cells = _composition_only()
    monthly = (cells.groupby(["month", "category", "field"], as_index=False)
               [["n_documents", "n_total"]].sum())
    monthly["share"] = monthly["n_documents"] / monthly["n_total"]
    pooled = share_trends(monthly).set_index("category")
    within = within_level_trends(cells, levels=LEVELS).set_index("category")
    assert pooled.loc["mix_only", "or_ci_low"] > 1.2  # the pooled model sees a rise ...
    assert within.loc["mix_only", "or_ci_low"] < 1 < within.loc["mix_only", "or_ci_high"]
    # ... and the within-level model recovers the true within-level slope (0.5 per year)
    assert np.log(within.loc["true_rise", "odds_ratio_per_year"]) == pytest.approx(0.5, abs=0.1)
    assert within.loc["true_rise", "or_ci_low"] > 1
    table = marginal_and_within(pooled.reset_index(), within.reset_index()).set_index(
        "category")
    assert table.loc["mix_only", "verdict"] == "pooled rise disappears within level (NSFW mix)"
    assert table.loc["true_rise", "verdict"] == "rises within level"


def test_titles_never_claim_a_mix_only_rise():
    cells = _composition_only()
    monthly = (cells.groupby(["month", "category", "field"], as_index=False)
               [["n_documents", "n_total"]].sum())
    monthly["share"] = monthly["n_documents"] / monthly["n_total"]
    pooled = share_trends(monthly)
    within = within_level_trends(cells, levels=LEVELS)
    only_mix = monthly[monthly["category"] == "mix_only"]
    fig = coded.categories_over_time(only_mix, trends=pooled, within=within, **FOOT)
    title = finding_of(fig)
    assert "all NSFW levels pooled" in title and "within NSFW level no clear trend" in title
    assert "grew" not in title
    table = marginal_and_within(pooled, within)
    fig = coded.within_level(table, **FOOT)
    assert finding_of(fig).startswith("1 of 2 pooled rises in coded vocabulary disappear")
    assert "'true_rise'" in finding_of(fig)
    reliability = pd.DataFrame({"category": ["mix_only", "true_rise"],
                                "krippendorff_alpha": [0.9, 0.5]})
    gated = marginal_and_within(pooled, within, reliability)
    assert gated.set_index("category").loc["true_rise", "trend_claim"].startswith(
        "not reliable")
    fig = coded.within_level(gated, **FOOT)
    assert "no reliably coded category rises within level" in finding_of(fig)
    fig = coded.categories_over_time(monthly[monthly["category"] == "true_rise"], within=within,
                                     unreliable=["true_rise"], **FOOT)
    # a category below a gate is never named as a trend
    assert "true_rise" not in finding_of(fig) and "no trend is claimed" in finding_of(fig)


def test_levels_without_variation_are_left_out():
    cells = _composition_only()
    cells.loc[(cells["category"] == "mix_only") & (cells["nsfw_level"] == "PG"),
              "n_documents"] = 0
    within = within_level_trends(cells, levels=LEVELS).set_index("category")
    assert within.loc["mix_only", "levels_used"] == "R, XXX"
    assert "left out: PG" in within.loc["mix_only", "notes"]
    with pytest.raises(ValueError, match="no dated rows"):
        within_level_trends(cells, field="model_tags")


def test_month_level_table_adds_up_to_the_monthly_table(small_sample):
    from civitai_study.coding.codebook import load_codebook
    from civitai_study.coding.coder import code_snapshot
    from civitai_study.snapshot import load_snapshot

    result = code_snapshot(load_snapshot(small_sample), load_codebook(),
                           fields=("prompt", "model_tags"))
    cells = result.categories_by_month_level()
    monthly = result.categories_by_month().set_index(["month", "category", "field"])
    summed = cells.groupby(["month", "category", "field"])[["n_documents", "n_total"]].sum()
    assert (summed["n_documents"] == monthly.loc[summed.index, "n_documents"]).all()
    assert (summed["n_total"] == monthly.loc[summed.index, "n_total"]).all()
    levels = cells.groupby(["nsfw_level", "category", "field"])[["n_documents"]].sum()
    by_level = result.categories_by_level().set_index(["nsfw_level", "category", "field"])
    assert (levels["n_documents"] == by_level.loc[levels.index, "n_documents"]).all()
    assert set(cells.loc[cells["field"] == "model_tags", "nsfw_level"]) <= {
        "model nsfw=false", "model nsfw=true", "model nsfw=unknown"}
