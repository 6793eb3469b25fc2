"""Coded subculture categories (notebook 04): trends over time and co-occurrence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import OKABE_ITO, attach_data, finish, month_axis, new_figure, pct
from .volume import _require


def categories_over_time(frame: pd.DataFrame, *, field: str = "prompt", source_label: str,
                         synthetic: bool):
    """Monthly share of documents (default: prompts) coded with each category.

    ``frame``: ``month, category, field, n_documents, share`` (``coded_categories_by_month.csv``).
    """
    _require(frame, ["month", "category", "field", "share"], "categories_over_time")
    part = frame[frame["field"] == field]
    if part.empty:
        raise ValueError(f"categories_over_time: no rows for field {field!r}; fields present: "
                         f"{sorted(frame['field'].unique())}")
    wide = part.pivot_table(index="month", columns="category", values="share",
                            aggfunc="sum").sort_index().fillna(0.0)
    wide = wide[wide.mean().sort_values(ascending=False, kind="stable").index]
    months = list(wide.index)
    fig, ax = new_figure()
    x = np.arange(len(months))
    for k, category in enumerate(wide.columns):
        ax.plot(x, wide[category], color=OKABE_ITO[k % 8], ls=("-", "--")[(k // 8) % 2], lw=1.3,
                label=category)
    month_axis(ax, months)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("upload month (UTC)")
    ax.set_ylabel(f"{field}s coded with the category (%)")
    ax.legend(title="category", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    first, last = wide.iloc[:6].mean(), wide.iloc[-6:].mean()
    change = (last - first).sort_values(ascending=False, kind="stable")
    riser = change.index[0]
    title = (f"'{riser}' vocabulary grew most: from {pct(first[riser])} to {pct(last[riser])} of "
             f"{field}s (first vs last 6 months)")
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
    off = shares.where(~np.eye(len(shares), dtype=bool)).stack()
    (a, b), top = off.idxmax(), off.max()
    title = f"Categories travel together: {pct(top)} of '{a}' prompts also use '{b}' vocabulary"
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, shares, title)
