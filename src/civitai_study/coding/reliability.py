"""Inter-coder reliability: a stratified sample for human coders, and agreement statistics.

Why: a codebook is only as good as the agreement between people applying it. Two or more
coders code the same documents independently (one CSV each, produced by
:func:`export_sample`); :func:`agreement` then reports per category Cohen's kappa (exactly two
coders), Krippendorff's alpha with a bootstrap interval (two or more, tolerating missing codes),
the automatic coder's kappa against each human, and how well the automatic coder reproduces the
adjudicated human consensus (precision, recall, F1). A category whose alpha is below
:data:`TREND_ALPHA` is marked "not reliable enough for a trend claim".

Ties (as many coders say present as absent; with two coders, every disagreement) are
*adjudicated*, not dropped: dropping them would score the automatic coder only on the easy units.
An adjudicator's codes (rows whose ``coder`` is ``adjudicator``) settle them; they are left out
of kappa and alpha, which measure the independent coders. Without an adjudicator, ties are
settled by ``tie_rule``: ``present`` (default: a category one coder saw counts, since a missed
harmful term costs more than a spurious one) or ``absent``; the table says which was used.

Coding file format (CSV, one row per document and coder): ``document_id``, ``coder``, ``field``,
``text`` and one column per codebook category holding 1 (category present), 0 (absent) or blank
(not coded). Several coders may share one file or use one file each.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pyarrow as pa

from ..nsfw import sql_is_nsfw
from ..snapshot import Snapshot
from .codebook import Codebook
from .matcher import Matcher

BASE_COLUMNS = ["document_id", "coder", "field", "stratum", "text"]
#: Krippendorff's threshold for tentative conclusions; below it no trend claim is made.
TREND_ALPHA = 0.667
NOT_RELIABLE = f"not reliable enough for a trend claim (alpha < {TREND_ALPHA})"
ADJUDICATOR = "adjudicator"
TIE_RULES = ("present", "absent")


def cohen_kappa(a: Iterable, b: Iterable) -> float:
    """Cohen's kappa for two coders' nominal codes of the same units (pairs with a gap dropped).

    kappa = (p_o - p_e) / (1 - p_e); returns NaN when expected agreement is 1 (no variation).
    """
    frame = pd.DataFrame({"a": list(a), "b": list(b)}).dropna()
    if frame.empty:
        return float("nan")
    p_o = float((frame["a"] == frame["b"]).mean())
    pa_ = frame["a"].value_counts(normalize=True)
    pb_ = frame["b"].value_counts(normalize=True)
    p_e = float(sum(pa_.get(k, 0.0) * pb_.get(k, 0.0) for k in set(pa_.index) | set(pb_.index)))
    if np.isclose(p_e, 1.0):
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def krippendorff_alpha(matrix: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's alpha of a coders × units matrix (NaN = missing code)."""
    matrix = np.asarray(matrix, dtype=float)
    values = matrix[~np.isnan(matrix)]
    if values.size == 0 or len(np.unique(values)) < 2:
        return float("nan")  # alpha is undefined without variation
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def export_sample(snapshot: Snapshot, codebook: Codebook, out_dir: Path, coders: list[str],
                  per_stratum: int = 10, seed: int = 20250507, field: str = "prompt",
                  definition: str = "above_pg") -> list[Path]:
    """Write one blank coding sheet per coder with the same stratified sample of documents.

    Strata: year × NSFW (``definition``), so rare strata (early months, SFW in late months) are
    represented; within a stratum documents are drawn by a seeded hash, reproducibly. The
    automatic coder's output is *not* in the sheets, so coders are not anchored by it.
    """
    if field not in ("prompt", "negative_prompt"):
        raise ValueError(f"export-sample codes image prompts; field must be prompt or "
                         f"negative_prompt, not {field!r}")
    if len(coders) < 2 or len(set(coders)) != len(coders):
        raise ValueError("give at least two distinct coder names (e.g. --coders alice bob)")
    sql = f"""
        WITH base AS (
            SELECT id, {field} AS text,
                   coalesce(CAST(year(created_at) AS VARCHAR), 'undated') || CASE WHEN
                     {sql_is_nsfw('nsfw_level', definition)} THEN ' nsfw' ELSE ' sfw' END
                     AS stratum
            FROM images WHERE {field} IS NOT NULL AND length(trim({field})) > 0)
        SELECT id AS document_id, stratum, text FROM (
            SELECT *, row_number() OVER (PARTITION BY stratum
                                         ORDER BY hash(id + {int(seed)}), id) AS rn FROM base)
        WHERE rn <= {int(per_stratum)} ORDER BY stratum, document_id"""
    con = snapshot.connect()
    try:
        sample = con.sql(sql).df()
    finally:
        con.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for coder in coders:
        sheet = sample.assign(coder=coder, field=field)[BASE_COLUMNS]
        for cat in codebook.category_ids:
            sheet[cat] = ""
        path = out_dir / f"coding_sample_{coder}.csv"
        sheet.to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
    return paths


def read_codings(files: Iterable[Path], codebook: Codebook) -> pd.DataFrame:
    """Concatenate coding files; check columns and codes; one row per (document, coder)."""
    frames = []
    cats = codebook.category_ids
    for path in files:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"coding file {path} does not exist")
        frame = pd.read_csv(path, dtype={"document_id": str, "coder": str}, comment="#")
        missing = [c for c in ["document_id", "coder", "text", *cats] if c not in frame.columns]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {missing}; export a sheet with "
                             "`civitai-study coding export-sample` to get the format")
        for cat in cats:
            bad = ~frame[cat].isna() & ~frame[cat].isin([0, 1, 0.0, 1.0])
            if bad.any():
                raise ValueError(f"{path.name}: column {cat!r} must hold 1, 0 or blank; "
                                 f"row(s) {list(frame.index[bad][:5] + 2)} do not")
        frames.append(frame)
    if not frames:
        raise ValueError("no coding files given")
    data = pd.concat(frames, ignore_index=True)
    dup = data.duplicated(["document_id", "coder"])
    if dup.any():
        raise ValueError(f"{int(dup.sum())} document(s) coded twice by the same coder; "
                         "each coder codes each document once")
    if data.loc[data["coder"] != ADJUDICATOR, "coder"].nunique() < 2:
        raise ValueError("agreement needs at least two coders in the files (the adjudicator "
                         "does not count)")
    return data


def bootstrap_alpha(matrix: np.ndarray, n_boot: int = 1000, seed: int = 20250507,
                    level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of Krippendorff's alpha, resampling units (columns) with replacement.

    Resamples without variation (alpha undefined) are skipped; NaN when fewer than half remain.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape[1] < 2 or np.isnan(krippendorff_alpha(matrix)):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        value = krippendorff_alpha(matrix[:, rng.integers(0, matrix.shape[1], matrix.shape[1])])
        if not np.isnan(value):
            draws.append(value)
    if len(draws) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def trend_gate(alpha: float) -> str:
    """Words for the reliability gate: a trend claim needs alpha of at least TREND_ALPHA."""
    if np.isnan(alpha):
        return "not reliable enough for a trend claim (alpha undefined)"
    return "reliable enough for a trend claim" if alpha >= TREND_ALPHA else NOT_RELIABLE


def _consensus(matrix: np.ndarray, referee: np.ndarray | None, tie_rule: str
               ) -> tuple[np.ndarray, int, int]:
    """Majority code per unit; ties settled by the adjudicator, else by ``tie_rule``."""
    n_coded = (~np.isnan(matrix)).sum(axis=0)
    positives = np.nansum(matrix, axis=0)
    consensus = np.where(positives * 2 > n_coded, 1.0,
                         np.where(positives * 2 < n_coded, 0.0, np.nan))
    consensus[n_coded == 0] = np.nan
    ties = np.isnan(consensus) & (n_coded > 0)
    by_referee = ties & ~np.isnan(referee) if referee is not None else np.zeros_like(ties)
    if referee is not None:
        consensus[by_referee] = referee[by_referee]
    by_rule = ties & ~by_referee
    consensus[by_rule] = 1.0 if tie_rule == "present" else 0.0
    return consensus, int(by_referee.sum()), int(by_rule.sum())


def agreement(codings: pd.DataFrame, codebook: Codebook, matcher: Matcher | None = None,
              tie_rule: str = "present", n_boot: int = 1000, seed: int = 20250507
              ) -> pd.DataFrame:
    """Per category: kappa, alpha (with a bootstrap interval), the trend gate, percent agreement,
    adjudicated consensus, and the automatic coder against the consensus and against each human.

    ``auto_kappa_min``/``auto_kappa_max``: the automatic coder's Cohen's kappa against each human
    coder (the full list is :func:`auto_vs_coders`). ``n_ties``: units without a majority,
    ``n_ties_adjudicated`` of them settled by the adjudicator and the rest by ``tie_rule``.
    """
    if tie_rule not in TIE_RULES:
        raise ValueError(f"unknown tie rule {tie_rule!r}; choose one of {', '.join(TIE_RULES)}")
    matcher = matcher or Matcher(codebook)
    coders = sorted(set(codings["coder"].unique()) - {ADJUDICATOR})
    has_referee = bool((codings["coder"] == ADJUDICATOR).any())
    units = sorted(codings["document_id"].unique())
    auto_flags = _auto_flags(codings, units, matcher)
    rows = []
    for j, cat in enumerate(codebook.category_ids):
        wide = codings.pivot(index="coder", columns="document_id", values=cat)
        referee = (wide.reindex(index=[ADJUDICATOR], columns=units).astype(float).to_numpy()[0]
                   if has_referee else None)
        matrix = wide.reindex(index=coders, columns=units).astype(float).to_numpy()
        n_coded = (~np.isnan(matrix)).sum(axis=0)
        both = n_coded >= 2
        agree = np.array([len(set(col[~np.isnan(col)])) == 1 for col in matrix.T[both]])
        kappa = cohen_kappa(matrix[0], matrix[1]) if len(coders) == 2 else float("nan")
        consensus, by_referee, by_rule = _consensus(matrix, referee, tie_rule)
        auto = auto_flags[:, j].astype(float)
        ok = ~np.isnan(consensus)
        tp = int(((auto == 1) & (consensus == 1) & ok).sum())
        fp = int(((auto == 1) & (consensus == 0) & ok).sum())
        fn = int(((auto == 0) & (consensus == 1) & ok).sum())
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        f1 = (2 * precision * recall / (precision + recall)
              if tp and not np.isnan(precision + recall) else float("nan"))
        alpha = krippendorff_alpha(matrix)
        low, high = bootstrap_alpha(matrix[:, both], n_boot, seed + j)
        auto_kappas = [cohen_kappa(auto, row) for row in matrix]
        defined = [k for k in auto_kappas if not np.isnan(k)]
        rows.append({
            "category": cat, "n_units": int(both.sum()), "n_coders": len(coders),
            "percent_agreement": float(agree.mean()) if agree.size else float("nan"),
            "cohen_kappa": kappa, "krippendorff_alpha": alpha,
            "alpha_ci_low": low, "alpha_ci_high": high,
            "trend_claim": trend_gate(alpha),
            "n_consensus_positive": int((consensus == 1).sum()),
            "n_ties": by_referee + by_rule, "n_ties_adjudicated": by_referee,
            "tie_rule": tie_rule if by_rule else ("adjudicator" if by_referee else "-"),
            "auto_positive": int(auto.sum()), "auto_precision": precision,
            "auto_recall": recall, "auto_f1": f1,
            "auto_kappa_min": min(defined) if defined else float("nan"),
            "auto_kappa_max": max(defined) if defined else float("nan")})
    return pd.DataFrame(rows)


def _auto_flags(codings: pd.DataFrame, units: list, matcher: Matcher) -> np.ndarray:
    """The automatic coder's category flags for each unit's text (units in ``units`` order)."""
    texts = codings.drop_duplicates("document_id").set_index("document_id")["text"]
    texts = texts.reindex(units)
    hits = matcher.match(pa.array(texts.astype(object).where(texts.notna(), None).tolist(),
                                  type=pa.string()))
    return matcher.category_flags(hits)


def auto_vs_coders(codings: pd.DataFrame, codebook: Codebook, matcher: Matcher | None = None
                   ) -> pd.DataFrame:
    """``category, coder, n_units, percent_agreement, cohen_kappa``: the automatic coder against
    each human coder separately (no consensus, so no unit is dropped for a tie)."""
    matcher = matcher or Matcher(codebook)
    coders = sorted(set(codings["coder"].unique()) - {ADJUDICATOR})
    units = sorted(codings["document_id"].unique())
    auto_flags = _auto_flags(codings, units, matcher)
    rows = []
    for j, cat in enumerate(codebook.category_ids):
        wide = codings.pivot(index="coder", columns="document_id", values=cat)
        wide = wide.reindex(index=coders, columns=units).astype(float)
        auto = auto_flags[:, j].astype(float)
        for coder in coders:
            human = wide.loc[coder].to_numpy()
            coded = ~np.isnan(human)
            rows.append({"category": cat, "coder": coder, "n_units": int(coded.sum()),
                         "percent_agreement": float((auto[coded] == human[coded]).mean())
                         if coded.any() else float("nan"),
                         "cohen_kappa": cohen_kappa(auto[coded], human[coded])})
    return pd.DataFrame(rows)


def unreliable_categories(table: pd.DataFrame) -> list[str]:
    """Categories of an :func:`agreement` table that fail the trend gate, in table order."""
    gate = table["krippendorff_alpha"].fillna(-np.inf) < TREND_ALPHA
    return table.loc[gate, "category"].tolist()
