"""The compiled loops (``coding.kernels``) give what the plain definitions give.

Why: splitting and deduplicating phrases, canonical forms of ASCII phrases and the per-document
label sets are compiled numba loops. Each is compared here with a plain Python reference on
classes of cases (separators, adapter calls and their limits, nulls, slices, non-ASCII text,
weights, a hash table that must grow) and on random inputs.
"""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import pyarrow as pa
import pytest

from civitai_study.coding import kernels
from civitai_study.coding.normalise import (
    BYTE_CLASS,
    SEPARATOR_BYTES,
    canonical_phrase,
    canonical_phrases,
    split_phrases,
)

_KINDS = re.compile(rb"(?i:lora|lyco|lycoris|locon|hypernet|embedding|ti):")
MAX_CALL = 400  # the documented limit, written out: bytes from '<' to its '>'


def reference_phrases(text: str | None) -> list[str]:
    """The phrases of one text by the documented rule, byte by byte, in plain Python."""
    if text is None:
        return []
    data = unicodedata.normalize("NFKC", text).encode()
    phrases, start, i = [], 0, 0
    while True:
        while i < len(data) and data[i] not in SEPARATOR_BYTES:
            i += 1
        phrases.append(data[start:i])
        if i == len(data):
            break
        close = -1
        if data[i] == ord("<") and _KINDS.match(data, i + 1):
            for j in range(i + 1, min(len(data), i + MAX_CALL + 1)):
                if data[j] in b"<>":
                    close = j if data[j] == ord(">") else -1
                    break
        if close >= 0:
            phrases.append(data[i + 1:close])
            i = close
        start = i = i + 1
    wordy = re.compile(rb"[0-9A-Za-z\x80-\xff]")
    return [p.decode() for p in phrases if wordy.search(p)]


def batch_phrases(values: pa.Array) -> list[list[str]]:
    batch = split_phrases(values)
    out: list[list[str]] = [[] for _ in range(len(values))]
    for d, c in zip(batch.doc.tolist(), batch.code.tolist(), strict=True):
        out[d].append(batch.dictionary[c])
    return out


CASES = [
    None, "", " ", ",,,", "a", "masterpiece, best quality, 1girl",
    "(masterpiece:1.2), [blue eyes], {smile}", "a|b;c\nd\re", "x\x1fy",
    "<lora:add_detail:0.8>, girl", "<LoRA:Name [Real man], v2:1> girl", "<ti:x,y>",
    "<lycoris:a(b)c:1>", "<embedding:e>", "<hypernet:h:1>", "<lora x>", "<notakind:a,b>",
    "<lora:unclosed, rest, of, text", "<lora:a<lora:b>", "<lora:a>>, c",
    "<lora:" + "x," * 250 + ">", "<lora:" + "y" * 390 + ",z>", "tail <lora:",
    "日本語, テスト, 美女girl", "café, naïve", "１ｇｉｒｌ, ｓｍｉｌｅ", "... , --- , ::",
    "BREAK, x BREAK y", "a , , b", "(((((x)))))",
]


class TestSplitPhrases:
    def test_cases_equal_reference(self):
        values = pa.array(CASES, type=pa.string())
        assert batch_phrases(values) == [reference_phrases(t) for t in CASES]

    def test_calls_do_not_cross_texts(self):
        values = pa.array(["a <lora:x, y", "z> b", "<lora:q, r> s"], type=pa.string())
        assert batch_phrases(values) == [reference_phrases(t) for t in values.to_pylist()]

    def test_slice_and_chunked(self):
        values = pa.array(CASES, type=pa.string())
        part = values.slice(5, 12)
        assert batch_phrases(part) == [reference_phrases(t) for t in part.to_pylist()]
        chunked = pa.chunked_array([values.slice(0, 7), values.slice(7)])
        assert batch_phrases(chunked) == batch_phrases(values)

    def test_dictionary_is_distinct_in_first_seen_order(self):
        values = pa.array(["b,a,b", "c,a"], type=pa.string())
        batch = split_phrases(values)
        assert batch.dictionary == ["b", "a", "c"]
        assert batch.code.tolist() == [0, 1, 0, 2, 1]
        assert batch.doc.tolist() == [0, 0, 0, 1, 1]

    def test_nulls_and_counts(self):
        values = pa.array([None, "", "ab", None], type=pa.string())
        batch = split_phrases(values)
        assert batch.n_docs == 4 and batch.n_bytes == 2
        assert batch.nonempty.tolist() == [False, False, True, False]

    @pytest.mark.parametrize("distance", [398, 399, 400, 401, 402])
    def test_call_length_limit(self, distance):
        # '<' at 0, '>' at ``distance``: a call up to 400 bytes on, two phrases beyond
        call = "<lora:" + "n," * ((distance - 6) // 2) + "n" * ((distance - 6) % 2) + ">"
        assert call.index(">") == distance
        phrases = batch_phrases(pa.array([call + " girl"], type=pa.string()))[0]
        assert (len(phrases) == 2) == (distance <= 400), phrases
        assert phrases == reference_phrases(call + " girl")

    def test_equal_hashes_are_told_apart_by_their_bytes(self):
        # with no hash bits kept every phrase collides; codes must still be exact
        texts = ["ab, ba, ab, abc, cab", None, "ba, x, ab, , y"]
        values = pa.array(texts, type=pa.string())
        offsets = np.array([0, 20, 20, 34], dtype=np.int64)
        data = np.frombuffer("".join(t or "" for t in texts).encode(), dtype=np.uint8)
        valid = np.array([True, False, True])
        args = (data, offsets, valid, BYTE_CLASS, kernels.KIND_BYTES,
                kernels.KIND_LENGTHS, kernels.MAX_ADAPTER)
        exact = kernels.split_and_code(*args, kernels.ALL_HASH_BITS)
        colliding = kernels.split_and_code(*args, np.uint64(0))
        for a, b in zip(exact, colliding, strict=True):
            assert a.tolist() == b.tolist()
        batch = split_phrases(values)
        assert batch.dictionary == ["ab", " ba", " ab", " abc", " cab", "ba", " x", " y"]

    def test_all_null_and_empty_batches(self):
        for values in (pa.array([None, None], type=pa.string()), pa.array([], type=pa.string())):
            batch = split_phrases(values)
            assert len(batch.doc) == len(batch.code) == len(batch.phrases) == 0

    def test_table_grows_past_its_first_size(self):
        # many more distinct phrases than the first table holds (2**15), some repeated
        texts = [", ".join(f"tag{i * 7 + k}" for k in range(7)) + ", common" for i in range(6000)]
        values = pa.array(texts, type=pa.string())
        batch = split_phrases(values)
        assert len(batch.phrases) == 6000 * 7 + 1
        assert batch_phrases(values) == [reference_phrases(t) for t in texts]

    def test_random_texts_equal_reference(self):
        rng = random.Random(11)
        pieces = ["a", "B", "7", " ", ",", "(", ")", "<", ">", "[", "]", "{", "}", "|", ";",
                  "\n", "\r", "\x1f", ":", "_", ".", "lora:", "LoRA:", "ti:", "<lora:x,y:1>",
                  "<ti:a(b)>", "é", "日本", "\\(", "BREAK", "1.5", "-"]
        for _ in range(300):
            texts = []
            for _ in range(rng.randint(0, 8)):
                r = rng.random()
                if r < 0.1:
                    texts.append(None)
                else:
                    texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))))
            values = pa.array(texts, type=pa.string())
            assert batch_phrases(values) == [reference_phrases(t) for t in texts], texts


class TestCanonicalAscii:
    WEIGHTS = ["", "0", "-1", ".0", "0.", "00.00", "-.5", "1.5", "-", " 0 ", "1.", ".", "-0.",
               "x", "0.5", " -2 ", "1e3", ".5.5"]
    HEADS = ["lora", " LoRa ", "ti", "lycoris", "LYCO", "embedding", "hypernet", "x", "",
             "red hair", "a_b", "1girl", "v1.5", "9 years old"]

    @pytest.mark.parametrize("weighted", [True, False])
    def test_weight_and_adapter_classes(self, weighted):
        phrases = [h + c + w for h in self.HEADS for c in (":", " :", "", "::")
                   for w in self.WEIGHTS]
        got = canonical_phrases(pa.array(phrases, type=pa.string()), weighted).to_pylist()
        assert got == [canonical_phrase(p, weighted) for p in phrases]

    @pytest.mark.parametrize("weighted", [True, False])
    def test_random_ascii(self, weighted):
        rng = random.Random(5)
        alphabet = "aZ09 :._-\t\n\r\x00\x0b\x0c\x1c\x1dBREAK|lorati(),.;eEmbedingLYCOhypernt"
        phrases = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
                   for _ in range(20_000)]
        got = canonical_phrases(pa.array(phrases, type=pa.string()), weighted).to_pylist()
        assert got == [canonical_phrase(p, weighted) for p in phrases]


@pytest.mark.parametrize("weighted", [True, False])
def test_phrases_left_out_have_an_empty_canonical_form(weighted):
    """Why dropping phrases without a word byte is safe: every such phrase (all strings of up
    to 3 of those bytes, and random longer ones) has an empty canonical form, so no term,
    pattern rule or adapter can come from it. Ties the byte classes to ``canonical_phrase``."""
    plain = [chr(b) for b in range(128) if BYTE_CLASS[b] == kernels.PLAIN]
    assert len(plain) == 52
    strings = [a + b + c for a in plain + [""] for b in plain + [""] for c in plain]
    rng = random.Random(2)
    strings += ["".join(rng.choice(plain) for _ in range(rng.randint(4, 30)))
                for _ in range(20_000)]
    assert all(canonical_phrase(p, weighted) == "" for p in strings)


def test_document_labels_equal_numpy():
    rng = np.random.default_rng(3)
    n_docs, n_phrases, n_labels = 50, 30, 12
    phrase_labels = [np.unique(rng.integers(0, n_labels, rng.integers(0, 4)))
                     for _ in range(n_phrases)]
    ptr = np.concatenate([[0], np.cumsum([len(x) for x in phrase_labels])]).astype(np.int64)
    labels = np.concatenate(phrase_labels).astype(np.int64)
    is_adapter = rng.random(n_phrases) < 0.2
    doc = np.sort(rng.integers(0, n_docs, 400)).astype(np.int64)
    code = rng.integers(0, n_phrases, 400).astype(np.int64)
    got_doc, got_label, has_adapter = kernels.document_labels(doc, code, ptr, labels,
                                                              is_adapter, n_docs, n_labels)
    pairs = sorted({(d, lab) for d, c in zip(doc.tolist(), code.tolist(), strict=True)
                    for lab in phrase_labels[c].tolist()})
    assert list(zip(got_doc.tolist(), got_label.tolist(), strict=True)) == pairs
    expected = np.zeros(n_docs, dtype=bool)
    expected[doc[is_adapter[code]]] = True
    assert has_adapter.tolist() == expected.tolist()


def test_compiled_without_a_cache_location_still_works():
    # a function with no source file has no cache location, as in a read-only install
    namespace: dict = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)
    compiled = kernels._compiled(namespace["add_one"])
    assert compiled(41) == 42


def test_copy_labels_equal_python():
    rng = np.random.default_rng(4)
    n_texts = 20
    labels = {t: sorted(rng.choice(9, rng.integers(0, 4), replace=False).tolist())
              for t in range(n_texts)}
    inner = [(t, lab) for t in range(n_texts) for lab in labels[t]]
    inner_doc = np.array([t for t, _ in inner], dtype=np.int64)
    inner_term = np.array([lab for _, lab in inner], dtype=np.int64)
    text = rng.integers(0, n_texts, 300).astype(np.int64)
    valid = rng.random(300) > 0.1
    doc, term = kernels.copy_labels(text, valid, inner_doc, inner_term, n_texts)
    expected = [(d, lab) for d in range(300) if valid[d] for lab in labels[int(text[d])]]
    assert list(zip(doc.tolist(), term.tolist(), strict=True)) == expected
