"""Multi-pattern matching of the whole codebook (Aho-Corasick over distinct phrases).

Why not regular expressions: one regex per term costs one pass per term, and one big alternation
in Python's backtracking engine slows down with every term added. An Aho-Corasick automaton
(pyahocorasick, C) finds all ~800 term forms in a single pass whose cost does not grow with the
codebook. It runs over the *distinct* phrases of a batch (see ``normalise.split_phrases``), with a
cache across batches; numpy then maps phrase hits back to documents, so Python does no work per
document or per phrase occurrence.

Word boundaries: a canonical phrase is words of letters/digits separated by single spaces and
is scanned as `` phrase ``; each key is written as `` term ``. So ``man`` cannot match inside
``woman`` or ``manga``, and a multi-word term cannot span two comma-separated phrases.
Overlapping terms all count (``large breasts`` also counts ``breasts``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick
import numpy as np
import pyarrow as pa

from .codebook import Codebook, CodebookError, PatternRule
from .normalise import PhraseBatch, canonical_phrase, split_phrases


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
_CACHE_LIMIT = 2_000_000


class Matcher:
    """The compiled codebook: an automaton over all term forms plus pattern rules.

    Labels (one per term or pattern rule) are ordered by category, as in the codebook.
    """

    def __init__(self, codebook: Codebook) -> None:
        self.codebook = codebook
        self.categories = codebook.category_ids
        self.labels: list[tuple[str, str]] = []
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self.patterns: list[tuple[int, PatternRule, re.Pattern[str]]] = []
        starts = []
        for category in codebook.categories:
            starts.append(len(self.labels))
            for term in category.terms:
                index = len(self.labels)
                self.labels.append((term.category, term.term))
                for key in term.keys:
                    self.automaton.add_word(f" {key} ", index)
            for rule in category.patterns:
                try:
                    compiled = re.compile(rule.regex)
                except re.error as err:
                    raise CodebookError(f"category {category.id!r}, pattern {rule.name!r}: "
                                        f"invalid regular expression: {err}") from None
                self.patterns.append((len(self.labels), rule, compiled))
                self.labels.append((rule.category, rule.name))
        self.automaton.make_automaton()
        self.category_starts = np.array(starts, dtype=np.int64)
        self.label_category = np.repeat(np.arange(len(starts)),
                                        np.diff(np.append(self.category_starts, len(self.labels))))
        self.n_keys = len(self.automaton)
        self._cache: dict[str, tuple[int, ...] | int] = {}

    def phrase_terms(self, phrase: str) -> tuple[int, ...] | int:
        """Label indices found in one raw phrase (cached); ``-1`` for an adapter reference."""
        hit = self._cache.get(phrase)
        if hit is None:
            canon = canonical_phrase(phrase)
            if canon is None:
                hit = _ADAPTER
            elif not canon:
                hit = ()
            else:
                found = {v for _, v in self.automaton.iter(f" {canon} ")}
                for label, rule, compiled in self.patterns:
                    subject = phrase if rule.applies_to == "original case" else canon
                    if compiled.search(subject):
                        found.add(label)
                hit = tuple(sorted(found))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[phrase] = hit
        return hit

    def match_phrases(self, batch: PhraseBatch) -> BatchMatches:
        """Which labels each document of a batch (already split into phrases) uses."""
        n_dict = len(batch.dictionary)
        n_terms = np.zeros(n_dict, dtype=np.int64)
        is_adapter = np.zeros(n_dict, dtype=bool)
        flat: list[int] = []
        for i, phrase in enumerate(batch.dictionary):
            hit = self.phrase_terms(phrase)
            if hit == _ADAPTER:
                is_adapter[i] = True
            elif hit:
                n_terms[i] = len(hit)
                flat.extend(hit)
        ptr = np.concatenate([[0], np.cumsum(n_terms)])
        flat_terms = np.asarray(flat, dtype=np.int64)
        reps = n_terms[batch.code]
        keep = reps > 0
        occ_doc, occ_code, reps = batch.doc[keep], batch.code[keep], reps[keep]
        docs = np.repeat(occ_doc, reps)
        starts = np.repeat(ptr[occ_code] - (np.cumsum(reps) - reps), reps)
        terms = flat_terms[starts + np.arange(len(docs))] if len(docs) else flat_terms[:0]
        # distinct pairs through a bitmap: one pass, sorted output, no hashing or sorting
        n_labels = len(self.labels)
        seen = np.zeros(batch.n_docs * n_labels, dtype=bool)
        seen[docs * n_labels + terms] = True
        pairs = np.flatnonzero(seen)
        has_adapter = np.zeros(batch.n_docs, dtype=bool)
        has_adapter[batch.doc[is_adapter[batch.code]]] = True
        return BatchMatches(doc=pairs // n_labels, term=pairs % n_labels, n_docs=batch.n_docs,
                            nonempty=batch.nonempty, has_adapter=has_adapter,
                            n_bytes=batch.n_bytes)

    def match(self, values: pa.Array | pa.ChunkedArray) -> BatchMatches:
        """Normalise and match a batch of raw texts."""
        return self.match_phrases(split_phrases(values))

    def category_flags(self, matches: BatchMatches) -> np.ndarray:
        """Boolean matrix documents × categories: does the document use the category."""
        flags = np.zeros((matches.n_docs, len(self.categories)), dtype=bool)
        flags[matches.doc, self.label_category[matches.term]] = True
        return flags

    def code_text(self, text: str | None) -> list[tuple[str, str]]:
        """(category, term) labels found in one text; convenient in tests and notebooks."""
        matches = self.match(pa.array([text], type=pa.string()))
        return sorted(self.labels[i] for i in matches.term.tolist())
