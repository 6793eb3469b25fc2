"""Is the NSFW rise a change within groups, or a change in the mix of groups?

Why: the platform's mix moved (SD 1.5 → SDXL → Pony; checkpoints → LoRAs; a few heavy uploaders
joined). If NSFW shares were constant within every base model, model type or creator cohort but
the mix moved towards the more explicit groups, the pooled NSFW share would still rise. Two
complementary answers, per grouping:

* **Shift-share decomposition** of the change in the NSFW share between a start and an end window:
  ``Δ = Σ w̄_g Δs_g (within) + Σ s̄_g Δw_g (mix)``, with ``w`` a group's share of the window's
  units, ``s`` its NSFW share, bars the mean of the two windows. The identity is exact; a group
  seen in only one window has no within-change (all of it is mix: entry or exit).
* **Within-group trend**: binomial GLM of the NSFW share on time with group fixed effects, next to
  the same model without them. Standard errors are clustered by creator (a few uploaders post most
  images, so images are not independent). For creators the groups are cohorts (quarter of first
  upload); fixed effects for every creator are not estimable at 40 million images.

Row-level work runs in DuckDB; the models see one row per creator × month × group cell, with
creators merged into at most ``MAX_CLUSTERS`` buckets in DuckDB when there are more (so memory stays
flat from thousands to millions of creators), and the per-creator shift-share comes back as four
integer columns per creator, never as a row per creator and month.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm

from .describe import sql_list
from .nsfw import check_definition, sql_coarse_decided, sql_coarse_is_nsfw
from .pseudonymise import sql_is_pseudonym, sql_pseudonym_number
from .trends import TIME_ORIGIN, _quiet, add_time

#: Groupings of the decomposition: what is counted and the SQL of each cell's group.
GROUPINGS: dict[str, dict[str, str]] = {
    "base_model": {"unit": "images", "what": "base model of the image"},
    "creator_cohort": {"unit": "images", "what": "creator's cohort (quarter of first upload)"},
    "creator": {"unit": "images", "what": "creator (shift-share only)"},
    "model_type": {"unit": "models", "what": "model type (models: nsfw flag)"},
}
#: Base models with fewer than this share of the units are pooled into "other (rare)".
RARE_SHARE = 0.01
#: Months in each of the start and end windows of the shift-share decomposition.
WINDOW_MONTHS = 12


#: At most this many creator clusters in the trend fits; beyond it creators are bucketed so the
#: model's rows stay bounded at 40 million images (see :func:`cells` and :func:`clustered_trend`).
MAX_CLUSTERS = 2000


def _image_sql(definition: str) -> str:
    """Rated images with a date (the denominator of every image NSFW share), with their month,
    base model, creator and NSFW flag under ``definition``."""
    return f"""
        SELECT strftime(created_at, '%Y-%m') AS month, created_at, base_model,
               coalesce(username_hash, 'unknown') AS creator,
               {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag", definition)} AS nsfw
        FROM images
        WHERE created_at IS NOT NULL
          AND {sql_coarse_decided("nsfw_level", "nsfw_flag", definition)}"""


def _keyed_rows(rows: str) -> str:
    """``rows`` with each creator's 64-bit key ``ckey`` and ``cother`` (not a pseudonym).

    Every importer writes a creator as a pseudonym of 16 lower-case hex digits
    (:data:`civitai_study.pseudonymise.HASH_HEX_CHARS`, a keyed hash) or, when it is missing, as
    'unknown'. A pseudonym's key is its own number, one-to-one and independent of the DuckDB
    version, so ``ORDER BY cother, ckey`` is the creators' sorted order for these values. Any
    other value (``cother``) is keyed by its MD5 and ordered after the pseudonyms, by that key:
    a different order than the strings', which changes which creators share a bucket past the
    cluster limit (still one bucket per creator, so the clusters stay valid), not the cells.
    """
    return f"""
        SELECT *, CASE WHEN cother THEN md5_number_upper(creator)
                       ELSE {sql_pseudonym_number("creator")} END AS ckey
        FROM (SELECT *, NOT {sql_is_pseudonym("creator")} AS cother FROM ({rows}))"""


def cells(con: duckdb.DuckDBPyConnection, grouping: str, definition: str = "above_pg",
          max_clusters: int | None = None) -> pd.DataFrame:
    """``month, group, creator, n, k`` per creator × month × group.

    Images: rated images with a date (the denominator of every image NSFW share,
    :func:`civitai_study.describe.rated_nsfw_counts`), NSFW under ``definition``. Models
    (``model_type``): models with a dated first version, NSFW by the model's ``nsfw`` flag.

    Bounded at scale: past ``max_clusters`` (default :data:`MAX_CLUSTERS`) creators, DuckDB
    merges creators into that many buckets (the creator's rank among all the snapshot's
    creators, modulo the number of buckets) and sums the cells per bucket, so pandas never holds
    a row per creator; ``frame.attrs["creators_merged"]`` is then the number of creators merged.
    Creators are ranked by an integer key (:func:`_keyed_rows`: the pseudonyms' sorted order),
    so DuckDB never ranks or joins millions of strings. ``creator`` is the creator's rank (its
    bucket when merged), never the pseudonym itself. The ``creator`` grouping (each creator its
    own group) is never merged; see :func:`creator_shift_share`.
    """
    check_definition(definition)
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r}; choose one of {', '.join(GROUPINGS)}")
    limit = MAX_CLUSTERS if max_clusters is None else max_clusters
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_clusters must be a whole number of at least 1, not {limit!r}")
    if grouping == "model_type":
        rows = """
            WITH fv AS (SELECT model_id, min(created_at) AS first_at FROM model_versions
                        GROUP BY model_id)
            SELECT strftime(coalesce(fv.first_at, m.created_at), '%Y-%m') AS month,
                   coalesce(fv.first_at, m.created_at) AS created_at,
                   coalesce(m.type, 'unknown') AS model_type,
                   coalesce(m.creator_hash, 'unknown') AS creator,
                   coalesce(m.nsfw, false) AS nsfw
            FROM models m LEFT JOIN fv ON fv.model_id = m.id
            WHERE coalesce(fv.first_at, m.created_at) IS NOT NULL"""
    else:
        rows = _image_sql(definition)
    group = {"base_model": "coalesce(r.base_model, 'unknown')", "creator": "r.creator",
             "model_type": "r.model_type",
             "creator_cohort": "strftime(c.first_at, '%Y') || '-Q' || "
                               "CAST(quarter(c.first_at) AS VARCHAR)"}[grouping]
    # A creator's number is its rank in sorted order (the creators' integer keys sort as their
    # pseudonyms do: _keyed_rows); past the limit the rank modulo the limit is its bucket, so
    # every bucket holds about as many creators, and cells are summed per bucket. One aggregate
    # over the rows gives the ranks, the count and each creator's first upload; ranking and
    # joining integer keys instead of strings, with the rows streamed rather than materialised,
    # keeps DuckDB's memory flat from thousands to millions of creators.
    creator = "c.rank" if grouping == "creator" else \
        f"CASE WHEN c.n_creators > {limit} THEN c.rank % {limit} ELSE c.rank END"
    frame = con.execute(f"""
        WITH r AS NOT MATERIALIZED ({_keyed_rows(rows)}),
        c AS (SELECT ckey, cother, min(created_at) AS first_at,
                     dense_rank() OVER (ORDER BY cother, ckey) - 1 AS rank,
                     count(*) OVER () AS n_creators
              FROM r GROUP BY ckey, cother)
        SELECT r.month, {group} AS "group", {creator} AS creator, count(*) AS n,
               count(*) FILTER (WHERE r.nsfw) AS k, max(c.n_creators) AS n_creators
        FROM r JOIN c USING (ckey, cother)
        GROUP BY r.month, "group", {creator}""").df()
    counts = frame.pop("n_creators")
    n_creators = int(counts.max()) if len(frame) else 0
    merged = grouping != "creator" and n_creators > limit
    if grouping == "base_model" and len(frame):
        totals = frame.groupby("group")["n"].sum()
        rare = totals.index[totals < RARE_SHARE * totals.sum()]
        frame.loc[frame["group"].isin(rare), "group"] = "other (rare)"
        frame = frame.groupby(["month", "group", "creator"], as_index=False)[["n", "k"]].sum()
    frame = frame.sort_values(["month", "group", "creator"], ignore_index=True)
    if merged:
        frame.attrs["creators_merged"] = int(n_creators)
    return frame


def window_months(months: list[str], window: int = WINDOW_MONTHS) -> tuple[list[str], list[str]]:
    """The first and the last ``window`` months (half the months each when there are fewer
    than ``2 * window``)."""
    months = sorted(months)
    if len(months) < 2 * window:
        window = max(1, len(months) // 2)
    return months[:window], months[-window:]


def _window_labels(start: list[str], end: list[str]) -> dict[str, str]:
    """``window_start``/``window_end`` columns: each window's first and last month."""
    return {"window_start": f"{start[0]}..{start[-1]}", "window_end": f"{end[0]}..{end[-1]}"}


def split_change(both: pd.DataFrame) -> dict[str, Any]:
    """The shift-share identity on per-group window totals ``n0, k0, n1, k1`` (one row a group).

    ``w`` is a group's share of the window's units and ``s`` its NSFW share; a group seen in one
    window only has no within-change (its entry or exit is all mix).
    """
    w0 = both["n0"] / both["n0"].sum()
    w1 = both["n1"] / both["n1"].sum()
    s0 = (both["k0"] / both["n0"].where(both["n0"] > 0)).astype(float)
    s1 = (both["k1"] / both["n1"].where(both["n1"] > 0)).astype(float)
    s0, s1 = s0.fillna(s1), s1.fillna(s0)
    within = float(((w0 + w1) / 2 * (s1 - s0)).sum())
    mix = float(((s0 + s1) / 2 * (w1 - w0)).sum())
    share0 = float((w0 * s0).sum())
    share1 = float((w1 * s1).sum())
    return {"share_start": share0, "share_end": share1, "change": share1 - share0,
            "within": within, "mix": mix, "n_groups": int(len(both)),
            "n_groups_both_windows": int(((both["n0"] > 0) & (both["n1"] > 0)).sum())}


def shift_share(frame: pd.DataFrame, window: int = WINDOW_MONTHS) -> dict[str, Any]:
    """Change of the pooled NSFW share between the first and the last ``window`` months, split
    exactly into within-group change and mix change (see the module docstring)."""
    start, end = window_months(list(frame["month"].unique()), window)
    sums = []
    for name, span in (("0", start), ("1", end)):
        sel = frame[frame["month"].isin(span)].groupby("group")[["n", "k"]].sum()
        sums.append(sel.rename(columns={"n": f"n{name}", "k": f"k{name}"}))
    both = sums[0].join(sums[1], how="outer").fillna(0)
    return {**_window_labels(start, end), **split_change(both)}


def creator_shift_share(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                        window: int = WINDOW_MONTHS) -> dict[str, Any] | None:
    """:func:`shift_share` with every creator a group, its window totals summed in DuckDB.

    Why not :func:`cells`: a row per creator and month is tens of millions of rows at the
    paper's scale; the identity needs only each creator's totals in the two windows, which
    come back as four integer columns (in creator order, so sums are deterministic). Creators
    are grouped by their integer key (:func:`_keyed_rows`), which holds less than the pseudonym
    strings would.
    """
    check_definition(definition)
    rated = _image_sql(definition)
    months = [m for (m,) in con.execute(f"SELECT DISTINCT month FROM ({rated})").fetchall()]
    if not months:
        return None
    start, end = window_months(months, window)

    def within(span: list[str]) -> str:
        return f"list_contains({sql_list(span)}, month)"

    both = con.execute(f"""
        SELECT n0, k0, n1, k1 FROM (
            SELECT cother, ckey,
                   count(*) FILTER (WHERE {within(start)}) AS n0,
                   count(*) FILTER (WHERE {within(start)} AND nsfw) AS k0,
                   count(*) FILTER (WHERE {within(end)}) AS n1,
                   count(*) FILTER (WHERE {within(end)} AND nsfw) AS k1
            FROM ({_keyed_rows(rated)}) GROUP BY cother, ckey)
        WHERE n0 + n1 > 0 ORDER BY cother, ckey""").df()
    return {**_window_labels(start, end), **split_change(both)}


def clustered_trend(frame: pd.DataFrame, fixed_effects: bool) -> dict[str, Any]:
    """Odds ratio per year of the NSFW share (logit, time in years since 2022-11), with or without
    group fixed effects; SEs clustered by creator. Groups where every or no unit is NSFW carry no
    information on the slope (infinite effect) and are left out of the fixed-effects fit.

    A frame from :func:`cells` whose creators were already merged into buckets in DuckDB says so
    in ``attrs["creators_merged"]``; the notes then name the merge. Those buckets are fixed from
    all the snapshot's creators, so every fit of the table shares them; a frame with more
    creators than ``MAX_CLUSTERS`` that was not merged (a caller's own frame) is bucketed here
    from the creators of the fitted rows instead. Either way the clusters nest the creators."""
    merged = int(frame.attrs.get("creators_merged", 0))
    data = add_time(frame.rename(columns={"month": "period"}), "month")
    note = ""
    columns = ["t"]
    if fixed_effects:
        totals = data.groupby("group")[["n", "k"]].sum()
        informative = totals.index[(totals["k"] > 0) & (totals["k"] < totals["n"])]
        left = int(totals.loc[~totals.index.isin(informative), "n"].sum())
        if left:
            note = f"{left:,} units in groups without variation left out"
        data = data[data["group"].isin(informative)].reset_index(drop=True)
        order = list(totals.loc[informative].sort_values("n", ascending=False).index)
        for group in order[1:]:  # the largest group is the reference
            column = f"group[{group}]"
            data[column] = (data["group"] == group).astype(float)
            columns.append(column)
    if data["period"].nunique() < 4:
        raise ValueError("fewer than 4 months with data: no trend can be estimated")
    clusters = pd.factorize(data["creator"], sort=True)[0]
    if clusters.max() + 1 > MAX_CLUSTERS:
        # Bound memory at scale: creators are merged into MAX_CLUSTERS fixed buckets and the rows
        # summed per bucket, month and group. Clusters that nest the creators keep the SEs valid
        # (creators stay independent across buckets); only the cluster count drops.
        data = data.assign(creator=clusters % MAX_CLUSTERS)
        data = data.groupby(["creator", "period", "t", *columns[1:]], as_index=False,
                            sort=True)[["n", "k"]].sum()
        note = "; ".join(filter(None, [note, f"{clusters.max() + 1:,} creators merged into "
                                              f"{MAX_CLUSTERS:,} clusters"]))
        clusters = data["creator"].to_numpy()
    elif merged:
        note = "; ".join(filter(None, [note, f"{merged:,} creators of the snapshot merged into "
                                              f"{clusters.max() + 1:,} clusters"]))
    endog = np.column_stack([data["k"], data["n"] - data["k"]]).astype(float)
    exog = sm.add_constant(data[columns].astype(float), has_constant="add")
    model = sm.GLM(endog, exog, family=sm.families.Binomial())
    result, notes = _quiet(lambda: model.fit(cov_type="cluster",
                                             cov_kwds={"groups": clusters}))
    ci = np.asarray(result.conf_int())[list(result.params.index).index("t")]
    return {"odds_ratio_per_year": float(np.exp(result.params["t"])),
            "or_ci_low": float(np.exp(ci[0])), "or_ci_high": float(np.exp(ci[1])),
            "p_value": float(result.pvalues["t"]), "n_clusters": int(clusters.max() + 1),
            "notes": "; ".join(filter(None, [note, *notes]))}


def decompose(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
              groupings: tuple[str, ...] = ("base_model", "model_type", "creator_cohort",
                                            "creator"),
              window: int = WINDOW_MONTHS) -> pd.DataFrame:
    """One row per grouping: shift-share split of the NSFW share's change, and the odds ratio per
    year pooled and within groups (fixed effects; none for single creators), SEs by creator."""
    rows = []
    pooled_by_unit: dict[str, dict[str, Any] | ValueError] = {}  # pooled fit: same for all groups
    for grouping in groupings:
        frame: pd.DataFrame | None = None  # the previous cells are not held during the next query
        row: dict[str, Any] = {"grouping": grouping, "unit": GROUPINGS[grouping]["unit"],
                               "groups": GROUPINGS[grouping]["what"],
                               "definition": definition if grouping != "model_type"
                               else "model nsfw flag"}
        if grouping == "creator":  # a group per creator: window totals only, summed in DuckDB
            split = creator_shift_share(con, definition, window)
        else:
            frame = cells(con, grouping, definition)
            split = shift_share(frame, window) if len(frame) else None
        if split is None:
            continue
        row.update(split)
        row["mix_share_of_change"] = (row["mix"] / row["change"] if abs(row["change"]) > 1e-12
                                      else np.nan)
        try:
            unit = row["unit"]
            if unit not in pooled_by_unit:
                if frame is None:  # the pooled fit is the same whatever the image grouping
                    frame = cells(con, "creator_cohort", definition)
                try:
                    pooled_by_unit[unit] = clustered_trend(frame, fixed_effects=False)
                except ValueError as err:  # remembered: the next grouping would fail the same
                    pooled_by_unit[unit] = err
            pooled = pooled_by_unit[unit]
            if isinstance(pooled, ValueError):
                raise pooled
            row.update({f"pooled_{k}": v for k, v in pooled.items() if k != "notes"})
            if grouping != "creator":
                within = clustered_trend(frame, fixed_effects=True)
                row.update({f"within_{k}": v for k, v in within.items()})
        except ValueError as err:
            row["within_notes"] = str(err)
        # Creator clustering allows for a creator's uploads being alike, not for month-level
        # shocks; notebook 03's intervals of the same odds ratio allow for those (clustered by
        # month) and are wider on short snapshots. The table says so rather than pick one.
        row["se_method"] = ("clustered by creator (month-level shocks not allowed for: see "
                            "notebook 03's month-clustered interval of the same odds ratio)")
        row["population"] = ("rated images with a date, per creator, month and group"
                             if row["unit"] == "images"
                             else "models with a dated first version, per creator, month, type")
        rows.append(row)
    return pd.DataFrame(rows)


def finding(table: pd.DataFrame) -> str:
    """One sentence: how much of the NSFW share's change is mix, per grouping."""
    parts = []
    for row in table.itertuples(index=False):
        if pd.isna(row.mix_share_of_change):
            continue
        parts.append(f"{row.grouping.replace('_', ' ')}: {row.mix_share_of_change:.0%} mix")
    return ("Share of the change in the NSFW share that is a change of mix, "
            f"{'; '.join(parts)} (origin {TIME_ORIGIN})") if parts else "no change to decompose"
