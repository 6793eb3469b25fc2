"""The tidy tables the figures plot, computed from a snapshot when no earlier notebook wrote them.

Notebooks 02–04 write most of these tables; notebook 05 reads them from ``ctx.tables_dir`` so that
a figure shows exactly the numbers a reviewer finds in the CSV. When a table is missing (a run
with ``--only 05``, or a notebook that does not write it), the function notebook 02 uses
(``civitai_study.describe``), or one here, computes it with DuckDB over the snapshot, and
:func:`figure_table` writes it so the figure still has a table behind it. Every query sorts its
rows, so the CSVs are byte-stable.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from .. import composition, describe
from ..paths import DATA_DIR, display_path

MONTH = "strftime(created_at, '%Y-%m')"

#: Promotional / quality prompt tags traced by the paper's Figure 6 lead (study.md).
PROMO_TERMS = ("masterpiece", "best quality", "high quality", "8k", "ultra detailed",
               "score_9", "score_8_up")

#: A deliberately small stand-in lexicon, used only when notebook 04's coded tables are missing.
#: The citable codebook lives in ``data/codebook/``; footers say when this stand-in was used.
FALLBACK_LEXICON: dict[str, tuple[str, ...]] = {
    "booru conventions": ("1girl", "solo", "looking at viewer", "1boy", "cowboy shot"),
    "quality and promotion": ("masterpiece", "best quality", "score_9", "score_8_up", "8k"),
    "body-focused": ("large breasts", "cleavage", "thighs", "skinny", "curvy"),
    "explicit acts": ("nude", "sex", "nsfw", "naked", "porn"),
    "real-person markers": ("celebrity", "instagram", "actress", "photo of", "real person"),
}

#: Platform events (``../shared/docs/study.md``), used when ``data/events.csv`` is absent.
DEFAULT_EVENTS = pd.DataFrame({
    "date": ["2023-04-07", "2023-07-26", "2023-11-01", "2024-01-01", "2024-03-13", "2024-08-01",
             "2025-05-22"],
    "event": ["/images API", "SDXL 1.0", "Bounties", "Pony V6 XL", "NSFW-level rework",
              "FLUX.1", "real-person models removed"],
})


def _word_regex(term: str) -> str:
    """A DuckDB (RE2) pattern matching ``term`` as a whole word in a lower-cased prompt; spaces
    and underscores are interchangeable (``score_9`` = ``score 9``, booru style)."""
    parts = []
    for c in term:
        parts.append("[ _]" if c in " _" else c if c.isalnum() else "\\" + c)
    return f"(^|[^a-z0-9_]){''.join(parts)}($|[^a-z0-9_])"


def promo_terms_by_month(con, terms: tuple[str, ...] = PROMO_TERMS) -> pd.DataFrame:
    """``month, term, n_images, n_with_prompt, share``: images whose prompt uses each term."""
    selects = ", ".join(
        f"count(*) FILTER (WHERE regexp_matches(p, '{_word_regex(t)}')) AS \"{t}\""
        for t in terms)
    wide = con.execute(f"""
        SELECT {MONTH} AS month, count(*) AS n_with_prompt, {selects}
        FROM (SELECT created_at, lower(prompt) AS p FROM images WHERE prompt IS NOT NULL)
        GROUP BY 1 ORDER BY 1""").df()
    long = wide.melt(id_vars=["month", "n_with_prompt"], var_name="term", value_name="n_images")
    long["share"] = long["n_images"] / long["n_with_prompt"]
    long = long.sort_values(["month", "term"], ignore_index=True)
    return long[["month", "term", "n_images", "n_with_prompt", "share"]]


def _coded_flags_sql(lexicon: dict[str, tuple[str, ...]]) -> str:
    parts = []
    for category, terms in lexicon.items():
        pattern = "|".join(_word_regex(t) for t in terms)
        parts.append(f"regexp_matches(p, '{pattern}') AS \"{category}\"")
    return ", ".join(parts)


def coded_categories_by_month(con, lexicon: dict[str, tuple[str, ...]] = FALLBACK_LEXICON
                              ) -> pd.DataFrame:
    """``month, category, field, n_documents, share`` for prompts, with the stand-in lexicon."""
    sums = ", ".join(f"count(*) FILTER (WHERE \"{c}\") AS \"{c}\"" for c in lexicon)
    wide = con.execute(f"""
        SELECT month, count(*) AS n_total, {sums}
        FROM (SELECT {MONTH} AS month, {_coded_flags_sql(lexicon)}
              FROM (SELECT created_at, lower(prompt) AS p FROM images WHERE prompt IS NOT NULL))
        GROUP BY 1 ORDER BY 1""").df()
    long = wide.melt(id_vars=["month", "n_total"], var_name="category", value_name="n_documents")
    long["field"] = "prompt"
    long["share"] = long["n_documents"] / long["n_total"]
    long = long.sort_values(["month", "category"], ignore_index=True)
    return long[["month", "category", "field", "n_documents", "share"]]


def coded_terms(con, lexicon: dict[str, tuple[str, ...]] = FALLBACK_LEXICON) -> pd.DataFrame:
    """``category, term, field, n_documents`` for prompts, with the stand-in lexicon (the layout
    of notebook 04's ``coded_terms.csv``)."""
    pairs = [(c, t) for c, terms in lexicon.items() for t in terms]
    sums = ", ".join(f"count(*) FILTER (WHERE regexp_matches(p, '{_word_regex(t)}')) AS \"{i}\""
                     for i, (_, t) in enumerate(pairs))
    row = con.execute(f"""SELECT {sums} FROM (SELECT lower(prompt) AS p FROM images
                          WHERE prompt IS NOT NULL)""").fetchone()
    frame = pd.DataFrame([(c, t, "prompt", int(n)) for (c, t), n in zip(pairs, row, strict=True)],
                         columns=["category", "term", "field", "n_documents"])
    return frame.sort_values(["category", "term"], ignore_index=True)


def coded_category_cooccurrence(con, lexicon: dict[str, tuple[str, ...]] = FALLBACK_LEXICON
                                ) -> pd.DataFrame:
    """``category_a, category_b, n_documents``: prompts coded with both categories (a == b:
    prompts with that category), upper triangle including the diagonal."""
    names = list(lexicon)
    sums = ", ".join(f"count(*) FILTER (WHERE \"{a}\" AND \"{b}\") AS \"{i}_{j}\""
                     for i, a in enumerate(names) for j, b in enumerate(names) if j >= i)
    row = con.execute(f"""
        SELECT {sums} FROM (SELECT {_coded_flags_sql(lexicon)}
              FROM (SELECT lower(prompt) AS p FROM images WHERE prompt IS NOT NULL))""").df()
    records = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if j >= i:
                records.append((a, b, int(row[f"{i}_{j}"].iloc[0])))
    return pd.DataFrame(records, columns=["category_a", "category_b", "n_documents"])


def blurhash_sample(con, per_level: int = 8, seed: int = 20250507) -> pd.DataFrame:
    """``nsfw_level, blurhash, width, height``: a deterministic sample of BlurHash strings per
    level (never image URLs or ids), for the privacy-preserving stand-in of the image grid.

    Per level, the ``per_level`` rows with the smallest ``hash(id + seed)`` (ties by id). A
    bounded top-N aggregate (``min_by(..., n)``) keeps only that many rows per level in memory,
    where a window over every row would sort the whole table (the 40M-image peak of notebook 05).
    """
    return con.execute(f"""
        WITH top AS (
          SELECT CAST(nsfw_level AS INTEGER) AS nsfw_level,
                 min_by({{'blurhash': blurhash, 'width': width, 'height': height}},
                        {{'h': hash(id + {int(seed)}), 'id': id}}, {int(per_level)}) AS picks
          FROM images WHERE blurhash IS NOT NULL AND nsfw_level IN (1, 2, 4, 8, 16)
          GROUP BY 1)
        SELECT nsfw_level, picks[r].blurhash AS blurhash, picks[r].width AS width,
               picks[r].height AS height
        FROM top, generate_series(1, len(picks)) AS g(r)
        ORDER BY nsfw_level, r""").df()


def events(path=None) -> pd.DataFrame:
    """``date, event``: platform events for breakpoints (``data/events.csv`` when present)."""
    path = path or DATA_DIR / "events.csv"
    if path.is_file():
        frame = pd.read_csv(path)
        label = "event" if "event" in frame.columns else frame.columns[1]
        return frame.rename(columns={label: "event"})[["date", "event"]]
    return DEFAULT_EVENTS.copy()


#: Table file name → function computing it from a DuckDB connection over the snapshot.
COMPUTE: dict[str, Callable] = {
    "images_by_month.csv": describe.images_by_month,
    "nsfw_share_by_level_month.csv": describe.images_by_month_level,
    "models_by_month.csv": describe.models_by_month,
    "models_by_type_month.csv": describe.models_by_type_month,
    "base_models_by_month.csv": describe.base_models_by_month,
    "poi_by_group.csv": describe.poi_by_group,
    "gender_proxy.csv": describe.gender_proxy,
    "top_model_tags.csv": describe.top_model_tags,
    "tag_log_odds_nsfw.csv": lambda con: describe.tag_log_odds(con, "nsfw", n=20),
    "tag_log_odds_poi.csv": lambda con: describe.tag_log_odds(con, "poi", n=20),
    "lorenz.csv": describe.lorenz,
    "promo_terms_by_month.csv": promo_terms_by_month,
    "coded_categories_by_month.csv": coded_categories_by_month,
    "coding_cooccurrence.csv": coded_category_cooccurrence,
    "coded_terms.csv": coded_terms,
    "blurhash_sample.csv": blurhash_sample,
    "nsfw_decomposition.csv": composition.decompose,
}


def figure_table(ctx, name: str, con=None) -> pd.DataFrame:
    """Read table ``name`` from ``ctx.tables_dir``; if no earlier notebook wrote it, compute it
    from the snapshot, write it (so the figure has a table behind it) and say so."""
    path = ctx.tables_dir / name
    if path.is_file():
        print(f"read {name}")
        return pd.read_csv(path)
    if name not in COMPUTE:
        raise FileNotFoundError(f"{display_path(path)} is missing and notebook 05 cannot compute "
                                "it: run the earlier notebooks first (`civitai-study run`)")
    own = con is None
    con = con or ctx.snapshot.connect()
    try:
        frame = COMPUTE[name](con)
    finally:
        if own:
            con.close()
    ctx.write_table(frame, name)
    return pd.read_csv(path)  # what the figure plots is exactly what the CSV holds
