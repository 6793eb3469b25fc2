"""Every number in notebook 02's key tables equals a direct count of a small hand-built snapshot."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from civitai_study import describe
from civitai_study.snapshot import write_snapshot

LEVELS = [0, 1, 1, 1, 2, 4, 8, 16, 32]
TYPES = ["LORA", "Checkpoint", "TextualInversion"]
TAGS = ["Anime", "woman ", "celebrity", "man", "style", "actress", "girl"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A snapshot of 400 images and 40 models with every awkward case the tables must handle."""
    rng = np.random.default_rng(7)
    n, k = 400, 40
    start = np.datetime64("2022-11-01T00:00:00", "us").astype(np.int64)
    span = 400 * 86_400_000_000
    img_time = start + rng.integers(0, span, n)
    img_time[0] = np.datetime64("2022-11-30T23:59:59", "us").astype(np.int64)  # month edge
    images = pd.DataFrame({
        "id": np.arange(n), "created_at": pd.to_datetime(img_time, unit="us", utc=True),
        "nsfw_level": rng.choice(LEVELS, n).astype(np.int16), "prompt": "p",
        "negative_prompt": None, "base_model": rng.choice(["SD 1.5", "SDXL 1.0", None], n),
        "username_hash": rng.choice([f"u{i}" for i in range(15)], n), "post_id": 1,
        "like_count": rng.integers(0, 9, n), "heart_count": 1, "laugh_count": 0, "cry_count": 0,
        "comment_count": 0, "width": 512, "height": 512, "source": "test"})
    m_time = start + rng.integers(0, span, k)
    models = pd.DataFrame({
        "id": np.arange(1000, 1000 + k), "name": [f"m{i}" for i in range(k)],
        "type": rng.choice(TYPES, k), "nsfw": rng.random(k) < 0.3,
        "nsfw_level": pd.array(np.where(rng.random(k) < 0.3, None, rng.choice([1, 3, 5, 61], k)),
                               dtype="Int16"),
        "poi": rng.random(k) < 0.25, "creator_hash": rng.choice(["c1", "c2", "c3"], k),
        "created_at": pd.to_datetime(m_time, unit="us", utc=True),
        "download_count": rng.integers(0, 1000, k)})
    # versions: the first one sometimes earlier than the model's own date; model 0 has none
    vrows = []
    for i, mid in enumerate(models["id"]):
        if i == 0:
            continue
        for j in range(int(rng.integers(1, 3))):
            shift = int(rng.integers(-40, 40)) * 86_400_000_000
            vrows.append({"id": 10_000 + len(vrows), "model_id": mid, "base_model": "SD 1.5",
                          "created_at": pd.Timestamp(m_time[i] + shift * (j + 1), unit="us",
                                                     tz="UTC"),
                          "trained_words": ["x"], "nsfw_level": None})
    versions = pd.DataFrame(vrows)
    trows = [{"model_id": mid, "tag": t} for mid in models["id"]
             for t in rng.choice(TAGS, int(rng.integers(0, 4)), replace=False)]
    tags = pd.DataFrame(trows)
    tables = {name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in
              {"images": images, "models": models, "model_versions": versions,
               "model_tags": tags}.items()}
    snap = write_snapshot(tmp_path_factory.mktemp("small"), tables,
                          {"source": {"kind": "test", "name": "hand-built"}})
    return snap, images, models, versions, tags


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("UTC").dt.strftime("%Y-%m")


def test_images_by_month_equals_direct_counts(small):
    snap, images, *_ = small
    table = describe.images_by_month(snap.connect())
    month = _month(images["created_at"])
    assert list(table["month"]) == sorted(month.unique())
    assert table.loc[0, "month"] == "2022-11"
    for row in table.itertuples():
        sel = images[month == row.month]
        assert row.n_images == len(sel)
        assert row.n_nsfw == int(sel["nsfw_level"].isin([2, 4, 8, 16, 32]).sum())
        assert row.n_r_plus == int(sel["nsfw_level"].isin([4, 8, 16, 32]).sum())
        assert row.n_rated == int((sel["nsfw_level"] != 0).sum())
    assert table["n_images"].sum() == len(images)


def test_models_by_type_equals_direct_counts(small):
    snap, _, models, *_ = small
    table = describe.models_by_type(snap.connect())
    assert dict(zip(table["type"], table["n_models"], strict=True)) == dict(
        Counter(models["type"]))
    assert list(table["n_models"]) == sorted(table["n_models"], reverse=True)


def test_models_by_month_uses_first_version(small):
    snap, _, models, versions, tags = small
    table = describe.models_by_month(snap.connect())
    first = versions.groupby("model_id")["created_at"].min()
    when = models.set_index("id")["created_at"].copy()
    when.loc[first.index] = first
    month = _month(when)
    m = models.set_index("id")
    tagged = {mid for mid, t in zip(tags["model_id"], tags["tag"], strict=True)
              if t.strip().lower() in describe.REAL_PERSON_TAGS}
    for row in table.itertuples():
        ids = month.index[month == row.month]
        assert row.n_models == len(ids)
        assert row.n_nsfw == int(m.loc[ids, "nsfw"].sum())
        assert row.n_poi == int(m.loc[ids, "poi"].sum())
        assert row.n_poi_tag == len(set(ids) & tagged)
        levels = m.loc[ids, "nsfw_level"]
        assert row.n_level_known == int(levels.notna().sum())
        assert row.n_level_above_pg == int(((levels.fillna(0).astype(int) & 62) != 0).sum())
    assert table["n_models"].sum() == len(models)


def test_top_model_tags_equals_direct_counts(small):
    snap, *_, tags = small
    table = describe.top_model_tags(snap.connect(), n=100)
    direct = tags.assign(tag=tags["tag"].str.strip().str.lower()).drop_duplicates()
    counts = direct.groupby("tag")["model_id"].nunique()
    assert dict(zip(table["tag"], table["n_models"], strict=True)) == counts.to_dict()
    assert list(table["n_models"]) == sorted(table["n_models"], reverse=True)


def test_gender_and_poi_tables_are_consistent(small):
    snap, _, models, *_ = small
    con = snap.connect()
    gender = describe.gender_proxy(con).set_index("group")
    assert gender.loc["all models", "n_models"] == len(models)
    signals = describe.poi_signals(con)
    assert signals["n_models"].sum() == len(models)
    assert signals.loc[signals["poi"], "n_models"].sum() == int(models["poi"].sum())
    assert -1 <= describe.cohen_kappa(signals) <= 1


def test_concentration_and_lorenz(small):
    snap, images, *_ = small
    con = snap.connect()
    conc = describe.creator_concentration(con).set_index("unit")
    counts = np.sort(images["username_hash"].value_counts().to_numpy())
    k = counts.size
    gini = 2 * np.sum(np.arange(1, k + 1) * counts) / (k * counts.sum()) - (k + 1) / k
    assert conc.loc["images", "gini"] == pytest.approx(gini)
    assert conc.loc["images", "n_creators"] == k
    curve = describe.lorenz(con)
    img = curve[curve["unit"] == "images"]
    assert img["share_of_items"].iloc[-1] == pytest.approx(1.0)
    assert img["share_of_items"].is_monotonic_increasing


def test_log_odds_and_engagement_run(small):
    snap, images, *_ = small
    con = snap.connect()
    table = describe.tag_log_odds(con, "poi", min_models=1)
    assert {"tag", "log_odds", "z", "population"} <= set(table.columns)
    with pytest.raises(ValueError, match="choose 'nsfw' or 'poi'"):
        describe.tag_log_odds(con, "gender")
    eng = describe.engagement_by_level(con)
    assert eng["n_images"].sum() == len(images)
    assert describe.undated_counts(con) == {"images": 0, "models": 0}


def test_yearly_adapter_share_and_top_base_models():
    import pandas as pd

    from civitai_study.describe import adapter_share_by_year, top_base_models_by_year

    type_month = pd.DataFrame({"month": ["2023-01", "2023-02", "2023-03", "2024-01"],
                               "type": ["LORA", "Checkpoint", "LoCon", "Checkpoint"],
                               "n_models": [3, 5, 2, 4]})
    out = adapter_share_by_year(type_month)
    assert out.to_dict("records") == [
        {"year": "2023", "n_adapters": 5, "n_models": 10, "share": 0.5},
        {"year": "2024", "n_adapters": 0, "n_models": 4, "share": 0.0}]
    base = pd.DataFrame({"unit": ["model_versions"] * 4 + ["images"],
                         "month": ["2023-01", "2023-05", "2023-02", "2023-03", "2023-01"],
                         "base_model": ["SD 1.5", "SDXL 1.0", "SD 1.5", "Pony", "Pony"],
                         "n": [4, 3, 1, 3, 99]})
    top = top_base_models_by_year(base, 2)
    assert top.to_dict("records") == [{"year": "2023", "base_model": "SD 1.5", "n_versions": 5},
                                      {"year": "2023", "base_model": "Pony", "n_versions": 3}]
