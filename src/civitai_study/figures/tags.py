"""Tags: frequencies (paper Fig. 5), over-represented tags, promotional tags (paper Fig. 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..redact import redact_terms
from .style import OKABE_ITO, attach_data, finish, month_axis, new_figure, pct
from .volume import _require


def top_tags(frame: pd.DataFrame, *, n_models_total: int | None = None, top: int = 25,
             sensitive: set[str] | None = None, redact: bool = True, source_label: str,
             synthetic: bool):
    """The most frequent model tags, as counts (and shares of all models when the total is known).

    ``frame``: ``tag, n_models`` (table ``top_model_tags.csv``). Real people's names among the
    tags are masked when ``redact`` (``sensitive``: the names to mask).
    """
    _require(frame, ["tag", "n_models"], "top_tags")
    data = frame.sort_values(["n_models", "tag"], ascending=[False, True]).head(top).copy()
    data["label"] = redact_terms(data["tag"].astype(str), sensitive or set(), redact)
    if n_models_total:
        data["share"] = data["n_models"] / n_models_total
    fig, ax = new_figure(figsize=(6.5, 6.0))
    y = np.arange(len(data))[::-1]
    ax.barh(y, data["n_models"], color=OKABE_ITO[4], height=0.75)
    ax.set_yticks(y, data["label"])
    ax.set_xlabel("models carrying the tag (count)")
    ax.set_ylabel("model tag")
    three = ", ".join(f"'{t}'" for t in data["label"].head(3))
    title = f"{three} are the most frequent model tags"
    if n_models_total:
        title += f" ('{data['label'].iloc[0]}' on {pct(data['share'].iloc[0])} of models)"
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, data.reset_index(drop=True), title)


def overrepresented_tags(frame: pd.DataFrame, *, top: int = 15, sensitive: set[str] | None = None,
                         redact: bool = True, source_label: str, synthetic: bool):
    """Tags most over-represented among NSFW models and among real-person models (weighted
    log-odds z-scores with an informative Dirichlet prior, Monroe et al. 2008).

    ``frame``: ``comparison, tag, z`` (tables ``tag_log_odds_nsfw.csv`` and ``_poi.csv``;
    ``term``, the column of :func:`civitai_study.logodds.weighted_log_odds`, is accepted too).
    """
    if "tag" in frame.columns:
        frame = frame.rename(columns={"tag": "term"})
    _require(frame, ["comparison", "term", "z"], "overrepresented_tags")
    comparisons = list(dict.fromkeys(frame["comparison"]))[:2]
    fig, axes = new_figure(1, len(comparisons), figsize=(8.5, 5.2), squeeze=False)
    parts, leaders = [], []
    for ax, comparison, color in zip(axes[0], comparisons, (OKABE_ITO[5], OKABE_ITO[6]),
                                     strict=False):
        part = (frame[frame["comparison"] == comparison]
                .sort_values(["z", "term"], ascending=[False, True]).head(top).copy())
        part["label"] = redact_terms(part["term"].astype(str), sensitive or set(), redact)
        parts.append(part)
        leaders.append(f"'{part['label'].iloc[0]}' ({comparison})")
        y = np.arange(len(part))[::-1]
        ax.barh(y, part["z"], color=color, height=0.75)
        ax.set_yticks(y, part["label"])
        ax.set_xlabel("weighted log-odds z-score (SD units)")
        ax.set_title(comparison, fontsize=8.5)
    axes[0][0].set_ylabel("model tag")
    title = "Most over-represented tags: " + "; ".join(leaders)
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, pd.concat(parts, ignore_index=True), title)


def promotional_tags(frame: pd.DataFrame, *, source_label: str, synthetic: bool):
    """Share of prompts per month using each promotional / quality tag (paper Fig. 6).

    ``frame``: ``month, term, n_images, n_with_prompt, share`` (``promo_terms_by_month.csv``).
    """
    _require(frame, ["month", "term", "share"], "promotional_tags")
    wide = frame.pivot_table(index="month", columns="term", values="share",
                             aggfunc="sum").sort_index().fillna(0.0)
    order = wide.mean().sort_values(ascending=False, kind="stable").index
    wide = wide[order]
    months = list(wide.index)
    fig, ax = new_figure()
    x = np.arange(len(months))
    styles = ["-", "--", "-.", ":"]
    for k, term in enumerate(wide.columns):
        ax.plot(x, wide[term], color=OKABE_ITO[k % 8], ls=styles[(k // 8) % 4], lw=1.3,
                label=term)
    month_axis(ax, months)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("upload month (UTC)")
    ax.set_ylabel("prompts using the tag (%)")
    ax.legend(title="prompt tag", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    top_term = wide.columns[0]
    recent = wide.iloc[-6:].mean()
    title = (f"'{top_term}' is the most used promotional tag; in the last 6 months "
             f"'{recent.idxmax()}' appears in {pct(recent.max())} of prompts")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, wide, title)
