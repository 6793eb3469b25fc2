"""Figures are checked on the data behind them (never on pixels), plus byte-stable saving."""

from __future__ import annotations

import hashlib

import blurhash
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest

from civitai_study.figures import blur, coded, creators, models, tags, volume
from civitai_study.figures.style import (
    NSFW_LEVEL_COLORS,
    finding_of,
    plotted_data,
    save_figure,
)

FOOT = {"source_label": "test data (snapshot 2025-06-01)", "synthetic": True}
MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


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
    assert finding_of(fig) == fig._suptitle.get_text()


def test_trend_recovers_a_known_slope():
    months = [str(p) for p in pd.period_range("2022-01", periods=36, freq="M")]
    t = np.arange(36) / 12
    share = 1 / (1 + np.exp(-(-1.0 + 0.8 * t)))
    n = np.full(36, 20000)
    monthly = pd.DataFrame({"month": months, "n_images": n, "n_nsfw": np.round(share * n),
                            "n_r_plus": np.round(share * n * 0.5)})
    fitted, summary = volume.fit_share_trend(monthly)
    assert summary["odds_ratio_per_year"] == pytest.approx(np.exp(0.8), rel=1e-3)
    assert summary["ci_low"] < np.exp(0.8) < summary["ci_high"]
    assert (fitted["ci_low"] <= fitted["fitted"]).all()
    assert (fitted["fitted"] <= fitted["ci_high"]).all()
    fig = volume.nsfw_share_trend(monthly, pd.DataFrame({"date": ["2023-03-13"],
                                                         "event": ["rework; long"]}), **FOOT)
    data = plotted_data(fig)
    assert set(data["definition"]) == {"above_pg", "r_plus"} and len(data) == 72
    assert "rises" in finding_of(fig)
    assert any("rework" in t.get_text() for t in fig.axes[0].texts)


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
