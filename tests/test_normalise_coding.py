"""Normalisation of prompt syntax before matching (issue #5, item 2)."""

import pytest

from civitai_study.coding.normalise import (
    canonical_phrase,
    match_form,
    match_text,
    normalise_prompt,
    prompt_adapters,
    prompt_phrases,
)


@pytest.mark.parametrize("prompt, expected", [
    ("(masterpiece:1.2), best_quality", "masterpiece | best quality"),
    ("[1girl], {solo}, ((looking at viewer))", "1girl | solo | looking at viewer"),
    (r"artoria pendragon \(fate\)", "artoria pendragon | fate"),
    ("score_9, score_8_up, rating:explicit", "score 9 | score 8 up | rating explicit"),
    ("full-body shot BREAK red dress", "full body shot | red dress"),
    ("ＷＯＭＡＮ, Ｌｏｎｇ Ｈａｉｒ", "woman | long hair"),  # unicode width (NFKC)
    ("a woman <lora:man_style_v2:0.8>, <lyco:thing:1>", "a woman"),  # adapters are not prose
    ("cat:1.3", "cat"),
    ("Photo Of A Woman\nBlue Sky", "photo of a woman | blue sky"),
    ("", ""),
])
def test_match_text(prompt, expected):
    assert match_text(prompt) == expected


def test_break_only_upper_case_and_whole_word():
    assert match_text("BREAKFAST, break dance") == "breakfast | break dance"


def test_adapters_recorded_separately():
    assert prompt_adapters("x, <lora:koreanDoll_v15:0.4>, <LyCO:abc:1>") == [
        "lora:koreandoll_v15", "lyco:abc"]
    assert canonical_phrase("lora:abc:0.8") is None


def test_existing_public_functions_still_work():
    norm = normalise_prompt("(masterpiece:1.2), best_quality, <lora:x:0.5>")
    assert norm.text == "masterpiece, best quality"
    assert norm.adapters == ("lora:x",)
    assert prompt_phrases("a, (b:1.1)") == ["a", "b"]
    assert prompt_phrases(None) == []


def test_match_form_of_terms():
    assert match_form("Looking_at-viewer") == "looking at viewer"
    assert match_form("score_8_up") == "score 8 up"
