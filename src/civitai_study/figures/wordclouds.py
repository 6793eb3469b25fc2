"""Word clouds of coded terms, one panel per codebook category, redacted by default.

Word clouds are an illustration, not a measurement (size ~ document frequency, layout random):
they are seeded (``WordCloud(random_state=...)``) so figures are byte-stable, and they pass
through :mod:`civitai_study.redact` so that names of real people and slurs are masked unless a
researcher turns redaction off.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from wordcloud import WordCloud

from ..redact import redact_terms
from .style import OKABE_ITO, add_footer, save_figure

#: Okabe-Ito colours dark enough for text on white (yellow and sky blue read poorly as words).
_CLOUD_COLOURS = [c for c in OKABE_ITO if c not in ("#F0E442", "#56B4E9")] + ["#56B4E9"]


def term_frequencies(term_counts: pd.DataFrame, category: str, field: str = "prompt",
                     sensitive: set[str] | None = None, redact: bool = True) -> dict[str, int]:
    """``term → n_documents`` of one category and field, with sensitive terms masked."""
    rows = term_counts[(term_counts["category"] == category) & (term_counts["field"] == field)
                       & (term_counts["n_documents"] > 0)]
    rows = rows.sort_values(["n_documents", "term"], ascending=[False, True])
    names = redact_terms(rows["term"].astype(str), sensitive or set(), redact)
    out: dict[str, int] = {}
    for name, n in zip(names, rows["n_documents"].astype(int), strict=True):
        out[name] = out.get(name, 0) + n
    return out


def category_wordclouds(term_counts: pd.DataFrame, categories: list[str], field: str = "prompt",
                        sensitive: set[str] | None = None, redact: bool = True,
                        seed: int = 20250507, columns: int = 4, labels: dict[str, str] | None
                        = None, source_label: str = "", synthetic: bool = False) -> plt.Figure:
    """A grid of word clouds, one per category (empty categories say so instead of a cloud)."""
    rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(categories):
            continue
        cat = categories[k]
        freqs = term_frequencies(term_counts, cat, field, sensitive, redact)
        ax.set_title((labels or {}).get(cat, cat), fontsize=8)
        if not freqs:
            ax.text(0.5, 0.5, "no matches", ha="center", va="center", fontsize=7, color="#666")
            continue
        colour = _CLOUD_COLOURS[k % len(_CLOUD_COLOURS)]
        cloud = WordCloud(width=520, height=380, background_color="white", random_state=seed,
                          max_words=60, prefer_horizontal=0.95, collocations=False,
                          color_func=lambda *args, c=colour, **kw: c)
        ax.imshow(cloud.generate_from_frequencies(freqs), interpolation="bilinear")
    fig.suptitle(f"Coded terms per category ({field}; size = documents using the term"
                 f"{'; sensitive terms redacted' if redact else ''})", fontsize=9)
    if source_label:
        add_footer(fig, source_label, synthetic)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    return fig


def save_category_wordclouds(term_counts: pd.DataFrame, categories: list[str], directory: Path,
                             name: str = "coding_wordclouds", **kwargs) -> list[Path]:
    """Draw :func:`category_wordclouds` and save it as PNG + PDF through ``save_figure``."""
    fig = category_wordclouds(term_counts, categories, **kwargs)
    try:
        return save_figure(fig, name, directory)
    finally:
        plt.close(fig)
