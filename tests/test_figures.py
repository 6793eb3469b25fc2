"""Figures are checked on the data behind them (never on pixels), plus byte-stable saving."""

from __future__ import annotations

import hashlib

import blurhash
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from civitai_study import trends
from civitai_study.figures import blur, coded, creators, models, tags, volume
from civitai_study.figures import trends as trend_figures
from civitai_study.figures.style import (
    NSFW_LEVEL_COLORS,
    comparison_window,
    finding_of,
    plotted_data,
    save_figure,
)

FOOT = {"source_label": "test data (snapshot 2025-06-01)", "synthetic": True}
MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def footer_text(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts)


@pytest.fixture
def by_level() -> pd.DataFrame:
    rows = []
    for i, month in enumerate(MONTHS):
        for level, n in ((1, 100 - 5 * i), (2, 20 + i), (8, 10 + 4 * i), (16, i)):
            rows.append((month, level, n))
    return pd.DataFrame(rows, columns=["month", "nsfw_level", "n_images"])


def test_uploads_counts_are_the_table(by_level):
    fig = volume.uploads_by_nsfw_level(by_level, **FOOT)
    data = plotted_data(fig)
    assert list(data.index) == MONTHS and list(data.columns) == [1, 2, 8, 16]
    assert data.loc["2024-03", 8] == 18 and int(data.to_numpy().sum()) == by_level.n_images.sum()
    # every level is drawn in its one colour
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    for handle, level in zip(handles, [1, 2, 8, 16], strict=True):
        assert mcolors.to_hex(handle.patches[0].get_facecolor()) == NSFW_LEVEL_COLORS[level].lower()
    assert "SYNTHETIC" in footer_text(fig)
    assert "images uploaded per month" in ax.get_ylabel() and "(count)" in ax.get_ylabel()


def test_uploads_shares_sum_to_one_and_title_states_finding(by_level):
    fig = volume.uploads_by_nsfw_level(by_level, shares=True, **FOOT)
    data = plotted_data(fig)
    assert np.allclose(data.sum(axis=1), 1.0)
    above = 1 - 100 / 130  # first month: 100 PG of 130 images
    assert f"{100 * above:.0f}%" in finding_of(fig)
    assert finding_of(fig) == fig._suptitle.get_text().replace("\n", " ")
    assert f"(R or above: {100 * 10 / 130:.0f}% to" in finding_of(fig)  # X + XXX: 10 of 130


def test_uploads_title_shares_leave_unrated_images_out(by_level):
    """Unrated images (level 0) are drawn but are not in the denominator of the title's shares."""
    unrated = pd.DataFrame({"month": MONTHS, "nsfw_level": 0, "n_images": 70})
    fig = volume.uploads_by_nsfw_level(pd.concat([by_level, unrated]), shares=True, **FOOT)
    assert f"went from {100 * 30 / 130:.0f}% of rated uploads" in finding_of(fig)
    assert 0 in plotted_data(fig).columns


def test_trend_recovers_a_known_slope():
    months = [str(p) for p in pd.period_range("2022-01", periods=36, freq="M")]
    t = np.arange(36) / 12
    share = 1 / (1 + np.exp(-(-1.0 + 0.8 * t)))
    n = np.full(36, 20000)
    # binomial noise (seeded): counts without any noise have a Pearson dispersion far below 1,
    # and the quasi-binomial interval (notebook 03's) then shrinks below the rounding error
    rng = np.random.default_rng(20250507)
    monthly = pd.DataFrame({"month": months, "n_images": n, "n_nsfw": rng.binomial(n, share),
                            "n_r_plus": rng.binomial(n, share * 0.5)})
    fitted, summary = volume.fit_share_trend(monthly)
    assert summary["odds_ratio_per_year"] == pytest.approx(np.exp(0.8), rel=1e-2)
    assert summary["ci_low"] < np.exp(0.8) < summary["ci_high"]
    assert (fitted["ci_low"] <= fitted["fitted"]).all()
    assert (fitted["fitted"] <= fitted["ci_high"]).all()
    fig = volume.nsfw_share_trend(monthly, pd.DataFrame({"date": ["2023-03-13"],
                                                         "event": ["rework; long"]}), **FOOT)
    data = plotted_data(fig)
    assert set(data["definition"]) == {"above_pg", "r_plus"} and len(data) == 72
    assert "rises" in finding_of(fig)
    # the headline odds ratio appears under both definitions, side by side, main one first
    title = finding_of(fig)
    assert "above PG (main)" in title and "R or above ×" in title
    assert title.index("above PG (main)") < title.index("R or above ×")
    assert any("rework" in t.get_text() for t in fig.axes[0].texts)


def test_headline_finding_names_both_definitions_and_directions():
    up = {"odds_ratio_per_year": 4.12, "ci_low": 3.85, "ci_high": 4.41}
    flat = {"odds_ratio_per_year": 1.01, "ci_low": 0.9, "ci_high": 1.1}
    assert volume.headline_finding({"above_pg": up, "r_plus": up}) == (
        "The NSFW share rises under both definitions: odds of an image above PG (main) ×4.12 "
        "per year (95% CI 3.85–4.41); R or above ×4.12 per year (95% CI 3.85–4.41)")
    assert volume.headline_finding({"above_pg": up, "r_plus": flat}).startswith(
        "The NSFW share rises above PG and shows no clear trend at R or above")


def test_models_by_type_pools_minor_types():
    frame = pd.DataFrame({"month": ["2024-01"] * 3 + ["2024-02"] * 2,
                          "type": ["LORA", "Checkpoint", "Poses", "LORA", "Hypernetwork"],
                          "n_models": [5, 3, 1, 8, 2]})
    data = plotted_data(models.models_by_type(frame, **FOOT))
    assert list(data.columns) == ["LORA", "Checkpoint", "other"]
    assert data.loc["2024-01", "other"] == 1 and data.loc["2024-02", "other"] == 2
    assert data.to_numpy().sum() == 19


def test_base_model_shares_and_cutoff():
    frame = pd.DataFrame({"unit": ["model_versions"] * 4 + ["images"],
                          "month": ["2024-01", "2024-01", "2024-02", "2026-01", "2024-01"],
                          "base_model": ["SD 1.5", "SDXL 1.0", "SDXL 1.0", "Pony", "SD 1.5"],
                          "n": [3, 1, 4, 9, 100]})
    data = plotted_data(models.models_by_base_model(frame, until="2025-05", **FOOT))
    assert list(data.index) == ["2024-01", "2024-02"]
    assert data.loc["2024-01", "SD 1.5"] == pytest.approx(0.75)
    assert np.allclose(data.sum(axis=1), 1.0)


def test_real_person_models_numbers():
    monthly = pd.DataFrame({"month": ["2024-01", "2024-02"], "n_models": [10, 20],
                            "n_poi": [1, 5]})
    by_group = pd.DataFrame({"signal": ["poi", "poi", "poi_tag"],
                             "real_person": [False, True, True], "n_models": [24, 6, 4],
                             "n_nsfw": [6, 3, 1]})
    gender = pd.DataFrame({"group": ["poi flag", "not real person (neither signal)"],
                           "n_models": [6, 20], "n_female_terms": [5, 8],
                           "n_male_terms": [1, 2]})
    fig = models.real_person_models(monthly, by_group, gender, **FOOT)
    data = plotted_data(fig)
    assert list(data["share_by_month"]["poi_share"]) == [0.1, 0.25]
    assert data["nsfw_share"].to_dict() == {"real person": 0.5, "other": 0.25}
    assert data["gender_proxy"].loc["real person", "n_female_terms"] == pytest.approx(5 / 6)
    assert finding_of(fig).startswith("20% of models depict real people")


def test_top_tags_order_and_redaction():
    frame = pd.DataFrame({"tag": ["anime", "jane doe", "woman", "style"],
                          "n_models": [50, 40, 40, 10]})
    fig = tags.top_tags(frame, n_models_total=100, top=3, sensitive={"jane doe"}, **FOOT)
    data = plotted_data(fig)
    assert list(data["tag"]) == ["anime", "jane doe", "woman"]
    assert list(data["label"]) == ["anime", "[redacted] #1", "woman"]
    assert "jane doe" not in finding_of(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][1] == "[redacted] #1"
    shown = plotted_data(tags.top_tags(frame, redact=False, sensitive={"jane doe"}, **FOOT))
    assert "jane doe" in list(shown["label"])


def test_overrepresented_tags_accepts_notebook_columns():
    frame = pd.DataFrame({"comparison": ["nsfw"] * 3 + ["poi"] * 2,
                          "tag": ["nude", "sexy", "anime", "celebrity", "actress"],
                          "z": [9.0, 5.0, -2.0, 7.0, 6.0]})
    data = plotted_data(tags.overrepresented_tags(frame, top=2, **FOOT))
    assert list(data["term"]) == ["nude", "sexy", "celebrity", "actress"]


def test_promotional_tags_pivot():
    frame = pd.DataFrame({"month": ["2024-01", "2024-01", "2024-02", "2024-02"],
                          "term": ["masterpiece", "score_9"] * 2,
                          "n_images": [5, 0, 6, 3], "n_with_prompt": [10, 10, 10, 10],
                          "share": [0.5, 0.0, 0.6, 0.3]})
    data = plotted_data(tags.promotional_tags(frame, **FOOT))
    assert list(data.columns) == ["masterpiece", "score_9"]
    assert data.loc["2024-02", "score_9"] == 0.3


def test_categories_and_cooccurrence():
    frame = pd.DataFrame({"month": ["2024-01", "2024-01", "2024-02", "2024-02", "2024-02"],
                          "category": ["a", "b", "a", "b", "a"],
                          "field": ["prompt"] * 4 + ["negative_prompt"],
                          "n_documents": [1, 2, 3, 4, 9], "share": [0.1, 0.2, 0.3, 0.4, 0.9]})
    data = plotted_data(coded.categories_over_time(frame, **FOOT))
    assert data.loc["2024-02", "a"] == 0.3  # the negative-prompt row is not mixed in
    with pytest.raises(ValueError, match="no rows for field"):
        coded.categories_over_time(frame, field="title", **FOOT)
    pairs = pd.DataFrame({"category_a": ["a", "a", "b"], "category_b": ["a", "b", "b"],
                          "n_documents": [10, 4, 5]})
    shares = plotted_data(coded.category_cooccurrence(pairs, **FOOT))
    assert shares.loc["a", "b"] == pytest.approx(0.4) and shares.loc["b", "a"] == pytest.approx(0.8)
    assert np.allclose(np.diag(shares), 1.0)


def test_lorenz_gini():
    x = np.linspace(0, 1, 11)
    frame = pd.concat([pd.DataFrame({"unit": "images", "share_of_creators": x,
                                     "share_of_items": x}),
                       pd.DataFrame({"unit": "models", "share_of_creators": x,
                                     "share_of_items": x ** 2})])
    data = plotted_data(creators.creator_lorenz(frame, **FOOT)).set_index("unit")
    assert data.loc["images", "gini"] == pytest.approx(0.0, abs=1e-12)
    assert data.loc["models", "gini"] == pytest.approx(1 / 3, abs=0.01)
    assert data.loc["models", "top10_share"] == pytest.approx(1 - 0.81)


def test_blurhash_grid_counts_undecodable():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:, :4] = [200, 30, 30]
    good = blurhash.encode(image, components_x=4, components_y=3)
    frame = pd.DataFrame({"nsfw_level": [1, 1, 8, 8, 8],
                          "blurhash": [good, "LKO2?", None, good[:-1], good + "!"],
                          "width": [512] * 5, "height": [768] * 5})
    fig = blur.blurhash_grid(frame, per_row=3, **FOOT)
    data = plotted_data(fig)
    assert list(data["decoded"]) == [True, False, False, False, False]
    assert data.attrs["undecodable"] == 4
    assert set(data["reason"][1:]) == {"too short", "missing", "length 27 does not match its "
                                       "4×3 components", "characters outside base 83"}
    assert "4 undecodable" in finding_of(fig)
    pixels, reason = blur.decode_blurhash(good, 512, 768)
    assert reason is None and pixels.shape[0] > pixels.shape[1]  # portrait kept
    assert pixels[:, 0, 0].mean() > pixels[:, -1, 0].mean()  # red left half survives


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_saving_twice_is_byte_identical(tmp_path, by_level):
    digests = []
    for run in ("a", "b"):
        fig = volume.uploads_by_nsfw_level(by_level, **FOOT)
        paths = save_figure(fig, "fig03_test", tmp_path / run)
        assert [p.suffix for p in paths] == [".png", ".pdf"]
        digests.append([sha(p) for p in paths])
    assert digests[0] == digests[1]
    assert b"CreationDate" not in (tmp_path / "a" / "fig03_test.pdf").read_bytes()


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['n_images'\]"):
        volume.uploads_by_nsfw_level(pd.DataFrame({"month": ["2024-01"], "nsfw_level": [1]}),
                                     **FOOT)


# ---- figures moved out of notebooks 03 and 04, and the shared trend fit ---------------------


def test_share_trend_is_notebook_03s_fit():
    """The figure's odds ratio and interval are those of ``trends.fit_binomial`` (quasi), the
    function notebook 03 uses, on the same rated-image counts; unrated months are left out."""
    months = [str(p) for p in pd.period_range("2022-11", periods=18, freq="M")]
    rng = np.random.default_rng(7)
    n_rated = rng.integers(200, 2000, 18)
    share = 1 / (1 + np.exp(-(-0.5 + 0.6 * np.arange(18) / 12)))
    k = rng.binomial(n_rated, share)
    monthly = pd.DataFrame({"month": months, "n_images": n_rated + 5, "n_rated": n_rated,
                            "n_nsfw": k, "n_r_plus": k // 2})
    monthly.loc[3, ["n_rated", "n_nsfw"]] = 0  # a month with no rated image
    fitted, summary = volume.fit_share_trend(monthly)
    counts = pd.DataFrame({"period": months, "n": monthly["n_rated"], "k": monthly["n_nsfw"]})
    expected = trends.tidy(trends.fit_binomial(trends.add_time(counts, "month"), ["t"],
                                               "quasi")).set_index("term").loc["t"]
    assert summary["odds_ratio_per_year"] == pytest.approx(expected["exp_estimate"], rel=1e-12)
    assert summary["ci_low"] == pytest.approx(expected["exp_ci_low"], rel=1e-12)
    assert summary["ci_high"] == pytest.approx(expected["exp_ci_high"], rel=1e-12)
    assert summary["pearson_dispersion"] == pytest.approx(expected["dispersion"])
    assert len(fitted) == 17 and months[3] not in set(fitted["month"])
    assert fitted["n_images"].tolist() == [n for i, n in enumerate(n_rated) if i != 3]
    assert ((fitted["ci_low"] < fitted["fitted"]) & (fitted["fitted"] < fitted["ci_high"])).all()


def fitted_table(slope: float, noise: float, n0: int = 100) -> pd.DataFrame:
    """A table shaped like notebook 03's ``fitted_*_share.csv``: two fits over 12 months."""
    periods = MONTHS
    t = np.array([trends.month_index(p) / 12 for p in periods])
    n = np.arange(1, 13) * n0
    observed = 1 / (1 + np.exp(-(-1 + slope * t))) + noise * np.resize([1, -1], 12)
    rows = []
    for fit, off in (("linear trend", 0.05), ("segmented (joint)", 0.01)):
        rows.append(pd.DataFrame({"fit": fit, "period": periods, "t": t, "n": n,
                                  "k": np.round(observed * n), "observed_share": observed,
                                  "fitted_share": observed + off}))
    return pd.concat(rows, ignore_index=True)


def test_fitted_vs_observed_data_gaps_and_finding():
    nsfw, poi = fitted_table(0.8, 0.0), fitted_table(0.2, 0.02, n0=10)
    events = pd.DataFrame({"break_month": ["2024-06", "2021-01"]})
    fig = trend_figures.fitted_vs_observed(nsfw, poi, events, **FOOT)
    data = plotted_data(fig)
    points, gaps = data["points"], data["gaps"]
    assert list(points["outcome"].unique()) == ["nsfw_share", "poi_share"]
    assert len(points) == 48 and points["n"].sum() == nsfw["n"].sum() + poi["n"].sum()
    gap = gaps.set_index(["outcome", "fit"])["mean_abs_gap"]
    assert gap[("nsfw_share", "linear trend")] == pytest.approx(0.05)
    assert gap[("poi_share", "segmented (joint)")] == pytest.approx(0.01)
    obs = nsfw[nsfw["fit"] == "linear trend"]
    start = np.average(obs["observed_share"][:3], weights=obs["n"][:3])
    end = np.average(obs["observed_share"][-3:], weights=obs["n"][-3:])
    finding = finding_of(fig)
    assert finding == fig._suptitle.get_text()
    assert finding.startswith(f"NSFW share: {100 * start:.0f}% → {100 * end:.0f}%")
    assert "closest" not in finding and "quasi-AIC" not in finding  # no in-sample verdict
    comparison = pd.DataFrame({"outcome": "nsfw_share", "fit": ["linear trend",
                                                                "segmented (joint)"],
                               "delta_qaic": [0.0, 7.5]})
    ranked = trend_figures.fitted_vs_observed(nsfw, poi, events, comparison=comparison, **FOOT)
    assert finding_of(ranked).endswith("quasi-AIC prefers the linear trend (by 7.5)")
    assert len(fig.axes) == 2 and "SYNTHETIC" in footer_text(fig)
    assert all("(%)" in ax.get_ylabel() and "month" in ax.get_xlabel() for ax in fig.axes)
    # the event inside the observed months is drawn, the one before them is not
    dotted = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in dotted] == [trends.month_index("2024-06")]


def test_fitted_vs_observed_one_panel_and_no_data():
    fig = trend_figures.fitted_vs_observed(None, fitted_table(0.2, 0.0), **FOOT)
    assert len(fig.axes) == 1
    assert finding_of(fig).startswith("Real-person share of new models:")
    assert set(plotted_data(fig)["points"]["outcome"]) == {"poi_share"}
    with pytest.raises(ValueError, match="no fitted table has rows"):
        trend_figures.fitted_vs_observed(None, fitted_table(0.2, 0.0).iloc[:0], **FOOT)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['fitted_share'\]"):
        trend_figures.fitted_vs_observed(fitted_table(0.2, 0.0).drop(columns="fitted_share"),
                                         **FOOT)


def test_categories_over_time_drops_undated_and_shows_fitted_trend():
    frame = pd.DataFrame({"month": ["2024-01", "2024-01", "2024-02", "2024-02", "unknown"],
                          "category": ["a", "b", "a", "b", "a"], "field": ["prompt"] * 5,
                          "n_documents": [1, 2, 3, 4, 5], "share": [0.1, 0.2, 0.3, 0.4, 0.9]})
    odds = pd.DataFrame({"category": ["a", "b"], "odds_ratio_per_year": [1.5, np.nan]})
    fig = coded.categories_over_time(frame, trends=odds, **FOOT)
    data = plotted_data(fig)
    assert list(data.index) == ["2024-01", "2024-02"]  # the undated row is left out
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "a (odds ×1.50/year)" in labels and "b" in labels  # no odds ratio: plain label
    assert data.loc["2024-02", "a"] == 0.3 and "all NSFW levels pooled" in finding_of(fig)
    assert finding_of(fig).endswith("not adjusted for the NSFW mix")


@pytest.fixture
def coded_by_level() -> pd.DataFrame:
    rows = []
    for level, body, quality in (("PG", 0.2, 0.9), ("PG-13", 0.4, 0.9), ("R", 0.5, 0.8),
                                 ("X", 0.7, 0.9), ("XXX", 0.8, 0.85), ("Unrated", 0.1, 0.1)):
        rows += [(level, "body", "prompt", body), (level, "quality", "prompt", quality),
                 (level, "body", "negative_prompt", 0.99)]
    rows.append(("model nsfw=true", "body", "model_tags", 0.5))
    return pd.DataFrame(rows, columns=["nsfw_level", "category", "field", "share"])


def test_shares_by_level_table_colours_and_finding(coded_by_level):
    fig = coded.shares_by_level(coded_by_level, categories=["quality", "body"], **FOOT)
    wide = plotted_data(fig)
    assert list(wide.index) == ["quality", "body"]
    assert list(wide.columns) == ["PG", "PG-13", "R", "X", "XXX"]  # Unrated left out
    assert wide.loc["body", "X"] == 0.7 and wide.loc["quality", "R"] == 0.8
    assert finding_of(fig) == ("'body' vocabulary rises most with the NSFW level: 20% of PG "
                               "prompts, 80% of XXX prompts")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    assert labels == ["PG", "PG-13", "R", "X", "XXX"]
    for handle, code in zip(handles, [1, 2, 4, 8, 16], strict=True):
        assert mcolors.to_hex(handle.patches[0].get_facecolor()) == NSFW_LEVEL_COLORS[code].lower()
    assert "(%)" in fig.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="no rows for field 'title'"):
        coded.shares_by_level(coded_by_level, field="title", **FOOT)


@pytest.fixture
def agreement_table() -> pd.DataFrame:
    return pd.DataFrame({
        "category": ["body", "age", "quality", "gender"],
        "cohen_kappa": [0.9, np.nan, 0.0, 0.5],
        "krippendorff_alpha": [0.85, np.nan, -0.1, 0.7],
        "auto_precision": [1.0, np.nan, 0.9, 0.8],
        "auto_recall": [0.95, np.nan, np.nan, 0.6]})


def test_reliability_leaves_undefined_out_and_says_why(agreement_table):
    fig = coded.reliability(agreement_table, **FOOT)
    long = plotted_data(fig)
    assert len(long) == 16
    undefined = long[~long["defined"]]
    assert set(zip(undefined["category"], undefined["measure"], strict=True)) == {
        ("age", "cohen_kappa"), ("age", "krippendorff_alpha"), ("age", "auto_precision"),
        ("age", "auto_recall"), ("quality", "auto_recall")}
    assert undefined["value"].isna().all()  # never turned into 0
    defined = long.set_index(["category", "measure"])["value"]
    assert defined[("quality", "cohen_kappa")] == 0.0  # a real zero stays a zero
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_width() > 0]
    assert len(bars) == 11  # 16 values, 5 undefined: no bar (not a zero-height bar) for them
    heights = sorted(round(p.get_height(), 6) for p in bars)
    assert heights == sorted(round(v, 6) for v in long.loc[long["defined"], "value"])
    notes = [t.get_text() for t in ax.texts]
    assert notes.count("undefined (no variation)") == 2
    assert "undefined (no consensus positives)" in notes
    assert "undefined (no automatic positives)" in notes
    assert finding_of(fig) == ("2 of 3 categories reach alpha ≥ 0.667; highest 'body' (0.85), "
                               "lowest 'quality' (-0.10); undefined for 1 (no variation); "
                               "2 not reliable enough for a trend claim")
    assert ax.get_ylim()[0] <= -0.3 and "coefficient" in ax.get_ylabel()


def test_reliability_demonstration_and_all_undefined(agreement_table):
    fig = coded.reliability(agreement_table, demonstration=True, **FOOT)
    assert finding_of(fig).startswith("DEMONSTRATION data: ")
    empty = agreement_table.assign(cohen_kappa=np.nan, krippendorff_alpha=np.nan)
    fig = coded.reliability(empty, **FOOT)
    assert finding_of(fig) == ("Krippendorff's alpha is undefined for every category "
                               "(no variation): none is reliable enough for a trend claim")
    with pytest.raises(ValueError, match="auto_recall"):
        coded.reliability(agreement_table.drop(columns="auto_recall"), **FOOT)


def test_wordcloud_finding():
    terms = pd.DataFrame({"category": ["a", "a", "b", "b"], "field": ["prompt"] * 3 + ["x"],
                          "term": ["t1", "t2", "t3", "t4"], "n_documents": [5, 1200, 30, 9999]})
    assert coded.wordcloud_finding(terms) == ("Word clouds of 2 coded categories; the most used "
                                              "single term is in 'a' (1,200 prompts)")


def test_new_figures_save_byte_identically(tmp_path, coded_by_level, agreement_table):
    makers = {
        "fitted": lambda: trend_figures.fitted_vs_observed(fitted_table(0.8, 0.01),
                                                           fitted_table(0.2, 0.02), **FOOT),
        "levels": lambda: coded.shares_by_level(coded_by_level, **FOOT),
        "reliability": lambda: coded.reliability(agreement_table, **FOOT),
    }
    for name, make in makers.items():
        digests = [[sha(p) for p in save_figure(make(), name, tmp_path / run)]
                   for run in ("a", "b")]
        assert digests[0] == digests[1], name


def test_cooccurrence_title_names_the_pair_with_the_highest_lift():
    import pandas as pd

    from civitai_study.figures.coded import cooccurrence_finding, cooccurrence_matrix

    # 1,000 prompts: 'quality' nearly everywhere; 'body' and 'sexual_acts' meet far above chance
    n = {"quality": 950, "body": 200, "sexual_acts": 100}
    both = {("body", "quality"): 190, ("quality", "sexual_acts"): 95, ("body", "sexual_acts"): 80}
    rows = [{"category_a": c, "category_b": c, "n_documents": v} for c, v in n.items()]
    for (a, b), v in both.items():
        rows.append({"category_a": a, "category_b": b, "n_documents": v})
    frame = pd.DataFrame(rows)
    frame["n_total"] = 1000
    frame["lift"] = [r.n_documents * 1000 / (n[r.category_a] * n[r.category_b])
                     for r in frame.itertuples()]
    title = cooccurrence_finding(frame, cooccurrence_matrix(frame))
    assert title.startswith("'body' and 'sexual_acts' vocabulary meet 4.0×")
    assert "(80 prompts)" in title
    # without a lift column the title falls back to the highest conditional share
    plain = frame.drop(columns=["lift", "n_total"])
    assert "Categories travel together" in cooccurrence_finding(plain, cooccurrence_matrix(plain))


@pytest.mark.parametrize("n_months", [2, 5, 9, 30])
def test_titles_never_compare_overlapping_windows(n_months):
    """On a short snapshot the first and last windows a title compares are disjoint: a 9-month
    crawl must not report the whole data "from X% to X%"."""
    assert 2 * comparison_window(n_months, 12) <= max(n_months, 2)
    months = [f"{2022 + (i + 10) // 12}-{(i + 10) % 12 + 1:02d}" for i in range(n_months)]
    rows = [(m, "LORA", 1 + i) for i, m in enumerate(months)] + \
           [(m, "Checkpoint", 10) for m in months]
    fig = models.models_by_type(pd.DataFrame(rows, columns=["month", "type", "n_models"]),
                                **FOOT)
    assert f"first {comparison_window(n_months, 12)} months" in finding_of(fig)


def test_upload_counts_title_names_the_peak_not_a_partial_last_month(by_level):
    partial = pd.concat([by_level, pd.DataFrame({"month": ["2025-01"], "nsfw_level": [1],
                                                 "n_images": [3]})])
    fig = volume.uploads_by_nsfw_level(partial, **FOOT)
    title = finding_of(fig)
    assert "peak of" in title and "2025-01" not in title
