"""Compiled loops of the coder: splitting and deduplicating phrases, canonical forms, labels.

Why compiled: with Arrow and numpy kernels, splitting a batch into phrases and hashing every
phrase occurrence was half of the coder's time (a translation pass, a list array of all
phrases, a hash table: about 50 ns per occurrence over three passes of the bytes), and the
canonical form of the distinct phrases took a dozen numpy passes and two regular expressions.
Here each is one loop that reads every byte once:

- :func:`split_and_code` splits texts into phrases and numbers the distinct ones;
- :func:`canonical_ascii` gives the canonical form of ASCII phrases (``canonical_phrase``);
- :func:`document_labels` turns phrase labels into each document's sorted distinct labels, and
  :func:`copy_labels` copies a distinct text's labels to every document holding that text.

numba compiles them on first use and caches the machine code beside this file, so later
processes only load it (``make setup`` compiles them once: :func:`warm_up`); without the GIL,
threads run them side by side. The rules are those of ``normalise`` (which documents them);
``tests/test_coding_kernels.py`` compares each loop with a plain Python reference.
"""

from __future__ import annotations

import numba
import numpy as np


def _compiled(function):
    """``numba.njit`` without the GIL, cached on disk where numba finds a writable place.

    Where it finds none (a read-only install and a read-only home), numba refuses to cache;
    the loops are then compiled in each process (a few seconds) instead of failing to import.
    """
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


#: Words that name an adapter: ``<lora:name:0.8>`` is a call, ``lora:name`` an adapter phrase.
ADAPTER_WORDS = (b"lora", b"lyco", b"lycoris", b"locon", b"hypernet", b"embedding", b"ti")
MAX_ADAPTER = 400  # bytes from '<' to '>' of one adapter call at most
#: All hash bits (:func:`split_and_code` keeps ``hash & hash_mask``).
ALL_HASH_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
#: Byte classes for :func:`split_and_code`: no word content, part of a word, phrase separator.
PLAIN, WORDY, SEPARATOR = 0, 1, 2
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _words_table(words: tuple[bytes, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Words as rows of a byte matrix and their lengths (what compiled loops can take)."""
    width = max(len(w) for w in words)
    table = np.zeros((len(words), width), dtype=np.uint8)
    lengths = np.zeros(len(words), dtype=np.int64)
    for i, word in enumerate(words):
        table[i, :len(word)] = np.frombuffer(word, dtype=np.uint8)
        lengths[i] = len(word)
    return table, lengths


#: What may follow ``<`` to open an adapter call: an adapter word and its colon.
KIND_BYTES, KIND_LENGTHS = _words_table(tuple(w + b":" for w in ADAPTER_WORDS))
ADAPTER_WORD_BYTES, ADAPTER_WORD_LENGTHS = _words_table(ADAPTER_WORDS)


@_compiled
def _call_end(data, p, end, kinds, kind_lengths, max_call):
    """Position of the ``>`` closing an adapter call opened by ``<`` at ``p``, or -1."""
    for k in range(len(kind_lengths)):
        m = kind_lengths[k]
        if p + 1 + m > end:
            continue
        same = True
        for i in range(m):
            b = data[p + 1 + i]
            if 65 <= b <= 90:  # ASCII upper case
                b += 32
            if b != kinds[k, i]:
                same = False
                break
        if same:
            stop = min(end, p + max_call + 1)
            for j in range(p + 1, stop):
                if data[j] == 60:  # another '<' first: not a call
                    return -1
                if data[j] == 62:
                    return j
            return -1
    return -1


@_compiled
def _rehash(table, size):
    """The hash table with ``size`` rows: (hash, length << 32 | code + 1), 0 for an empty row."""
    out = np.zeros((size, 2), dtype=np.uint64)
    mask = np.uint64(size - 1)
    for row in range(len(table)):
        if table[row, 1] != 0:
            slot = table[row, 0] & mask
            while out[slot, 1] != 0:
                slot = (slot + np.uint64(1)) & mask
            out[slot, 0] = table[row, 0]
            out[slot, 1] = table[row, 1]
    return out


# The scanning state of :func:`_code_phrases`, kept between calls in one int64 array.
_DOC, _AT, _IN_CALL, _CODES, _OCCURRENCES = range(5)


@_compiled
def _code_phrases(data, offsets, valid, byte_class, kinds, kind_lengths, max_call, hash_mask,
                  table, d_start, d_len, occ_doc, occ_code, state):
    """The loop of :func:`split_and_code` from ``state`` on; False when it stopped for room.

    It stops before a phrase once the table is half full or ``d_start`` is full, so the
    caller can grow them and call again; every array stays fixed inside the loop, which lets
    the compiler keep them in registers.
    """
    n = len(offsets) - 1
    mask = np.uint64(len(table) - 1)
    room = min(len(d_start), len(table) // 2)
    n_codes = state[_CODES]
    n_occ = state[_OCCURRENCES]
    doc = state[_DOC]
    j = state[_AT]
    in_call = state[_IN_CALL] != 0
    while doc < n:
        end = offsets[doc + 1]
        if not valid[doc]:
            doc += 1
            if doc < n:
                j = offsets[doc]
            continue
        while True:
            if n_codes >= room:
                state[_DOC], state[_AT], state[_IN_CALL] = doc, j, in_call
                state[_CODES], state[_OCCURRENCES] = n_codes, n_occ
                return False
            start = j
            h = _FNV_OFFSET
            wordy = in_call
            if in_call:  # up to the '>' found by _call_end, separators or not
                while data[j] != 62:
                    h = (h ^ np.uint64(data[j])) * _FNV_PRIME
                    j += 1
                in_call = False
            else:
                while j < end:
                    b = data[j]
                    kind = byte_class[b]
                    if kind == SEPARATOR:
                        break
                    wordy |= kind == WORDY
                    h = (h ^ np.uint64(b)) * _FNV_PRIME
                    j += 1
            if wordy:  # phrase data[start:j] ends here: find or insert its code
                h &= hash_mask
                length = j - start
                slot = h & mask
                while True:
                    entry = table[slot, 1]
                    if entry == 0:
                        table[slot, 0] = h
                        table[slot, 1] = (np.uint64(length) << np.uint64(32)) | np.uint64(
                            n_codes + 1)
                        d_start[n_codes] = start
                        d_len[n_codes] = length
                        code = n_codes
                        n_codes += 1
                        break
                    if table[slot, 0] == h and np.int64(entry >> np.uint64(32)) == length:
                        code = np.int64(entry & np.uint64(0xFFFFFFFF)) - 1
                        other = d_start[code]
                        k = 0
                        while k < length and data[other + k] == data[start + k]:
                            k += 1
                        if k == length:
                            break
                    slot = (slot + np.uint64(1)) & mask
                occ_doc[n_occ] = doc
                occ_code[n_occ] = code
                n_occ += 1
            if j >= end:
                break
            if data[j] == 60 and _call_end(data, j, end, kinds, kind_lengths, max_call) >= 0:
                in_call = True  # '<' opens an adapter call: its inside is one phrase
            j += 1
        doc += 1
        if doc < n:
            j = offsets[doc]
    state[_DOC], state[_AT], state[_IN_CALL] = doc, j, in_call
    state[_CODES], state[_OCCURRENCES] = n_codes, n_occ
    return True


@_compiled
def split_and_code(data, offsets, valid, byte_class, kinds, kind_lengths, max_call, hash_mask):
    """Split every valid text into phrases and number the distinct phrases (compiled).

    ``data``/``offsets`` are the texts' UTF-8 bytes and their bounds; a phrase ends at a byte
    of class ``SEPARATOR`` (``byte_class``), except inside an adapter call ``<kind:...>``
    (:func:`_call_end`), which is one phrase. A phrase with no byte of class ``WORDY`` cannot
    hold a word and is left out. Returns per occurrence its document and code, and per code
    (in order of first occurrence) the start and length of its bytes. Phrases are hashed
    (FNV-1a) while they are scanned and compared byte by byte when their hashes and lengths
    agree, so codes are exact; ``hash_mask`` keeps only some hash bits (tests use 0 to make
    every phrase collide).
    """
    bound = len(offsets) - 1  # phrases: at most one per text plus one per separator byte
    for j in range(len(data)):
        bound += byte_class[data[j]] == SEPARATOR
    occ_doc = np.empty(bound, dtype=np.int64)
    occ_code = np.empty(bound, dtype=np.int64)
    table = np.zeros((1 << 16, 2), dtype=np.uint64)
    d_start = np.empty(1 << 15, dtype=np.int64)
    d_len = np.empty(1 << 15, dtype=np.int64)
    state = np.zeros(5, dtype=np.int64)
    state[_AT] = offsets[0] if len(offsets) else 0
    while not _code_phrases(data, offsets, valid, byte_class, kinds, kind_lengths, max_call,
                            hash_mask, table, d_start, d_len, occ_doc, occ_code, state):
        table = _rehash(table, 2 * len(table))
        grown = np.empty(len(table) // 2, dtype=np.int64)
        grown[:len(d_start)] = d_start
        d_start = grown
        grown = np.empty(len(table) // 2, dtype=np.int64)
        grown[:len(d_len)] = d_len
        d_len = grown
    n_codes, n_occ = state[_CODES], state[_OCCURRENCES]
    return occ_doc[:n_occ], occ_code[:n_occ], d_start[:n_codes], d_len[:n_codes]


@_compiled
def gather(data, starts, lengths):
    """The bytes of ``data[starts[i]:starts[i] + lengths[i]]`` one after another, and offsets."""
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    for i in range(len(starts)):
        offsets[i + 1] = offsets[i] + lengths[i]
    out = np.empty(offsets[-1], dtype=np.uint8)
    for i in range(len(starts)):
        out[offsets[i]:offsets[i + 1]] = data[starts[i]:starts[i] + lengths[i]]
    return out, offsets


# --------------------------------------------------------------------------------------------
# Canonical forms of ASCII phrases: the rules of ``normalise.canonical_phrase`` as one loop.
# --------------------------------------------------------------------------------------------

@_compiled
def _is_space(b):
    """Python's ``\\s`` on ASCII: tab to carriage return, 0x1c-0x1f and the space."""
    return b == 32 or 9 <= b <= 13 or 28 <= b <= 31


@_compiled
def _is_digit(b):
    return 48 <= b <= 57


@_compiled
def _lower(b):
    return b + 32 if 65 <= b <= 90 else b


@_compiled
def _is_adapter(data, s, e, words, word_lengths):
    """``^\\s*(lora|lyco|lycoris|locon|hypernet|embedding|ti)\\s*:``, any case."""
    i = s
    while i < e and _is_space(data[i]):
        i += 1
    for w in range(len(word_lengths)):
        m = word_lengths[w]
        if i + m > e:
            continue
        k = 0
        while k < m and _lower(data[i + k]) == words[w, k]:
            k += 1
        if k < m:
            continue
        j = i + m
        while j < e and _is_space(data[j]):
            j += 1
        if j < e and data[j] == 58:
            return True
    return False


@_compiled
def _skip_spaces(data, i, e):
    while i < e and _is_space(data[i]):
        i += 1
    return i


@_compiled
def _skip_digits(data, i, e):
    while i < e and _is_digit(data[i]):
        i += 1
    return i


@_compiled
def _is_weight(data, i, e):
    """Does ``data[i:e]`` (after a colon) match ``\\s*-?\\d*(?:\\.\\d+)?\\s*$``."""
    i = _skip_spaces(data, i, e)
    if i < e and data[i] == 45:  # '-'
        i += 1
    i = _skip_digits(data, i, e)
    if i < e and data[i] == 46:  # '.' needs a digit after it
        if i + 1 >= e or not _is_digit(data[i + 1]):
            return False
        i = _skip_digits(data, i + 1, e)
    return _skip_spaces(data, i, e) == e


@_compiled
def _is_zero_weight(data, i, e):
    """``\\s*(?:-(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)|0+(?:\\.0*)?|\\.0+)\\s*$`` on ``data[i:e]``."""
    i = _skip_spaces(data, i, e)
    if i >= e:
        return False
    b = data[i]
    if b == 45:  # '-' then digits (optionally '.' digits*) or '.' digits+
        i += 1
        if i < e and _is_digit(data[i]):
            i = _skip_digits(data, i, e)
            if i < e and data[i] == 46:
                i = _skip_digits(data, i + 1, e)
        elif i < e and data[i] == 46 and i + 1 < e and _is_digit(data[i + 1]):
            i = _skip_digits(data, i + 1, e)
        else:
            return False
    elif b == 48:  # 0+ then optionally '.' 0*
        while i < e and data[i] == 48:
            i += 1
        if i < e and data[i] == 46:
            i += 1
            while i < e and data[i] == 48:
                i += 1
    elif b == 46:  # '.' 0+
        i += 1
        if i >= e or data[i] != 48:
            return False
        while i < e and data[i] == 48:
            i += 1
    else:
        return False
    return _skip_spaces(data, i, e) == e


@_compiled
def canonical_ascii(data, offsets, weighted, words, word_lengths):
    """Canonical forms of ASCII phrases without ``BREAK`` (compiled; see ``canonical_phrase``).

    Per phrase: an adapter phrase is flagged (its form is null); with ``weighted``, a trailing
    weight of zero or below makes the form empty; a trailing weight is dropped; words of
    ``[0-9a-z]`` (lower-cased; a ``.`` between two digits stays) are joined by one space.
    Phrases with a non-ASCII byte or ``BREAK`` are flagged ``slow`` and left empty: the caller
    gives them the exact per-phrase rules. Returns the forms' bytes and offsets and the flags.
    """
    n = len(offsets) - 1
    out = np.empty(len(data), dtype=np.uint8)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    adapter = np.zeros(n, dtype=np.bool_)
    slow = np.zeros(n, dtype=np.bool_)
    o = 0
    for p in range(n):
        s = offsets[p]
        e = offsets[p + 1]
        colon = -1  # the last ':': a weight holds none, so only it can start one
        for i in range(s, e):
            b = data[i]
            if b >= 128 or (b == 66 and i + 5 <= e and data[i + 1] == 82 and data[i + 2] == 69
                            and data[i + 3] == 65 and data[i + 4] == 75):  # non-ASCII, BREAK
                slow[p] = True
                break
            if b == 58:
                colon = i
        if slow[p]:
            out_offsets[p + 1] = o
            continue
        if colon >= 0:
            if _is_adapter(data, s, e, words, word_lengths):
                adapter[p] = True
                out_offsets[p + 1] = o
                continue
            if weighted and _is_zero_weight(data, colon + 1, e):
                out_offsets[p + 1] = o
                continue
            if _is_weight(data, colon + 1, e):
                e = colon
        pending = False  # a non-word run after a word: one space if another word follows
        started = False
        for i in range(s, e):
            b = _lower(data[i])
            word = _is_digit(b) or 97 <= b <= 122
            if not word and b == 46 and s < i < e - 1:
                word = _is_digit(data[i - 1]) and _is_digit(data[i + 1])
            if word:
                if pending:
                    out[o] = 32
                    o += 1
                    pending = False
                out[o] = b
                o += 1
                started = True
            elif started:
                pending = True
        out_offsets[p + 1] = o
    return out[:o], out_offsets, adapter, slow


@_compiled
def document_labels(doc, code, ptr, labels, is_adapter, n_docs, n_labels):
    """Distinct labels of each document, sorted by document then label (compiled).

    ``doc``/``code`` are the phrase occurrences (documents in order); the labels of phrase
    ``c`` are ``labels[ptr[c]:ptr[c + 1]]``. Also returns which documents hold an adapter
    phrase. A stamp per label (the document it was last seen in) keeps each label once.
    """
    bound = 0
    for i in range(len(code)):
        bound += ptr[code[i] + 1] - ptr[code[i]]
    out_doc = np.empty(bound, dtype=np.int64)
    out_label = np.empty(bound, dtype=np.int64)
    has_adapter = np.zeros(n_docs, dtype=np.bool_)
    seen = np.full(n_labels, -1, dtype=np.int64)
    o = 0
    i = 0
    while i < len(doc):
        d = doc[i]
        first = o
        while i < len(doc) and doc[i] == d:
            c = code[i]
            if is_adapter[c]:
                has_adapter[d] = True
            for k in range(ptr[c], ptr[c + 1]):
                label = labels[k]
                if seen[label] != d:
                    seen[label] = d
                    out_label[o] = label
                    o += 1
            i += 1
        for a in range(first + 1, o):  # insertion sort: a document has few labels
            label = out_label[a]
            b = a - 1
            while b >= first and out_label[b] > label:
                out_label[b + 1] = out_label[b]
                b -= 1
            out_label[b + 1] = label
        out_doc[first:o] = d
    return out_doc[:o], out_label[:o], has_adapter


@_compiled
def copy_labels(text, valid, inner_doc, inner_term, n_texts):
    """Labels of each document copied from those of its distinct text (compiled).

    ``text[d]`` is the distinct text of document ``d`` (ignored where not ``valid``); the
    distinct texts' labels are ``inner_term`` by ``inner_doc`` (sorted). Returns the documents'
    ``(doc, term)`` pairs, sorted by document then label.
    """
    ptr = np.zeros(n_texts + 1, dtype=np.int64)
    for i in range(len(inner_doc)):
        ptr[inner_doc[i] + 1] += 1
    for t in range(n_texts):
        ptr[t + 1] += ptr[t]
    total = 0
    for d in range(len(text)):
        if valid[d]:
            total += ptr[text[d] + 1] - ptr[text[d]]
    doc = np.empty(total, dtype=np.int64)
    term = np.empty(total, dtype=np.int64)
    o = 0
    for d in range(len(text)):
        if valid[d]:
            for k in range(ptr[text[d]], ptr[text[d] + 1]):
                doc[o] = d
                term[o] = inner_term[k]
                o += 1
    return doc, term


def warm_up() -> None:
    """Compile (or load from the cache) every kernel once, on tiny inputs.

    ``make setup`` runs this, so the first notebook that codes prompts does not pay the few
    seconds of compilation.
    """
    import pyarrow as pa

    from .codebook import load_codebook
    from .matcher import Matcher

    for weighted in (True, False):
        Matcher(load_codebook(), weighted=weighted).match(
            pa.array(["a, <lora:x,y:1>, b:0, 1girl", None, "日本語 girl"], type=pa.string()))


if __name__ == "__main__":
    warm_up()
    print("coder kernels compiled and cached")
