"""Descriptive statistics of a snapshot (notebook 02): volumes, NSFW shares, real people, gendered
targets, tags, creators and engagement.

Every function takes a DuckDB connection from :meth:`Snapshot.connect` and runs its row-level scan
in SQL over the Parquet views, so the same code works on the 60,000-image sample and on a
40-million-image collection; pandas only ever holds the aggregated result. Each returned frame is
tidy (one row per unit x group), sorted deterministically, and names its ``population`` so that a
share is never shown without saying "share of what".
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from .logodds import weighted_log_odds
from .nsfw import (
    LEVEL_LABELS,
    NSFW_DEFINITIONS,
    sql_coarse_decided,
    sql_coarse_is_nsfw,
    sql_is_nsfw,
)

#: Model tags that say a model depicts a real person (a text signal, beside the ``poi`` flag).
REAL_PERSON_TAGS: tuple[str, ...] = (
    "celebrity", "celebrities", "real person", "real people", "actress", "actor", "instagram",
    "instagram model", "influencer", "pornstar", "porn star", "singer", "youtuber", "tiktok",
    "tiktoker", "streamer", "athlete", "politician", "onlyfans", "e-girl",
)
#: Tags naming women/girls, and men/boys: the *text proxy* for gendered targets. It is not the
#: paper's MiVOLO estimate (an age and gender classifier run on images).
#: Real-person selection tags ('actress', 'actor') are left out on purpose: a gender proxy that
#: reused them would count the real-person selection itself as gendered targeting.
FEMALE_TAGS: tuple[str, ...] = (
    "woman", "women", "female", "girl", "girls", "1girl", "lady", "ladies", "anime girl",
    "japanese girl", "japanese woman", "waifu",
)
MALE_TAGS: tuple[str, ...] = (
    "man", "men", "male", "boy", "boys", "1boy", "guy", "husbando", "anime boy",
)
#: Exposure floor: an item younger than this many months counts this many (no division by ~0).
MIN_EXPOSURE_MONTHS = 1.0
DAYS_PER_MONTH = 365.25 / 12

POP_IMAGES = "all images in the snapshot"
POP_RATED = "images in the snapshot with a rated NSFW level (level 0 'unrated' left out)"
POP_MODELS = "models caught by the snapshot"


def sql_list(values: tuple[str, ...] | list[str]) -> str:
    """A DuckDB list literal of strings, quotes escaped (for ``unnest``/``list_contains``)."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def query(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run ``sql`` and return the (aggregated) result as a DataFrame."""
    return con.execute(sql).df()


MONTH = "strftime({col}, '%Y-%m')"

#: Per model: month of its first version (falling back to the model's own date), flags, signals.
MODEL_FACTS = f"""
WITH first_version AS (
    SELECT model_id, min(created_at) AS first_at FROM model_versions GROUP BY model_id
), tag_flags AS (
    SELECT model_id,
           bool_or(lower(trim(tag)) IN (SELECT unnest({sql_list(REAL_PERSON_TAGS)}))) AS poi_tag,
           bool_or(lower(trim(tag)) IN (SELECT unnest({sql_list(FEMALE_TAGS)}))) AS female_tag,
           bool_or(lower(trim(tag)) IN (SELECT unnest({sql_list(MALE_TAGS)}))) AS male_tag
    FROM model_tags GROUP BY model_id
)
SELECT m.id, m.type, m.creator_hash, m.download_count,
       coalesce(m.nsfw, false) AS nsfw_flag,
       m.nsfw_level,
       coalesce(m.poi, false) AS poi,
       coalesce(t.poi_tag, false) AS poi_tag,
       coalesce(t.female_tag, false) AS female_tag,
       coalesce(t.male_tag, false) AS male_tag,
       {MONTH.format(col="coalesce(f.first_at, m.created_at)")} AS month,
       coalesce(f.first_at, m.created_at) AS published_at
FROM models m
LEFT JOIN first_version f ON f.model_id = m.id
LEFT JOIN tag_flags t ON t.model_id = m.id
"""


def model_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Create the temporary view ``model_facts`` (one row per model) used by the model tables."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW model_facts AS {MODEL_FACTS}")


# ---- volumes --------------------------------------------------------------------------------

def images_by_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Images per UTC month with counts under both NSFW definitions.

    ``n_nsfw``: level above PG (CivitAI's flag; an image rated only by the coarse flag counts by
    it, ``nsfw.COARSE_FLAG_RULE``); ``n_r_plus``: R or above (bits only); ``n_rated``: rated at
    bit level or by the coarse flag; ``n_rated_r_plus``: the images the R-or-above definition can
    decide (a coarse ``true`` flag cannot say R or not). Shares are of those rated images (the
    denominator of notebook 03's model and of :mod:`civitai_study.claims`, see
    :func:`rated_nsfw_counts`). Undated images are left out (see :func:`undated_counts`).
    """
    frame = query(con, f"""
        SELECT {MONTH.format(col="created_at")} AS month,
               count(*) AS n_images,
               count(*) FILTER (WHERE {sql_coarse_decided("nsfw_level", "nsfw_flag")}) AS n_rated,
               count(*) FILTER (WHERE {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag")}) AS n_nsfw,
               count(*) FILTER (WHERE {sql_coarse_decided("nsfw_level", "nsfw_flag", "r_plus")})
                   AS n_rated_r_plus,
               count(*) FILTER (WHERE {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag", "r_plus")})
                   AS n_r_plus
        FROM images WHERE created_at IS NOT NULL
        GROUP BY month ORDER BY month""")
    frame["share_nsfw"] = frame["n_nsfw"] / frame["n_rated"].where(frame["n_rated"] > 0)
    frame["share_r_plus"] = frame["n_r_plus"] / frame["n_rated_r_plus"].where(
        frame["n_rated_r_plus"] > 0)
    frame["population"] = POP_IMAGES + ", per upload month (shares: of rated images)"
    return frame


def _period_sql(freq: str, column: str = "created_at") -> str:
    if freq == "month":
        return f"strftime({column}, '%Y-%m')"
    if freq == "week":
        return f"strftime(date_trunc('week', {column}), '%Y-%m-%d')"
    raise ValueError(f"unknown aggregation {freq!r}; choose 'month' or 'week'")


def rated_nsfw_counts(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                      freq: str = "month") -> pd.DataFrame:
    """``period, n, k``: rated images with a date (``n``) and NSFW ones (``k``) per period.

    The one denominator for image NSFW shares (notebooks 02 and 03, claims): unrated images
    (level 0, no coarse flag) carry no information on NSFW and would pull every share down by
    their share; images rated only by the coarse flag count where the definition can decide them
    (:data:`civitai_study.nsfw.COARSE_FLAG_RULE`).
    """
    decided = sql_coarse_decided("nsfw_level", "nsfw_flag", definition)
    return query(con, f"""
        SELECT {_period_sql(freq)} AS period, count(*) AS n,
               count(*) FILTER (WHERE {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag", definition)})
                   AS k
        FROM images WHERE created_at IS NOT NULL AND {decided}
        GROUP BY period ORDER BY period""")


def model_share_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Models in the snapshot (all, dated or not) and how many carry the poi and nsfw flags.

    The one denominator for overall model shares (notebook 02, claims): *all* models. Per-month
    shares (notebooks 02 and 03) can only use models with a date; they say so.
    """
    row = con.execute("""SELECT count(*), count(*) FILTER (WHERE poi),
                                count(*) FILTER (WHERE nsfw) FROM models""").fetchone()
    return {"n_models": int(row[0]), "n_poi": int(row[1]), "n_nsfw": int(row[2])}


def undated_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows without a date (images, models): counted, never silently dropped."""
    row = con.execute("""SELECT (SELECT count(*) FROM images WHERE created_at IS NULL),
                                (SELECT count(*) FROM models WHERE created_at IS NULL)"""
                      ).fetchone()
    return {"images": int(row[0]), "models": int(row[1])}


def images_by_month_level(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Images per month and single NSFW level, with the level's share of the month's images."""
    frame = query(con, f"""
        SELECT {MONTH.format(col="created_at")} AS month, nsfw_level, count(*) AS n_images
        FROM images WHERE created_at IS NOT NULL
        GROUP BY ALL ORDER BY month, nsfw_level""")
    frame["nsfw_level"] = frame["nsfw_level"].astype(int)
    frame.insert(2, "level_label", frame["nsfw_level"].map(LEVEL_LABELS).fillna("other"))
    frame["share"] = frame["n_images"] / frame.groupby("month")["n_images"].transform("sum")
    frame["population"] = POP_IMAGES + ", per upload month"
    return frame


def models_by_type(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Models per type (descending), with the share of all models."""
    frame = query(con, """SELECT coalesce(type, 'unknown') AS type, count(*) AS n_models
                          FROM models GROUP BY ALL ORDER BY n_models DESC, type""")
    frame["share"] = frame["n_models"] / frame["n_models"].sum()
    frame["population"] = POP_MODELS
    return frame


def models_by_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """New models per month of their first version, with NSFW and real-person counts.

    ``n_nsfw``: the model's ``nsfw`` flag; ``n_level_*``: its OR-combined level mask under each
    definition, among the ``n_level_known`` models that have one (null in 2023 data);
    ``n_poi``: the ``poi`` flag; ``n_poi_tag``: carries a real-person tag.
    """
    model_facts(con)
    frame = query(con, f"""
        SELECT month, count(*) AS n_models,
               count(*) FILTER (WHERE nsfw_flag) AS n_nsfw,
               count(*) FILTER (WHERE poi) AS n_poi,
               count(*) FILTER (WHERE poi_tag) AS n_poi_tag,
               count(*) FILTER (WHERE nsfw_level IS NOT NULL) AS n_level_known,
               count(*) FILTER (WHERE {sql_is_nsfw("nsfw_level", "above_pg")}) AS n_level_above_pg,
               count(*) FILTER (WHERE {sql_is_nsfw("nsfw_level", "r_plus")}) AS n_level_r_plus
        FROM model_facts WHERE month IS NOT NULL GROUP BY month ORDER BY month""")
    frame["share_nsfw"] = frame["n_nsfw"] / frame["n_models"]
    frame["share_poi"] = frame["n_poi"] / frame["n_models"]
    frame["population"] = POP_MODELS + ", per month of first version"
    return frame


def models_by_type_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """New models per month and type, with the type's share of the month (e.g. the LoRA share)."""
    model_facts(con)
    frame = query(con, """
        SELECT month, coalesce(type, 'unknown') AS type, count(*) AS n_models,
               count(*) FILTER (WHERE poi) AS n_poi, count(*) FILTER (WHERE nsfw_flag) AS n_nsfw
        FROM model_facts WHERE month IS NOT NULL GROUP BY ALL ORDER BY month, type""")
    frame["share_of_month"] = frame["n_models"] / frame.groupby("month")["n_models"].transform(
        "sum")
    frame["population"] = POP_MODELS + ", per month of first version"
    return frame


def base_models_by_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Model versions and images per month and base model family (long format, ``unit`` column)."""
    frame = query(con, f"""
        SELECT 'model_versions' AS unit, {MONTH.format(col="created_at")} AS month,
               coalesce(base_model, 'unknown') AS base_model, count(*) AS n
        FROM model_versions WHERE created_at IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT 'images' AS unit, {MONTH.format(col="created_at")} AS month,
               coalesce(base_model, 'unknown') AS base_model, count(*) AS n
        FROM images WHERE created_at IS NOT NULL GROUP BY ALL
        ORDER BY unit, month, base_model""")
    frame["share_of_month"] = frame["n"] / frame.groupby(["unit", "month"])["n"].transform("sum")
    frame["population"] = np.where(frame["unit"] == "images", POP_IMAGES,
                                   "model versions caught by the snapshot") + ", per month"
    return frame


# ---- NSFW under both definitions --------------------------------------------------------------

def nsfw_definitions_by_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """NSFW share per month under every definition, for images and for models, side by side.

    Images: level above PG and R or above (denominator: rated images of the month, as in
    :func:`rated_nsfw_counts`). Models: the
    ``nsfw`` flag (all models) and the level mask under both definitions (denominator: models
    whose level is known; none in 2023 data, where the rows say so with ``n = 0``).
    """
    model_facts(con)
    parts = []
    for name in NSFW_DEFINITIONS:
        parts.append(f"""
            SELECT 'images' AS unit, '{name}' AS definition, {MONTH.format(col="created_at")}
                   AS month, count(*) AS n,
                   count(*) FILTER (WHERE {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag", name)})
                       AS n_nsfw
            FROM images
            WHERE created_at IS NOT NULL AND {sql_coarse_decided("nsfw_level", "nsfw_flag", name)}
            GROUP BY ALL""")
        parts.append(f"""
            SELECT 'models' AS unit, 'level_{name}' AS definition, month,
                   count(*) FILTER (WHERE nsfw_level IS NOT NULL) AS n,
                   count(*) FILTER (WHERE {sql_is_nsfw("nsfw_level", name)}) AS n_nsfw
            FROM model_facts WHERE month IS NOT NULL GROUP BY ALL""")
    parts.append("""
        SELECT 'models' AS unit, 'flag' AS definition, month, count(*) AS n,
               count(*) FILTER (WHERE nsfw_flag) AS n_nsfw
        FROM model_facts WHERE month IS NOT NULL GROUP BY ALL""")
    frame = query(con, " UNION ALL ".join(parts) + " ORDER BY unit, definition, month")
    frame["share"] = np.where(frame["n"] > 0, frame["n_nsfw"] / frame["n"].where(frame["n"] > 0),
                              np.nan)
    frame["population"] = np.select(
        [frame["unit"] == "images", frame["definition"] == "flag"],
        [POP_RATED + ", per upload month", POP_MODELS + ", per month of first version"],
        POP_MODELS + " with a known level mask, per month of first version")
    return frame


def nsfw_overall(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Overall NSFW shares of images and models under every definition (one row each)."""
    frame = nsfw_definitions_by_month(con)
    out = frame.groupby(["unit", "definition", "population"], as_index=False)[["n", "n_nsfw"]].sum()
    out["population"] = out["population"].str.replace(
        ", per upload month", " with an upload date (undated ones: see undated_counts)"
    ).str.replace(", per month of first version", " with a dated first version")
    out["share"] = np.where(out["n"] > 0, out["n_nsfw"] / out["n"].where(out["n"] > 0), np.nan)
    return out[["unit", "definition", "n", "n_nsfw", "share", "population"]]


# ---- real people --------------------------------------------------------------------------------

def poi_signals(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Agreement of the ``poi`` flag with the real-person tags: 2x2 counts and Cohen's kappa."""
    model_facts(con)
    frame = query(con, """SELECT poi, poi_tag, count(*) AS n_models FROM model_facts
                          GROUP BY ALL ORDER BY poi, poi_tag""")
    full = pd.MultiIndex.from_product([[False, True], [False, True]], names=["poi", "poi_tag"])
    frame = frame.set_index(["poi", "poi_tag"]).reindex(full, fill_value=0).reset_index()
    frame["share"] = frame["n_models"] / max(int(frame["n_models"].sum()), 1)
    frame["population"] = POP_MODELS
    return frame


def cohen_kappa(table: pd.DataFrame) -> float:
    """Cohen's kappa of two binary signals from :func:`poi_signals`' 2x2 counts (nan if empty)."""
    n = table["n_models"].sum()
    if n == 0:
        return float("nan")
    cell = {(bool(a), bool(b)): v for a, b, v in table[["poi", "poi_tag", "n_models"]].itertuples(
        index=False)}
    observed = (cell.get((True, True), 0) + cell.get((False, False), 0)) / n
    p_a = (cell.get((True, True), 0) + cell.get((True, False), 0)) / n
    p_b = (cell.get((True, True), 0) + cell.get((False, True), 0)) / n
    expected = p_a * p_b + (1 - p_a) * (1 - p_b)
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def poi_tag_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Models carrying each real-person tag (every tag of :data:`REAL_PERSON_TAGS`, zeros kept)."""
    frame = query(con, f"""
        SELECT lower(trim(tag)) AS tag, count(DISTINCT model_id) AS n_models,
               count(DISTINCT model_id) FILTER (WHERE m.poi) AS n_poi
        FROM model_tags t JOIN models m ON m.id = t.model_id
        WHERE lower(trim(tag)) IN (SELECT unnest({sql_list(REAL_PERSON_TAGS)}))
        GROUP BY ALL""")
    frame = (frame.set_index("tag").reindex(list(REAL_PERSON_TAGS), fill_value=0)
             .rename_axis("tag").reset_index())
    frame = frame.sort_values(["n_models", "tag"], ascending=[False, True], ignore_index=True)
    frame["population"] = POP_MODELS
    return frame


def poi_by_group(con: duckdb.DuckDBPyConnection, as_of: str | None = None) -> pd.DataFrame:
    """Real-person models against the others: NSFW share and the downloads they receive.

    Groups by the ``poi`` flag and, separately, by the tag signal. Download statistics are over
    models that report downloads (creators may hide them); ``downloads_per_month_mean`` divides
    each model's cumulative downloads by its months of exposure (see :func:`downloads_by_nsfw`).
    """
    model_facts(con)
    months = _exposure_months("published_at", _as_of(con, as_of))
    rows = []
    for signal in ("poi", "poi_tag"):
        rows.append(query(con, f"""
            SELECT '{signal}' AS signal, {signal} AS real_person, count(*) AS n_models,
                   count(*) FILTER (WHERE nsfw_flag) AS n_nsfw,
                   count(download_count) AS n_with_downloads,
                   sum(download_count)::BIGINT AS downloads_total,
                   avg(download_count) AS downloads_mean,
                   quantile_cont(download_count, 0.5) AS downloads_median,
                   avg(download_count / {months}) FILTER (WHERE published_at IS NOT NULL)
                       AS downloads_per_month_mean
            FROM model_facts GROUP BY ALL"""))
    frame = pd.concat(rows, ignore_index=True).sort_values(["signal", "real_person"],
                                                           ignore_index=True)
    frame["share_nsfw"] = frame["n_nsfw"] / frame["n_models"]
    total = frame.groupby("signal")["downloads_total"].transform("sum")
    frame["share_of_downloads"] = frame["downloads_total"] / total.where(total > 0)
    frame["population"] = POP_MODELS + " (downloads: those that report them)"
    return frame


# ---- gendered targets (text proxy) ----------------------------------------------------------

def gender_proxy(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Models tagged with women/girl terms against men/boy terms, overall and by group.

    A text proxy (tags chosen by creators), not the paper's image-based MiVOLO estimate. The
    female share is among models carrying at least one gendered term (``n_gendered``).
    """
    model_facts(con)
    groups = {
        "all models": "true",
        "poi flag": "poi",
        "real-person tag": "poi_tag",
        "not real person (neither signal)": "NOT poi AND NOT poi_tag",
        "nsfw flag": "nsfw_flag",
        "not nsfw flag": "NOT nsfw_flag",
    }
    parts = [f"""SELECT '{name}' AS grp, {i} AS ord, count(*) AS n_models,
                        count(*) FILTER (WHERE female_tag) AS n_female_terms,
                        count(*) FILTER (WHERE male_tag) AS n_male_terms,
                        count(*) FILTER (WHERE female_tag OR male_tag) AS n_gendered,
                        count(*) FILTER (WHERE female_tag AND NOT male_tag) AS n_female_only,
                        count(*) FILTER (WHERE male_tag AND NOT female_tag) AS n_male_only
                 FROM model_facts WHERE {cond}"""
             for i, (name, cond) in enumerate(groups.items())]
    frame = query(con, " UNION ALL ".join(parts) + " ORDER BY ord").drop(columns="ord")
    frame = frame.rename(columns={"grp": "group"})
    gendered = frame["n_female_only"] + frame["n_male_only"]
    frame["female_share_of_single_gender"] = frame["n_female_only"] / gendered.where(gendered > 0)
    frame["female_to_male_ratio"] = frame["n_female_terms"] / frame["n_male_terms"].where(
        frame["n_male_terms"] > 0)
    frame["population"] = POP_MODELS + " in the group (text proxy from model tags)"
    return frame


# ---- tags -------------------------------------------------------------------------------------

def top_model_tags(con: duckdb.DuckDBPyConnection, n: int = 50) -> pd.DataFrame:
    """The ``n`` tags on most models (distinct models per lower-cased tag), descending."""
    frame = query(con, f"""
        SELECT lower(trim(tag)) AS tag, count(DISTINCT model_id) AS n_models
        FROM model_tags WHERE tag IS NOT NULL AND trim(tag) <> ''
        GROUP BY ALL ORDER BY n_models DESC, tag LIMIT {int(n)}""")
    total = con.execute("SELECT count(*) FROM models").fetchone()[0]
    frame["share_of_models"] = frame["n_models"] / max(int(total), 1)
    frame["population"] = POP_MODELS
    return frame


def top_tags_by_period(con: duckdb.DuckDBPyConnection, n: int = 15) -> pd.DataFrame:
    """Most frequent tags per calendar year of the models' first version (rank within year)."""
    model_facts(con)
    frame = query(con, f"""
        WITH c AS (
            SELECT substr(f.month, 1, 4) AS period, lower(trim(t.tag)) AS tag,
                   count(DISTINCT t.model_id) AS n_models
            FROM model_tags t JOIN model_facts f ON f.id = t.model_id
            WHERE f.month IS NOT NULL AND t.tag IS NOT NULL GROUP BY ALL
        ), r AS (
            SELECT *, row_number() OVER (PARTITION BY period ORDER BY n_models DESC, tag) AS rank
            FROM c
        ), sizes AS (SELECT substr(month, 1, 4) AS period, count(*) AS n_period_models
                     FROM model_facts WHERE month IS NOT NULL GROUP BY ALL)
        SELECT r.period, r.rank, r.tag, r.n_models, s.n_period_models
        FROM r JOIN sizes s USING (period) WHERE rank <= {int(n)} ORDER BY period, rank""")
    frame["share_of_models"] = frame["n_models"] / frame["n_period_models"]
    frame["population"] = POP_MODELS + ", per year of first version"
    return frame


def tag_log_odds(con: duckdb.DuckDBPyConnection, group: str, n: int = 30,
                 min_models: int = 3) -> pd.DataFrame:
    """Tags most over-represented among NSFW (``group='nsfw'``) or real-person (``'poi'``) models.

    Weighted log-odds with an informative Dirichlet prior (Monroe et al. 2008) of each tag's
    model count in the group against all other models; tags on fewer than ``min_models`` models
    are left out, and the tags that define the group's own signal are kept (they show the
    signals agree).
    """
    column = {"nsfw": "nsfw_flag", "poi": "poi"}.get(group)
    if column is None:
        raise ValueError(f"tag_log_odds: unknown group {group!r}; choose 'nsfw' or 'poi'")
    model_facts(con)
    counts = query(con, f"""
        SELECT lower(trim(t.tag)) AS tag,
               count(DISTINCT t.model_id) FILTER (WHERE f.{column}) AS n_a,
               count(DISTINCT t.model_id) FILTER (WHERE NOT f.{column}) AS n_b
        FROM model_tags t JOIN model_facts f ON f.id = t.model_id
        WHERE t.tag IS NOT NULL GROUP BY ALL HAVING count(DISTINCT t.model_id) >= {int(min_models)}
        ORDER BY tag""")
    if counts.empty or counts["n_a"].sum() == 0 or counts["n_b"].sum() == 0:
        return pd.DataFrame(columns=["comparison", "rank", "tag", "n_a", "n_b", "log_odds", "se",
                                     "z", "population"])
    result = weighted_log_odds(counts.set_index("tag")["n_a"], counts.set_index("tag")["n_b"])
    result = result.head(n).rename(columns={"term": "tag"})
    result.insert(0, "rank", range(1, len(result) + 1))
    result.insert(0, "comparison", f"{group} models vs other models")
    result["population"] = POP_MODELS + f" with tags used on >= {min_models} models"
    return result


def sensitive_tags(con: duckdb.DuckDBPyConnection, min_models: int = 2,
                   poi_share: float = 0.8) -> set[str]:
    """Tags that probably name a real person, to redact in displayed tables.

    A tag used (almost) only on ``poi`` models is most likely a person's name; the generic
    real-person and gender vocabulary is kept visible because the analysis is about it.
    """
    frame = query(con, f"""
        SELECT lower(trim(t.tag)) AS tag, count(DISTINCT t.model_id) AS n,
               count(DISTINCT t.model_id) FILTER (WHERE coalesce(m.poi, false)) AS n_poi
        FROM model_tags t JOIN models m ON m.id = t.model_id
        WHERE t.tag IS NOT NULL GROUP BY ALL HAVING count(DISTINCT t.model_id) >= {min_models}""")
    keep = set(REAL_PERSON_TAGS) | set(FEMALE_TAGS) | set(MALE_TAGS)
    flagged = frame.loc[frame["n_poi"] >= poi_share * frame["n"], "tag"]
    return {t for t in flagged if t not in keep}


# ---- creators and engagement --------------------------------------------------------------------

_UNITS = {"images": ("images", "username_hash"), "models": ("models", "creator_hash")}


def creator_concentration(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """How concentrated uploads are: Gini and the share of the top 1% and 10% of creators.

    Computed in SQL over per-creator counts (there may be millions of uploaders). Rows without a
    creator hash are counted in ``n_unattributed`` and left out.
    """
    rows = []
    for unit, (table, column) in _UNITS.items():
        row = con.execute(f"""
            WITH c AS (SELECT count(*) AS n FROM {table} WHERE {column} IS NOT NULL
                       GROUP BY {column}),
                 r AS (SELECT n, row_number() OVER (ORDER BY n) AS i,
                              row_number() OVER (ORDER BY n DESC) AS d, count(*) OVER () AS k,
                              sum(n) OVER () AS tot FROM c)
            SELECT any_value(k), any_value(tot),
                   2.0 * sum(i * n) / (any_value(k) * any_value(tot))
                       - (any_value(k) + 1.0) / any_value(k),
                   sum(n) FILTER (WHERE d <= greatest(1, ceil(k * 0.01))) / any_value(tot),
                   sum(n) FILTER (WHERE d <= greatest(1, ceil(k * 0.10))) / any_value(tot),
                   (SELECT count(*) FROM {table} WHERE {column} IS NULL)
            FROM r""").fetchone()
        rows.append({"unit": unit, "n_creators": int(row[0] or 0), "n_items": int(row[1] or 0),
                     "gini": row[2], "top1pct_share": row[3], "top10pct_share": row[4],
                     "n_unattributed": int(row[5]),
                     "population": f"{unit} in the snapshot with a creator hash"})
    return pd.DataFrame(rows)


def lorenz(con: duckdb.DuckDBPyConnection, points: int = 100) -> pd.DataFrame:
    """Lorenz curve points (cumulative share of creators vs of uploads), ``points`` per unit."""
    parts = []
    for unit, (table, column) in _UNITS.items():
        parts.append(query(con, f"""
            WITH c AS (SELECT count(*) AS n FROM {table} WHERE {column} IS NOT NULL
                       GROUP BY {column}),
                 r AS (SELECT row_number() OVER (ORDER BY n) AS i, count(*) OVER () AS k,
                              sum(n) OVER (ORDER BY n ROWS UNBOUNDED PRECEDING) AS cum,
                              sum(n) OVER () AS tot FROM c),
                 g AS (SELECT ceil(i * {points} / k) AS step, max(i) AS i, any_value(k) AS k,
                              max(cum) AS cum, any_value(tot) AS tot FROM r GROUP BY step)
            SELECT '{unit}' AS unit, i / k AS share_of_creators, cum / tot AS share_of_items
            FROM g ORDER BY share_of_creators"""))
    frame = pd.concat(parts, ignore_index=True)
    origin = pd.DataFrame({"unit": list(_UNITS), "share_of_creators": 0.0, "share_of_items": 0.0})
    frame = pd.concat([origin, frame], ignore_index=True).sort_values(
        ["unit", "share_of_creators"], ignore_index=True)
    frame["population"] = frame["unit"] + " in the snapshot with a creator hash"
    return frame


def _as_of(con: duckdb.DuckDBPyConnection, as_of: str | None) -> str:
    """SQL timestamp literal of the snapshot date (default: the latest date in the data)."""
    if as_of is None:
        latest = con.execute("""SELECT greatest((SELECT max(created_at) FROM images),
                                                (SELECT max(created_at) FROM models),
                                                (SELECT max(created_at) FROM model_versions))
                             """).fetchone()[0]
        as_of = str(pd.Timestamp(latest).date()) if latest is not None else "1970-01-01"
    return f"TIMESTAMPTZ '{pd.Timestamp(as_of).date()} 00:00:00+00'"


def _exposure_months(column: str, as_of_sql: str) -> str:
    """SQL: months between ``column`` and the snapshot date, at least MIN_EXPOSURE_MONTHS."""
    days = f"(epoch({as_of_sql}) - epoch({column})) / 86400.0"
    return f"greatest({days} / {DAYS_PER_MONTH}, {MIN_EXPOSURE_MONTHS})"


def engagement_by_level(con: duckdb.DuckDBPyConnection, as_of: str | None = None
                        ) -> pd.DataFrame:
    """Reactions and comments per image by NSFW level (images that carry statistics).

    Reactions are cumulative, so an old image has had longer to collect them: besides the raw
    means, ``reactions_per_month_mean`` divides each image's reactions by its months of exposure
    (upload to ``as_of``, the snapshot date; default the latest date in the data; at least one
    month), over dated images with statistics.
    Model previews in the 2023 crawl carry no reactions: ``n_with_stats`` is then 0 and the means
    are empty, which the notebook says in words.
    """
    months = _exposure_months("created_at", _as_of(con, as_of))
    reactions = ("(coalesce(like_count, 0) + coalesce(heart_count, 0) + coalesce(laugh_count, 0)"
                 " + coalesce(cry_count, 0))")
    frame = query(con, f"""
        SELECT nsfw_level, count(*) AS n_images, count(like_count) AS n_with_stats,
               avg(like_count) AS likes_mean, avg(heart_count) AS hearts_mean,
               avg(comment_count) AS comments_mean,
               avg({reactions}) FILTER (WHERE like_count IS NOT NULL) AS reactions_mean,
               quantile_cont({reactions}, 0.5) FILTER (WHERE like_count IS NOT NULL)
                   AS reactions_median,
               avg({reactions} / {months})
                   FILTER (WHERE like_count IS NOT NULL AND created_at IS NOT NULL)
                   AS reactions_per_month_mean
        FROM images GROUP BY ALL ORDER BY nsfw_level""")
    frame["nsfw_level"] = frame["nsfw_level"].astype(int)
    frame.insert(1, "level_label", frame["nsfw_level"].map(LEVEL_LABELS).fillna("other"))
    frame["population"] = POP_IMAGES + " that carry reaction counts"
    return frame


def downloads_by_nsfw(con: duckdb.DuckDBPyConnection, as_of: str | None = None) -> pd.DataFrame:
    """Model downloads by the model's ``nsfw`` flag (models that report downloads).

    Download counts are cumulative: ``downloads_per_month_mean``/``_median`` divide each model's
    downloads by its months of exposure (first version, else the model's date, to ``as_of``, the
    snapshot date; default the latest date in the data; at least one month), over dated models.
    """
    model_facts(con)
    months = _exposure_months("published_at", _as_of(con, as_of))
    frame = query(con, f"""
        SELECT nsfw_flag, count(*) AS n_models, count(download_count) AS n_with_downloads,
               sum(download_count)::BIGINT AS downloads_total,
               avg(download_count) AS downloads_mean,
               quantile_cont(download_count, 0.5) AS downloads_median,
               avg(download_count / {months}) FILTER (WHERE published_at IS NOT NULL)
                   AS downloads_per_month_mean,
               quantile_cont(download_count / {months}, 0.5)
                   FILTER (WHERE published_at IS NOT NULL) AS downloads_per_month_median
        FROM model_facts GROUP BY ALL ORDER BY nsfw_flag""")
    frame["population"] = POP_MODELS + " that report downloads (per month: dated ones)"
    return frame


# ---- display ----------------------------------------------------------------------------------

def printable(frame: pd.DataFrame, digits: int = 3, drop: tuple[str, ...] = ("population",)
              ) -> str:
    """A table as rounded text for checked notebook cells (stable across runs and machines).

    Floats get ``digits`` decimals (shares as percentages when the column name says ``share``),
    p-values below 0.001 print as ``<0.001``, missing values as ``-``.
    """
    out = frame.drop(columns=[c for c in drop if c in frame.columns]).copy()
    for column in out.columns:
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        if column.startswith("p_value") or column.endswith("_p"):
            out[column] = ["-" if pd.isna(v) else ("<0.001" if v < 0.001 else f"{v:.3f}")
                           for v in values]
        elif "share" in column:
            out[column] = ["-" if pd.isna(v) else f"{100 * v:.{max(digits - 2, 1)}f}%"
                           for v in values]
        elif (values.dropna() % 1 == 0).all() and values.notna().any():
            out[column] = ["-" if pd.isna(v) else f"{v:,.0f}" for v in values]
        else:
            out[column] = ["-" if pd.isna(v) else f"{v:.{digits}f}" for v in values]
    return out.to_string(index=False)


# ---- yearly summaries printed by notebook 02 ------------------------------------------------

#: Model types that are low-rank adapters (LyCORIS adapters are LoCon on CivitAI).
ADAPTER_TYPES = ("LORA", "LoCon", "DoRA")


def adapter_share_by_year(type_month: pd.DataFrame) -> pd.DataFrame:
    """``year, n_adapters, n_models, share``: LoRA-type adapters among new models per year.

    ``type_month`` is :func:`models_by_type_month`'s table.
    """
    year = type_month["month"].str[:4]
    total = type_month.groupby(year)["n_models"].sum()
    adapters = type_month["type"].isin(ADAPTER_TYPES)
    n_adapters = type_month[adapters].groupby(year[adapters])["n_models"].sum()
    out = pd.DataFrame({"n_adapters": n_adapters.reindex(total.index, fill_value=0),
                        "n_models": total})
    out["share"] = out["n_adapters"] / out["n_models"]
    return out.rename_axis("year").reset_index()


def top_base_models_by_year(base: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """``year, base_model, n_versions``: the ``n`` most common base models of new versions.

    ``base`` is :func:`base_models_by_month`'s table (rows with ``unit == "model_versions"``).
    """
    versions = base[base["unit"] == "model_versions"]
    top = (versions.groupby([versions["month"].str[:4], "base_model"])["n"].sum().reset_index()
           .sort_values(["month", "n", "base_model"], ascending=[True, False, True])
           .groupby("month").head(n))
    return top.rename(columns={"month": "year", "n": "n_versions"})
