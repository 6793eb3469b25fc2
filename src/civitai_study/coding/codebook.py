"""Load and validate the codebook (``data/codebook/codebook.yaml``).

The codebook is the citable instrument of the qualitative coding: every count the coder reports
goes back to one term of one category here, with the rule (definition, inclusion, exclusion) and
the reason it belongs. Validation is strict because a silently broken codebook (a duplicate
term counted twice, a term that matches inside other words, an empty category) changes results
without anyone noticing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..paths import CODEBOOK_DIR, display_path
from .normalise import SEPARATOR_BYTES, match_form

DEFAULT_CODEBOOK = CODEBOOK_DIR / "codebook.yaml"
SENSITIVE_KINDS = ("name", "slur")
TIERS = ("strong", "weak")
#: A normalised term: one or more words of letters/digits separated by single spaces.
_TERM_FORM = re.compile(r"^[^\W_]+(?: [^\W_]+)*$")
_ID_FORM = re.compile(r"^[a-z][a-z0-9_]*$")


class CodebookError(ValueError):
    """The codebook is malformed; the message names the category/term and the fix."""


@dataclass(frozen=True)
class Term:
    """One coded term; ``keys`` are the normalised forms (term and variants) the matcher uses."""

    term: str
    category: str
    variants: tuple[str, ...]
    example: str
    why: str
    source: str | None
    sensitive: str | None
    keys: tuple[str, ...]
    #: "weak": a signal that never defines the category alone; reported as its own tier
    tier: str = "strong"
    #: longer phrases in which the term means something else ("light leak" for "leak"); by the
    #: longest-match policy they hide the term inside them
    not_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatternRule:
    """A regular-expression rule for markers a fixed term list cannot express (``photo of <Name>``).

    ``applies_to`` is ``"normalised text"`` (lower case, syntax removed) or ``"original case"``
    (syntax removed, case kept: names are capitalised).
    """

    name: str
    category: str
    regex: str
    applies_to: str
    why: str
    example: str
    tier: str = "strong"


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    definition: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    terms: tuple[Term, ...]
    patterns: tuple[PatternRule, ...] = ()


@dataclass(frozen=True)
class Codebook:
    name: str
    version: str
    categories: tuple[Category, ...]
    path: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def category_ids(self) -> list[str]:
        return [c.id for c in self.categories]

    @property
    def terms(self) -> list[Term]:
        return [t for c in self.categories for t in c.terms]

    @property
    def patterns(self) -> list[PatternRule]:
        return [p for c in self.categories for p in c.patterns]

    def sensitive_terms(self, kinds: tuple[str, ...] = SENSITIVE_KINDS) -> set[str]:
        """Terms and variants marked sensitive (names of real people, slurs), for redaction."""
        out: set[str] = set()
        for t in self.terms:
            if t.sensitive in kinds:
                out.add(t.term)
                out.update(t.variants)
                out.update(t.keys)
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per category: id, label, number of terms, variants, patterns."""
        return [{"category": c.id, "label": c.label, "n_terms": len(c.terms),
                 "n_weak": sum(t.tier == "weak" for t in c.terms),
                 "n_variants": sum(len(t.variants) for t in c.terms),
                 "n_patterns": len(c.patterns),
                 "n_with_source": sum(t.source is not None for t in c.terms)}
                for c in self.categories]


def _require(mapping: dict[str, Any], key: str, where: str, kind: type = str) -> Any:
    value = mapping.get(key)
    if value is None or (kind is str and not str(value).strip()):
        raise CodebookError(f"{where}: field {key!r} is missing or empty; add it to the codebook")
    if not isinstance(value, kind):
        raise CodebookError(f"{where}: field {key!r} must be a {kind.__name__}, "
                            f"got {type(value).__name__}")
    return value


def _key(text: str, where: str) -> str:
    """The normalised matching key of a term or variant, or an error explaining why not."""
    if any(chr(b) in text for b in SEPARATOR_BYTES) or "BREAK" in text:
        raise CodebookError(
            f"{where}: {text!r} contains a phrase separator or prompt syntax (, | ; brackets, "
            "BREAK); the coder matches within one phrase, so such a term could never match"
        )
    key = match_form(text)
    if not key or not _TERM_FORM.match(key):
        raise CodebookError(
            f"{where}: {text!r} normalises to {key!r}, which is not a run of whole words; "
            "a term must not contain commas, brackets or prompt syntax"
        )
    if len(key) < 2 or key.isdigit():
        raise CodebookError(
            f"{where}: {text!r} is too short or purely numeric and would match inside unrelated "
            "text (weights, counts); use a longer, more specific term"
        )
    return key


def _parse_term(raw: Any, category: str, index: int) -> Term:
    where = f"category {category!r}, term #{index + 1}"
    if not isinstance(raw, dict):
        raise CodebookError(f"{where}: expected a mapping with term, variants, example, why")
    term = str(_require(raw, "term", where)).strip()
    where = f"category {category!r}, term {term!r}"
    if "*" in term or any("*" in str(v) for v in raw.get("variants") or []):
        raise CodebookError(f"{where}: wildcards are not supported; list each form, or add a "
                            "pattern rule to the category")
    variants = tuple(str(v).strip() for v in (raw.get("variants") or []))
    sensitive = raw.get("sensitive")
    if sensitive is not None and sensitive not in SENSITIVE_KINDS:
        raise CodebookError(f"{where}: sensitive must be one of {SENSITIVE_KINDS}, "
                            f"got {sensitive!r}")
    keys: list[str] = []
    for text in (term, *variants):
        key = _key(text, where)
        if key not in keys:  # a variant that only differs by '_', '-' or case documents usage
            keys.append(key)
    tier = str(raw.get("tier", "strong"))
    if tier not in TIERS:
        raise CodebookError(f"{where}: tier must be one of {TIERS}, got {tier!r}")
    not_in: list[str] = []
    for text in raw.get("not_in") or []:
        key = _key(str(text), where + " (not_in)")
        if not any(f" {k} " in f" {key} " and k != key for k in keys):
            raise CodebookError(f"{where}: not_in {text!r} does not contain the term or a "
                                "variant as whole words; an exception must be a longer phrase "
                                "around the term")
        not_in.append(key)
    return Term(term=term, category=category, variants=variants,
                example=str(_require(raw, "example", where)), why=str(_require(raw, "why", where)),
                source=(str(raw["source"]) if raw.get("source") else None), sensitive=sensitive,
                keys=tuple(keys), tier=tier, not_in=tuple(not_in))


def _parse_pattern(raw: Any, category: str) -> PatternRule:
    where = f"category {category!r}, pattern"
    if not isinstance(raw, dict):
        raise CodebookError(f"{where}: expected a mapping with name, regex, applies_to, why")
    name = str(_require(raw, "name", where))
    applies = str(raw.get("applies_to", "normalised text"))
    if applies not in ("normalised text", "original case"):
        raise CodebookError(f"{where} {name!r}: applies_to must be 'normalised text' or "
                            "'original case'")
    tier = str(raw.get("tier", "strong"))
    if tier not in TIERS:
        raise CodebookError(f"{where} {name!r}: tier must be one of {TIERS}, got {tier!r}")
    return PatternRule(name=name, category=category, regex=str(_require(raw, "regex", where)),
                       applies_to=applies, why=str(_require(raw, "why", where)),
                       example=str(raw.get("example", "")), tier=tier)


def parse_codebook(data: Any, path: str = "<memory>") -> Codebook:
    """Validate a codebook already read from YAML; see :func:`load_codebook`."""
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise CodebookError(f"{path}: expected a mapping with a 'categories' list")
    name = str(data.get("codebook", "codebook"))
    version = str(_require(data, "version", path))
    categories: list[Category] = []
    owner: dict[str, str] = {}  # key → "category/term" that claimed it
    for raw in data["categories"]:
        if not isinstance(raw, dict):
            raise CodebookError(f"{path}: each category must be a mapping")
        cid = str(_require(raw, "id", f"{path}: category"))
        if not _ID_FORM.match(cid):
            raise CodebookError(f"category id {cid!r}: use lower-case letters, digits and '_'")
        if cid in {c.id for c in categories}:
            raise CodebookError(f"category {cid!r} is defined twice; merge the two entries")
        where = f"category {cid!r}"
        terms_raw = raw.get("terms") or []
        patterns_raw = raw.get("patterns") or []
        if not terms_raw and not patterns_raw:
            raise CodebookError(f"{where} is empty: give it terms (or remove the category)")
        include = tuple(_require(raw, "include", where, list))
        exclude = tuple(_require(raw, "exclude", where, list))
        terms = tuple(_parse_term(t, cid, i) for i, t in enumerate(terms_raw))
        for term in terms:
            for key in term.keys:
                if key in owner:
                    raise CodebookError(
                        f"duplicate: {key!r} (from {cid}/{term.term}) is already coded as "
                        f"{owner[key]}; a form may belong to one term of one category only"
                    )
                owner[key] = f"{cid}/{term.term}"
        patterns = tuple(_parse_pattern(p, cid) for p in patterns_raw)
        categories.append(Category(
            id=cid, label=str(_require(raw, "label", where)),
            definition=str(_require(raw, "definition", where)),
            include=tuple(map(str, include)), exclude=tuple(map(str, exclude)),
            terms=terms, patterns=patterns))
    if not categories:
        raise CodebookError(f"{path}: no categories")
    meta = {k: v for k, v in data.items() if k not in ("categories",)}
    return Codebook(name=name, version=version, categories=tuple(categories), path=path, meta=meta)


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read and validate the codebook YAML (default ``data/codebook/codebook.yaml``).

    Rejects duplicate forms (across all categories), empty categories, missing definitions or
    rules, terms without example or reason, and terms that would match inside other words.
    """
    path = Path(path) if path else DEFAULT_CODEBOOK
    if not path.is_file():
        raise FileNotFoundError(f"codebook {display_path(path)} does not exist; restore "
                                "data/codebook/ from git or pass --codebook")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise CodebookError(f"{display_path(path)} is not valid YAML: {err}") from None
    return parse_codebook(data, display_path(path))
