"""Validation study of the coder: a judged sample of real prompts → precision and recall.

Why: term lists read well and still misfire on real prompts ("virtual youtuber" is not a real
person). Only judged prompts tell how often a coded category is really there (precision) and how
often a prompt that carries it is coded (recall). The study is re-runnable on any snapshot:

1. :func:`draw_sample` takes the distinct prompts of a snapshot, codes them, and draws per
   category a stratum of strong matches, a small stratum of weak-only matches (the weak tier is
   reported separately) and one random stratum of prompts for recall. It writes a judging packet
   (prompt text: keep it outside the repository) and a key without prompt text.
2. Judges write ``unit_id, category, verdict`` files (see ``JUDGE_COLUMNS``);
   :func:`read_judgments` turns them into rows keyed by the SHA-256 of the prompt text
   (``prompt_sha256, stratum, category, judge, verdict``): the only form that is committed.
3. :func:`validity_table` recodes the judged prompts (found again by hash in the snapshot) with
   the *current* codebook and computes per category precision (judged coder positives) and
   recall (random stratum) with Wilson 95 % intervals.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from statsmodels.stats.proportion import proportion_confint

from ..snapshot import Snapshot
from .codebook import Codebook
from .matcher import Matcher

RANDOM = "random"
NONE = "none"
STRATA = ("match", "weak", RANDOM)
PACKET_COLUMNS = ["unit_id", "category", "matched_terms", "prompt"]
KEY_COLUMNS = ["unit_id", "stratum", "category", "matched_terms", "prompt_sha256"]
JUDGE_COLUMNS = ["unit_id", "category", "verdict"]
JUDGMENT_COLUMNS = ["prompt_sha256", "stratum", "category", "judge", "verdict"]
ADJUDICATED = "adjudicated"
PROMPT_CHARS = 600
VALIDITY_COLUMNS = ["category", "tier", "n_judged", "n_yes", "precision", "precision_low",
                    "precision_high", "n_random_positive", "recall", "recall_low", "recall_high",
                    "n_unresolved", "agreement"]


class ValidationError(ValueError):
    """A judgment file or sample key is malformed; the message names the fix."""


def prompt_sha256(text: str) -> str:
    """The key of a prompt in committed judgments: SHA-256 of its UTF-8 text, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def distinct_prompts(snapshot: Snapshot) -> pa.Array:
    """Distinct non-empty prompts of the snapshot, sorted (deterministic sampling frame)."""
    con = snapshot.connect()
    try:
        table = con.sql("SELECT DISTINCT prompt FROM images WHERE prompt IS NOT NULL "
                        "AND length(trim(prompt)) > 0 ORDER BY prompt").arrow()
    finally:
        con.close()
    if hasattr(table, "read_all"):
        table = table.read_all()
    return table.column(0).combine_chunks()


@dataclass(frozen=True)
class Coded:
    """Strong and weak category flags and matched terms of a set of texts."""

    strong: np.ndarray  # texts × categories
    weak: np.ndarray
    terms: list[dict[str, list[str]]]  # per text: category → strong terms
    weak_terms: list[dict[str, list[str]]]


def code_texts(matcher: Matcher, texts: pa.Array) -> Coded:
    matches = matcher.match(texts)
    strong = matcher.category_flags(matches)
    weak = matcher.weak_flags(matches)
    terms: list[dict[str, list[str]]] = [{} for _ in range(len(texts))]
    weak_terms: list[dict[str, list[str]]] = [{} for _ in range(len(texts))]
    for doc, label in zip(matches.doc.tolist(), matches.term.tolist(), strict=True):
        category, term = matcher.labels[label]
        target = weak_terms if matcher.label_is_weak[label] else terms
        target[doc].setdefault(category, []).append(term)
    return Coded(strong, weak, terms, weak_terms)


def draw_sample(snapshot: Snapshot, codebook: Codebook, per_category: int = 50,
                weak_per_category: int = 15, n_random: int = 300, seed: int = 20250507,
                categories: list[str] | None = None, exclude: set[str] | None = None
                ) -> pd.DataFrame:
    """A seeded, stratified sample of distinct prompts: ``KEY_COLUMNS`` plus ``prompt``.

    Strata: ``match`` (strong coder positives of each category), ``weak`` (weak-only positives:
    a weak term and no strong one) and ``random`` (any prompt, for recall). Units are numbered
    after a seeded shuffle, so a judge cannot tell strata apart by position. ``categories``
    restricts the match/weak strata (a later round for changed categories only); prompts whose
    hash is in ``exclude`` (judged before) are not drawn again.
    """
    matcher = Matcher(codebook)
    texts = distinct_prompts(snapshot)
    if len(texts) == 0:
        raise ValidationError("the snapshot has no prompts; import images with prompts first")
    coded = code_texts(matcher, texts)
    rng = np.random.default_rng(seed)
    allowed = np.ones(len(texts), dtype=bool)
    if exclude:
        allowed = np.array([prompt_sha256(t) not in exclude for t in texts.to_pylist()])
    rows: list[dict] = []

    def take(pool: np.ndarray, k: int) -> np.ndarray:
        return np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))

    for j, category in enumerate(matcher.categories):
        if categories is not None and category not in categories:
            continue
        for i in take(np.flatnonzero(coded.strong[:, j] & allowed), per_category).tolist():
            rows.append({"stratum": "match", "category": category, "index": i,
                         "matched_terms": "; ".join(coded.terms[i][category])})
        weak_only = np.flatnonzero(coded.weak[:, j] & ~coded.strong[:, j] & allowed)
        for i in take(weak_only, weak_per_category).tolist():
            rows.append({"stratum": "weak", "category": category, "index": i,
                         "matched_terms": "; ".join(coded.weak_terms[i][category])})
    for i in take(np.flatnonzero(allowed), n_random).tolist():
        rows.append({"stratum": RANDOM, "category": RANDOM, "index": i, "matched_terms": ""})
    frame = pd.DataFrame(rows)
    order = rng.permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    width = len(str(len(frame)))
    frame["unit_id"] = [f"u{k + 1:0{width}d}" for k in range(len(frame))]
    prompts = texts.take(pa.array(frame["index"].to_numpy())).to_pylist()
    frame["prompt"] = prompts
    frame["prompt_sha256"] = [prompt_sha256(p) for p in prompts]
    return frame[KEY_COLUMNS + ["prompt"]]


def term_position(prompt: str, codebook: Codebook, category: str, terms: list[str]) -> int | None:
    """Where the first of ``terms`` (term names of ``category``) occurs in the raw prompt.

    Why: a judge shown the first 600 characters cannot confirm a term that occurs later (round
    1 showed it: such units were judged "no" for want of the word). Searched loosely (words
    separated by any non-letters, case ignored); pattern rules by their own regex.
    """
    lower = prompt.lower()
    found = []
    book = next(c for c in codebook.categories if c.id == category)
    for term in book.terms:
        if term.term not in terms:
            continue
        for key in term.keys:
            words = r"[^a-z0-9]+".join(re.escape(w) for w in key.split())
            hit = re.search(rf"(?<![a-z0-9]){words}(?![a-z0-9])", lower)
            if hit:
                found.append(hit.start())
    for rule in book.patterns:
        if rule.name in terms:
            hit = re.search(rule.regex, prompt if rule.applies_to == "original case" else lower)
            if hit:
                found.append(hit.start())
    return min(found) if found else None


def excerpt(prompt: str, position: int | None, limit: int = PROMPT_CHARS) -> str:
    """At most ``limit`` characters of the prompt that include ``position`` when given.

    The opening is kept (it sets the scene), then `` … `` and a window around the term.
    """
    if len(prompt) <= limit or position is None or position < limit - 100:
        return prompt[:limit]
    head = limit // 3
    start = max(head, position - limit // 4)
    window = prompt[start:start + limit - head - 3]
    return prompt[:head] + " … " + window


def write_sample(sample: pd.DataFrame, out: Path,
                 codebook: Codebook | None = None) -> tuple[Path, Path]:
    """Write ``packet.csv`` (for judges: prompt text) and ``units.csv`` (key, no prompt text).

    Both are staged and renamed, so a failed write leaves an earlier sample intact.
    """
    out.mkdir(parents=True, exist_ok=True)
    texts = []
    for row in sample.itertuples(index=False):
        position = None
        if codebook is not None and row.stratum != RANDOM and row.matched_terms:
            position = term_position(row.prompt, codebook, row.category,
                                     row.matched_terms.split("; "))
        texts.append(excerpt(row.prompt, position))
    packet = sample.assign(prompt=texts)
    packet.loc[packet["stratum"] == RANDOM, "matched_terms"] = ""
    written = []
    for name, frame in (("packet.csv", packet[PACKET_COLUMNS]), ("units.csv", sample[KEY_COLUMNS])):
        path = out / name
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, lineterminator="\n")
        tmp.replace(path)
        written.append(path)
    return written[0], written[1]


def _norm_verdict(value: object) -> str | None:
    text = str(value).strip().lower()
    return {"yes": "yes", "y": "yes", "1": "yes", "true": "yes",
            "no": "no", "n": "no", "0": "no", "false": "no"}.get(text)


def read_judgments(units: pd.DataFrame, files: dict[str, Path], categories: list[str]
                   ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Judge files → rows ``JUDGMENT_COLUMNS`` keyed by prompt hash, and counts of skipped rows.

    For ``match``/``weak`` units a row's verdict is yes/no for the unit's category. For
    ``random`` units a judge lists each category the prompt carries (verdict yes, or the
    category ``none``); every other category becomes ``no``, so each random unit is judged on
    every category.
    """
    missing = [c for c in KEY_COLUMNS if c not in units.columns]
    if missing:
        raise ValidationError(f"the sample key lacks columns {missing}; pass the units.csv "
                              "written by `coding validate-sample`")
    key = units.set_index("unit_id")
    rows: list[dict] = []
    skipped = {"unknown unit": 0, "bad verdict": 0, "bad category": 0}
    for judge, path in sorted(files.items()):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        absent = [c for c in JUDGE_COLUMNS if c not in frame.columns]
        if absent:
            raise ValidationError(f"{path.name}: columns {absent} are missing; a judge file has "
                                  f"columns {', '.join(JUDGE_COLUMNS)}")
        seen_random: dict[str, set[str]] = {}
        for unit, category, verdict in frame[JUDGE_COLUMNS].itertuples(index=False):
            unit, category = unit.strip(), category.strip().lower()
            if unit not in key.index:
                skipped["unknown unit"] += 1
                continue
            info = key.loc[unit]
            if info["stratum"] == RANDOM:
                if category != NONE and category not in categories:
                    skipped["bad category"] += 1
                    continue
                positives = seen_random.setdefault(unit, set())
                if category != NONE and _norm_verdict(verdict) != "no":
                    positives.add(category)
                continue
            norm = _norm_verdict(verdict)
            if norm is None:
                skipped["bad verdict"] += 1
                continue
            if category != info["category"]:
                skipped["bad category"] += 1
                continue
            rows.append({"prompt_sha256": info["prompt_sha256"], "stratum": info["stratum"],
                         "category": category, "judge": judge, "verdict": norm})
        for unit, positives in seen_random.items():
            sha = key.loc[unit, "prompt_sha256"]
            for category in categories:
                rows.append({"prompt_sha256": sha, "stratum": RANDOM, "category": category,
                             "judge": judge, "verdict": "yes" if category in positives else "no"})
    out = pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)
    out = out.drop_duplicates(["prompt_sha256", "stratum", "category", "judge"], keep="last")
    return out.sort_values(JUDGMENT_COLUMNS, ignore_index=True), skipped


def final_verdicts(judgments: pd.DataFrame) -> pd.DataFrame:
    """One verdict per (prompt, stratum, category): the adjudicated one, else the judges' if
    they all agree; disagreements without adjudication are ``unresolved`` (left out, counted)."""
    keys = ["prompt_sha256", "stratum", "category"]
    out = []
    for key, group in judgments.groupby(keys, sort=True):
        adjudicated = group[group["judge"] == ADJUDICATED]
        judges = group[group["judge"] != ADJUDICATED]
        if len(adjudicated):
            verdict = adjudicated["verdict"].iloc[-1]
        elif judges["verdict"].nunique() == 1:
            verdict = judges["verdict"].iloc[0]
        else:
            verdict = "unresolved"
        agree = judges["verdict"].nunique() == 1 if len(judges) > 1 else np.nan
        out.append(dict(zip(keys, key, strict=True), verdict=verdict, n_judges=len(judges),
                        agree=agree))
    return pd.DataFrame(out, columns=[*keys, "verdict", "n_judges", "agree"])


def disagreements(judgments: pd.DataFrame) -> pd.DataFrame:
    """(prompt, stratum, category) keys where the judges differ and nobody adjudicated yet."""
    final = final_verdicts(judgments)
    return final[final["verdict"] == "unresolved"].reset_index(drop=True)


def wilson(successes: int, n: int) -> tuple[float, float, float]:
    """Proportion and its Wilson 95 % interval (NaN when n is 0)."""
    if n == 0:
        return (np.nan, np.nan, np.nan)
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return (successes / n, float(low), float(high))


def validity_table(judgments: pd.DataFrame, codes: dict[str, tuple[set[str], set[str]]],
                   categories: list[str]) -> pd.DataFrame:
    """Per category and tier: precision of judged coder positives and recall on random units.

    ``codes`` maps a prompt hash to the (strong, weak) categories the current coder gives it.
    Precision counts the units of the ``match`` and ``weak`` strata (an explicit yes/no about
    the category) that the coder flags in that tier now; random units are left out of it,
    because there a category a judge did not list is an omission, not a judged "no". Recall
    counts random units judged to carry the category. Prompts not found in the
    snapshot (``codes`` lacks their hash) are left out.
    """
    final = final_verdicts(judgments)
    final = final[final["prompt_sha256"].isin(codes.keys())]
    rows = []
    for category in categories:
        mine = final[final["category"] == category]
        resolved = mine[mine["verdict"] != "unresolved"]
        resolved = resolved[resolved["stratum"] != RANDOM].drop_duplicates("prompt_sha256")
        agreement = mine["agree"].dropna()
        randoms = final[(final["stratum"] == RANDOM) & (final["category"] == category)
                        & (final["verdict"] == "yes")]
        for tier, index in (("strong", 0), ("weak", 1)):
            mask = np.array([category in codes[h][index] and
                             (index == 0 or category not in codes[h][0])
                             for h in resolved["prompt_sha256"]], dtype=bool)
            flagged = resolved[mask]
            n_yes = int((flagged["verdict"] == "yes").sum())
            p, p_low, p_high = wilson(n_yes, len(flagged))
            if tier == "strong":
                hit = sum(category in codes[h][0] for h in randoms["prompt_sha256"])
                r, r_low, r_high = wilson(int(hit), len(randoms))
            else:
                r = r_low = r_high = np.nan
            rows.append({"category": category, "tier": tier, "n_judged": len(flagged),
                         "n_yes": n_yes, "precision": p, "precision_low": p_low,
                         "precision_high": p_high, "n_random_positive": len(randoms),
                         "recall": r, "recall_low": r_low, "recall_high": r_high,
                         "n_unresolved": int((mine["verdict"] == "unresolved").sum()),
                         "agreement": float(agreement.mean()) if len(agreement) else np.nan})
    return pd.DataFrame(rows, columns=VALIDITY_COLUMNS)


def codes_by_hash(snapshot: Snapshot, codebook: Codebook, hashes: set[str]
                  ) -> dict[str, tuple[set[str], set[str]]]:
    """The current coder's (strong, weak) categories of each judged prompt, found by hash."""
    matcher = Matcher(codebook)
    texts = distinct_prompts(snapshot)
    python = texts.to_pylist()
    index = [i for i, t in enumerate(python) if prompt_sha256(t) in hashes]
    subset = texts.take(pa.array(index, type=pa.int64()))
    coded = code_texts(matcher, subset)
    out = {}
    for k, i in enumerate(index):
        strong = {c for j, c in enumerate(matcher.categories) if coded.strong[k, j]}
        weak = {c for j, c in enumerate(matcher.categories) if coded.weak[k, j]}
        out[prompt_sha256(python[i])] = (strong, weak)
    return out
