"""Real record shapes survive: /images items of 2023, 2024 and 2025, and the published tables.

A 2023 ``/images`` item carries only a boolean ``nsfw``; it must be kept (level 0, ``nsfw_flag``)
rather than quarantined. The Civ-40K and Civiverse-6M fixtures follow the cards' column lists and
value formats (``tests/fixtures/README.md``); columns no field is read from are listed in the
manifest, never dropped silently.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from civitai_study.collect import CollectOptions, collect
from civitai_study.importers.image_tables import import_image_table
from civitai_study.importers.parse import RecordError, image_level, parse_image
from civitai_study.nsfw import coarse_is_nsfw, sql_coarse_is_nsfw
from civitai_study.pseudonymise import Pseudonymiser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_civitai import FakeCivitai  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HASH = Pseudonymiser(b"test key")


def api_items() -> list[dict]:
    """One /api/v1/images item per era (invented values, real key sets), newest first."""
    y2025 = {"id": 3, "url": "https://img.example/3.jpeg", "hash": "H3", "width": 832,
             "height": 1216, "nsfwLevel": "X", "nsfw": True, "browsingLevel": 16,
             "type": "image", "createdAt": "2025-03-01T10:00:00.000Z", "postId": 30,
             "stats": {"cryCount": 0, "laughCount": 0, "likeCount": 5, "dislikeCount": 0,
                       "heartCount": 2, "commentCount": 1},
             "meta": {"prompt": "p3", "seed": 12859270413054550000}, "username": "u3",
             "baseModel": "Pony", "modelVersionIds": [7]}
    y2024 = {"id": 2, "url": "https://img.example/2.jpeg", "hash": "H2", "width": 512,
             "height": 768, "nsfwLevel": "Mature", "nsfw": True, "browsingLevel": 4,
             "createdAt": "2024-04-01T10:00:00.000Z", "postId": 20,
             "stats": {"likeCount": 1, "heartCount": 0}, "meta": {"prompt": "p2"},
             "username": "u2", "baseModel": "SDXL 1.0"}
    y2023 = {"id": 1, "url": "https://img.example/1.jpeg", "hash": "H1", "width": 512,
             "height": 512, "nsfw": True, "createdAt": "2023-05-01T10:00:00.000Z", "postId": 10,
             "stats": {"likeCount": 3, "heartCount": 1, "laughCount": 0, "cryCount": 0,
                       "commentCount": 0},
             "meta": {"prompt": "p1", "seed": 42}, "username": "u1"}
    return [y2025, y2024, y2023]


def test_every_era_parses_with_its_rating():
    rows = [parse_image(item, HASH) for item in api_items()]
    assert [(r["id"], r["nsfw_level"], r["nsfw_flag"]) for r in rows] == [
        (3, 16, True), (2, 4, True), (1, 0, True)]
    assert image_level({"nsfwLevel": 16}) == 16 and image_level({"nsfwLevel": "XXX"}) == 16
    assert image_level({"nsfwLevel": "pg-13"}) == 2 and image_level({"nsfw": "false"}) == 0
    with pytest.raises(RecordError, match="missing_nsfw_level"):
        image_level({"id": 1})


def test_collect_images_keeps_all_three_eras(tmp_path):
    fake = FakeCivitai(images=api_items())
    url = fake.start()
    try:
        snap = collect("images", tmp_path / "crawl", CollectOptions(
            base_url=url, rate=None, timeout=2, backoff_initial=0.01, log_every=0.0),
            hasher=HASH)
    finally:
        fake.stop()
    assert snap.manifest["quarantine"]["total"] == 0
    rows = snap.connect().execute(
        "SELECT id, nsfw_level, nsfw_flag FROM images ORDER BY id").fetchall()
    assert rows == [(1, 0, True), (2, 4, True), (3, 16, True)]
    from civitai_study import describe

    months = describe.images_by_month(snap.connect())  # the 2023 item counts by its flag
    assert int(months["n_nsfw"].sum()) == 3 and int(months["n_r_plus"].sum()) == 2
    # crawled today, after 2025-05-22: the real-person share of images is not measurable
    assert "real_person_share_of_images" in snap.manifest["not_measurable"]


def test_table_importer_keeps_all_three_eras(tmp_path):
    """The same items flattened into a table (as a dataset of /images records would be)."""
    frame = pd.DataFrame([{k: v for k, v in item.items() if k not in ("meta", "stats")}
                          for item in api_items()])
    frame["username"] = frame["username"].astype(str)
    frame.to_parquet(tmp_path / "images.parquet")
    snap = import_image_table("civ40k", tmp_path / "images.parquet", tmp_path / "snap",
                              hasher=HASH)
    assert snap.manifest["quarantine"]["total"] == 0
    assert snap.connect().execute("SELECT id, nsfw_level, nsfw_flag FROM images ORDER BY id"
                                  ).fetchall() == [(1, 0, True), (2, 4, True), (3, 16, True)]
    assert snap.manifest["source"]["ignored_columns"] == {"modelVersionIds": 1}


@pytest.mark.parametrize("as_parquet", [False, True])
def test_civ40k_card_fixture(tmp_path, as_parquet):
    src = FIXTURES / "civ40k_card.csv"
    if as_parquet:
        frame = pd.read_csv(src)
        frame["createdAt"] = pd.to_datetime(frame["createdAt"], format="ISO8601")
        src = tmp_path / "civ40k.parquet"
        frame.to_parquet(src, index=False)
    snap = import_image_table("civ40k", src, tmp_path / "snap", hasher=HASH)
    manifest = snap.manifest
    assert manifest["quarantine"]["total"] == 0 and manifest["counts"]["images"] == 5
    assert manifest["source"]["ignored_columns"] == {}
    rows = snap.connect().execute(
        "SELECT id, strftime(created_at, '%Y-%m-%d %H:%M:%S.%f'), nsfw_level, nsfw_flag, "
        "like_count, cry_count, username_hash IS NULL FROM images ORDER BY id").fetchall()
    assert rows == [
        (1001, "2022-11-16 23:48:47.429000", 1, False, 3, None, False),
        (1002, "2023-03-02 08:15:00.000000", 4, True, 12, 2, False),
        (1003, "2023-08-19 17:02:31.500000", 16, True, None, None, False),
        (1004, "2024-02-10 12:00:00.000000", 0, True, None, None, False),
        (1005, "2024-05-30 23:59:59.999999", 2, False, 0, None, True),
    ]


def test_civiverse_fixture_lists_ignored_columns(tmp_path):
    snap = import_image_table("civiverse", FIXTURES / "civiverse_6m.csv", tmp_path / "snap",
                              hasher=HASH)
    manifest = snap.manifest
    assert manifest["quarantine"]["total"] == 0 and manifest["counts"]["images"] == 4
    assert manifest["source"]["ignored_columns"] == {
        "Model": 3, "Resource1": 2, "Resource2": 1, "Resource3": 1}
    rows = snap.connect().execute(
        "SELECT id, nsfw_level, nsfw_flag, like_count FROM images ORDER BY id").fetchall()
    assert rows == [(2001, 4, True, 4), (2002, 1, False, 0), (2003, 16, True, 7),
                    (2004, 2, True, 1)]


def test_definitions_count_the_coarse_flag():
    assert coarse_is_nsfw(0, True, "above_pg") is True
    assert coarse_is_nsfw(0, False, "above_pg") is False
    assert coarse_is_nsfw(0, True, "r_plus") is None
    assert coarse_is_nsfw(0, False, "r_plus") is False
    assert coarse_is_nsfw(4, True, "r_plus") is True and coarse_is_nsfw(2, None, "r_plus") is False
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (0, true), (0, false), (0, NULL), "
                "(2, true), (8, NULL)) v(level, flag)")
    for definition in ("above_pg", "r_plus"):
        got = [r[0] for r in con.execute(
            f"SELECT {sql_coarse_is_nsfw('level', 'flag', definition)} FROM t").fetchall()]
        want = [coarse_is_nsfw(level, flag, definition) for level, flag in
                con.execute("SELECT level, flag FROM t").fetchall()]
        assert got == want, definition


def test_snapshots_written_before_nsfw_flag_still_read(small_sample, tmp_path):
    """An older snapshot's images have no ``nsfw_flag``: readers see it as NULL, and the NSFW
    counts are those of the bits."""
    import shutil

    import pyarrow.parquet as pq

    from civitai_study import describe
    from civitai_study.snapshot import load_snapshot, table_files, write_manifest

    old = tmp_path / "old"
    shutil.copytree(small_sample, old)
    for path in table_files(old, "images"):
        table = pq.read_table(path)
        if "nsfw_flag" in table.column_names:
            pq.write_table(table.drop_columns(["nsfw_flag"]), path)
    write_manifest(old, load_snapshot(old).manifest)
    con = load_snapshot(old).connect()
    assert con.execute("SELECT count(nsfw_flag) FROM images").fetchone() == (0,)
    months = describe.images_by_month(con)
    bits = con.execute("SELECT count(*) FILTER (WHERE nsfw_level & 62 <> 0) FROM images "
                       "WHERE created_at IS NOT NULL").fetchone()[0]
    assert int(months["n_nsfw"].sum()) == bits
