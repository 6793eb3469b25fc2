"""One quantity, one denominator: notebooks 02 and 03 and the claims table agree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from civitai_study import claims, describe, trends
from civitai_study.snapshot import load_snapshot


@pytest.fixture(scope="module")
def con(small_sample):
    return load_snapshot(small_sample).connect()


def test_image_nsfw_share_agrees_in_notebooks_02_03_and_claims(con):
    nb02 = describe.images_by_month(con).set_index("month")
    nb03 = trends.nsfw_counts(con, "above_pg").set_index("month")
    est = claims.run_estimates(con, ["images.nsfw_share"]
                               + [f"images.nsfw_share[{m}]" for m in nb02.index])
    assert (con.execute("SELECT count(*) FROM images WHERE nsfw_level = 0").fetchone()[0] > 0), \
        "the sample must hold unrated images for this test to mean anything"
    for month, row in nb02.iterrows():
        share03 = nb03.loc[month, "k"] / nb03.loc[month, "n"]
        assert row["share_nsfw"] == pytest.approx(share03)
        assert est[f"images.nsfw_share[{month}]"] == pytest.approx(share03)
        assert row["n_rated"] == nb03.loc[month, "n"]
    overall = describe.nsfw_overall(con).set_index(["unit", "definition"])
    assert est["images.nsfw_share"] == pytest.approx(overall.loc[("images", "above_pg"), "share"])
    assert est["images.nsfw_share"] == pytest.approx(nb03["k"].sum() / nb03["n"].sum())
    r_plus = describe.nsfw_definitions_by_month(con)
    r_plus = r_plus[(r_plus["unit"] == "images") & (r_plus["definition"] == "r_plus")]
    assert np.allclose(r_plus.set_index("month")["share"], nb02["share_r_plus"])


def test_model_shares_agree_in_notebook_02_and_claims(con):
    counts = describe.model_share_counts(con)
    signals = describe.poi_signals(con)  # notebook 02's overall poi share
    nb02_poi = signals.loc[signals["poi"], "n_models"].sum() / signals["n_models"].sum()
    est = claims.run_estimates(con, ["models.poi_share", "models.nsfw_share"])
    assert est["models.poi_share"] == pytest.approx(counts["n_poi"] / counts["n_models"])
    assert est["models.poi_share"] == pytest.approx(nb02_poi)
    flag = describe.nsfw_overall(con).set_index(["unit", "definition"]).loc[("models", "flag")]
    undated = describe.undated_counts(con)["models"]
    if undated == 0:  # with every model dated, the per-month tables add up to the same share
        assert est["models.nsfw_share"] == pytest.approx(flag["share"])


def test_gender_proxy_does_not_reuse_real_person_tags():
    overlap = set(describe.REAL_PERSON_TAGS) & (set(describe.FEMALE_TAGS) | set(describe.MALE_TAGS))
    assert overlap == set()


def test_downloads_per_month_of_exposure(con):
    as_of = "2025-06-01"
    table = describe.downloads_by_nsfw(con, as_of=as_of).set_index("nsfw_flag")
    models = con.execute("""
        SELECT coalesce(m.nsfw, false) AS nsfw, coalesce(m.poi, false) AS poi, m.download_count,
               coalesce(v.first_at, m.created_at) AS published
        FROM models m LEFT JOIN (SELECT model_id, min(created_at) AS first_at
                                 FROM model_versions GROUP BY model_id) v ON v.model_id = m.id
    """).df()
    end = pd.Timestamp(as_of, tz="UTC")
    days = (end - pd.to_datetime(models["published"], utc=True)).dt.total_seconds() / 86400
    months = np.maximum(days / (365.25 / 12), describe.MIN_EXPOSURE_MONTHS)
    models["per_month"] = models["download_count"] / months
    for flag, group in models.groupby("nsfw"):
        assert table.loc[flag, "downloads_per_month_mean"] == pytest.approx(
            group["per_month"].mean())
        assert table.loc[flag, "downloads_per_month_median"] == pytest.approx(
            group["per_month"].median())
    assert not math.isnan(describe.engagement_by_level(con)["reactions_per_month_mean"].iloc[1])
    poi = describe.poi_by_group(con, as_of=as_of)
    row = poi[(poi["signal"] == "poi") & poi["real_person"]].iloc[0]
    assert row["downloads_per_month_mean"] == pytest.approx(
        models.loc[models["poi"], "per_month"].mean())
