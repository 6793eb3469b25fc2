"""Redaction of real people's names and slurs in displayed outputs (on by default).

Researchers may turn it off with the notebooks' ``redact`` parameter. Redaction applies to what
is *shown* (tables printed, word clouds, figure labels); computations use the real terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from .coding.codebook import Codebook

MASK = "[redacted]"


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
