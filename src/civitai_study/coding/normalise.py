"""Normalise Stable Diffusion prompt syntax to plain, comparable text before matching.

Prompts carry tool syntax that hides the words: attention weights ``(term:1.2)``, emphasis
brackets ``[term]``/``{term}``, escaped brackets, adapter calls ``<lora:name:0.8>``, ``BREAK``,
underscores from booru tags, full-width characters. Adapter calls are returned separately as
references (they name a model, not the depicted content).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ADAPTER = re.compile(r"<\s*(lora|lyco|hypernet|embedding|ti)\s*:\s*([^:>]+?)\s*(?::[^>]*)?>",
                      re.IGNORECASE)
_ANY_ANGLE = re.compile(r"<[^<>]*>")
_WEIGHT = re.compile(r":\s*-?\d+(?:\.\d+)?\s*(?=[)\]}]|$|,)")
_ESCAPED = re.compile(r"\\([()\[\]{}])")
_BRACKETS = re.compile(r"[()\[\]{}]")
_BREAK = re.compile(r"\bBREAK\b")
_SEPARATORS = re.compile(r"[_\-]+")
_SPACES = re.compile(r"[ \t\r\n]+")
_COMMAS = re.compile(r"\s*[,|\n]\s*")


@dataclass(frozen=True)
class NormalisedPrompt:
    text: str  # lower-case words separated by single spaces, phrases by ", "
    adapters: tuple[str, ...]  # "lora:name" references, lower-case, in order of appearance


def normalise_prompt(prompt: str | None) -> NormalisedPrompt:
    """Strip prompt syntax; keep phrase boundaries as commas and record adapter references."""
    if not prompt:
        return NormalisedPrompt("", ())
    text = unicodedata.normalize("NFKC", prompt)
    adapters = tuple(f"{kind.lower()}:{name.strip().lower()}"
                     for kind, name in _ADAPTER.findall(text))
    text = _ANY_ANGLE.sub(",", text)
    text = _BREAK.sub(",", text)
    text = _ESCAPED.sub(r"\1", text)
    text = _WEIGHT.sub("", text)
    text = _BRACKETS.sub(",", text)
    text = text.lower()
    text = _SEPARATORS.sub(" ", text)
    phrases = [_SPACES.sub(" ", p).strip(" .:;") for p in _COMMAS.split(text)]
    return NormalisedPrompt(", ".join(p for p in phrases if p), adapters)


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
_NONWORD = re.compile(r"[\W_]+")
_BREAK_WORD = re.compile(r"\bBREAK\b")


def canonical_phrase(phrase: str) -> str | None:
    """Canonical form of one raw phrase: words of letters/digits joined by one space.

    Returns ``None`` for an adapter reference (``lora:name:0.8``, the inside of ``<...>``):
    adapters name a model file, not the depicted content, and are never matched as prose.
    ``rating:explicit`` becomes ``rating explicit``; a trailing attention weight is dropped.
    """
    if _ADAPTER_PHRASE.match(phrase):
        return None
    if "BREAK" in phrase and _BREAK_WORD.search(phrase):
        # SD-webui's chunk separator (upper case only) ends a phrase
        parts = (_canonical_words(p) for p in _BREAK_WORD.split(phrase))
        return " | ".join(p for p in parts if p)
    return _canonical_words(phrase)


def _canonical_words(phrase: str) -> str:
    phrase = _TRAILING_WEIGHT.sub("", phrase.lower())
    return _NONWORD.sub(" ", phrase).strip()


@dataclass(frozen=True)
class PhraseBatch:
    """A batch of documents split into phrases.

    ``doc[i]`` is the document (position in the batch) of phrase occurrence ``i`` and
    ``code[i]`` its index in ``dictionary``: the distinct raw phrases of the batch, NFKC
    normalised but with their case kept (pattern rules such as ``photo of <Name>`` need it).
    """

    doc: np.ndarray
    code: np.ndarray
    dictionary: list[str]
    n_docs: int
    nonempty: np.ndarray
    n_bytes: int


def _translate(values: pa.Array) -> pa.Array:
    """Map every separator byte to the phrase separator; offsets and validity are reused."""
    bufs = values.buffers()
    data = bufs[2]
    if data is None:
        return values
    mapped = pa.py_buffer(data.to_pybytes().translate(TRANSLATE_TABLE))
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
    return PhraseBatch(doc=doc, code=code, dictionary=encoded.dictionary.to_pylist(), n_docs=n,
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
