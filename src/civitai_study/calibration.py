"""Calibration targets for the synthetic sample, and how they were derived from real data.

The targets live as CSV files in ``data/calibration/`` (each row names its source). Two kinds:
- aggregates measured on the real 2023 ``/api/v1/models`` crawl (``../shared/civitai-samples``),
  re-derivable with ``civitai-study calibrate --crawl PATH`` (this module);
- numbers copied from published sources (Civiverse-6M card), typed into ``civiverse_monthly.csv``.
Only aggregates are stored; no record of the crawl enters the project. Phrases and tags that
identify someone (creators' handles, artists named in "by ..." phrases, model and trigger-word
names, tags carried mostly by real-person models) are found in the crawl at run time and left
out: no list of handles or names is kept in the code.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .coding.normalise import prompt_phrases
from .nsfw import LEGACY_STRING_LEVELS
from .paths import CALIBRATION_DIR

CRAWL_SOURCE = "real CivitAI /api/v1/models crawl of 2023-07-04, dfanr/CivitaiModelList"
DEFAULT_CRAWL = Path("../shared/civitai-samples/models/dfanr_v1_models_2023-07-04.jsonl.gz")

#: Words that are not vocabulary (function words, a lone letter): never kept as phrases.
STOPWORD_PHRASES = {"d", "of", "and", "at", "wearing a", "medium"}
#: A creator handle that is also a tag this many creators use is an ordinary word.
ORDINARY_TAG_CREATORS = 3
#: A tag whose models come almost all (this share) from one creator is that creator's brand.
BRAND_SHARE = 0.95
GENERIC_PERSON_MARKERS = {"celebrity", "real person", "actress", "instagram", "pornstar",
                          "influencer", "singer", "model", "cosplay", "youtuber", "streamer",
                          "kpop", "idol", "tiktok", "onlyfans", "photo", "woman", "man"}


def iter_jsonl(path: Path) -> Iterator[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _unusable_phrase(phrase: str, identifying: Identifying, prompt: bool = True) -> bool:
    """Too long, no letters, a function word, or identifying (model file names count only in
    prompts: in negative prompts they are the shared "negative embeddings")."""
    bare = phrase.strip("[]()")
    named = prompt and (bare in identifying.models or bare in identifying.artists)
    return (len(phrase) > 40 or named or not any(ch.isalpha() for ch in phrase)
            or phrase in STOPWORD_PHRASES or phrase.startswith("by ")
            or bare in identifying.handles
            or any(word.strip("[]()") in identifying.handles for word in phrase.split()))


@dataclass
class Identifying:
    """What identifies someone, found in the crawl itself (never typed into the code)."""

    handles: set[str]  # creators' handles: a phrase with one of them as a word is left out
    artists: set[str] = field(default_factory=set)  # named in "by ..." phrases of prompts
    models: set[str] = field(default_factory=set)  # versioned model/trigger-word names


def identifying_terms(handles: set[str], tag_creators: dict[str, dict[str, int]],
                      by_phrases: set[str], model_names: set[str],
                      frequent: set[str] = frozenset()) -> Identifying:
    """Creators' handles (unless the handle is a tag several creators use, a word the compendium
    itself writes, or a phrase of many prompts: ``frequent``), artists named in "by ..."
    phrases, and versioned model and trigger-word names ("name v1")."""
    from .redact import project_vocabulary

    common = {t for t, c in tag_creators.items() if len(c) >= ORDINARY_TAG_CREATORS}
    words = project_vocabulary()
    kept_handles = {h for h in handles
                    if len(h) >= 4 and h not in common and h not in words and h not in frequent}
    artists = {p.rsplit("by ", 1)[1].strip() for p in by_phrases}
    names = {a for a in artists if len(a.split()) >= 2 and a not in common}
    versioned = {n for n in model_names if _VERSIONED.search(n) and n not in common}
    return Identifying(kept_handles, names, versioned)


_VERSIONED = re.compile(r"\bv\d")
_MANY = ""  # marks a phrase seen in the prompts of two or more creators' models


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def derive_from_crawl(crawl: Path, out: Path = CALIBRATION_DIR, top_tags: int = 400,
                      top_phrases: int = 600, min_models_per_tag: int = 25) -> dict[str, int]:
    """Measure the crawl's aggregates and write them as calibration CSVs under ``out``."""
    types: Counter = Counter()
    type_poi: Counter = Counter()
    type_nsfw: Counter = Counter()
    tag_all: Counter = Counter()
    tag_poi: Counter = Counter()
    tag_nsfw: Counter = Counter()
    base_models: Counter = Counter()
    month_images: Counter = Counter()
    month_above: Counter = Counter()
    level_counts: Counter = Counter()
    negative_all: Counter = Counter()
    phrase_all: Counter = Counter()
    phrase_nsfw: Counter = Counter()
    n_prompts = n_prompts_nsfw = 0
    n_models = 0
    handles: set[str] = set()
    tag_creators: dict[str, set[str]] = {}
    model_names: set[str] = set()
    phrase_creator: dict[str, str] = {}
    for model in iter_jsonl(crawl):
        n_models += 1
        handle = str((model.get("creator") or {}).get("username") or "").strip().lower()
        handles.add(handle)
        model_names.update(prompt_phrases(str(model.get("name") or "")))
        mtype = model.get("type", "Other")
        types[mtype] += 1
        poi, nsfw = bool(model.get("poi")), bool(model.get("nsfw"))
        type_poi[mtype] += poi
        type_nsfw[mtype] += nsfw
        for tag in {str(t).strip().lower() for t in model.get("tags") or []}:
            tag_all[tag] += 1
            per_creator = tag_creators.setdefault(tag, {})
            per_creator[handle] = per_creator.get(handle, 0) + 1
            tag_poi[tag] += poi
            tag_nsfw[tag] += nsfw
        for version in model.get("modelVersions") or []:
            base_models[version.get("baseModel") or "unknown"] += 1
            for word in version.get("trainedWords") or []:
                model_names.update(prompt_phrases(str(word)))
            month = (version.get("createdAt") or "")[:7]
            for image in version.get("images") or []:
                level = LEGACY_STRING_LEVELS.get(str(image.get("nsfw")), 1)
                level_counts[level] += 1
                month_images[month] += 1
                month_above[month] += level > 1
                meta = image.get("meta") or {}
                prompt = meta.get("prompt") if isinstance(meta, dict) else None
                negative = meta.get("negativePrompt") if isinstance(meta, dict) else None
                if isinstance(negative, str):
                    negative_all.update(set(prompt_phrases(negative)))
                if isinstance(prompt, str) and prompt.strip():
                    phrases = set(prompt_phrases(prompt))
                    for p in phrases:
                        if phrase_creator.setdefault(p, handle) != handle:
                            phrase_creator[p] = _MANY
                    n_prompts += 1
                    phrase_all.update(phrases)
                    if level > 1:
                        n_prompts_nsfw += 1
                        phrase_nsfw.update(phrases)
    by_phrases = {p for p in phrase_all if p.startswith("by ") or " by " in p}
    identifying = identifying_terms(handles, tag_creators, by_phrases, model_names,
                                    {p for p, n in phrase_all.items() if n >= 20})
    src = CRAWL_SOURCE
    _write(out / "model_type_mix.csv", ["type", "n_models", "share", "poi_share", "nsfw_share",
                                        "source"],
           [[t, n, round(n / n_models, 4), round(type_poi[t] / n, 4), round(type_nsfw[t] / n, 4),
             src] for t, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))])
    _write(out / "preview_nsfw_share_by_month.csv",
           ["month", "n_images", "n_above_pg", "share_above_pg", "source"],
           [[m, month_images[m], month_above[m], round(month_above[m] / month_images[m], 4), src]
            for m in sorted(month_images) if m and month_images[m] >= 200])
    total_images = sum(level_counts.values())
    _write(out / "preview_level_mix.csv", ["nsfw_level", "n_images", "share", "source"],
           [[lvl, n, round(n / total_images, 4), src] for lvl, n in sorted(level_counts.items())])
    _write(out / "base_model_mix.csv", ["base_model", "n_versions", "share", "source"],
           [[b, n, round(n / sum(base_models.values()), 4), src]
            for b, n in sorted(base_models.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 20])
    tag_rows = []
    for tag, n in sorted(tag_all.items(), key=lambda kv: (-kv[1], kv[0])):
        if n < min_models_per_tag or len(tag_rows) >= top_tags:
            continue
        # A tag that one creator puts on most of its models is their brand or handle.
        creators = tag_creators.get(tag, {})
        if max(creators.values(), default=0) >= BRAND_SHARE * n:
            continue
        # A tag carried mostly by real-person models is likely a name: keep only generic markers.
        named = tag in identifying.handles or tag in identifying.artists
        if named or (tag_poi[tag] / n > 0.5 and tag not in GENERIC_PERSON_MARKERS):
            continue
        tag_rows.append([tag, n, tag_poi[tag], tag_nsfw[tag], src])
    _write(out / "model_tag_frequencies.csv", ["tag", "n_models", "n_poi", "n_nsfw", "source"],
           tag_rows)
    phrase_rows = []
    for phrase, n in sorted(phrase_all.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(phrase_rows) >= top_phrases:
            break
        if _unusable_phrase(phrase, identifying) or phrase_creator.get(phrase) != _MANY:
            continue
        phrase_rows.append([phrase, n, phrase_nsfw[phrase], src])
    negative_rows = [[p, n, src] for p, n in sorted(negative_all.items(),
                                                     key=lambda kv: (-kv[1], kv[0]))
                     if not _unusable_phrase(p, identifying, prompt=False)][:top_phrases // 3]
    _write(out / "negative_phrase_frequencies.csv", ["phrase", "n_prompts", "source"],
           negative_rows)
    _write(out / "prompt_phrase_frequencies.csv",
           ["phrase", "n_prompts", "n_prompts_above_pg", "source"], phrase_rows)
    summary = [
        ["n_models", n_models], ["n_poi", sum(type_poi.values())],
        ["n_nsfw_flag", sum(type_nsfw.values())], ["n_preview_images", total_images],
        ["n_prompts", n_prompts], ["n_prompts_above_pg", n_prompts_nsfw],
    ]
    _write(out / "crawl_summary.csv", ["quantity", "value", "source"],
           [[q, v, src] for q, v in summary])
    return dict(summary)
