"""The bulk (per-batch) matcher gives exactly what the per-phrase reference gives.

Why: ``Matcher.dictionary_terms`` replaces a Python loop over distinct phrases with compiled
canonicalisation, one automaton pass over a joined string, literal prefilters for pattern rules
and deduplication of repeated texts. Each shortcut is checked here against the plain definition
(``canonical_phrase``, ``Matcher.phrase_terms``, ``re.search`` phrase by phrase).
"""

from __future__ import annotations

import pickle
import random
import re

import numpy as np
import pyarrow as pa
import pytest

from civitai_study.coding.codebook import load_codebook, parse_codebook
from civitai_study.coding.matcher import (
    Matcher,
    join_phrases,
    joinable,
    required_literals,
    sorted_unique,
    touched_phrases,
)
from civitai_study.coding.normalise import (
    canonical_phrase,
    canonical_phrases,
    literal_phrases,
    split_phrases,
)

TRICKY = [
    "", " ", "  ", "masterpiece", " masterpiece", "masterpiece:1.2", "Masterpiece :1.2 ",
    "x : -0.5 ", "a::1", "a:1:2", "a:", ":", "::", "word -", "-word-", "__a__b__", "A_b-c",
    "lora:foo:0.8", "LoRA :Foo", " ti:1", "tia:1", "Embedding: x", "hypernet :y:1",
    "\x0bfoo:\x1c1\x1d", "foo\x0c", "\x1ebar", "x BREAK y", "BREAK", "xBREAKy", "a BREAKb",
    "café au lait:1.1", "tı:x", "ſex", "\u212aelvin", "１ｇｉｒｌ", "日本語, テスト", "İstanbul",
    "1girl", "15 yo", "15 y o", "9 years old", "photo of Ana Example", "a Photo of Bob",
    "...", "a...b", "a  b", "ends with space ", "(x)", "a|b", "rating:explicit",
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_codebook())


def test_canonical_phrases_equals_canonical_phrase():
    values = pa.array(TRICKY, type=pa.string())
    assert canonical_phrases(values).to_pylist() == [canonical_phrase(p) for p in TRICKY]


def test_canonical_phrases_on_random_ascii():
    rng = random.Random(7)
    alphabet = "aZ09 :._-\t\n\r\x00\x0b\x1cBREAK|lorati(),.;"
    phrases = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
               for _ in range(3000)]
    got = canonical_phrases(pa.array(phrases, type=pa.string())).to_pylist()
    assert got == [canonical_phrase(p) for p in phrases]


def test_canonical_phrases_of_a_slice_and_of_nothing():
    values = pa.array(["x", "A b", "c:1", "d"], type=pa.string()).slice(1, 2)
    assert canonical_phrases(values).to_pylist() == ["a b", "c"]
    assert canonical_phrases(pa.array([], type=pa.string())).to_pylist() == []


def test_join_phrases_positions_map_back():
    values = pa.array(["ab", "", "c d", "é x", "y"], type=pa.string())
    joined = join_phrases(values)
    assert [joined.text[joined.starts[i]:joined.ends[i]] for i in range(len(values))] == \
        values.to_pylist()
    assert joined.text == " ab \x00  \x00 c d \x00 é x \x00 y "
    assert joined.data.tobytes() == joined.text.encode()
    # every character of phrase i, and the separator after it, maps to i; so does every byte
    byte_ends = np.append(joined.byte_starts[1:] - 2, len(joined.data) - 1)
    for i in range(len(values)):
        positions = np.arange(joined.starts[i], joined.ends[i] + 1)
        assert (joined.phrase_at(positions) == i).all()
        assert (joined.phrase_at_byte(np.arange(joined.byte_starts[i], byte_ends[i])) == i).all()
        start = joined.byte_starts[i]
        assert joined.data[start:start + len(values[i].as_py().encode())].tobytes() == \
            values[i].as_py().encode()
    assert join_phrases(pa.array([], type=pa.string())).text == ""


def test_find_gives_byte_spans_of_every_form(matcher: Matcher):
    data = " é girl \x00 long hair ornament ".encode()
    found = matcher.find(data)
    forms = {data[s:e].decode() for _, s, e in found.tolist()}
    assert {" girl ", " long hair ", " hair ornament "} <= forms
    assert pickle.loads(pickle.dumps(matcher)).find(data).tolist() == found.tolist()


def test_literal_phrases_finds_the_phrases_holding_a_literal():
    values = pa.array(["aaa", "xa", "ab", "b", ""], type=pa.string())
    # "aa" twice (overlapping) in phrase 0; across phrases 1|2 it is in neither
    assert literal_phrases(values, ["aa"]).tolist() == [0]
    assert literal_phrases(values, ["ab"]).tolist() == [2]
    assert literal_phrases(values, ["ab", "aaa"]).tolist() == [0, 2]
    assert literal_phrases(values, ["zz"]).tolist() == []
    assert literal_phrases(values.slice(2), ["b"]).tolist() == [0, 1]


def test_sorted_unique_matches_numpy():
    values = np.random.default_rng(1).integers(0, 50, 1000)
    assert np.array_equal(sorted_unique(values), np.unique(values))
    assert sorted_unique(np.zeros(0, dtype=np.int64)).tolist() == []


@pytest.mark.parametrize(("regex", "expected"), [
    (r"\bfoo\b", True), (r"[Pp]hoto of \w+", True), (r"^foo", False), (r"foo$", False),
    (r"\Afoo", False), (r"foo(?=bar)", False), (r"(?<!x)foo", False), (r"a(?:b|^c)", False),
])
def test_joinable(regex: str, expected: bool):
    assert joinable(re.compile(regex)) is expected


@pytest.mark.parametrize(("regex", "expected"), [
    (r"\b[Pp]hoto of (?:[A-Z][a-z]+[ _]){0,2}[A-Z][a-z]+\b", ["hoto of "]),
    (r"\b(?:1[0-7]|[1-9]) ?(?:yo|y o|years? old|year old)\b",
     ["y o", "year old", "years old", "yo"]),
    (r"(?i)photo of", None), (r"\d+", None), (r"(?:ab)+c", ["ab"]),
    (r"x(?:abcd|efgh)y", ["xabcdy", "xefghy"]), (r"(?i:ab)c", ["c"]), (r"a|b\d", ["a", "b"]),
    (r"\w+|x", None),
])
def test_required_literals(regex: str, expected: list[str] | None):
    assert required_literals(re.compile(regex)) == expected


def test_required_literals_are_required():
    """Every match of a pattern contains one of its literals (random texts)."""
    rng = random.Random(3)
    patterns = [r"\b(?:1[0-7]|[1-9]) ?(?:yo|y o|years? old|year old)\b", r"(?:ab|cd)e{1,2}f",
                r"x(?:y|z)?w", r"[ab]c(?:d|e)", r"(q|r)+s"]
    for regex in patterns:
        compiled = re.compile(regex)
        literals = required_literals(compiled)
        assert literals
        for _ in range(3000):
            text = "".join(rng.choice("abcdefqrsxyzw1579 o") for _ in range(12))
            match = compiled.search(text)
            if match:
                assert any(x in match.group(0) for x in literals), (regex, text)


def test_touched_phrases_cover_every_matching_phrase():
    # "b c" spans two phrases in the join and hides nothing: candidates are confirmed later
    phrases = ["a b", "c b", "xb", "b"]
    joined = join_phrases(pa.array(phrases, type=pa.string()))
    pattern = re.compile(r"b[\s\S]{0,4}c|\bb\b")
    candidates = set(touched_phrases(pattern, joined).tolist())
    assert {i for i, p in enumerate(phrases) if pattern.search(p)} <= candidates


def _book_with_patterns(patterns: list[dict]) -> Matcher:
    data = {"version": "0.1", "categories": [{
        "id": "a", "label": "A", "definition": "d", "include": ["x"], "exclude": ["y"],
        "patterns": patterns,
        "terms": [{"term": "man", "variants": ["men"], "example": "a man", "why": "w"},
                  {"term": "large breasts", "example": "e", "why": "w"},
                  {"term": "breasts", "example": "e", "why": "w"}]}]}
    return Matcher(parse_codebook(data))


def _reference(matcher: Matcher, phrases: list[str]) -> tuple[list, list, list]:
    pairs = [(i, t) for i, p in enumerate(phrases) if (h := matcher.phrase_terms(p)) != -1
             for t in h]
    adapters = [matcher.phrase_terms(p) == -1 for p in phrases]
    return [i for i, _ in pairs], [t for _, t in pairs], adapters


@pytest.mark.parametrize("patterns", [
    [],
    [{"name": "digits", "regex": r"\d{3}", "applies_to": "normalised text", "why": "w",
      "example": "123"}],  # no literal: joined finditer path
    [{"name": "anchored", "regex": r"^[A-Z]\w+$", "applies_to": "original case", "why": "w",
      "example": "Abc"}],  # not joinable: phrase by phrase
    [{"name": "ages", "regex": r"\b(?:1[0-7]|[1-9]) ?(?:yo|years? old)\b",
      "applies_to": "normalised text", "why": "w", "example": "15 yo"},
     {"name": "photo", "regex": r"\b[Pp]hoto of [A-Z][a-z]+\b", "applies_to": "original case",
      "why": "w", "example": "photo of Ana"}],
])
def test_dictionary_terms_equals_phrase_terms(patterns: list[dict]):
    matcher = _book_with_patterns(patterns)
    phrases = TRICKY + ["men", "a man", "woman", "manga", "large breasts", "123 456", "Abc",
                        "abc", "15 yo man", "photo of Ana", "Photo of bob"]
    phrase, term, adapter = matcher.dictionary_terms(pa.array(phrases, type=pa.string()))
    ref_phrase, ref_term, ref_adapter = _reference(matcher, phrases)
    assert phrase.tolist() == ref_phrase and term.tolist() == ref_term
    assert adapter.tolist() == ref_adapter


def test_dictionary_terms_equals_phrase_terms_with_the_shipped_codebook(matcher: Matcher):
    phrases = TRICKY + ["big breasts", "(large breasts:1.3)", "school uniform", "loli"]
    phrase, term, adapter = matcher.dictionary_terms(pa.array(phrases, type=pa.string()))
    ref_phrase, ref_term, ref_adapter = _reference(matcher, phrases)
    assert phrase.tolist() == ref_phrase and term.tolist() == ref_term
    assert adapter.tolist() == ref_adapter


def test_match_with_repeated_texts_equals_matching_them_all(matcher: Matcher):
    texts = ["1girl, solo, (large breasts:1.2)", None, "", "man, woman", "<lora:x:1>, photo",
             "15 yo, BREAK, school uniform"] * 50 + [f"unique text number {i}, man"
                                                       for i in range(20)]
    values = pa.array(texts, type=pa.string())
    fast = matcher.match(values)  # mostly repeats: the deduplicating path
    plain = matcher.match_phrases(split_phrases(values))
    for name in ("doc", "term", "nonempty", "has_adapter"):
        got, want = getattr(fast, name), getattr(plain, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert (fast.n_docs, fast.n_bytes) == (plain.n_docs, plain.n_bytes)


def test_phrase_terms_ignores_pattern_literals_in_the_automaton(matcher: Matcher):
    hit = matcher.phrase_terms("15 yo")
    assert hit != -1 and all(i < len(matcher.labels) for i in hit)
    assert ("age", "age under 18") in {matcher.labels[i] for i in hit}

