"""The validity gate: which coded categories may carry a trend claim.

Why: a category whose matches are often wrong (low precision) turns coder noise into a "trend".
The measured precision and recall come from the judged validation study on real prompts
(``data/derived/coding_validity.csv``, written by ``civitai-study coding precision``); a category
whose lower 95 % bound of precision is below ``MIN_PRECISION_LOW`` is shown greyed and gets no
finding sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..paths import DERIVED_DIR

VALIDITY_FILE = DERIVED_DIR / "coding_validity.csv"
MIN_PRECISION_LOW = 0.80
UNRELIABLE = "not reliable enough for a trend claim"
NOT_MEASURED = "precision not measured"


def load_validity(path: Path | None = None) -> pd.DataFrame:
    """Strong-tier rows of the validity table, or an empty frame when none was measured."""
    path = Path(path) if path else VALIDITY_FILE
    columns = ["category", "n_judged", "precision", "precision_low", "precision_high", "recall",
               "recall_low", "recall_high"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    frame = pd.read_csv(path)
    if "tier" in frame.columns:
        frame = frame[frame["tier"] == "strong"]
    return frame[[c for c in frame.columns if c in columns or c == "tier"]].reset_index(drop=True)


def gate(categories: list[str], validity: pd.DataFrame,
         min_low: float = MIN_PRECISION_LOW) -> pd.DataFrame:
    """Per category: measured precision/recall, ``reliable`` (bool) and a ``note``.

    A category without a measurement is not reliable: no claim rests on an unmeasured coder.
    """
    known = validity.set_index("category") if len(validity) else pd.DataFrame()
    rows = []
    for category in categories:
        row = {"category": category}
        if category in known.index:
            v = known.loc[category]
            row.update({k: v[k] for k in ("n_judged", "precision", "precision_low",
                                          "precision_high", "recall", "recall_low", "recall_high")
                        if k in v})
            reliable = bool(pd.notna(v["precision_low"]) and v["precision_low"] >= min_low)
            row["reliable"] = reliable
            row["note"] = "" if reliable else UNRELIABLE
        else:
            row.update(reliable=False, note=f"{NOT_MEASURED}; {UNRELIABLE}")
        rows.append(row)
    return pd.DataFrame(rows)


def reliable_categories(categories: list[str], validity: pd.DataFrame) -> list[str]:
    table = gate(categories, validity)
    return table.loc[table["reliable"], "category"].tolist()


def gate_lines(table: pd.DataFrame) -> list[str]:
    """Rounded, sorted text lines of the gate (for notebooks and the report)."""
    lines = []
    for row in table.sort_values("category").itertuples(index=False):
        d = row._asdict()
        if pd.notna(d.get("precision", float("nan"))):
            text = (f"{row.category}: precision {d['precision']:.2f} "
                    f"[{d['precision_low']:.2f}, {d['precision_high']:.2f}] "
                    f"(n={int(d['n_judged'])}), recall {d['recall']:.2f} "
                    f"[{d['recall_low']:.2f}, {d['recall_high']:.2f}]")
        else:
            text = f"{row.category}: no measurement"
        lines.append(text + ("" if row.reliable else f" — {row.note}"))
    return lines


def unreliable_for_trends(validity_gate: pd.DataFrame,
                          alpha_unreliable: Iterable[str] = ()) -> list[str]:
    """Sorted categories that may carry no trend claim: below either gate.

    The precision gate (``validity_gate``, from :func:`gate`) and the reliability gate (the
    categories below alpha, from :func:`~civitai_study.coding.reliability.unreliable_categories`
    or :func:`alpha_unreliable_in`). One function, so notebooks 04 and 05 grey out and stay
    silent about the same categories.
    """
    reliable = validity_gate["reliable"].fillna(False).astype(bool)  # unknown: not reliable
    below_precision = validity_gate.loc[~reliable, "category"]
    return sorted(set(below_precision) | set(alpha_unreliable))


def alpha_unreliable_in(within_table: pd.DataFrame | None) -> list[str]:
    """Categories that ``coding_within_level_trends.csv`` (notebook 04) marks as below the
    reliability gate; none when the table is missing."""
    if within_table is None or "trend_claim" not in within_table.columns:
        return []
    claims = within_table["trend_claim"].fillna("").astype(str)
    return sorted(set(within_table.loc[claims.str.startswith("not reliable"), "category"]))
