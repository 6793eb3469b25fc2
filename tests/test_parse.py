"""Tolerant parsing of every response shape in ../shared/docs/civitai-api.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from civitai_study.importers.parse import (
    RecordError,
    commercial_use,
    image_level,
    normalise_cursor,
    parse_image,
    parse_model,
    parse_seed,
    scrub_usernames,
    to_timestamp,
    unwrap_meta,
)
from civitai_study.pseudonymise import Pseudonymiser

HASH = Pseudonymiser(b"k")


@pytest.mark.parametrize("item, level", [
    ({"nsfwLevel": "Mature", "browsingLevel": 4}, 4),     # 2024-2026: string + int
    ({"nsfwLevel": "X", "browsingLevel": 16}, 16),        # XXX only visible in browsingLevel
    ({"nsfwLevel": 8}, 8),                                # integer level
    ({"nsfwLevel": "2"}, 2),
    ({"nsfw": "Soft"}, 2),                                # 2023 preview images
    ({"nsfwLevel": "None", "nsfw": False}, 1),
    ({"browsingLevel": None, "nsfwLevel": 0}, 0),         # unrated
])
def test_image_levels(item, level):
    assert image_level(item) == level


@pytest.mark.parametrize("item, reason", [
    ({"id": 1}, "missing_nsfw_level"),  # a bare 2023 nsfw bool is level 0, not missing
    ({"browsingLevel": 31}, "bad_browsingLevel"),         # a mask is not an image level
    ({"nsfwLevel": "Spicy"}, "bad_nsfwLevel"),
])
def test_image_level_errors(item, reason):
    with pytest.raises(RecordError) as err:
        image_level(item)
    assert err.value.reason == reason


@pytest.mark.parametrize("value, expected", [
    ("Sell", ["Sell"]), ("None", ["None"]), ("{Image,RentCivit}", ["Image", "RentCivit"]),
    (["Image", "RentCivit", "Rent", "Sell"], ["Image", "Rent", "RentCivit", "Sell"]),
    ([], []), (None, []), ('["Image"]', ["Image"]),
])
def test_commercial_use_shapes(value, expected):
    assert commercial_use(value) == expected


def test_cursor_seed_meta_dates():
    assert normalise_cursor(101) == "101"
    assert normalise_cursor(101.0) == "101"
    assert normalise_cursor("1|1712265847499") == "1|1712265847499"
    assert normalise_cursor(None) is None and normalise_cursor("") is None
    assert parse_seed(12859270413054550000) == "12859270413054550000"
    assert parse_seed("42") == "42" and parse_seed(None) is None
    assert unwrap_meta({"id": 5, "meta": {"prompt": "p"}}) == {"prompt": "p"}
    assert unwrap_meta({"prompt": "p", "seed": 1}) == {"prompt": "p", "seed": 1}
    assert unwrap_meta(None) is None and unwrap_meta("garbage{") is None
    assert to_timestamp("2023-03-10T06:09:19.852Z") == datetime(2023, 3, 10, 6, 9, 19, 852000,
                                                                tzinfo=UTC)
    assert to_timestamp("2022-11-16 23:48:47.429000+00:00").year == 2022
    assert to_timestamp(1_700_000_000_000) == to_timestamp(1_700_000_000)


def _image(**extra):
    item = {"id": 7, "createdAt": "2025-01-02T03:04:05Z", "nsfwLevel": "X", "browsingLevel": 8,
            "username": "RealName", "postId": "12", "stats": {"likeCount": 3, "heartCount": None},
            "meta": {"id": 7, "meta": {"prompt": "a", "negativePrompt": "b",
                                       "seed": 12859270413054550000}},
            "hash": "LKO2", "width": 512, "height": 768, "baseModel": "Pony"}
    item.update(extra)
    return item


def test_parse_image_wrapped_meta_and_nulls():
    row = parse_image(_image(), HASH)
    assert row["prompt"] == "a" and row["negative_prompt"] == "b"
    assert row["nsfw_level"] == 8 and row["post_id"] == 12 and row["like_count"] == 3
    assert row["heart_count"] is None and row["blurhash"] == "LKO2"
    assert row["username_hash"] == HASH("RealName") != "RealName"
    bare = parse_image(_image(meta=None, stats=None, seed=None), HASH)
    assert bare["prompt"] is None and bare["like_count"] is None
    flat = parse_image(_image(meta={"prompt": "x", "seed": "abc"}), HASH)
    assert flat["prompt"] == "x"


@pytest.mark.parametrize("broken, reason", [
    ({"id": None}, "missing_id"), ({"createdAt": "yesterday"}, "bad_created_at"),
    ({"id": 2**70}, "bad_id"), ({"id": True}, "bad_id"),
])
def test_parse_image_rejects(broken, reason):
    with pytest.raises(RecordError) as err:
        parse_image(_image(**broken), HASH)
    assert err.value.reason == reason


STATS = {
    "2023": {"downloadCount": 5, "favoriteCount": 1, "commentCount": 0, "ratingCount": 0,
             "rating": 0},
    "2025": {"downloadCount": 5, "favoriteCount": 0, "thumbsUpCount": 2, "thumbsDownCount": 0,
             "commentCount": 0, "ratingCount": 0, "rating": 0, "tippedAmountCount": 0},
    "2026": {"downloadCount": None, "thumbsUpCount": None, "thumbsDownCount": None,
             "commentCount": None, "tippedAmountCount": None},
}


@pytest.mark.parametrize("era", sorted(STATS))
def test_parse_model_eras(era):
    item = {"id": 1, "name": 2001, "type": "LORA", "nsfw": False, "poi": True,
            "creator": {"username": "someone"}, "tags": [{"name": "Celebrity"}, "woman"],
            "stats": STATS[era], "allowCommercialUse": "{Image,Sell}" if era == "2025" else "Sell",
            "modelVersions": [
                {"id": 11, "publishedAt": "2024-05-01T00:00:00Z", "baseModel": "Pony",
                 "images": [{"id": 3, "nsfwLevel": 4}, {"nsfwLevel": 1}]},
                {"id": 12, "createdAt": "2024-04-01T00:00:00Z", "trainedWords": None,
                 "images": None},
            ]}
    rows = parse_model(item, HASH)
    assert rows.model["created_at"] == datetime(2024, 4, 1, tzinfo=UTC)
    assert rows.model["download_count"] == (None if era == "2026" else 5)
    assert rows.model["name"] == "2001" and rows.model["poi"] is True
    assert [t["tag"] for t in rows.tags] == ["celebrity", "woman"]
    assert [v["model_id"] for v in rows.versions] == [1, 1]
    assert len(rows.images) == 1 and rows.images[0]["model_version_id"] == 11
    assert rows.bad_images[0][0].reason == "missing_id"


def test_scrub_usernames_everywhere():
    raw = {"username": "Bob", "creator": {"username": "Carol"}, "items": [{"username": None}]}
    scrubbed = scrub_usernames(raw, HASH)
    assert "Bob" not in str(scrubbed) and "Carol" not in str(scrubbed)
    assert scrubbed["creator"]["username_hash"] == HASH("Carol")
    text = scrub_usernames('{"username": "Dave", broken', HASH)
    assert "Dave" not in text and HASH("Dave") in text
