"""Redaction audit: scan a run's outputs for what must never leave the raw data.

Used by the real-data audit test (``tests/test_redaction_audit.py``) and by ``make real`` before
results are kept. What is forbidden is derived from the raw crawl itself, independently of the
redaction policy that produced the outputs (:mod:`civitai_study.redact`):

- ``slur``: every codebook term or variant marked ``sensitive: slur``;
- ``name``: names of real people: tags carried mostly by the crawl's real-person (``poi``)
  models, and the person part of those models' names (before a version or type suffix);
- ``username``: every creator username of the crawl;
- ``prompt``: any prompt of at least ``min_prompt`` characters, copied verbatim.

Words too short or too common to identify anyone are not searched for: fewer than 4 characters,
numbers, codebook vocabulary, single words the compendium itself writes in its sources, and for
handles also tags that many creators use (a creator called "civitai" does not make the
platform's name a leak).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .calibration import iter_jsonl
from .coding.codebook import Codebook, load_codebook
from .redact import NAME_TAG_POI_SHARE, project_vocabulary

#: A tag used by this many distinct creators is ordinary vocabulary.
COMMON_TAG_CREATORS = 3
TEXT_SUFFIXES = (".csv", ".md", ".txt", ".html", ".json", ".yml", ".yaml")
_WORD = re.compile(r"[^\W_]+(?:['_.\-][^\W_]+)*")
_NAME_CUT = re.compile(r"\s(?:-|\||/|:|by)\s|[\(\[\{,|:]")
_NAME_NOISE = re.compile(
    r"\b(?:lora|locon|lycoris|loha|ti|embedding|textual inversion|hypernetwork|model|checkpoint|"
    r"v\d+(?:\.\d+)*|\d+(?:\.\d+)*|sd ?\d(?:\.\d)?|sdxl|realistic|photorealistic|nsfw|sfw)\b",
    re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-cased words (letters and digits, inner ' _ . - kept), the unit of every search."""
    return _WORD.findall(str(text).lower())


def phrase(text: str) -> str:
    return " ".join(words(text))


@dataclass
class Forbidden:
    """What may not appear in any output, by kind (phrases as :func:`phrase` normalises them)."""

    terms: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    prompt_heads: set[str] = field(default_factory=set)
    min_prompt: int = 40

    def counts(self) -> dict[str, int]:
        out = {kind: len(v) for kind, v in sorted(self.terms.items())}
        out["prompt"] = len(self.prompt_heads)
        return out


@dataclass(frozen=True)
class Hit:
    kind: str
    file: str
    where: str  # a cell or line number, never the matched text (the report must not leak it)


def _ordinary(codebook: Codebook) -> set[str]:
    vocabulary = {phrase(k) for t in codebook.terms if not t.sensitive
                  for k in (t.term, *t.variants, *t.keys)}
    return vocabulary | set(project_vocabulary())


def _identifying(p: str, ordinary: set[str]) -> bool:
    return len(p) >= 4 and not p.replace(" ", "").isdigit() and p not in ordinary


def person_name(model_name: str) -> str:
    """The person part of a real-person model's name: text before a separator, without type,
    version and style words ("Jane Doe - LoRA v2" -> "jane doe")."""
    head = _NAME_CUT.split(str(model_name), maxsplit=1)[0]
    return phrase(_NAME_NOISE.sub(" ", head))


def forbidden_from_crawl(models_jsonl: Path, codebook: Codebook | None = None,
                         min_prompt: int = 40) -> Forbidden:
    """Derive every forbidden string from the raw ``/api/v1/models`` crawl (a JSONL file)."""
    book = codebook or load_codebook()
    usernames: set[str] = set()
    tag_models: dict[str, list[bool]] = defaultdict(list)
    tag_creators: dict[str, set[str]] = defaultdict(set)
    poi_names: set[str] = set()
    heads: set[str] = set()
    for model in iter_jsonl(Path(models_jsonl)):
        user = str((model.get("creator") or {}).get("username") or "").strip()
        if user:
            usernames.add(phrase(user))
        poi = bool(model.get("poi"))
        for tag in {str(t).strip().lower() for t in model.get("tags") or []}:
            tag_models[tag].append(poi)
            tag_creators[tag].add(user.lower())
        if poi:
            name = person_name(model.get("name") or "")
            if len(name.split()) >= 2:
                poi_names.add(name)
        for version in model.get("modelVersions") or []:
            for image in version.get("images") or []:
                meta = image.get("meta")
                prompt = meta.get("prompt") if isinstance(meta, dict) else None
                if isinstance(prompt, str) and len(prompt.strip()) >= min_prompt:
                    heads.add(prompt.strip()[:min_prompt])
    ordinary = _ordinary(book)
    # A handle that is also a tag many creators use is a word, not an identifier (names of real
    # people are searched for however many creators use them).
    common = {phrase(t) for t, c in tag_creators.items() if len(c) >= COMMON_TAG_CREATORS}
    out = Forbidden(min_prompt=min_prompt, prompt_heads=heads)
    out.terms["slur"] = {phrase(k) for k in book.sensitive_terms(("slur",))} - {""}
    name_tags = {phrase(t) for t, flags in tag_models.items()
                 if len(flags) >= 2 and sum(flags) >= NAME_TAG_POI_SHARE * len(flags)}
    out.terms["name"] = {p for p in name_tags | poi_names if _identifying(p, ordinary)}
    out.terms["username"] = {p for p in usernames if _identifying(p, ordinary | common)}
    return out


def output_texts(folder: Path) -> Iterator[tuple[str, str, str]]:
    """(file, place, text) for every piece of text a run wrote under ``folder``: notebook outputs
    (text, HTML, error tracebacks; cell sources are the authors' own, reviewed text) and text
    files; images are skipped (their text is the tables they plot and the index's findings)."""
    folder = Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            for i, cell in enumerate(nb.get("cells", [])):
                for out in cell.get("outputs", []):
                    texts = [out.get("text", "")]
                    for mime, value in (out.get("data") or {}).items():
                        if mime.startswith("text/"):
                            texts.append(value)
                    texts.append("\n".join(out.get("traceback", [])))
                    for text in texts:
                        text = "".join(text) if isinstance(text, list) else str(text)
                        if text:
                            yield rel, f"cell {i} output", text
        elif path.suffix in TEXT_SUFFIXES:
            yield rel, "file", path.read_text(encoding="utf-8", errors="replace")


def _ngrams(tokens: list[str], longest: int) -> set[str]:
    out = set()
    for n in range(1, longest + 1):
        out.update(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


def scan_texts(texts: Iterable[tuple[str, str, str]], forbidden: Forbidden) -> list[Hit]:
    """Every place where a forbidden term (as whole words) or a verbatim prompt appears."""
    longest = max((len(p.split()) for v in forbidden.terms.values() for p in v), default=1)
    hits: list[Hit] = []
    k = forbidden.min_prompt
    for file, where, text in texts:
        grams = _ngrams(words(text), longest)
        for kind, phrases in sorted(forbidden.terms.items()):
            if grams & phrases:
                hits.append(Hit(kind, file, where))
        if forbidden.prompt_heads and len(text) >= k:
            heads = forbidden.prompt_heads
            if any(text[i:i + k] in heads for i in range(len(text) - k + 1)):
                hits.append(Hit("prompt", file, where))
    return hits


def scan_folder(folder: Path, forbidden: Forbidden) -> list[Hit]:
    return scan_texts(output_texts(folder), forbidden)


def matched(texts: Iterable[tuple[str, str, str]], forbidden: Forbidden, kind: str) -> set[str]:
    """The forbidden terms of ``kind`` found (for a researcher's private debugging only)."""
    longest = max((len(p.split()) for p in forbidden.terms[kind]), default=1)
    found: set[str] = set()
    for _, _, text in texts:
        found |= _ngrams(words(text), longest) & forbidden.terms[kind]
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m civitai_study.audit --crawl CRAWL FOLDER...``: hits per kind; exit 1 on any.

    Hits are reported by file and cell, never with the matched text.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m civitai_study.audit",
                                     description=main.__doc__)
    parser.add_argument("--crawl", type=Path, required=True,
                        help="the raw /api/v1/models crawl (JSONL, gzip or not)")
    parser.add_argument("folders", type=Path, nargs="+", help="output folders to scan")
    args = parser.parse_args(argv)
    if not args.crawl.is_file():  # fail closed: an audit that checked nothing must not pass
        print(f"error: crawl {args.crawl} not found; the audit derives what to search for from "
              "the raw crawl: give --crawl PATH (e.g. the file `civitai-study acquire real-2023` "
              "downloaded)", file=sys.stderr)
        return 2
    forbidden = forbidden_from_crawl(args.crawl)
    counts = ", ".join(f"{k} {v:,}" for k, v in forbidden.counts().items())
    hits = [h for folder in args.folders for h in scan_folder(folder, forbidden)]
    print(f"audit: searched for {counts}; {len(hits)} hit(s)")
    for hit in hits:
        print(f"  {hit.kind}: {hit.file} ({hit.where})")
    return 1 if hits else 0


if __name__ == "__main__":
    raise SystemExit(main())
