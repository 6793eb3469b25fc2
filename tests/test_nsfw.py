import pytest

from civitai_study.nsfw import LEGACY_STRING_LEVELS, NsfwLevel, is_nsfw, sql_is_nsfw


@pytest.mark.parametrize("level,above_pg,r_plus", [
    (0, False, False), (1, False, False), (2, True, False), (4, True, True), (8, True, True),
    (16, True, True), (32, True, True), (3, True, False), (31, True, True), (60, True, True),
])
def test_definitions(level, above_pg, r_plus):
    assert is_nsfw(level, "above_pg") is above_pg
    assert is_nsfw(level, "r_plus") is r_plus


def test_unknown_definition_names_choices():
    with pytest.raises(ValueError, match="above_pg, r_plus"):
        is_nsfw(1, "strict")
    with pytest.raises(ValueError):
        sql_is_nsfw("nsfw_level", "nope")


def test_legacy_strings():
    assert LEGACY_STRING_LEVELS["Mature"] == NsfwLevel.R
    assert sql_is_nsfw("x", "r_plus") == "((x & 60) <> 0)"
