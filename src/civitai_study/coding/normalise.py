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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import kernels


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
# 30-50 MB/s per pass here). Instead a batch is NFKC-normalised with an Arrow kernel, then one
# compiled pass (``kernels.split_and_code``) splits every text into phrases and numbers the
# distinct ones with a hash table. Prompts repeat their phrases massively (``masterpiece``,
# ``1girl``), so canonicalising a phrase (weights, underscores, adapters) happens once per
# *distinct* phrase, not once per occurrence.
# --------------------------------------------------------------------------------------------

PHRASE_SEPARATOR = "|"
#: Bytes that end a phrase: commas, '|', newlines, brackets of every kind (escaped or not), and
#: the ASCII unit separator (0x1F), which earlier versions used as their own split mark.
SEPARATOR_BYTES = b",|\n\r()[]{}<>;\x1f"
#: What each byte can be in a phrase (:func:`kernels.split_and_code`): a separator, part of a
#: word (ASCII letters and digits, and every byte of a non-ASCII character), or neither.
BYTE_CLASS = np.full(256, kernels.PLAIN, dtype=np.uint8)
BYTE_CLASS[np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                          dtype=np.uint8)] = kernels.WORDY
BYTE_CLASS[0x80:] = kernels.WORDY
BYTE_CLASS[np.frombuffer(SEPARATOR_BYTES, dtype=np.uint8)] = kernels.SEPARATOR
_ADAPTER_PHRASE = re.compile(
    r"^\s*(" + "|".join(w.decode() for w in kernels.ADAPTER_WORDS) + r")\s*:", re.I)
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


# The same rules for a whole array of distinct phrases at once: ASCII phrases go through one
# compiled loop (``kernels.canonical_ascii``, which spells out Python's ASCII ``\s``: tab to
# carriage return, 0x1c-0x1f and the space); the few phrases with non-ASCII characters (Unicode
# case, ``\w`` and ``\s`` rules) or ``BREAK`` take the exact per-phrase path above.


def literal_phrases(values: pa.Array, literals: list[str]) -> np.ndarray:
    """Sorted indices of the phrases of ``values`` that hold any of ``literals``.

    Why Arrow's substring search: it scans at memory speed, far faster than a regex, and
    without the GIL, so threads coding other batches are not held up.
    """
    holds = np.zeros(len(values), dtype=bool)
    for literal in literals:
        holds |= pc.fill_null(pc.match_substring(values, literal), False).to_numpy(
            zero_copy_only=False)
    return np.flatnonzero(holds)


def string_parts(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from 0) and UTF-8 bytes (uint8) of a string array, without copying.

    A null slot spans whatever bytes the array keeps there (usually none): callers that allow
    nulls skip them by the validity, as :func:`split_phrases` does.
    """
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    bufs = values.buffers()
    if bufs[1] is None:  # an empty array may come without an offsets buffer
        return np.zeros(len(values) + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=len(values) + 1,
                            offset=values.offset * 4).astype(np.int64)
    low, high = int(offsets[0]), int(offsets[-1])
    if bufs[2] is None or high == low:
        return offsets - low, np.zeros(0, dtype=np.uint8)
    return offsets - low, np.frombuffer(bufs[2], dtype=np.uint8)[low:high]


def canonical_phrases(phrases: pa.Array, weighted: bool = True) -> pa.Array:
    """:func:`canonical_phrase` of every phrase of a string array, null for an adapter.

    Identical to calling :func:`canonical_phrase` on each phrase (the tests and the coding
    equivalence check compare them), but ASCII phrases cost one compiled loop, not Python.
    """
    if isinstance(phrases, pa.ChunkedArray):
        phrases = phrases.combine_chunks()
    n = len(phrases)
    if n == 0:
        return pa.array([], type=pa.string())
    offsets, data = string_parts(phrases)
    out, out_offsets, adapter, slow = kernels.canonical_ascii(
        data, offsets, weighted, kernels.ADAPTER_WORD_BYTES, kernels.ADAPTER_WORD_LENGTHS)
    canon = _string_array(out_offsets, out)
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
    ``dictionary`` is the same as a list, for callers that loop in Python. Phrases with no
    letter, digit or non-ASCII character (empty, blanks, ``...``) are left out: their
    canonical form is empty, so they can carry no term, rule or adapter.
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


def split_phrases(values: pa.Array | pa.ChunkedArray) -> PhraseBatch:
    """Normalise (NFKC) and split a batch of texts into phrases, numbering the distinct ones.

    A phrase ends at any byte of ``SEPARATOR_BYTES``, except inside an adapter call: ``<`` +
    an adapter kind (``lora:``, ``ti:``, ..., any case) up to the next ``>`` of the same text,
    with no ``<`` in between and at most 400 bytes on. A model file name may hold commas or
    brackets (``<lora:x [Real man]:1>``); split there, its words would leak into the prompt as
    prose. A null text has no phrases, and phrases that cannot hold a word are left out
    (:class:`PhraseBatch`).

    Case is kept in the dictionary; :func:`canonical_phrase` lower-cases each distinct phrase.
    The loop is compiled (:mod:`.kernels`): one pass over the bytes splits and hashes.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    n = len(values)
    byte_len = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    text = pc.utf8_normalize(values, form="NFKC")
    offsets, data = string_parts(text)
    doc, code, starts, lengths = kernels.split_and_code(
        data, offsets, valid, BYTE_CLASS, kernels.KIND_BYTES, kernels.KIND_LENGTHS,
        kernels.MAX_ADAPTER, kernels.ALL_HASH_BITS)
    phrase_bytes, phrase_offsets = kernels.gather(data, starts, lengths)
    return PhraseBatch(doc=doc, code=code, phrases=_string_array(phrase_offsets, phrase_bytes),
                       n_docs=n, nonempty=valid & (byte_len > 0), n_bytes=int(byte_len.sum()))


def _string_array(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A string array over ``data`` without copying.

    ``data`` is valid UTF-8 cut at ASCII bytes, and never longer than the int32-offset input
    it came from, so 32-bit offsets hold it.
    """
    return pa.StringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)),
                                       pa.py_buffer(data))


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
