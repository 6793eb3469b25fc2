"""Codebook v2 and matcher policy (issue 10): each pattern class as a class of cases.

Every case is a constructed prompt fragment, never a real record.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from civitai_study.coding.codebook import CodebookError, load_codebook, parse_codebook
from civitai_study.coding.matcher import Matcher, outermost
from civitai_study.coding.normalise import (
    canonical_phrase,
    canonical_phrases,
    match_text,
    normalise_prompt,
    prompt_adapters,
    prompt_phrases,
    split_phrases,
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(load_codebook())


def terms(matcher: Matcher, text: str | None) -> set[str]:
    return {t for _, t in matcher.code_text(text)}


def cats(matcher: Matcher, text: str | None) -> set[str]:
    return set(matcher.categories_of(text))


# ----------------------------------------------------------------------------- crash fixes
class TestNullsAndLists:
    @pytest.mark.parametrize("values", [[None], [None, None], [None] * 5, []])
    def test_all_null_or_empty_batch(self, matcher, values):
        for batch in (values, pa.array(values, type=pa.string()),
                      pa.chunked_array([pa.array(values, type=pa.string())])):
            got = matcher.match(batch)
            assert got.n_docs == len(values) and len(got.doc) == 0
            assert not got.nonempty.any() and got.n_bytes == 0
            assert matcher.category_flags(got).shape == (len(values), len(matcher.categories))

    def test_code_text_none_and_empty(self, matcher):
        assert matcher.code_text(None) == [] and matcher.code_text("") == []
        assert matcher.categories_of(None) == []

    @pytest.mark.parametrize("values", [["1girl, masterpiece", None, "woman"],
                                        ("woman", "woman"), ["", None]])
    def test_plain_sequences_equal_arrow(self, matcher, values):
        a = matcher.match(list(values))
        b = matcher.match(pa.array(list(values), type=pa.string()))
        assert a.doc.tolist() == b.doc.tolist() and a.term.tolist() == b.term.tolist()

    def test_null_batch_inside_coder_stream(self, matcher):
        mixed = matcher.match(["woman", None, None])
        assert mixed.nonempty.tolist() == [True, False, False]


# ----------------------------------------------------------------------------- overlaps
class TestLongestMatchWins:
    @pytest.mark.parametrize("phrase,hidden,kept", [
        ("virtual youtuber", "youtuber", "virtual youtuber"),
        ("chainsaw man", "man", None),
        ("one punch man", "man", None),
        ("iron man", "man", None),
        ("x men", "man", None),
        ("1 girl", "girl", "1girl"),
        ("two girls", "girl", "2girls"),
        ("multiple girls", "girl", "multiple girls"),
        ("thigh strap", "thighs", None),
        ("thigh highs", "thighs", None),
        ("thigh boots", "thighs", None),
        ("breast pocket", "breasts", None),
        ("large breasts", "breasts", "large breasts"),
    ])
    def test_contained_term_is_hidden(self, matcher, phrase, hidden, kept):
        found = terms(matcher, f"masterpiece, {phrase}, outdoors")
        assert hidden not in found
        if kept:
            assert kept in found

    @pytest.mark.parametrize("prompt,category", [
        ("virtual youtuber, 1girl", "real_person"),
        ("chainsaw man, 1boy", "gender"),
        ("1 girl, solo", "gender"),
        ("2 girls, 1girl", "gender"),
    ])
    def test_category_not_carried_by_a_hidden_term(self, matcher, prompt, category):
        assert category not in cats(matcher, prompt)

    def test_count_tags_agree_across_spellings(self, matcher):
        assert cats(matcher, "1girl") == cats(matcher, "1 girl") == cats(matcher, "1_girl")
        assert cats(matcher, "1woman") == cats(matcher, "1 woman")

    def test_separate_phrases_still_count(self, matcher):
        assert {"man", "woman"} <= terms(matcher, "chainsaw, man, woman")

    def test_overlapping_not_nested_both_count(self):
        starts = np.array([0, 5, 5, 12])
        ends = np.array([10, 19, 10, 22])
        assert outermost(starts, ends).tolist() == [True, True, False, True]

    def test_bulk_equals_per_phrase_reference(self, matcher):
        phrases = ["chainsaw man", "virtual youtuber", "large breasts", "1 girl", "thigh strap",
                   "light leak", "gothic lolita", "mixed breed", "famous artwork", "man"]
        batch = split_phrases(pa.array([", ".join(phrases)], type=pa.string()))
        phrase, label, _ = matcher.dictionary_terms(batch.phrases)
        got = {(batch.dictionary[p], matcher.labels[t]) for p, t in zip(phrase, label, strict=True)}
        want = {(p, matcher.labels[t]) for p in batch.dictionary
                for t in (matcher.phrase_terms(p) if matcher.phrase_terms(p) != -1 else ())}
        assert got == want


class TestContextExclusions:
    @pytest.mark.parametrize("prompt,term", [
        ("light leak, film photo", "leaked"),
        ("famous artwork, oil painting", "famous"),
        ("teenage engineering synthesizer", "teen"),
        ("gothic lolita, black dress", "loli"),
        ("sweet lolita dress", "loli"),
        ("mixed breed dog", "breeding"),
        ("cowgirl hat, western", "cowgirl position"),
        ("children's book illustration, moon", "child"),
    ])
    def test_other_sense_is_not_the_term(self, matcher, prompt, term):
        assert term not in terms(matcher, prompt)

    @pytest.mark.parametrize("prompt,term", [
        ("leaked photo, bedroom", "leaked"), ("lolita, 1girl", "loli"),
        ("teenager, park", "teen"), ("reverse cowgirl", "cowgirl position"),
        ("child, playground", "child"),
    ])
    def test_intended_sense_still_counts(self, matcher, prompt, term):
        assert term in terms(matcher, prompt)

    def test_not_in_must_contain_the_term(self):
        raw = {"version": "1", "categories": [{
            "id": "a", "label": "A", "definition": "d", "include": ["x"], "exclude": ["y"],
            "terms": [{"term": "leak", "example": "e", "why": "w", "not_in": ["light"]}]}]}
        with pytest.raises(CodebookError, match="not_in"):
            parse_codebook(raw)


# ----------------------------------------------------------------------------- weak tier
class TestWeakTier:
    @pytest.mark.parametrize("prompt,category", [
        ("photo of a woman, street", "real_person"),
        ("attractive young woman, smile", "age"),
        ("crying, rain", "misogyny"),
        ("tentacles, underwater, octopus", "sexual_acts"),
        ("yuri, portrait", "sexual_acts"),
        ("selfie, mirror", "real_person"),
        ("long legs", "body"), ("bodysuit", "body"),
    ])
    def test_weak_alone_does_not_define_the_category(self, matcher, prompt, category):
        matches = matcher.match([prompt])
        j = matcher.categories.index(category)
        assert not matcher.category_flags(matches)[0, j]
        assert matcher.weak_flags(matches)[0, j]

    def test_weak_with_strong_still_counts_by_the_strong(self, matcher):
        assert "age" in cats(matcher, "young, teen, park")

    def test_every_label_has_a_tier(self, matcher):
        assert len(matcher.label_is_weak) == len(matcher.labels)
        assert matcher.label_is_weak.any() and not matcher.label_is_weak.all()

    def test_unknown_tier_rejected(self):
        raw = {"version": "1", "categories": [{
            "id": "a", "label": "A", "definition": "d", "include": ["x"], "exclude": ["y"],
            "terms": [{"term": "leak", "example": "e", "why": "w", "tier": "medium"}]}]}
        with pytest.raises(CodebookError, match="tier"):
            parse_codebook(raw)


# ----------------------------------------------------------------------------- misses
class TestMisses:
    @pytest.mark.parametrize("prompt,category", [
        ("1man, suit", "booru"), ("1woman, dress", "booru"), ("1loli", "age"),
        ("sks woman, street", "real_person"), ("sfw, 1girl", "quality"),
        ("minor, school", "age"), ("age down, 1girl", "age"),
        ("smile", "booru"), ("white shirt", "booru"), ("red dress", "booru"),
        ("pleated skirt", "booru"), ("pale skin", "booru"),
        ("depth of field", "quality"), ("detailed", "quality"),
        ("cinematic lighting", "quality"), ("bokeh", "quality"),
        ("volumetric lighting", "quality"), ("detailed skin", "quality"),
        ("slim", "body"), ("toned", "body"),
    ])
    def test_now_coded(self, matcher, prompt, category):
        assert category in cats(matcher, prompt)

    def test_ulzzang_is_a_weak_likeness_signal(self, matcher):
        matches = matcher.match(["ulzzang-6500, 1girl"])
        assert matcher.weak_flags(matches)[0, matcher.categories.index("real_person")]


# ----------------------------------------------------------------------------- syntax
class TestWeights:
    @pytest.mark.parametrize("prompt", ["(nsfw:0)", "(nsfw:0.0)", "(nsfw: 0)", "[nsfw:-1]",
                                        "(nsfw:-0.5)", "nsfw:.0"])
    def test_weight_zero_or_below_is_absent(self, matcher, prompt):
        assert "nsfw" not in terms(matcher, f"masterpiece, {prompt}")

    @pytest.mark.parametrize("prompt", ["(nsfw:1)", "(nsfw:0.5)", "(nsfw:1.2)", "nsfw",
                                        "(nsfw:10)"])
    def test_positive_weight_is_present(self, matcher, prompt):
        assert "nsfw" in terms(matcher, f"masterpiece, {prompt}")

    def test_unweighted_mode_counts_zero_weights(self):
        unweighted = Matcher(load_codebook(), weighted=False)
        assert "nsfw" in {t for _, t in unweighted.code_text("(nsfw:0)")}

    def test_bulk_and_per_phrase_agree_on_weights(self):
        phrases = ["nsfw:0", "nsfw:0.0", "nsfw:-1", "nsfw:1", "x :0 ", "a:00", "b:0.50",
                   "ｎｓｆｗ:0", "lora:x:0", "c:-", "d:-.5"]
        for weighted in (True, False):
            bulk = canonical_phrases(pa.array(phrases), weighted).to_pylist()
            assert bulk == [canonical_phrase(p, weighted) for p in phrases]


class TestAdapterCalls:
    @pytest.mark.parametrize("prompt", [
        "<lora:portrait [Real man]:1>, 1girl",
        "<lora:a, b, man:0.7>, 1girl",
        "<lyco:x(woman) v2:1>, 1girl",
        "<LORA:Mix{man}:0.5>, 1girl",
    ])
    def test_words_inside_a_call_do_not_leak(self, matcher, prompt):
        assert cats(matcher, prompt) == {"booru"}
        assert matcher.match([prompt]).has_adapter[0]

    def test_adapter_name_kept_whole(self):
        assert prompt_adapters("<lora:x [a, b]:0.5>, y") == ["lora:x [a, b]"]

    def test_calls_in_a_sliced_batch(self, matcher):
        values = pa.array(["x", "<lora:a [man]:1>, woman", "<lora:b, girl:1>", "man"])
        for start in range(4):
            part = values.slice(start)
            assert (matcher.match(part).term.tolist()
                    == matcher.match(part.to_pylist()).term.tolist())

    def test_call_may_not_cross_into_the_next_prompt(self, matcher):
        got = matcher.category_flags(matcher.match(["<lora:x, woman", "man>"]))
        assert got[:, matcher.categories.index("gender")].tolist() == [True, True]

    def test_unclosed_call_does_not_swallow_the_next_text(self, matcher):
        got = matcher.match(["<lora:x, woman", "man, <x>"])
        flags = matcher.category_flags(got)
        assert flags[:, matcher.categories.index("gender")].tolist() == [True, True]


class TestNumbersAndScripts:
    @pytest.mark.parametrize("text,canon", [("1.5 years old", "1.5 years old"),
                                            ("v1.5", "v1.5"), ("1. 5", "1 5"), ("a.b", "a b"),
                                            ("1..5", "1 5"), (".5", "5"), ("5.", "5")])
    def test_decimal_kept_whole(self, text, canon):
        assert canonical_phrase(text) == canon
        assert canonical_phrases(pa.array([text])).to_pylist() == [canon]

    @pytest.mark.parametrize("prompt,age", [("1.5 years old", True), ("25.5 years old", False),
                                            ("15 years old", True), ("21 yo", False),
                                            ("14 year old ford", False)])
    def test_age_rule_reads_the_whole_number(self, matcher, prompt, age):
        assert ("age" in cats(matcher, prompt)) is age

    @pytest.mark.parametrize("prompt,term", [("美女girl", "girl"), ("woman美女", "woman"),
                                             ("少女1girl", "1girl"), ("여자woman", "woman")])
    def test_cjk_glued_to_english(self, matcher, prompt, term):
        assert term in terms(matcher, prompt)


class TestOneNormaliser:
    PROMPTS = ["(masterpiece:1.2), best_quality, <lora:x:0.5>", "a BREAK b, (c:0)",
               "1.5 years old, 美女girl", "<lora:a [b, c]:1>, Woman", None, "", "x|y;z\nw",
               "(nsfw:0), photo of Ana Example"]

    @pytest.mark.parametrize("prompt", PROMPTS)
    def test_calibration_and_coder_see_the_same_phrases(self, prompt):
        coder = [p for p in match_text(prompt).split(" | ") if p]
        assert prompt_phrases(prompt) == coder
        assert normalise_prompt(prompt).text == ", ".join(coder)
        assert list(normalise_prompt(prompt).adapters) == prompt_adapters(prompt)


class TestWeakTierInTheCoder:
    def test_weak_totals_reported_apart(self):
        from civitai_study.coding.coder import FieldTally

        matcher = Matcher(load_codebook())
        matches = matcher.match(["photo of a woman", "photo of a woman, celebrity", "woman"])
        tally = FieldTally("prompt", "image", len(matcher.labels), len(matcher.categories))
        strong, weak = matcher.category_flags(matches), matcher.weak_flags(matches)
        tally.add_weak(weak, strong)
        j = matcher.categories.index("real_person")
        assert tally.weak_any[j] == 2 and tally.weak_only[j] == 1
        assert strong[:, j].tolist() == [False, True, False]
