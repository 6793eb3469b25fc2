"""Redaction of real people's names and slurs in displayed outputs (on by default).

This module owns redaction: :class:`RedactionPolicy` (built per snapshot by
:func:`build_policy`) is the single source of masked terms, used by every printed table, every
table written to a tracked folder, figure labels, word clouds, the report and the teaching
edition. Researchers may turn display redaction off with the notebooks' ``redact`` parameter;
computations always use the real terms. (Secrets in collector logs are another matter:
:mod:`civitai_study.collect.scrub_secrets`.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .pseudonymise import PSEUDONYM_PATTERN, sql_is_pseudonym, sql_pseudonym_number

if TYPE_CHECKING:
    import duckdb

    from .coding.codebook import Codebook
    from .snapshot import Snapshot

MASK = "[redacted]"

_HEX_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


class PseudonymSet:
    """The snapshot's creator pseudonyms, held as one sorted ``uint64`` per 16-hex-digit
    pseudonym (:data:`civitai_study.pseudonymise.HASH_HEX_CHARS`).

    Why: a Python set of millions of short strings costs over 100 bytes each (300–400 MB at
    2.5 million creators); eight bytes each keeps the policy's memory flat with scale.
    Membership is exact (the pseudonym *is* the 64-bit number); anything that is not 16 lower-case
    hex digits (an importer's own format) is kept as a string.
    """

    def __init__(self, codes: Iterable[int] = (), other: Iterable[str] = ()):
        array = codes if isinstance(codes, np.ndarray) else np.fromiter(codes, dtype=np.uint64)
        self._codes = np.unique(array.astype(np.uint64, copy=False))  # sorted, for searchsorted
        self._other = frozenset(other)

    @classmethod
    def of(cls, pseudonyms: Iterable[str]) -> PseudonymSet:
        """From pseudonyms as strings (tests, small snapshots)."""
        values = [str(p) for p in pseudonyms if p is not None]
        return cls([int(v, 16) for v in values if _HEX_PSEUDONYM.fullmatch(v)],
                   [v for v in values if not _HEX_PSEUDONYM.fullmatch(v)])

    @classmethod
    def from_query(cls, con: duckdb.DuckDBPyConnection, sql: str) -> PseudonymSet:
        """From a query's one column of pseudonyms: DuckDB finds the distinct values and turns
        each 16-hex-digit one into its number, so no Python string per creator is ever made."""
        hexed = sql_is_pseudonym("p")
        found = con.execute(f"""
            WITH d AS (SELECT DISTINCT p FROM ({sql}) AS q(p) WHERE p IS NOT NULL)
            SELECT CASE WHEN {hexed} THEN {sql_pseudonym_number("p")} END AS code,
                   CASE WHEN NOT {hexed} THEN p END AS other FROM d""").fetchnumpy()
        code, other = found["code"], found["other"]
        return cls(np.ma.getdata(code)[~np.ma.getmaskarray(code)],
                   [str(p) for p in np.ma.getdata(other)[~np.ma.getmaskarray(other)]])

    def __contains__(self, pseudonym: object) -> bool:
        if not isinstance(pseudonym, str):
            return False
        if _HEX_PSEUDONYM.fullmatch(pseudonym):
            code = np.uint64(int(pseudonym, 16))
            at = int(np.searchsorted(self._codes, code))
            return at < len(self._codes) and self._codes[at] == code
        return pseudonym in self._other

    def __len__(self) -> int:
        return int(len(self._codes)) + len(self._other)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PseudonymSet) and self._other == other._other
                and np.array_equal(self._codes, other._codes))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container: like set

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"PseudonymSet({len(self):,} pseudonyms)"


def redact_terms(terms: Iterable[str], sensitive: set[str], enabled: bool = True) -> list[str]:
    """Replace each term found in ``sensitive`` (case-insensitive) by a numbered mask."""
    terms = list(terms)
    if not enabled:
        return terms
    lowered = {s.lower() for s in sensitive}
    numbering: dict[str, int] = {}
    out = []
    for term in terms:
        key = str(term).lower()
        if key in lowered:
            numbering.setdefault(key, len(numbering) + 1)
            out.append(f"{MASK} #{numbering[key]}")
        else:
            out.append(term)
    return out


def redact_column(frame: pd.DataFrame, column: str, sensitive: set[str], enabled: bool = True
                  ) -> pd.DataFrame:
    """Copy of ``frame`` with ``column`` redacted."""
    out = frame.copy()
    out[column] = redact_terms(out[column].astype(str), sensitive, enabled)
    return out


def sensitive_terms(codebook: Codebook | None = None, poi_candidates: pd.DataFrame | None = None,
                    poi_z: float = 2.0) -> set[str]:
    """The default set of terms to redact in displays.

    - every codebook term or variant marked ``sensitive: name`` or ``sensitive: slur``
      (slurs from the misogyny category; names, should any be added);
    - tags over-represented among real-person (``poi``) models (``z > poi_z`` in the
      inductive candidate list) that are not ordinary codebook vocabulary: on real data these
      are overwhelmingly names of real people, and a list of who was deepfaked is itself harmful.
    """
    out: set[str] = set()
    if codebook is not None:
        out |= codebook.sensitive_terms()
    if poi_candidates is not None and len(poi_candidates):
        known = set()
        if codebook is not None:
            known = {k for t in codebook.terms if not t.sensitive for k in t.keys}
        mask = poi_candidates["z"] > poi_z
        out |= {str(t) for t in poi_candidates.loc[mask, "term"] if str(t) not in known}
    return out


def redact_text(text: str, sensitive: set[str], enabled: bool = True) -> str:
    """Mask whole-word occurrences of sensitive terms inside a longer text (e.g. a prompt)."""
    if not enabled or not text or not sensitive:
        return text
    words = sorted((re.escape(s) for s in sensitive if s), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(words) + r")(?![\w])", re.IGNORECASE)
    return pattern.sub(MASK, text)


# ---- the one redaction policy -------------------------------------------------------------------

#: Codebook categories whose vocabulary is explicit: masked too in the teaching edition's safe mode.
EXPLICIT_CATEGORIES = ("body", "sexual_acts", "misogyny", "age")
#: A tag used by this many distinct creators is ordinary vocabulary, even if it equals a handle.
ORDINARY_TAG_CREATORS = 3
#: Tags carried this much by real-person models are treated as names (the audit uses the same).
NAME_TAG_POI_SHARE = 2 / 3
#: Never masked as explicit vocabulary: the names of the levels and of the concept studied.
KEEP_VISIBLE = frozenset({"pg", "pg-13", "r", "x", "xxx", "nsfw", "sfw", "unrated"})
_TOKEN = re.compile(r"[^\W_][\w.\-]*", re.UNICODE)


def _is_ordinary_token(token: str) -> bool:
    """Too short or numeric to identify anyone (a handle like '8' or 'was' is not masked)."""
    return len(token) < 4 or token.replace(".", "").replace("-", "").isdigit()


@dataclass
class RedactionPolicy:
    """What every exit (printed table, written CSV, figure label, word cloud) masks.

    One source of masked terms, derived at run time and never typed in by hand:
    - ``terms``: codebook terms marked ``sensitive`` (slurs, names), tags that name real people
      in this snapshot (:func:`civitai_study.describe.sensitive_tags` and the real-person
      candidates of :func:`civitai_study.coding.discovery.poi_candidates`), and, in safe mode,
      the explicit vocabulary (codebook categories in :data:`EXPLICIT_CATEGORIES` and tags
      over-represented among NSFW models);
    - creators' handles: usernames are stored only as keyed hashes, so a word of an output is a
      handle when its hash is one of the snapshot's creator hashes (checked with the same key),
      unless it is ordinary vocabulary (``ordinary``: codebook terms, tags many creators use,
      words the compendium itself writes, tokens shorter than 4 characters or numeric).

    ``enabled`` governs what notebooks *show* (researchers may turn it off); files written to
    tracked folders are always redacted (``NotebookContext.write_table``).
    """

    terms: frozenset[str] = frozenset()
    explicit: frozenset[str] = frozenset()
    creator_hashes: PseudonymSet = field(default_factory=PseudonymSet)
    hasher: Callable[[str], str | None] | None = None
    ordinary: frozenset[str] = frozenset()
    enabled: bool = True
    safe_mode: bool = False
    _handle_cache: dict[str, bool] = field(default_factory=dict, repr=False)
    _pattern: list = field(default_factory=list, repr=False)

    def on(self) -> RedactionPolicy:
        """The same policy, enabled (what written files always get)."""
        return replace(self, enabled=True, _handle_cache=self._handle_cache,
                       _pattern=self._pattern)

    @property
    def masked(self) -> set[str]:
        """Every whole term masked (for figure functions that take a ``sensitive`` set)."""
        return set(self.terms | self.explicit)

    def is_handle(self, token: str) -> bool:
        """Whether ``token`` is a creator's handle in this snapshot (not ordinary vocabulary)."""
        key = token.strip().lower()
        cached = self._handle_cache.get(key)
        if cached is None:
            cached = bool(self.hasher and self.creator_hashes and not _is_ordinary_token(key)
                          and key not in self.ordinary and self.hasher(key) in self.creator_hashes)
            self._handle_cache[key] = cached
        return cached

    def masks(self, value: object) -> bool:
        """Whether a whole value (a tag, a term, a label) must be masked."""
        text = str(value).strip().lower()
        return text in self.terms or text in self.explicit or self.is_handle(text)

    def labels(self, values: Iterable[object]) -> list:
        """``values`` with each sensitive one replaced by a numbered mask (same value, same
        number); unchanged when the policy is off."""
        values = list(values)
        if not self.enabled:
            return values
        numbering: dict[str, int] = {}
        out: list = []
        for value in values:
            if isinstance(value, str) and self.masks(value):
                key = value.strip().lower()
                numbering.setdefault(key, len(numbering) + 1)
                out.append(f"{MASK} #{numbering[key]}")
            elif isinstance(value, str):
                out.append(self.text(value))  # terms and handles inside a longer text
            else:
                out.append(value)
        return out

    def text(self, text: str) -> str:
        """``text`` with sensitive terms (in safe mode also explicit ones) and handles masked as
        whole words."""
        if not self.enabled or not isinstance(text, str) or not text:
            return text
        out = text
        masked = self.terms | self.explicit  # explicit is empty unless in safe mode
        if masked:
            if not self._pattern:
                words = sorted((re.escape(t) for t in masked), key=len, reverse=True)
                self._pattern.append(re.compile(r"(?<![\w])(?:" + "|".join(words) + r")(?![\w])",
                                                re.IGNORECASE))
            out = self._pattern[0].sub(MASK, out)
        if self.creator_hashes:
            out = _TOKEN.sub(lambda m: MASK if self.is_handle(m.group(0)) else m.group(0), out)
        return out

    def frame(self, frame: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """Copy of ``frame`` with every text column (or ``columns``) redacted."""
        if not self.enabled or frame is None or not len(frame):
            return frame
        out = frame.copy()
        names = list(columns) if columns is not None else [
            c for c in out.columns
            if out[c].dtype == object or pd.api.types.is_string_dtype(out[c])]
        for column in names:
            out[column] = self.labels(out[column].tolist())
        return out

    def summary(self) -> str:
        """One line for the notebooks: how many terms, whether handles are checked."""
        handles = ("creators' handles checked against "
                   f"{len(self.creator_hashes):,} pseudonyms" if self.hasher and
                   self.creator_hashes else "creators' handles not checkable (no key)")
        state = "on" if self.enabled else "OFF for display (written files stay redacted)"
        mode = (f"; safe mode: {len(self.explicit):,} explicit terms masked too"
                if self.safe_mode else "")
        return f"redaction {state}: {len(self.terms):,} masked terms; {handles}{mode}"


def project_vocabulary() -> frozenset[str]:
    """Single words the compendium itself writes (notebook sources, package code, hand-written
    data files, the report's templates): a creator whose handle is one of them ('civitai',
    'unknown') is not identified by the word, so such words are never masked as handles."""
    from .paths import DATA_DIR, NOTEBOOKS_DIR, ROOT

    if _VOCABULARY:
        return _VOCABULARY[0]
    sources = [*NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"), *(ROOT / "src").rglob("*.py"),
               *DATA_DIR.glob("*.csv"), *DATA_DIR.glob("*.yaml"),
               *(ROOT / "report").glob("*.yml"), *(ROOT / "report").glob("*.md")]
    found: set[str] = set()
    for path in sources:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":  # sources only: outputs are what the audit checks
            import json
            text = "\n".join("".join(c.get("source", ""))
                             for c in json.loads(text).get("cells", []))
        found.update(w.lower() for w in re.findall(r"[^\W\d_]{4,}", text))
    _VOCABULARY.append(frozenset(found))
    return _VOCABULARY[0]


_VOCABULARY: list[frozenset[str]] = []


def _snapshot_hasher(snapshot: Snapshot) -> Callable[[str], str | None] | None:
    """The pseudonymiser the snapshot was made with, if this machine has its key (never created
    here: a missing key only means handles cannot be recognised)."""
    from .pseudonymise import KEY_ENV, SYNTHETIC_KEY, Pseudonymiser, default_key_file

    if snapshot.is_synthetic:
        return Pseudonymiser(SYNTHETIC_KEY)
    if os.environ.get(KEY_ENV):
        return Pseudonymiser(os.environ[KEY_ENV].encode("utf-8"))
    path = default_key_file()
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return Pseudonymiser(path.read_text(encoding="utf-8").strip().encode("utf-8"))
    return None


def build_policy(snapshot: Snapshot, codebook: Codebook | None = None, enabled: bool = True,
                 safe_mode: bool = False, poi_z: float = 2.0) -> RedactionPolicy:
    """The redaction policy of one snapshot (see :class:`RedactionPolicy`)."""
    from . import describe
    from .coding.codebook import load_codebook
    from .coding.discovery import poi_candidates

    book = codebook or load_codebook()
    con = snapshot.connect()
    try:
        names = describe.sensitive_tags(con, poi_share=NAME_TAG_POI_SHARE)
        hashes = PseudonymSet.from_query(
            con, "SELECT creator_hash FROM models UNION ALL SELECT username_hash FROM images")
        common = {str(t) for (t,) in con.execute(
            "SELECT lower(trim(t.tag)) FROM model_tags t JOIN models m ON m.id = t.model_id "
            f"GROUP BY ALL HAVING count(DISTINCT m.creator_hash) >= {ORDINARY_TAG_CREATORS}"
        ).fetchall()}
        explicit: set[str] = set()
        if safe_mode:
            explicit = {k for c in book.categories if c.id in EXPLICIT_CATEGORIES
                        for t in c.terms for k in (t.term, *t.variants, *t.keys)}
            odds = describe.tag_log_odds(con, "nsfw", n=200)
            explicit |= {str(t) for t in odds.loc[odds["z"] > poi_z, "tag"]} if len(odds) else set()
    finally:
        con.close()
    try:
        candidates = poi_candidates(snapshot, book, top=200)
    except ValueError:  # one group empty (no real-person models): no candidate names
        candidates = None
    # Names found in the data, less the study's own vocabulary ('model', 'actress': words the
    # compendium writes); the codebook's slurs and names are masked whatever they are.
    found = {t.lower() for t in sensitive_terms(None, candidates, poi_z) | names if t}
    vocabulary = {k for t in book.terms if not t.sensitive for k in (t.term, *t.keys)}
    terms = ({t.lower() for t in book.sensitive_terms()}
             | (found - vocabulary - project_vocabulary()))
    # Labels of the study's own concepts stay readable in safe mode (levels, categories).
    explicit = {t.lower() for t in explicit if t} - terms - KEEP_VISIBLE - set(book.category_ids)
    ordinary = (vocabulary | set(describe.REAL_PERSON_TAGS) | set(describe.FEMALE_TAGS)
                | set(describe.MALE_TAGS) | common | project_vocabulary()) - terms - explicit
    hasher = _snapshot_hasher(snapshot)
    return RedactionPolicy(terms=frozenset(terms), explicit=frozenset(explicit),
                           creator_hashes=hashes if hasher else PseudonymSet(),
                           hasher=hasher, ordinary=frozenset(ordinary), enabled=enabled,
                           safe_mode=safe_mode)
