"""NSFW rise decomposed into within-group and mix change: exact identity, and a mix-only
generator where the within-group trend is flat while the pooled one rises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from civitai_study import composition
from civitai_study.snapshot import load_snapshot

SHARES = {"A": 0.2, "B": 0.8}  # constant NSFW share within each group


def _mix_only(n_months: int = 24, seed: int = 3) -> pd.DataFrame:
    """Cells where group B (mostly NSFW) grows from 10 % to 70 % of uploads; 40 creators."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_months):
        month = f"{2023 + m // 12}-{m % 12 + 1:02d}"
        weight_b = 0.1 + 0.6 * m / (n_months - 1)
        for creator in range(40):
            group = "B" if rng.random() < weight_b else "A"
            n = int(rng.integers(20, 60))
            rows.append({"month": month, "group": group, "creator": f"c{creator}", "n": n,
                         "k": int(rng.binomial(n, SHARES[group]))})
    return pd.DataFrame(rows)


def test_shift_share_is_exact_and_finds_the_mix():
    frame = _mix_only()
    out = composition.shift_share(frame, window=6)
    assert out["within"] + out["mix"] == pytest.approx(out["change"], abs=1e-12)
    assert out["change"] > 0.2
    assert out["mix"] / out["change"] > 0.85  # nearly all of the rise is mix
    assert abs(out["within"]) < 0.05


def test_shift_share_counts_entering_groups_as_mix():
    frame = pd.DataFrame({"month": ["2023-01", "2023-02", "2023-02"], "group": ["A", "A", "B"],
                          "creator": ["x", "x", "y"], "n": [10, 10, 10], "k": [2, 2, 10]})
    out = composition.shift_share(frame, window=1)
    assert out["change"] == pytest.approx(0.6 - 0.2)
    assert out["within"] == pytest.approx(0.0)
    assert out["mix"] == pytest.approx(0.4)
    assert out["n_groups_both_windows"] == 1


def test_within_group_trend_is_flat_when_only_the_mix_moves():
    frame = _mix_only()
    pooled = composition.clustered_trend(frame, fixed_effects=False)
    within = composition.clustered_trend(frame, fixed_effects=True)
    assert pooled["or_ci_low"] > 1.5
    assert within["or_ci_low"] < 1 < within["or_ci_high"]
    assert within["n_clusters"] == 40


def test_decompose_on_a_snapshot(small_sample):
    con = load_snapshot(small_sample).connect()
    table = composition.decompose(con).set_index("grouping")
    assert list(table.index) == ["base_model", "model_type", "creator_cohort", "creator"]
    for row in table.itertuples():
        assert row.within + row.mix == pytest.approx(row.change, abs=1e-9)
        assert row.se_method.startswith("clustered by creator")
    images = table.loc["base_model"]
    rated = con.execute("SELECT count(*) FROM images WHERE created_at IS NOT NULL "
                        "AND nsfw_level <> 0").fetchone()[0]
    assert composition.cells(con, "base_model")["n"].sum() == rated
    assert images["unit"] == "images" and table.loc["model_type", "unit"] == "models"
    assert np.isnan(table.loc["creator", "within_odds_ratio_per_year"])  # no creator FE
    assert composition.finding(table.reset_index()).startswith("Share of the change")
    with pytest.raises(ValueError, match="unknown grouping"):
        composition.cells(con, "colour")


def test_decomposition_figure_adds_up_and_says_so():
    from civitai_study.figures.composition import nsfw_decomposition
    from civitai_study.figures.style import finding_of, plotted_data

    frame = pd.DataFrame({"grouping": ["base_model", "creator"], "within": [0.3, 0.1],
                          "mix": [0.1, 0.3], "change": [0.4, 0.4],
                          "mix_share_of_change": [0.25, 0.75]})
    fig = nsfw_decomposition(frame, source_label="test", synthetic=True)
    assert finding_of(fig) == ("A change in the mix of groups accounts for 25% by base model, "
                               "75% by creator of the change in the NSFW share; the rest is "
                               "change within groups")
    data = plotted_data(fig)
    assert (data["within"] + data["mix"] == data["change"]).all()


def test_pooled_fit_does_not_depend_on_the_grouping(small_sample):
    """decompose fits the pooled model once per unit; splitting cells by group must not change
    it beyond fitting tolerance (binomial sufficient statistics; clustered scores add up within
    creator; the small-sample factor depends on the number of rows, hence 1e-3)."""
    con = load_snapshot(small_sample).connect()
    by_base = composition.clustered_trend(composition.cells(con, "base_model"), False)
    by_creator = composition.clustered_trend(composition.cells(con, "creator"), False)
    for key in ("odds_ratio_per_year", "or_ci_low", "or_ci_high"):
        assert by_base[key] == pytest.approx(by_creator[key], rel=1e-3)  # IRLS tolerance


def test_many_creators_are_bucketed_into_bounded_clusters(monkeypatch):
    """Past MAX_CLUSTERS creators the fit runs on buckets of creators: the estimate is the same
    (sums of binomial cells), the clusters are fewer and the model's rows bounded."""
    frame = _mix_only()
    exact = composition.clustered_trend(frame, fixed_effects=True)
    monkeypatch.setattr(composition, "MAX_CLUSTERS", 10)
    bucketed = composition.clustered_trend(frame, fixed_effects=True)
    assert bucketed["odds_ratio_per_year"] == pytest.approx(exact["odds_ratio_per_year"],
                                                             rel=1e-9)
    assert bucketed["n_clusters"] == 10 and "merged into 10 clusters" in bucketed["notes"]
    assert bucketed["or_ci_low"] < 1 < bucketed["or_ci_high"]


def test_creators_merged_in_duckdb_match_the_pandas_buckets(small_sample, monkeypatch):
    """Past the cluster limit DuckDB returns one row per bucket × month × group, not per creator;
    the buckets are the ones ``clustered_trend`` would make, so the fit is the same, and the
    frame and the notes say how many creators were merged."""
    con = load_snapshot(small_sample).connect()
    for grouping in ("base_model", "creator_cohort", "model_type"):
        full = composition.cells(con, grouping)
        merged = composition.cells(con, grouping, max_clusters=10)
        assert merged["creator"].nunique() == 10
        assert len(merged) < len(full)
        assert merged.attrs["creators_merged"] == full["creator"].nunique()
        assert merged[["n", "k"]].sum().tolist() == full[["n", "k"]].sum().tolist()
        for fixed_effects in (False, True):
            in_sql = composition.clustered_trend(merged, fixed_effects=fixed_effects)
            monkeypatch.setattr(composition, "MAX_CLUSTERS", 10)
            in_pandas = composition.clustered_trend(full, fixed_effects=fixed_effects)
            monkeypatch.undo()
            assert in_sql["odds_ratio_per_year"] == pytest.approx(
                in_pandas["odds_ratio_per_year"], rel=1e-9), grouping
            assert "merged into 10 clusters" in in_sql["notes"]
            if not fixed_effects:  # same buckets: the same interval but for the small-sample
                # factor of the cluster-robust SE, which counts rows (fewer after the merge)
                assert in_sql["n_clusters"] == in_pandas["n_clusters"]
                for key in ("or_ci_low", "or_ci_high"):
                    assert in_sql[key] == pytest.approx(in_pandas[key], rel=1e-3), key
            # with fixed effects, groups without variation leave first, so pandas ranks fewer
            # creators and its buckets differ; both nest the creators (valid clusters)
    assert "creators_merged" not in composition.cells(con, "base_model").attrs
    # each creator its own group: never merged, whatever the limit
    assert "creators_merged" not in composition.cells(con, "creator", max_clusters=10).attrs


def test_creator_keys_follow_the_pseudonyms_sorted_order_and_never_collide():
    """The bucket key is the pseudonym read as a number, so ``ORDER BY cother, ckey`` is the
    pseudonyms' sorted order; 'unknown' and other non-hex values are keyed apart (MD5)."""
    import duckdb

    from civitai_study.pseudonymise import SYNTHETIC_KEY, Pseudonymiser

    hasher = Pseudonymiser(SYNTHETIC_KEY)
    names = sorted({hasher(f"c{i}") for i in range(3000)} | {"unknown", "zz top", "0000"})
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS creator", [names])
    keyed = composition._keyed_rows("SELECT creator FROM t")
    rows = con.execute(f"SELECT creator, ckey FROM ({keyed}) ORDER BY cother, ckey").fetchall()
    hexed = [n for n in names if len(n) == 16]
    assert [c for c, _ in rows][:len(hexed)] == hexed
    assert len({k for _, k in rows}) == len(names)
    assert rows[0][1] == int(hexed[0], 16)


def test_missing_and_odd_creators_are_keyed_apart_and_merged_like_the_rest(small_sample):
    """Creators that are not pseudonyms ('unknown' for a missing one, or an importer's own
    format) take the MD5 key path: no error, every creator one cluster, the same cells."""
    con = load_snapshot(small_sample).connect()
    con.execute("""CREATE TEMP TABLE odd AS SELECT * REPLACE (
        CASE WHEN id % 7 = 0 THEN NULL WHEN id % 7 = 1 THEN '' WHEN id % 7 = 2 THEN 'user1'
             WHEN id % 7 = 3 THEN upper(username_hash) ELSE username_hash END AS username_hash)
        FROM images""")
    con.execute("CREATE OR REPLACE TEMP VIEW images AS SELECT * FROM odd")
    n_creators = con.execute("SELECT count(DISTINCT coalesce(username_hash, 'unknown')) "
                             "FROM images WHERE created_at IS NOT NULL").fetchone()[0]
    for grouping in ("base_model", "creator_cohort"):
        full = composition.cells(con, grouping)
        assert full["creator"].nunique() <= n_creators
        merged = composition.cells(con, grouping, max_clusters=10)
        assert merged.attrs["creators_merged"] == full["creator"].nunique()
        assert merged[["n", "k"]].sum().tolist() == full[["n", "k"]].sum().tolist()
        summed = full.assign(creator=full["creator"] % 10).groupby(
            ["month", "group", "creator"], as_index=False)[["n", "k"]].sum()
        pd.testing.assert_frame_equal(merged, summed, check_dtype=False)
    table = composition.decompose(con)
    assert len(table) == 4 and table["within"].notna().all()


def test_creator_shift_share_in_duckdb_equals_the_pandas_split(small_sample):
    con = load_snapshot(small_sample).connect()
    for window in (1, 6, 12):
        in_sql = composition.creator_shift_share(con, window=window)
        in_pandas = composition.shift_share(composition.cells(con, "creator"), window=window)
        assert in_sql.keys() == in_pandas.keys()
        for key, value in in_pandas.items():
            assert in_sql[key] == (pytest.approx(value, abs=1e-12)
                                   if isinstance(value, float) else value), key


def test_cells_refuses_a_bad_cluster_limit_and_keeps_its_columns_when_empty(small_sample, tmp_path):
    con = load_snapshot(small_sample).connect()
    for bad in (0, -3, 2.7, True, "10"):
        with pytest.raises(ValueError, match="max_clusters must be a whole number"):
            composition.cells(con, "base_model", max_clusters=bad)
    merged = composition.cells(con, "base_model", definition="r_plus", max_clusters=10)
    assert list(merged.columns) == ["month", "group", "creator", "n", "k"]
    con.execute("CREATE TEMP TABLE no_images AS SELECT * FROM images LIMIT 0")
    con.execute("CREATE OR REPLACE TEMP VIEW images AS SELECT * FROM no_images")
    frame = composition.cells(con, "base_model")
    assert frame.empty and list(frame.columns) == ["month", "group", "creator", "n", "k"]
    assert composition.creator_shift_share(con) is None
