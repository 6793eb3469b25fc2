"""Multi-pattern matching of the whole codebook (Aho-Corasick over distinct phrases).

Why not regular expressions: one regex per term costs one pass per term, and one big alternation
in Python's backtracking engine slows down with every term added. An Aho-Corasick automaton
(ahocorasick-rs, Rust, searching without the GIL) finds all ~800 term forms in a single pass
whose cost does not grow with the codebook. It runs over the *distinct* phrases of a batch
(see ``normalise.split_phrases``); a compiled loop (``kernels.document_labels``) then maps
phrase hits back to documents, so Python does no work per document or per phrase occurrence.

Nor per distinct phrase (real prompts have ~2 distinct phrases per prompt, so that work was
the bottleneck): the phrases are canonicalised by one compiled loop (``canonical_phrases``),
joined into one string and scanned once by the automaton; hit positions map back to phrases with
``searchsorted``. Pattern rules search only the phrases that hold a literal every match needs
(``required_literals``). Repeated texts are matched once (``Matcher.match``). Each step gives
exactly what the per-phrase reference, ``Matcher.phrase_terms``, gives.

Word boundaries: a canonical phrase is words of letters/digits separated by single spaces and
is scanned as `` phrase ``; each key is written as `` term ``. So ``man`` cannot match inside
``woman`` or ``manga``, and a multi-word term cannot span two comma-separated phrases.

Overlap policy (codebook v2): inside a phrase the longest match wins. A key whose occurrence
lies inside the occurrence of a longer key is not counted: ``virtual youtuber`` is a booru tag,
not the real-person marker ``youtuber``; ``chainsaw man`` is not the gender marker ``man``;
``1 girl`` is a count tag, not ``girl``. A term's ``not_in`` phrases (``light leak`` for
``leak``) are keys with no label: they only hide what they contain. Keys that overlap without
one containing the other (``long hair`` and ``hair ornament``) both count. Pattern rules are
outside the policy (they are matched on their own).

Tiers: a ``weak`` term is a signal that never defines a category alone (``photo of``,
``young``); :meth:`Matcher.category_flags` counts strong labels only, :meth:`Matcher.weak_flags`
the weak ones, reported separately.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the parser of ``re`` itself; used to vet pattern rules
from dataclasses import dataclass
from functools import cached_property
from itertools import chain

import ahocorasick_rs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import kernels
from .codebook import Codebook, CodebookError, PatternRule
from .normalise import (
    PhraseBatch,
    canonical_phrase,
    canonical_phrases,
    literal_phrases,
    split_phrases,
)


@dataclass(frozen=True)
class BatchMatches:
    """Distinct (document, label) hits of one batch, sorted by document then label."""

    doc: np.ndarray  # int64 positions in the batch
    term: np.ndarray  # int64 indices into Matcher.labels
    n_docs: int
    nonempty: np.ndarray  # bool per document: had any text to code
    has_adapter: np.ndarray  # bool per document: called a LoRA/LyCORIS/embedding
    n_bytes: int  # UTF-8 bytes of raw text coded


_ADAPTER = -1  # cache value marking an adapter phrase
_EXCEPTION = -1  # label of a ``not_in`` key: it hides the keys inside it and counts nothing
_CACHE_LIMIT = 2_000_000
_DEDUP_RATIO = 0.85  # above this share of distinct texts, deduplicating does not pay
_DEDUP_SAMPLE = 10_000  # texts looked at before deciding
#: Between two phrases of a joined string. No key contains ``\x00`` (checked), so no key can
#: match across it, and its spaces frame every phrase the way `` phrase `` is scanned alone.
JOIN_SEPARATOR = " \x00 "
_UNSAFE_AT = {sre_parse.AT_BEGINNING, sre_parse.AT_BEGINNING_LINE, sre_parse.AT_BEGINNING_STRING,
              sre_parse.AT_END, sre_parse.AT_END_LINE, sre_parse.AT_END_STRING}


@dataclass(frozen=True)
class JoinedPhrases:
    """Phrases joined into one string, `` p0 <NUL> p1 <NUL> ... `` (see ``JOIN_SEPARATOR``).

    ``data`` holds its UTF-8 bytes and ``byte_starts[i]`` where phrase ``i`` begins in them:
    the automaton scans bytes. ``text`` and ``starts``/``ends`` give the same string as Python
    ``str`` with character indices, for regular expressions; they are built on first use.
    """

    data: np.ndarray
    byte_starts: np.ndarray
    values: pa.Array  # the phrases

    def phrase_at_byte(self, positions: np.ndarray) -> np.ndarray:
        """Index of the phrase at or before each byte position (``-1`` before the first).

        A position inside phrase ``i``, or in the separator after it, maps to ``i``.
        """
        return np.searchsorted(self.byte_starts, positions, side="right") - 1

    @cached_property
    def text(self) -> str:
        return self.data.tobytes().decode()

    @cached_property
    def _char_lengths(self) -> np.ndarray:
        lengths = pc.utf8_length(self.values) if len(self.text) != len(self.data) \
            else pc.binary_length(self.values)  # ASCII: characters are bytes
        return lengths.to_numpy(zero_copy_only=False).astype(np.int64)

    @cached_property
    def starts(self) -> np.ndarray:
        return _frame_starts(self._char_lengths)

    @cached_property
    def ends(self) -> np.ndarray:
        return self.starts + self._char_lengths

    def phrase_at(self, positions: np.ndarray) -> np.ndarray:
        """Index of the phrase at or before each character position of ``text``."""
        return np.searchsorted(self.starts, positions, side="right") - 1


def _frame_starts(lengths: np.ndarray) -> np.ndarray:
    """Where each phrase begins in `` p0 <SEP> p1 ... `` given the phrases' lengths."""
    starts = np.empty(len(lengths), dtype=np.int64)
    if len(lengths):
        starts[0] = 1
        np.cumsum(lengths[:-1] + len(JOIN_SEPARATOR), out=starts[1:])
        starts[1:] += 1
    return starts


def join_phrases(values: pa.Array) -> JoinedPhrases:
    """Join a string array (no nulls) into one framed string with Arrow, not ``str.join``.

    Why: the automaton and the pattern rules then run once per batch over one string, so the
    per-phrase Python work (a call, an f-string, a set) disappears; hits are mapped back to
    phrases by their position (:meth:`JoinedPhrases.phrase_at_byte`).
    """
    if values.null_count:
        raise ValueError("join_phrases: the array must not contain nulls")
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    n = len(values)
    if n == 0:
        return JoinedPhrases(np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64), values)
    whole = pa.ListArray.from_arrays(pa.array([0, n], type=pa.int32()), values)
    inner = np.frombuffer(pc.binary_join(whole, JOIN_SEPARATOR)[0].as_buffer(), dtype=np.uint8)
    data = np.empty(len(inner) + 2, dtype=np.uint8)
    data[0] = data[-1] = 32
    data[1:-1] = inner
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    return JoinedPhrases(data, _frame_starts(lengths), values)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (numpy 2's hash-based ``unique`` is slower on these sizes)."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def joinable(pattern: re.Pattern[str]) -> bool:
    """Whether a pattern finds in a joined string every match it finds in a phrase alone.

    True unless it uses anchors (``^``, ``$``, ``\\A``, ``\\Z``) or lookarounds, the only
    constructs that look past a phrase's ends differently in the two. Word boundaries agree,
    because every phrase of a joined string has a space (not a word character) on either side.
    """
    def safe(node) -> bool:
        if isinstance(node, sre_parse.SubPattern):
            return all(safe(item) for item in node.data)
        if isinstance(node, (tuple, list)):
            if len(node) == 2 and node[0] in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
                return False
            if len(node) == 2 and node[0] is sre_parse.AT and node[1] in _UNSAFE_AT:
                return False
            return all(safe(item) for item in node)
        return True

    return safe(sre_parse.parse(pattern.pattern, pattern.flags))


_MAX_CLASS = 4  # a character class this small counts as a set of literal characters
_MAX_SET = 16  # most literals one required set may have


def _product(left: set[str], right: set[str]) -> set[str] | None:
    out = {a + b for a in left for b in right}
    return out if len(out) <= _MAX_SET * _MAX_SET else None


def _exact(node) -> set[str] | None:
    """All the strings a parsed node can match, if they are few and it has no flags."""
    op, av = node
    if op is sre_parse.LITERAL:
        return {chr(av)}
    if op is sre_parse.AT:
        return {""}  # zero width
    if op is sre_parse.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is sre_parse.LITERAL:
                chars.add(chr(value))
            elif kind is sre_parse.RANGE and value[1] - value[0] < _MAX_CLASS:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:  # NEGATE, CATEGORY, a wide range
                return None
        return chars if len(chars) <= _MAX_CLASS else None
    if op is sre_parse.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        return None if add_flags or del_flags else _exact_seq(sub)
    if op is sre_parse.BRANCH:
        out: set[str] = set()
        for alternative in av[1]:
            exact = _exact_seq(alternative)
            if exact is None:
                return None
            out |= exact
        return out
    if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
        low, high, sub = av
        body = _exact_seq(sub)
        if body is None or high > 2:
            return None
        out, power = set(), {""}
        for k in range(high + 1):
            if k >= low:
                out |= power
            power = _product(power, body) if k < high else power
            if power is None:
                return None
        return out
    return None


def _exact_seq(seq) -> set[str] | None:
    out: set[str] | None = {""}
    for node in seq:
        exact = _exact(node)
        if exact is None or out is None:
            return None
        out = _product(out, exact)
    return out


def _required_options(seq) -> list[set[str]]:
    """Sets of literals of which every match of ``seq`` contains at least one."""
    options: list[set[str]] = []
    items = list(seq)
    exact = [_exact(node) for node in items]
    for i in range(len(items)):  # contiguous runs of exact nodes match contiguous text
        current: set[str] | None = {""}
        for j in range(i, len(items)):
            if exact[j] is None:
                break
            current = _product(current, exact[j])
            if current is None or len(current) > _MAX_SET:
                break
            if "" not in current:
                options.append(current)
    for node, ex in zip(items, exact, strict=True):
        if ex is not None:
            continue
        op, av = node
        if op is sre_parse.SUBPATTERN and not av[1] and not av[2]:
            options.extend(_required_options(av[3]))
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT) and av[0] >= 1:
            options.extend(_required_options(av[2]))
        elif op is sre_parse.BRANCH:
            union: set[str] = set()
            for alternative in av[1]:
                best = _best(_required_options(alternative))
                if best is None:
                    union = set()
                    break
                union |= best
            if union and len(union) <= _MAX_SET:
                options.append(union)
    return options


def _best(options: list[set[str]]) -> set[str] | None:
    """The cheapest set to search for: literals of 4+ characters are rare enough, then fewest."""
    if not options:
        return None
    def score(option: set[str]) -> tuple[int, int, int]:
        shortest = min(len(x) for x in option)
        return (min(shortest, 4), -len(option), shortest)

    return max(options, key=score)


def required_literals(pattern: re.Pattern[str]) -> list[str] | None:
    """Literals of which every match of ``pattern`` contains one, or ``None`` if none is known.

    Why: Python's ``re`` scans text at ~60 MB/s when a pattern starts with ``\\b`` or a class;
    a substring search for a literal (Arrow's ``match_substring``) is ~50x faster. Phrases that
    contain none of the literals cannot match and are never searched; the others are searched
    one by one, so the result is exact.
    Derived from ``re``'s own parse tree, conservatively: case-insensitive patterns get none.
    """
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    if (pattern.flags | parsed.state.flags) & (re.IGNORECASE | re.LOCALE):
        return None
    best = _best(_required_options(parsed.data))
    if best is None:
        return None
    # a literal that contains another one is implied by it
    return sorted(x for x in best if not any(y != x and y in x for y in best))


def outermost(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which key occurrences are not inside a longer one (the longest-match policy).

    ``starts``/``ends`` are spans (end exclusive) of the occurrences; an occurrence is
    dropped when another one starts at or before it and ends at or after it (and is longer:
    two keys never have the same span, since one form belongs to one term). Vectorised: sort by
    start, longest first, and compare each end with the running maximum of earlier ends.
    """
    n = len(starts)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    order = np.lexsort((-ends, starts))
    sorted_ends = ends[order]
    running = np.maximum.accumulate(sorted_ends)
    inside = np.zeros(n, dtype=bool)
    inside[1:] = running[:-1] >= sorted_ends[1:]
    keep[order[inside]] = False
    return keep


def touched_phrases(pattern: re.Pattern[str], joined: JoinedPhrases) -> np.ndarray:
    """Phrases that some ``finditer`` match over the joined string overlaps (candidates).

    For a :func:`joinable` pattern, every phrase in which the pattern matches on its own is
    among them: a match inside the phrase is also a match of the joined string, and it can only
    be skipped by ``finditer`` if an earlier match overlaps the phrase.
    """
    spans = [m.span() for m in pattern.finditer(joined.text)]
    if not spans:
        return np.zeros(0, dtype=np.int64)
    span = np.asarray(spans, dtype=np.int64)
    first = np.maximum(joined.phrase_at(span[:, 0]), 0)
    last = np.maximum(joined.phrase_at(np.maximum(span[:, 1] - 1, span[:, 0])), first)
    last = np.minimum(last, len(joined.starts) - 1)
    lengths = last - first + 1
    index = np.repeat(first - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return np.unique(index)


class Matcher:
    """The compiled codebook: an automaton over all term forms plus pattern rules.

    Labels (one per term or pattern rule) are ordered by category, as in the codebook.
    """

    def __init__(self, codebook: Codebook, weighted: bool = True) -> None:
        self.codebook = codebook
        self.weighted = weighted  # attention weight <= 0 makes a phrase absent
        self.categories = codebook.category_ids
        self.labels: list[tuple[str, str]] = []
        self.label_weak: list[bool] = []
        forms: dict[str, int] = {}  # automaton pattern -> value; a later value replaces
        key_label: list[int] = []
        exceptions: list[str] = []
        self.patterns: list[tuple[int, PatternRule, re.Pattern[str]]] = []
        self._joinable: list[bool] = []
        self._literals: list[list[str] | None] = []
        starts = []
        for category in codebook.categories:
            starts.append(len(self.labels))
            for term in category.terms:
                index = len(self.labels)
                self.labels.append((term.category, term.term))
                self.label_weak.append(term.tier == "weak")
                exceptions.extend(term.not_in)
                for key in term.keys:
                    if "\x00" in key:
                        raise CodebookError(f"term {term.term!r}: a key contains NUL")
                    forms[f" {key} "] = len(key_label)
                    key_label.append(index)
            for rule in category.patterns:
                try:
                    compiled = re.compile(rule.regex)
                except re.error as err:
                    raise CodebookError(f"category {category.id!r}, pattern {rule.name!r}: "
                                        f"invalid regular expression: {err}") from None
                self.patterns.append((len(self.labels), rule, compiled))
                self._joinable.append(joinable(compiled))
                self._literals.append(required_literals(compiled))
                self.labels.append((rule.category, rule.name))
                self.label_weak.append(rule.tier == "weak")
        for key in exceptions:  # a not_in phrase that is itself a term already hides its parts
            if f" {key} " not in forms:
                forms[f" {key} "] = len(key_label)
                key_label.append(_EXCEPTION)
        self.key_label = np.array(key_label, dtype=np.int64)
        self._n_keys = len(key_label)
        # Literals of canonical-text pattern rules ride along in the automaton (values from
        # len(labels) on), so finding their candidate phrases costs no extra pass. A literal
        # that is already a key (or another rule's literal) is left to ``literal_phrases``.
        self._in_automaton = [False] * len(self.patterns)
        for k, ((_, rule, _), literals) in enumerate(zip(self.patterns, self._literals,
                                                                      strict=True)):
            if (rule.applies_to == "original case" or literals is None
                    or any(x in forms for x in literals)):
                continue
            for literal in literals:
                forms[literal] = self._n_keys + k
            self._in_automaton[k] = True
        # one pass over the bytes finds every form, overlapping ones included; the search
        # itself runs without the GIL, so threads can code two batches at once
        self.automaton = ahocorasick_rs.BytesAhoCorasick(
            [form.encode() for form in forms], implementation=ahocorasick_rs.Implementation.DFA)
        self.form_value = np.array(list(forms.values()), dtype=np.int64)
        self.category_starts = np.array(starts, dtype=np.int64)
        self.label_category = np.repeat(np.arange(len(starts)),
                                        np.diff(np.append(self.category_starts, len(self.labels))))
        self.n_keys = int((self.key_label >= 0).sum())
        self.label_is_weak = np.array(self.label_weak, dtype=bool)
        self._cache: dict[str, tuple[int, ...] | int] = {}

    def __reduce__(self):
        """Pickled as its codebook (the compiled automaton cannot be): rebuilt in ~3 ms."""
        return (Matcher, (self.codebook, self.weighted))

    def find(self, data: bytes | np.ndarray) -> np.ndarray:
        """Every occurrence of every automaton form in ``data`` (UTF-8 bytes), overlapping ones
        included: rows of (form index, start byte, end byte exclusive).

        The search runs without the GIL; turning its hits into an array holds it.
        """
        hits = self.automaton.find_matches_as_indexes(data, overlapping=True)
        return np.fromiter(chain.from_iterable(hits), dtype=np.int64,
                           count=3 * len(hits)).reshape(-1, 3)

    def phrase_terms(self, phrase: str) -> tuple[int, ...] | int:
        """Label indices found in one raw phrase (cached); ``-1`` for an adapter reference.

        The plain per-phrase definition of what :meth:`dictionary_terms` computes in bulk.
        """
        hit = self._cache.get(phrase)
        if hit is None:
            canon = canonical_phrase(phrase, self.weighted)
            if canon is None:
                hit = _ADAPTER
            elif not canon:
                hit = ()
            else:
                hits = self.find(f" {canon} ".encode())
                hits = hits[self.form_value[hits[:, 0]] < self._n_keys]  # keys, not literals
                keys = self.form_value[hits[:, 0]]
                keep = outermost(hits[:, 1], hits[:, 2])
                labels = self.key_label[keys[keep]]
                found = set(labels[labels >= 0].tolist())
                for label, rule, compiled in self.patterns:
                    subject = phrase if rule.applies_to == "original case" else canon
                    if compiled.search(subject):
                        found.add(label)
                hit = tuple(sorted(found))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[phrase] = hit
        return hit

    def dictionary_terms(self, phrases: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label hits of every distinct phrase at once: ``(phrase, label)`` pairs and adapters.

        Same result as :meth:`phrase_terms` on each phrase, but the phrases are canonicalised
        in bulk (:func:`canonical_phrases`), joined into one string
        (:func:`join_phrases`), and the automaton and each pattern rule scan that string once.
        Returns ``phrase`` and ``label`` (distinct pairs, sorted by phrase then label) and a
        boolean array marking adapter phrases.
        """
        n_labels = len(self.labels)
        canon = canonical_phrases(phrases, self.weighted)
        is_adapter = canon.is_null().to_numpy(zero_copy_only=False)
        lengths = pc.fill_null(pc.binary_length(canon), 0).to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(lengths > 0)  # empty phrases and adapters have no terms
        if len(keep) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, is_adapter
        take = pa.array(keep)
        kept = canon.take(take)
        joined = join_phrases(kept)
        found = self.find(joined.data)
        value = self.form_value[found[:, 0]]
        where = joined.phrase_at_byte(found[:, 2] - 1)  # a form's last byte is in its phrase
        is_key = value < self._n_keys
        key_id = value[is_key]
        keep_key = outermost(found[is_key, 1], found[is_key, 2])
        key_labels = self.key_label[key_id]
        keep_key &= key_labels >= 0
        keys = [where[is_key][keep_key] * n_labels + key_labels[keep_key]]
        literal_hits = {k: np.unique(where[value == self._n_keys + k])
                        for k in np.unique(value[~is_key] - self._n_keys).tolist()}
        subjects = {"canonical": kept}
        if any(rule.applies_to == "original case" for _, rule, _ in self.patterns):
            subjects["original case"] = phrases.take(take)
        raw_joined: JoinedPhrases | None = None
        for k, ((label, rule, compiled), literals, fast) in enumerate(
                zip(self.patterns, self._literals, self._joinable, strict=True)):
            kind = "original case" if rule.applies_to == "original case" else "canonical"
            subject = subjects[kind]
            if self._in_automaton[k]:  # phrases holding a required literal, found above
                candidates = literal_hits.get(k, np.zeros(0, dtype=np.int64))
            elif literals is not None:  # only phrases holding a required literal can match
                candidates = literal_phrases(subject, literals)
            elif fast:  # every phrase with a match is touched by a match over the join
                if kind == "canonical":
                    source = joined
                else:
                    if raw_joined is None:
                        raw_joined = join_phrases(subject)
                    source = raw_joined
                candidates = touched_phrases(compiled, source)
            else:
                candidates = np.arange(len(subject))
            texts = subject.take(pa.array(candidates, type=pa.int64())).to_pylist()
            hits = candidates[np.fromiter((compiled.search(t) is not None for t in texts),
                                          dtype=bool, count=len(texts))]
            keys.append(hits * n_labels + label)
        pairs = sorted_unique(np.concatenate(keys))
        return keep[pairs // n_labels], pairs % n_labels, is_adapter

    def match_phrases(self, batch: PhraseBatch) -> BatchMatches:
        """Which labels each document of a batch (already split into phrases) uses."""
        phrase, flat_terms, is_adapter = self.dictionary_terms(batch.phrases)
        ptr = np.zeros(len(batch.phrases) + 1, dtype=np.int64)
        np.cumsum(np.bincount(phrase, minlength=len(batch.phrases)), out=ptr[1:])
        doc, term, has_adapter = kernels.document_labels(
            batch.doc, batch.code, ptr, flat_terms, is_adapter, batch.n_docs, len(self.labels))
        return BatchMatches(doc=doc, term=term, n_docs=batch.n_docs, nonempty=batch.nonempty,
                            has_adapter=has_adapter, n_bytes=batch.n_bytes)

    def match(self, values: pa.Array | pa.ChunkedArray) -> BatchMatches:
        """Normalise and match a batch of raw texts.

        Why deduplicate first: a quarter of real prompts repeat exactly within a batch (the
        same prompt for several preview images), and hashing whole texts is far cheaper than
        splitting and hashing their phrases. Distinct texts are matched, and their
        ``(document, label)`` pairs copied to every document holding the same text; the result
        is the same as matching the batch as it is.
        """
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        elif not isinstance(values, pa.Array):  # a plain list or other iterable of str/None
            values = pa.array(list(values), type=pa.string())
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        n = len(values)
        if values.null_count == n:  # nothing to code (also the empty batch)
            empty = np.zeros(0, dtype=np.int64)
            none = np.zeros(n, dtype=bool)
            return BatchMatches(doc=empty, term=empty, n_docs=n, nonempty=none,
                                has_adapter=none.copy(), n_bytes=0)
        sample = values.slice(0, _DEDUP_SAMPLE)  # cheap guess first: do texts repeat at all?
        if len(sample.dictionary_encode().dictionary) > _DEDUP_RATIO * len(sample):
            return self.match_phrases(split_phrases(values))
        encoded = values.dictionary_encode()
        if len(encoded.dictionary) > _DEDUP_RATIO * n:
            return self.match_phrases(split_phrases(values))
        inner = self.match_phrases(split_phrases(encoded.dictionary))
        valid = values.is_valid().to_numpy(zero_copy_only=False)
        unique = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        doc, term = kernels.copy_labels(unique, valid, inner.doc, inner.term, inner.n_docs)
        byte_len = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
        return BatchMatches(doc=doc, term=term, n_docs=n,
                            nonempty=valid & (byte_len > 0),
                            has_adapter=valid & inner.has_adapter[unique],
                            n_bytes=int(byte_len.sum()))

    def category_flags(self, matches: BatchMatches, weak: bool = False) -> np.ndarray:
        """Boolean matrix documents × categories: does the document use the category.

        Strong labels only (a weak signal never defines a category); ``weak=True`` gives the
        matrix of weak labels instead, which is reported as its own tier.
        """
        flags = np.zeros((matches.n_docs, len(self.categories)), dtype=bool)
        take = self.label_is_weak[matches.term] == weak
        flags[matches.doc[take], self.label_category[matches.term[take]]] = True
        return flags

    def weak_flags(self, matches: BatchMatches) -> np.ndarray:
        """Documents × categories with a weak signal of the category (any strong ones or not)."""
        return self.category_flags(matches, weak=True)

    def code_text(self, text: str | None) -> list[tuple[str, str]]:
        """(category, term) labels found in one text, both tiers; handy in tests and notebooks."""
        matches = self.match([text])
        return sorted(self.labels[i] for i in matches.term.tolist())

    def categories_of(self, text: str | None) -> list[str]:
        """Categories one text carries by the strong tier (what the coder counts)."""
        matches = self.match([text])
        flags = self.category_flags(matches)[0] if matches.n_docs else []
        return [c for c, f in zip(self.categories, flags, strict=True) if f]
