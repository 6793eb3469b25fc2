"""The codebook in data/codebook/ is valid, large enough, and the loader rejects bad books."""

import copy

import pytest

from civitai_study.coding.codebook import CodebookError, load_codebook, parse_codebook

REQUIRED = {"booru", "quality", "body", "sexual_acts", "misogyny", "real_person", "age"}


@pytest.fixture(scope="module")
def book():
    return load_codebook()


def test_shipped_codebook_is_valid_and_complete(book):
    assert REQUIRED <= set(book.category_ids)
    assert len(book.terms) >= 300
    for cat in book.categories:
        assert cat.definition and cat.include and cat.exclude
        assert cat.terms
    for term in book.terms:
        assert term.example and term.why


def test_slurs_are_marked_sensitive(book):
    assert {"slut", "femoid"} <= book.sensitive_terms()


def _minimal():
    return {"version": "0.1", "categories": [{
        "id": "a", "label": "A", "definition": "d", "include": ["x"], "exclude": ["y"],
        "terms": [{"term": "man", "variants": ["men"], "example": "a man", "why": "w"}]}]}


def test_minimal_book_parses():
    book = parse_codebook(_minimal())
    assert book.terms[0].keys == ("man", "men")


def test_rejects_duplicates_across_categories():
    data = _minimal()
    other = copy.deepcopy(data["categories"][0])
    other["id"] = "b"
    other["terms"] = [{"term": "Men", "example": "e", "why": "w"}]
    data["categories"].append(other)
    with pytest.raises(CodebookError, match="duplicate"):
        parse_codebook(data)


def test_rejects_empty_category():
    data = _minimal()
    data["categories"][0]["terms"] = []
    with pytest.raises(CodebookError, match="empty"):
        parse_codebook(data)


@pytest.mark.parametrize("bad", ["m", "12", "a, b", "(x)", "sc*"])
def test_rejects_terms_that_would_match_inside_other_text(bad):
    data = _minimal()
    data["categories"][0]["terms"][0]["term"] = bad
    with pytest.raises(CodebookError):
        parse_codebook(data)


def test_rejects_missing_reason():
    data = _minimal()
    del data["categories"][0]["terms"][0]["why"]
    with pytest.raises(CodebookError, match="why"):
        parse_codebook(data)
