"""Coded subculture categories (notebook 04): trends over time, shares by NSFW level,
co-occurrence, and the coding's reliability."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullFormatter

from ..nsfw import LEVEL_LABELS
from .style import (
    OKABE_ITO,
    attach_data,
    comparison_window,
    finish,
    level_color,
    month_axis,
    new_figure,
    pct,
    wrapped,
)
from .volume import _require


def categories_over_time(frame: pd.DataFrame, *, field: str = "prompt",
                         trends: pd.DataFrame | None = None,
                         within: pd.DataFrame | None = None,
                         unreliable: list[str] | tuple[str, ...] | set[str] | frozenset[str] = (),
                         validity: pd.DataFrame | None = None,
                         source_label: str, synthetic: bool):
    """Monthly share of documents (default: prompts) coded with each category, all NSFW levels
    pooled.

    ``frame``: ``month, category, field, n_documents, share`` (``coded_categories_by_month.csv``);
    documents without a date (month ``unknown``) are left out. ``trends`` (optional):
    ``category, odds_ratio_per_year`` (``coding_share_trends.csv``) adds each category's fitted
    pooled odds ratio per year to its legend entry. ``within`` (optional): ``category,
    odds_ratio_per_year, or_ci_low, or_ci_high`` within NSFW level (``coding_within_level_trends
    .csv``); the title then says whether the largest pooled change holds within level, so it
    never claims a rise that is only the NSFW mix. ``unreliable``: categories below a gate
    (measured precision, ``coding.validity.gate``, or reliability alpha): drawn grey, labelled
    "not reliable enough for a trend claim", and never named as a trend in the title.
    ``validity`` (optional): ``category, precision, recall`` (``coding_validity.csv``) adds each
    category's measured precision and recall to its legend.
    """
    _require(frame, ["month", "category", "field", "share"], "categories_over_time")
    part = frame[(frame["field"] == field)
                 & frame["month"].astype(str).str.fullmatch(r"\d{4}-\d{2}")]
    if part.empty:
        raise ValueError(f"categories_over_time: no rows for field {field!r}; fields present: "
                         f"{sorted(frame['field'].unique())}")
    wide = part.pivot_table(index="month", columns="category", values="share",
                            aggfunc="sum").sort_index().fillna(0.0)
    wide = wide[wide.mean().sort_values(ascending=False, kind="stable").index]
    months = list(wide.index)
    fig, ax = new_figure()
    x = np.arange(len(months))
    odds = ({} if trends is None or "odds_ratio_per_year" not in trends.columns else
            trends.dropna(subset=["odds_ratio_per_year"])
            .set_index("category")["odds_ratio_per_year"].to_dict())
    measured = ({} if validity is None or "precision" not in validity.columns else
                validity.dropna(subset=["precision"]).set_index("category")
                [["precision", "recall"]].to_dict("index"))
    for k, category in enumerate(wide.columns):
        label = (f"{category} (odds ×{odds[category]:.2f}/year)" if category in odds
                 else category)
        if category in measured:
            m = measured[category]
            label += f"; P {m['precision']:.2f}, R {m['recall']:.2f}"
        if category in unreliable:
            ax.plot(x, wide[category], color="#b0b0b0", ls=":", lw=1.0,
                    label=f"{label}: not reliable enough for a trend claim")
            continue
        ax.plot(x, wide[category], color=OKABE_ITO[k % 8], ls=("-", "--")[(k // 8) % 2], lw=1.3,
                label=label)
    month_axis(ax, months)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("upload month (UTC)")
    ax.set_ylabel(f"{field}s coded with the category (%)")
    ax.legend(title="category" + (" (fitted trend)" if odds else ""), loc="upper left",
              bbox_to_anchor=(1.0, 1.0), fontsize=7)
    title = over_time_finding(wide, field, within, unreliable)
    finish(fig, wrapped(title), source_label, synthetic)
    return attach_data(fig, wide, title)


def over_time_finding(wide: pd.DataFrame, field: str, within: pd.DataFrame | None,
                      unreliable: list[str] | tuple[str, ...] = ()) -> str:
    """Title of the pooled share-over-time figure: the largest pooled change, said to be pooled,
    and whether it holds within NSFW level (a pooled rise can be the NSFW mix alone)."""
    w = comparison_window(len(wide), 6)
    first, last = wide.iloc[:w].mean(), wide.iloc[-w:].mean()
    change = (last - first).sort_values(ascending=False, kind="stable")
    change = change[[c not in unreliable for c in change.index]]
    if change.empty:
        return (f"Share of {field}s per coded category; no category passed the reliability and "
                "validity gates, so no trend is claimed")
    riser = change.index[0]
    pooled = (f"'{riser}' share of {field}s changed most with all NSFW levels pooled "
              f"({pct(first[riser])} → {pct(last[riser])}, first vs last {w} months)")
    if within is not None and "within_or_ci_low" in within.columns:  # marginal_and_within table
        within = within.rename(columns={"within_odds_ratio_per_year": "odds_ratio_per_year",
                                        "within_or_ci_low": "or_ci_low",
                                        "within_or_ci_high": "or_ci_high"})
    rows = (within.set_index("category") if within is not None
            and "or_ci_low" in within.columns else None)
    if rows is None or riser not in rows.index or pd.isna(rows.loc[riser, "or_ci_low"]):
        return pooled + "; not adjusted for the NSFW mix"
    row = rows.loc[riser]
    interval = (f"odds ×{row['odds_ratio_per_year']:.2f}/year "
                f"({row['or_ci_low']:.2f}–{row['or_ci_high']:.2f})")
    if row["or_ci_low"] <= 1 <= row["or_ci_high"]:
        return pooled + f"; within NSFW level no clear trend, {interval}"
    return pooled + f"; within NSFW level {interval}"


def within_level(table: pd.DataFrame, *, source_label: str, synthetic: bool):
    """Forest plot: each category's odds ratio per year, pooled over NSFW levels and within level
    (level fixed effects), with 95% intervals; unreliable categories are marked.

    ``table``: :func:`civitai_study.coding.trends.marginal_and_within`'s frame
    (``coding_within_level_trends.csv``).
    """
    need = ["category", "pooled_odds_ratio_per_year", "pooled_or_ci_low", "pooled_or_ci_high",
            "within_odds_ratio_per_year", "within_or_ci_low", "within_or_ci_high", "verdict"]
    _require(table, need, "within_level")
    data = table.sort_values("category", ignore_index=True)
    fig, ax = new_figure(figsize=(7.0, 4.0))
    y = np.arange(len(data))
    for offset, prefix, color, label in ((0.15, "pooled", "#999999", "all levels pooled"),
                                         (-0.15, "within", "#0072B2", "within NSFW level")):
        est = data[f"{prefix}_odds_ratio_per_year"].to_numpy(dtype=float)
        low = data[f"{prefix}_or_ci_low"].to_numpy(dtype=float)
        high = data[f"{prefix}_or_ci_high"].to_numpy(dtype=float)
        ok = np.isfinite(est) & np.isfinite(low) & np.isfinite(high)
        ax.errorbar(est[ok], y[ok] + offset, xerr=[est[ok] - low[ok], high[ok] - est[ok]],
                    fmt="o", color=color, ms=4, lw=1.2, capsize=2, label=label)
    ax.axvline(1.0, color="#444444", lw=0.8, ls="--")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [v for v in (0.25, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0)
             if low <= v <= high]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_formatter(NullFormatter())
    names = [c + (" [not reliable]" if "trend_claim" in data and
                  str(data.loc[i, "trend_claim"]).startswith("not reliable") else "")
             for i, c in enumerate(data["category"])]
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("odds ratio per year of the category's share of prompts (log scale)")
    ax.legend(fontsize=7, loc="lower right")
    title = within_level_finding(data)
    finish(fig, wrapped(title), source_label, synthetic)
    return attach_data(fig, data, title)


def within_level_finding(table: pd.DataFrame) -> str:
    """How many pooled rises hold within NSFW level (only reliable categories can 'rise')."""
    pooled_up = table[table["pooled_or_ci_low"] > 1]
    vanish = pooled_up[pooled_up["verdict"].str.startswith("pooled rise disappears")]
    rises = table[table["verdict"] == "rises within level"]
    if "trend_claim" in table:
        rises = rises[~rises["trend_claim"].astype(str).str.startswith("not reliable")]
    text = (f"{len(vanish)} of {len(pooled_up)} pooled rises in coded vocabulary disappear "
            "within NSFW level")
    if len(rises):
        text += "; rising within level: " + ", ".join(f"'{c}'" for c in rises["category"])
    else:
        text += "; no reliably coded category rises within level"
    return text


def cooccurrence_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Row-conditional shares: of the documents coded with row category A, the share also coded
    with column category B (diagonal = 1). Needs the diagonal counts (A == B)."""
    _require(frame, ["category_a", "category_b", "n_documents"], "category_cooccurrence")
    names = sorted(set(frame["category_a"]) | set(frame["category_b"]))
    counts = pd.DataFrame(0.0, index=names, columns=names)
    for row in frame.itertuples(index=False):
        counts.loc[row.category_a, row.category_b] = row.n_documents
        counts.loc[row.category_b, row.category_a] = row.n_documents
    diagonal = pd.Series(np.diag(counts), index=names)
    return counts.div(diagonal.where(diagonal > 0), axis=0)


#: Pairs met in fewer documents than this are not named in a title (their lift is noisy).
MIN_PAIR_DOCUMENTS = 30


def cooccurrence_finding(frame: pd.DataFrame, shares: pd.DataFrame) -> str:
    """The title: the pair that meets most above independence (lift) when the table has it,
    else the highest conditional share."""
    if "lift" in frame.columns:
        pairs = frame[(frame["category_a"] < frame["category_b"])
                      & (frame["n_documents"] >= MIN_PAIR_DOCUMENTS)].dropna(subset=["lift"])
        if len(pairs):
            top = pairs.sort_values(["lift", "category_a", "category_b"],
                                    ascending=[False, True, True]).iloc[0]
            return (f"'{top.category_a}' and '{top.category_b}' vocabulary meet {top.lift:.1f}× "
                    f"as often as if independent ({int(top.n_documents):,} prompts)")
    off = shares.where(~np.eye(len(shares), dtype=bool)).stack()
    (a, b), top_share = off.idxmax(), off.max()
    return (f"Categories travel together: {pct(top_share)} of '{a}' prompts also use '{b}' "
            "vocabulary")


def category_cooccurrence(frame: pd.DataFrame, *, source_label: str, synthetic: bool):
    """Heatmap: how often documents coded with one category also carry another.

    ``frame``: ``category_a, category_b, n_documents`` (``coding_cooccurrence.csv``).
    """
    shares = cooccurrence_matrix(frame)
    fig, ax = new_figure(figsize=(6.8, 5.4))
    image = ax.imshow(shares.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(shares)), shares.columns, rotation=35, ha="right")
    ax.set_yticks(range(len(shares)), shares.index)
    for i in range(len(shares)):
        for j in range(len(shares)):
            value = shares.iat[i, j]
            if np.isfinite(value):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
    ax.set_xlabel("also coded with (column category)")
    ax.set_ylabel("documents coded with (row category)")
    fig.colorbar(image, ax=ax, label="share of the row's documents (%)", shrink=0.8,
                 format=lambda v, _: f"{100 * v:.0f}")
    title = cooccurrence_finding(frame, shares)
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, shares, title)


#: Image NSFW levels (labels, as in ``coded_categories_by_nsfw_level.csv``) in display order.
PROMPT_LEVELS = ("PG", "PG-13", "R", "X", "XXX")


def level_shares(frame: pd.DataFrame, field: str = "prompt",
                 levels: tuple[str, ...] = PROMPT_LEVELS,
                 categories: list[str] | None = None) -> pd.DataFrame:
    """Category × NSFW level shares (the numbers notebook 04 prints), levels in ``levels`` order.

    ``frame``: ``nsfw_level, category, field, share`` (``coded_categories_by_nsfw_level.csv``).
    """
    _require(frame, ["nsfw_level", "category", "field", "share"], "shares_by_level")
    part = frame[(frame["field"] == field) & frame["nsfw_level"].isin(levels)]
    if part.empty:
        raise ValueError(f"shares_by_level: no rows for field {field!r} at levels {list(levels)}; "
                         f"levels present: {sorted(frame['nsfw_level'].astype(str).unique())}")
    wide = part.pivot(index="category", columns="nsfw_level", values="share")
    wide = wide[[lv for lv in levels if lv in wide.columns]]
    if categories is not None:
        wide = wide.reindex([c for c in categories if c in wide.index])
    wide.columns.name = "nsfw_level"
    return wide


def shares_by_level(frame: pd.DataFrame, *, field: str = "prompt",
                    levels: tuple[str, ...] = PROMPT_LEVELS, categories: list[str] | None = None,
                    source_label: str, synthetic: bool):
    """Grouped bars: share of documents coded with each category, per image NSFW level (each
    level in its one colour). If a vocabulary were incidental, its share would not rise with the
    level; the title names the category whose share rises most from the lowest to the highest
    level shown.

    ``frame``: ``nsfw_level, category, field, share`` (``coded_categories_by_nsfw_level.csv``);
    ``categories``: display order (default: the table's, alphabetical).
    """
    wide = level_shares(frame, field, levels, categories)
    codes = {label: code for code, label in LEVEL_LABELS.items()}
    fig, ax = new_figure(figsize=(7.5, 4.0))
    x = np.arange(len(wide.index))
    width = 0.8 / len(wide.columns)
    for k, level in enumerate(wide.columns):
        ax.bar(x - 0.4 + (k + 0.5) * width, wide[level].to_numpy(dtype=float), width,
               color=level_color(codes.get(level, -1)), label=level, edgecolor="white",
               linewidth=0.3)
    ax.set_xticks(x, wide.index, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("codebook category")
    ax.set_ylabel(f"{field}s coded with the category (%)")
    ax.legend(title="image NSFW level", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    low, high = wide.columns[0], wide.columns[-1]
    rise = (wide[high] - wide[low]).dropna().sort_values(ascending=False, kind="stable")
    top = rise.index[0]
    verb = "rises most" if rise.iloc[0] > 0 else "does not rise"
    title = (f"'{top}' vocabulary {verb} with the NSFW level: {pct(wide.loc[top, low])} of "
             f"{low} {field}s, {pct(wide.loc[top, high])} of {high} {field}s")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, wide, title)


#: Agreement measures drawn by :func:`reliability`: column, legend label, why it can be undefined.
RELIABILITY_MEASURES = (
    ("cohen_kappa", "Cohen's kappa", "undefined (no variation)"),
    ("krippendorff_alpha", "Krippendorff's alpha", "undefined (no variation)"),
    ("auto_precision", "automatic coder: precision", "undefined (no automatic positives)"),
    ("auto_recall", "automatic coder: recall", "undefined (no consensus positives)"),
)
RELIABILITY_THRESHOLDS = (0.667, 0.8)


def reliability_long(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per category and measure: ``category, measure, label, value, defined, note``.

    Undefined values (NaN: no variation among the codes, or nothing to divide by) stay NaN with
    ``defined = False`` and a note saying why; they are never drawn as 0.
    """
    columns = [c for c, _, _ in RELIABILITY_MEASURES]
    _require(frame, ["category", *columns], "reliability")
    rows = []
    for row in frame.itertuples(index=False):
        for column, label, why in RELIABILITY_MEASURES:
            value = float(getattr(row, column))
            defined = bool(np.isfinite(value))
            rows.append({"category": row.category, "measure": column, "label": label,
                         "value": value if defined else np.nan, "defined": defined,
                         "note": "" if defined else why})
    return pd.DataFrame(rows)


def reliability(frame: pd.DataFrame, *, demonstration: bool = False, source_label: str,
                synthetic: bool):
    """Agreement per codebook category: Cohen's kappa, Krippendorff's alpha (with its bootstrap
    interval when the table has ``alpha_ci_low``/``alpha_ci_high``), and the automatic coder's
    precision and recall against the adjudicated consensus, with Krippendorff's thresholds
    (0.667 tentative: below it, no trend claim; 0.8 reliable). Undefined values are left out and
    annotated, not drawn as 0.

    ``frame``: ``category, cohen_kappa, krippendorff_alpha, auto_precision, auto_recall``
    (``coding_agreement.csv``). ``demonstration``: the coding file is the simulated
    demonstration; the title says so, because the numbers are then not a reliability result.
    """
    long = reliability_long(frame)
    categories = list(dict.fromkeys(long["category"]))
    fig, ax = new_figure(figsize=(7.5, 4.0))
    x = np.arange(len(categories))
    width = 0.8 / len(RELIABILITY_MEASURES)
    colors = ["#0072B2", "#56B4E9", "#E69F00", "#D55E00"]
    for k, (column, label, _) in enumerate(RELIABILITY_MEASURES):
        part = long[long["measure"] == column].set_index("category").loc[categories]
        pos = x - 0.4 + (k + 0.5) * width
        defined = part["defined"].to_numpy()
        ax.bar(pos[defined], part["value"].to_numpy()[defined], width, color=colors[k],
               label=label)
        for p, note in zip(pos[~defined], part["note"].to_numpy()[~defined], strict=True):
            ax.text(p, 0.03, note, rotation=90, ha="center", va="bottom", fontsize=5.5,
                    color="#444444")
        if column == "krippendorff_alpha" and {"alpha_ci_low", "alpha_ci_high"} <= set(frame):
            ci = frame.set_index("category").loc[categories]
            value = part["value"].to_numpy(dtype=float)
            low, high = (ci[c].to_numpy(dtype=float) for c in ("alpha_ci_low", "alpha_ci_high"))
            ok = defined & np.isfinite(low) & np.isfinite(high)
            ax.errorbar(pos[ok], value[ok], yerr=[value[ok] - low[ok], high[ok] - value[ok]],
                        fmt="none", ecolor="#000000", lw=0.8, capsize=1.5)
    for value, style, words in zip(RELIABILITY_THRESHOLDS, ("--", ":"),
                                   ("tentative", "reliable"), strict=True):
        ax.axhline(value, color="#444444", lw=0.8, ls=style)
        ax.text(len(categories) - 0.45, value, f"{value} {words}", fontsize=6, ha="right",
                va="bottom", color="#444444")
    ax.axhline(0, color="#000000", lw=0.5)
    ax.set_xticks(x, categories, rotation=30, ha="right")
    low = min(-0.3, float(np.nanmin(long["value"])) - 0.05) if long["defined"].any() else -0.3
    ax.set_ylim(low, 1.05)
    ax.set_xlabel("codebook category")
    ax.set_ylabel("agreement coefficient (1 = perfect, 0 = chance)")
    ax.legend(fontsize=6.5, ncols=2, loc="lower left", bbox_to_anchor=(0.0, 1.0))
    title = _reliability_finding(long, demonstration)
    finish(fig, wrapped(title, 110), source_label, synthetic)
    return attach_data(fig, long, title)


def _reliability_finding(long: pd.DataFrame, demonstration: bool) -> str:
    alpha = long[long["measure"] == "krippendorff_alpha"]
    defined = alpha[alpha["defined"]].sort_values(["value", "category"], kind="stable")
    n_undefined = int((~alpha["defined"]).sum())
    prefix = "DEMONSTRATION data: " if demonstration else ""
    if defined.empty:
        return (f"{prefix}Krippendorff's alpha is undefined for every category (no variation): "
                "none is reliable enough for a trend claim")
    reliable = int((defined["value"] >= RELIABILITY_THRESHOLDS[0]).sum())
    best, worst = defined.iloc[-1], defined.iloc[0]
    text = (f"{prefix}{reliable} of {len(defined)} categories reach alpha ≥ "
            f"{RELIABILITY_THRESHOLDS[0]}; highest '{best['category']}' ({best['value']:.2f}), "
            f"lowest '{worst['category']}' ({worst['value']:.2f})")
    if n_undefined:
        text += f"; undefined for {n_undefined} (no variation)"
    failing = len(alpha) - reliable
    if failing:
        text += f"; {failing} not reliable enough for a trend claim"
    return text


def wordcloud_finding(terms: pd.DataFrame, field: str = "prompt") -> str:
    """The one-line finding for the word clouds of coded terms (``coded_terms.csv``): how many
    categories, and which holds the most used single term."""
    _require(terms, ["category", "field", "term", "n_documents"], "wordcloud_finding")
    part = terms[terms["field"] == field]
    categories = sorted(part["category"].unique())
    top = (part.sort_values(["n_documents", "term"], ascending=[False, True])
           .groupby("category").head(1).set_index("category")["n_documents"])
    biggest = top.idxmax() if len(top) else "none"
    return (f"Word clouds of {len(categories)} coded categories; the most used single term "
            f"is in '{biggest}' ({int(top.max()) if len(top) else 0:,} {field}s)")
