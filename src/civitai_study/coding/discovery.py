"""Inductive discovery: phrases not yet in the codebook that distinguish two groups.

A deductive codebook only finds what its authors thought of. Comparing groups (NSFW against
SFW prompts; real-person against other models' tags) with weighted log-odds and an informative
Dirichlet prior (:func:`civitai_study.logodds.weighted_log_odds`) surfaces the vocabulary that
the data itself marks as distinctive. The result is a *candidate list*: coders accept or reject
each row (columns ``decision``, ``category``, ``source``, ``coder``, ``note``); accepted terms go
into the codebook with their source (see ``data/codebook/README.md``).

Counts are document frequencies of canonical phrases (the coder's normalisation), so a candidate
is exactly a form the coder would match if it were added.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..logodds import weighted_log_odds
from ..nsfw import sql_is_nsfw
from ..snapshot import Snapshot
from .codebook import Codebook
from .coder import record_batches
from .normalise import canonical_phrase, split_phrases

DECISION_COLUMNS = ["decision", "category", "source", "coder", "note"]


def _phrase_document_counts(snapshot: Snapshot, sql: str, batch_rows: int = 100_000
                            ) -> dict[bool, Counter]:
    """Document frequency of canonical phrases for rows of ``sql`` (``grp`` bool, ``text``)."""
    counts: dict[bool, Counter] = {True: Counter(), False: Counter()}
    cache: dict[str, str | None] = {}
    con = snapshot.connect()
    try:
        for batch in record_batches(con, sql, batch_rows):
            phrases = split_phrases(batch.column("text"))
            canon = []
            for raw in phrases.dictionary:
                if raw not in cache:
                    cache[raw] = canonical_phrase(raw)
                canon.append(cache[raw])
            # map batch codes to canonical ids, then count each (document, phrase) once
            vocab = {c: i for i, c in enumerate(sorted({c for c in canon if c}))}
            names = np.array(list(vocab), dtype=object)
            mapping = np.array([vocab.get(c, -1) if c else -1 for c in canon], dtype=np.int64)
            ids = mapping[phrases.code] if len(phrases.code) else phrases.code
            keep = ids >= 0
            if not keep.any():
                continue
            pairs = np.unique(phrases.doc[keep] * len(vocab) + ids[keep])
            group = batch.column("grp").to_numpy(zero_copy_only=False).astype(bool)
            docs, terms = pairs // len(vocab), pairs % len(vocab)
            for flag in (True, False):
                sel = group[docs] == flag
                n = np.bincount(terms[sel], minlength=len(vocab))
                counts[flag].update({names[i]: int(n[i]) for i in np.flatnonzero(n)})
    finally:
        con.close()
    return counts


def _candidates(counts: dict[bool, Counter], codebook: Codebook, comparison: str,
                min_documents: int, top: int, prior_scale: float) -> pd.DataFrame:
    a = pd.Series(counts[True], dtype=float)
    b = pd.Series(counts[False], dtype=float)
    if a.sum() == 0 or b.sum() == 0:
        raise ValueError(f"{comparison}: one group has no documents; nothing to compare")
    table = weighted_log_odds(a, b, prior_scale=prior_scale)
    known = {k for t in codebook.terms for k in t.keys}
    table["in_codebook"] = table["term"].isin(known)
    words = [set(str(t).split()) for t in table["term"]]
    single = {k for k in known if " " not in k}
    table["contains_coded_word"] = [bool(w & single) for w in words]
    table = table[(table["n_a"] + table["n_b"] >= min_documents) & ~table["in_codebook"]]
    table = table[~table["term"].str.fullmatch(r"[\d ]+")]
    table = table.head(top).copy()
    table.insert(0, "comparison", comparison)
    for col in DECISION_COLUMNS:
        table[col] = ""
    table["z"] = table["z"].round(3)
    table["log_odds"] = table["log_odds"].round(4)
    table["se"] = table["se"].round(4)
    return table.drop(columns=["in_codebook"]).reset_index(drop=True)


def nsfw_candidates(snapshot: Snapshot, codebook: Codebook, definition: str = "above_pg",
                    sample_rows: int | None = 500_000, seed: int = 20250507,
                    min_documents: int = 20, top: int = 100, prior_scale: float = 500.0
                    ) -> pd.DataFrame:
    """Prompt phrases most distinctive of NSFW (group A) against SFW images (group B).

    ``sample_rows`` caps the scan with a seeded reservoir sample (a 40-million-image snapshot
    does not need all rows to rank candidates); ``None`` scans everything.
    """
    sample = (f" USING SAMPLE {int(sample_rows)} ROWS (reservoir, {int(seed)})"
              if sample_rows else "")
    sql = (f"SELECT {sql_is_nsfw('nsfw_level', definition)} AS grp, prompt AS text "
           f"FROM images WHERE prompt IS NOT NULL AND nsfw_level > 0{sample}")
    counts = _phrase_document_counts(snapshot, sql)
    return _candidates(counts, codebook, f"nsfw_vs_sfw_prompts ({definition})", min_documents,
                       top, prior_scale)


def poi_candidates(snapshot: Snapshot, codebook: Codebook, min_documents: int = 5,
                   top: int = 100, prior_scale: float = 500.0) -> pd.DataFrame:
    """Model tags most distinctive of real-person (``poi``) models against other models.

    Tags over-represented among real-person models include names of real people: displays must
    redact them (:func:`civitai_study.redact.sensitive_terms`).
    """
    sql = ("SELECT coalesce(m.poi, false) AS grp, string_agg(t.tag, ', ') AS text "
           "FROM models m JOIN model_tags t ON t.model_id = m.id GROUP BY m.id, m.poi")
    counts = _phrase_document_counts(snapshot, sql)
    return _candidates(counts, codebook, "poi_vs_other_model_tags", min_documents, top,
                       prior_scale)
