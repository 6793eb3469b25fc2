"""Coded subculture categories (notebook 04): trends over time, shares by NSFW level,
co-occurrence, and the coding's reliability."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..nsfw import LEVEL_LABELS
from .style import OKABE_ITO, attach_data, finish, level_color, month_axis, new_figure, pct
from .volume import _require


def categories_over_time(frame: pd.DataFrame, *, field: str = "prompt",
                         trends: pd.DataFrame | None = None, source_label: str, synthetic: bool,
                         unreliable: set[str] | frozenset[str] = frozenset(),
                         validity: pd.DataFrame | None = None):
    """Monthly share of documents (default: prompts) coded with each category.

    ``frame``: ``month, category, field, n_documents, share`` (``coded_categories_by_month.csv``);
    documents without a date (month ``unknown``) are left out. ``trends`` (optional):
    ``category, odds_ratio_per_year`` (``coding_share_trends.csv``) adds each category's fitted
    odds ratio per year to its legend entry. ``unreliable``: categories that failed the validity
    gate (``coding.validity.gate``): drawn grey, labelled "not reliable enough for a trend claim",
    and never named in the title. ``validity`` (optional): ``category, precision, recall``
    (``coding_validity.csv``) adds each category's measured precision and recall to its legend.
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
    first, last = wide.iloc[:6].mean(), wide.iloc[-6:].mean()
    change = (last - first).sort_values(ascending=False, kind="stable")
    change = change[[c not in unreliable for c in change.index]]
    if change.empty:
        title = (f"Share of {field}s per coded category; no category passed the validity gate, "
                 "so no trend is claimed")
    else:
        riser = change.index[0]
        title = (f"'{riser}' vocabulary grew most: from {pct(first[riser])} to "
                 f"{pct(last[riser])} of {field}s (first vs last 6 months)")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, wide, title)


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
    """Agreement per codebook category: Cohen's kappa, Krippendorff's alpha, and the automatic
    coder's precision and recall against the coders' majority, with Krippendorff's thresholds
    (0.667 tentative, 0.8 reliable). Undefined values are left out and annotated, not drawn as 0.

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
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, long, title)


def _reliability_finding(long: pd.DataFrame, demonstration: bool) -> str:
    alpha = long[long["measure"] == "krippendorff_alpha"]
    defined = alpha[alpha["defined"]].sort_values(["value", "category"], kind="stable")
    n_undefined = int((~alpha["defined"]).sum())
    prefix = "DEMONSTRATION data: " if demonstration else ""
    if defined.empty:
        return f"{prefix}Krippendorff's alpha is undefined for every category (no variation)"
    reliable = int((defined["value"] >= RELIABILITY_THRESHOLDS[0]).sum())
    best, worst = defined.iloc[-1], defined.iloc[0]
    text = (f"{prefix}{reliable} of {len(defined)} categories reach alpha ≥ "
            f"{RELIABILITY_THRESHOLDS[0]}; highest '{best['category']}' ({best['value']:.2f}), "
            f"lowest '{worst['category']}' ({worst['value']:.2f})")
    if n_undefined:
        text += f"; undefined for {n_undefined} (no variation)"
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
