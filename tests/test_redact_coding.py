"""Redaction of slurs and real people's names in displayed outputs (on by default)."""

import pandas as pd

from civitai_study.coding.codebook import load_codebook
from civitai_study.redact import MASK, redact_column, redact_terms, redact_text, sensitive_terms


def test_existing_api_unchanged():
    assert redact_terms(["a", "B", "c", "b"], {"b"}) == ["a", f"{MASK} #1", "c", f"{MASK} #1"]
    assert redact_terms(["a", "b"], {"b"}, enabled=False) == ["a", "b"]
    frame = redact_column(pd.DataFrame({"t": ["x", "y"]}), "t", {"y"})
    assert frame["t"].tolist() == ["x", f"{MASK} #1"]


def test_codebook_slurs_and_poi_candidates_are_sensitive():
    book = load_codebook()
    poi = pd.DataFrame({"term": ["ana example", "celebrity", "weak tag"], "z": [5.0, 4.0, 0.5]})
    sensitive = sensitive_terms(book, poi)
    assert "slut" in sensitive and "femoid" in sensitive
    assert "ana example" in sensitive  # distinctive of real-person models, not in codebook
    assert "celebrity" not in sensitive  # ordinary codebook vocabulary stays visible
    assert "weak tag" not in sensitive
    assert "masterpiece" not in sensitive


def test_redact_text_whole_words_only():
    assert redact_text("a Slut, sluttish", {"slut"}) == f"a {MASK}, sluttish"
    assert redact_text("a slut", {"slut"}, enabled=False) == "a slut"
