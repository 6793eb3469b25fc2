"""Normalise Stable Diffusion prompt syntax to plain, comparable text before matching.

Prompts carry tool syntax that hides the words: attention weights ``(term:1.2)``, emphasis
brackets ``[term]``/``{term}``, escaped brackets, adapter calls ``<lora:name:0.8>``, ``BREAK``,
underscores from booru tags, full-width characters. Adapter calls are returned separately as
references (they name a model, not the depicted content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class NormalisedPrompt:
    text: str  # lower-case words separated by single spaces, phrases by ", "
    adapters: tuple[str, ...]  # "lora:name" references, lower-case, in order of appearance


def normalise_prompt(prompt: str | None) -> NormalisedPrompt:
    """Strip prompt syntax; keep phrase boundaries as commas and record adapter references.

    The coder's own kernels (:func:`match_text`, :func:`prompt_adapters`): the project has one
    normaliser, so calibration tables and coded counts see the same words.
    """
    if not prompt:
        return NormalisedPrompt("", ())
    phrases = [p for p in match_text(prompt).split(" | ") if p]
    return NormalisedPrompt(", ".join(phrases), tuple(prompt_adapters(prompt)))


def prompt_phrases(prompt: str | None) -> list[str]:
    """The comma-separated phrases of a normalised prompt (booru tags are phrases)."""
    text = normalise_prompt(prompt).text
    return text.split(", ") if text else []


# --------------------------------------------------------------------------------------------
# Vectorised normalisation for the coder.
#
# The coder must run on tens of millions of prompts, so it cannot call ``normalise_prompt`` per
# prompt, and regular-expression replacement per prompt is too slow (Arrow's RE2 kernels measure
# 30-50 MB/s per pass here). Instead a batch is lower-cased with Arrow kernels, every phrase
# separator byte is mapped to one control byte with a 256-entry translation table (a single
# C-speed pass over the value buffer that keeps all offsets), the batch is split into phrases and
# dictionary-encoded. Prompts repeat their phrases massively (``masterpiece``, ``1girl``), so the
# remaining Python work, canonicalising a phrase (weights, underscores, adapters), happens once
# per *distinct* phrase, not once per occurrence.
# --------------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

PHRASE_SEPARATOR = "|"
_SEP_BYTE = 0x1F
#: Bytes that end a phrase: commas, '|', newlines, brackets of every kind (escaped or not).
SEPARATOR_BYTES = b",|\n\r()[]{}<>;"
_TABLE = bytearray(range(256))
for _b in SEPARATOR_BYTES:
    _TABLE[_b] = _SEP_BYTE
TRANSLATE_TABLE = bytes(_TABLE)
_ADAPTER_PHRASE = re.compile(r"^\s*(lora|lyco|lycoris|locon|hypernet|embedding|ti)\s*:", re.I)
_TRAILING_WEIGHT = re.compile(r":\s*-?\d*(?:\.\d+)?\s*$")
#: An attention weight of zero or below: the UI gives the words no weight, so they are absent.
_ZERO_WEIGHT = re.compile(r":\s*(?:-(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|0+(?:\.0*)?|\.0+)\s*$")
#: Non-word runs become one space; a decimal point between two digits stays ("1.5 years old").
_NONWORD = re.compile(r"(?:[^\w.]|_|(?<![0-9])\.|\.(?![0-9]))+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
#: CJK text glued to an English word ("美女girl") is split there, so the word is seen.
_CJK_GLUE = re.compile(rf"(?<=[{_CJK}])(?=[a-z0-9])|(?<=[a-z0-9])(?=[{_CJK}])")
_BREAK_WORD = re.compile(r"\bBREAK\b")


def canonical_phrase(phrase: str, weighted: bool = True) -> str | None:
    """Canonical form of one raw phrase: words of letters/digits joined by one space.

    Returns ``None`` for an adapter reference (``lora:name:0.8``, the inside of ``<...>``):
    adapters name a model file, not the depicted content, and are never matched as prose.
    ``rating:explicit`` becomes ``rating explicit``; a trailing attention weight is dropped,
    and with ``weighted`` a weight of zero or below (``nsfw:0``) makes the phrase empty.
    """
    if _ADAPTER_PHRASE.match(phrase):
        return None
    if "BREAK" in phrase and _BREAK_WORD.search(phrase):
        # SD-webui's chunk separator (upper case only) ends a phrase
        parts = (_canonical_words(p, weighted) for p in _BREAK_WORD.split(phrase))
        return " | ".join(p for p in parts if p)
    return _canonical_words(phrase, weighted)


def _canonical_words(phrase: str, weighted: bool = True) -> str:
    phrase = phrase.lower()
    if weighted and ":" in phrase and _ZERO_WEIGHT.search(phrase):
        return ""
    phrase = _TRAILING_WEIGHT.sub("", phrase)
    if not phrase.isascii():
        phrase = _CJK_GLUE.sub(" ", phrase)
    return _NONWORD.sub(" ", phrase).strip()


# The same rules for a whole array of distinct phrases at once. Python's ``re`` and Arrow's RE2
# agree on ASCII text once the classes are spelled out (Python's ``\s`` also matches
# ``\x0b`` and ``\x1c``-``\x1f``, RE2's does not), so ASCII phrases go through Arrow kernels and
# numpy; the few phrases with non-ASCII characters (Unicode case, ``\w`` and ``\s`` rules) or
# ``BREAK`` take the exact per-phrase path above. Only phrases with a ``:`` can be adapters or
# carry a trailing weight, so the two regular expressions run on that subset only.
_ASCII_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f "
_ADAPTER_RE2 = (rf"^[{_ASCII_SPACE}]*(lora|lyco|lycoris|locon|hypernet|embedding|ti)"
                rf"[{_ASCII_SPACE}]*:")
_TRAILING_WEIGHT_RE2 = rf":[{_ASCII_SPACE}]*-?[0-9]*(?:\.[0-9]+)?[{_ASCII_SPACE}]*$"
_ZERO_WEIGHT_RE2 = (rf":[{_ASCII_SPACE}]*(?:-(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)|0+(?:\.0*)?|\.0+)"
                    rf"[{_ASCII_SPACE}]*$")


def literal_phrases(offsets: np.ndarray, data: bytes, literals: list[str]) -> np.ndarray:
    """Sorted distinct indices of the phrases (``offsets`` into ``data``) holding a literal.

    Why ``bytes.find``: it scans at memory speed, far faster than a regex. Every occurrence is
    found, overlapping ones included; one that straddles two phrases only adds a candidate
    (callers confirm or tolerate candidates), it never hides one.
    """
    found = []
    for literal in literals:
        needle = literal.encode()
        at = data.find(needle)
        while at >= 0:
            found.append(at)
            at = data.find(needle, at + 1)
    if not found:
        return np.zeros(0, dtype=np.int64)
    phrases = np.searchsorted(offsets, np.asarray(found, dtype=np.int64), side="right") - 1
    phrases.sort()
    return phrases[np.concatenate([[True], phrases[1:] != phrases[:-1]])]


def string_parts(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from 0) and UTF-8 bytes (uint8) of a string array without nulls."""
    if values.null_count:
        raise ValueError("string_parts: the array must not contain nulls")
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(values) + 1,
                            offset=values.offset * 4).astype(np.int64)
    if bufs[2] is None or offsets[-1] == offsets[0]:
        return offsets - offsets[0], np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return offsets - offsets[0], data


def collapse_words(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """``_NONWORD.sub(" ", p).strip()`` for every lower-case ASCII phrase of one buffer.

    Why not a regex: this is a handful of numpy passes over the bytes. A byte is kept if it is
    ``[0-9a-z]`` or the first byte of a non-word run that follows a word byte (it becomes one
    space); the one run that follows a phrase's last word byte is then dropped (``strip``).
    Works phrase by phrase (``offsets``), never across two phrases.
    """
    n = len(offsets) - 1
    # [0-9a-z] by comparisons (wrapping uint8 arithmetic): ~10x faster than a table lookup
    digit = data - np.uint8(48) < 10
    word = (data - np.uint8(97) < 26) | digit
    starts, ends = offsets[:-1], offsets[1:]
    nonempty = ends > starts
    if len(data) > 2:  # a decimal point between two digits of one phrase is kept
        point = np.zeros(len(data), dtype=bool)
        point[1:-1] = (data[1:-1] == 46) & digit[:-2] & digit[2:]
        point[starts[nonempty]] = False
        point[ends[nonempty] - 1] = False
        word |= point
    nonword = (~word).view(np.uint8)  # 1 for a byte that becomes a space
    mapped = (data & (nonword - np.uint8(1))) | (nonword << 5)  # byte, or 32; no np.where
    keep = word.copy()
    if len(data) > 1:
        keep[1:] |= word[:-1]  # a run's first byte (the run itself is non-word)
    keep[starts[nonempty]] = word[starts[nonempty]]  # nothing before a phrase's first byte
    # trailing run of each phrase: walk back from the end, only over phrases still in a run
    active = np.flatnonzero(nonempty)
    pos = ends[active] - 1
    inrun = ~word[pos]
    active, pos = active[inrun], pos[inrun]
    while len(active):
        more = pos > starts[active]
        more[more] = ~word[pos[more] - 1]
        done = ~more
        keep[pos[done]] = False  # first byte of the trailing run
        active, pos = active[more], pos[more] - 1
    kept = np.zeros(n, dtype=np.int32)  # kept bytes per phrase; empty phrases keep none
    if nonempty.any():
        kept[nonempty] = np.add.reduceat(keep.view(np.uint8), starts[nonempty], dtype=np.int32)
    cum = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(kept, out=cum[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(cum),
                                       pa.py_buffer(mapped[keep]))


def canonical_phrases(phrases: pa.Array, weighted: bool = True) -> pa.Array:
    """:func:`canonical_phrase` of every phrase of a string array, null for an adapter.

    Identical to calling :func:`canonical_phrase` on each phrase (the tests and the coding
    equivalence check compare them), but the cost per phrase is Arrow/numpy work, not Python.
    """
    if isinstance(phrases, pa.ChunkedArray):
        phrases = phrases.combine_chunks()
    n = len(phrases)
    if n == 0:
        return pa.array([], type=pa.string())
    offsets, data = string_parts(phrases)
    at = np.flatnonzero((data >= 0x80) | (data == 0x3A))  # non-ASCII bytes and colons: few
    where = np.searchsorted(offsets, at, side="right") - 1
    non_ascii = data[at] >= 0x80
    slow = np.zeros(n, dtype=bool)
    slow[where[non_ascii]] = True
    slow[literal_phrases(offsets, data.tobytes(), ["BREAK"])] = True
    colon = np.zeros(n, dtype=bool)
    colon[where[~non_ascii]] = True
    colon &= ~slow
    adapter = np.zeros(n, dtype=bool)
    text = phrases
    if colon.any():
        mask = pa.array(colon)
        sub = phrases.filter(mask)
        adapter[colon] = pc.match_substring_regex(sub, _ADAPTER_RE2, ignore_case=True
                                                  ).to_numpy(zero_copy_only=False)
        stripped = pc.replace_substring_regex(sub, _TRAILING_WEIGHT_RE2, "")
        if weighted:
            zero = pc.match_substring_regex(sub, _ZERO_WEIGHT_RE2)
            stripped = pc.if_else(zero, pa.scalar("", pa.string()), stripped)
        text = pc.replace_with_mask(phrases, mask, stripped)
    canon = collapse_words(*string_parts(pc.ascii_lower(text)))
    if adapter.any():
        canon = pc.if_else(pa.array(adapter), pa.scalar(None, pa.string()), canon)
    if slow.any():
        index = np.flatnonzero(slow)
        exact = [canonical_phrase(p, weighted)
                 for p in phrases.take(pa.array(index)).to_pylist()]
        canon = pc.replace_with_mask(canon, pa.array(slow), pa.array(exact, type=pa.string()))
    return canon


@dataclass(frozen=True)
class PhraseBatch:
    """A batch of documents split into phrases.

    ``doc[i]`` is the document (position in the batch) of phrase occurrence ``i`` and
    ``code[i]`` its index in ``phrases``: the distinct raw phrases of the batch, NFKC
    normalised but with their case kept (pattern rules such as ``photo of <Name>`` need it).
    They stay an Arrow array, so the matcher never makes a Python string per phrase;
    ``dictionary`` is the same as a list, for callers that loop in Python.
    """

    doc: np.ndarray
    code: np.ndarray
    phrases: pa.Array
    n_docs: int
    nonempty: np.ndarray
    n_bytes: int

    @cached_property
    def dictionary(self) -> list[str]:
        """The distinct raw phrases as Python strings (built on first use)."""
        return self.phrases.to_pylist()


_ADAPTER_KINDS = (b"lora:", b"lyco:", b"lycoris:", b"locon:", b"hypernet:", b"embedding:", b"ti:")
_MAX_ADAPTER = 400  # bytes between '<' and '>' of one adapter call at most


def adapter_spans(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Positions of the bytes strictly inside adapter calls ``<lora:...>`` of ``data``.

    Why: a model file name may hold commas or brackets (``<lora:x [Real man]:1>``); split
    there, its words would leak into the prompt as prose. A call is ``<`` + an adapter kind +
    ``:`` up to the next ``>`` of the same text, with no ``<`` in between. Vectorised: only the
    few bytes after each ``<`` are looked at, and the result is a list of positions.
    """
    empty = np.zeros(0, dtype=np.int64)
    opens = np.flatnonzero(data == 60)
    closes = np.flatnonzero(data == 62)
    if not len(opens) or not len(closes):
        return empty
    width = max(len(k) for k in _ADAPTER_KINDS)
    window = data[np.minimum(opens[:, None] + 1 + np.arange(width), len(data) - 1)]
    window = window + ((window - np.uint8(65)) < 26).astype(np.uint8) * np.uint8(32)
    kind = np.zeros(len(opens), dtype=bool)
    for k in _ADAPTER_KINDS:
        kind |= (window[:, :len(k)] == np.frombuffer(k, dtype=np.uint8)).all(axis=1)
    at = np.searchsorted(closes, opens)
    ok = kind & (at < len(closes))
    close = closes[np.minimum(at, len(closes) - 1)]
    next_open = np.append(opens[1:], len(data))
    doc_end = offsets[np.searchsorted(offsets, opens, side="right").clip(max=len(offsets) - 1)]
    ok &= (close < next_open) & (close < doc_end) & (close - opens <= _MAX_ADAPTER)
    first, last = opens[ok] + 1, close[ok]
    lengths = last - first
    if not lengths.sum():
        return empty
    ends = np.cumsum(lengths)
    return np.repeat(first - (ends - lengths), lengths) + np.arange(ends[-1])


def _translate(values: pa.Array) -> pa.Array:
    """Map every separator byte to the phrase separator; offsets and validity are reused.

    Separators inside an adapter call are kept (:func:`adapter_spans`).
    """
    bufs = values.buffers()
    data = bufs[2]
    if data is None:
        return values
    raw = data.to_pybytes()
    translated = raw.translate(TRANSLATE_TABLE)
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(values) + 1,
                            offset=values.offset * 4).astype(np.int64)
    low, high = int(offsets[0]), int(offsets[-1])  # a slice uses part of the buffer only
    original = np.frombuffer(raw, dtype=np.uint8)[low:high]
    inside = adapter_spans(original, offsets - low) + low
    if len(inside):
        out = np.frombuffer(translated, dtype=np.uint8).copy()
        out[inside] = original[inside - low]
        translated = out.tobytes()
    mapped = pa.py_buffer(translated)
    return pa.StringArray.from_buffers(len(values), bufs[1], mapped, bufs[0], values.null_count,
                                       values.offset)


def split_phrases(values: pa.Array | pa.ChunkedArray) -> PhraseBatch:
    """Normalise (NFKC, separators) and split a batch of texts into phrases.

    Case is kept in the dictionary; :func:`canonical_phrase` lower-cases each distinct phrase.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    n = len(values)
    byte_len = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    text = pc.utf8_normalize(values, form="NFKC")
    lists = pc.split_pattern(_translate(text), "\x1f")
    offsets = lists.offsets.to_numpy()
    counts = np.diff(offsets)
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    counts = np.where(valid, counts, 0)
    doc = np.repeat(np.arange(n, dtype=np.int64), counts)
    encoded = lists.flatten().dictionary_encode()
    code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return PhraseBatch(doc=doc, code=code, phrases=encoded.dictionary, n_docs=n,
                       nonempty=valid & (byte_len > 0), n_bytes=int(byte_len.sum()))


def _phrases_of(text: str) -> list[str]:
    batch = split_phrases(pa.array([text], type=pa.string()))
    return [batch.dictionary[c] for c in batch.code]


def match_text(prompt: str | None) -> str:
    """The coder's matching form of one prompt: canonical phrases joined by `` | ``.

    Uses exactly the kernels of :func:`split_phrases` and :func:`canonical_phrase`; adapter
    references and empty phrases are left out.
    """
    if not prompt:
        return ""
    canon = (canonical_phrase(p) for p in _phrases_of(prompt))
    return " | ".join(c for c in canon if c)


def prompt_adapters(prompt: str | None) -> list[str]:
    """Adapter references of one prompt as ``kind:name`` (same rule as the coder)."""
    if not prompt:
        return []
    out = []
    for phrase in _phrases_of(prompt):
        if _ADAPTER_PHRASE.match(phrase):
            kind, _, rest = phrase.strip().lower().partition(":")
            out.append(f"{kind.strip()}:{rest.split(':')[0].strip()}")
    return out


def match_form(term: str) -> str:
    """Normalised form of a codebook term: lower-case words separated by single spaces."""
    return " ".join(w for w in match_text(term).replace(PHRASE_SEPARATOR, " ").split())
