"""The NSFW rise split into within-group change and mix change (table ``nsfw_decomposition.csv``,
:mod:`civitai_study.composition`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import OKABE_ITO, attach_data, finish, new_figure, wrapped
from .volume import _require

LABELS = {"base_model": "base model", "model_type": "model type (models)",
          "creator_cohort": "creator cohort", "creator": "creator"}


def nsfw_decomposition(frame: pd.DataFrame, *, source_label: str, synthetic: bool):
    """Stacked bars per grouping: the change in the NSFW share (percentage points, start window
    to end window) as within-group change plus mix change; the two add up exactly.

    ``frame``: ``grouping, within, mix, change, mix_share_of_change, window_start, window_end``.
    """
    need = ["grouping", "within", "mix", "change", "mix_share_of_change"]
    _require(frame, need, "nsfw_decomposition")
    data = frame[need].copy()
    data["label"] = [LABELS.get(g, g) for g in data["grouping"]]
    fig, ax = new_figure(figsize=(7.0, 3.2))
    y = np.arange(len(data))
    within = 100 * data["within"].to_numpy(dtype=float)
    mix = 100 * data["mix"].to_numpy(dtype=float)
    ax.barh(y, within, color=OKABE_ITO[5], label="within groups")
    ax.barh(y, mix, left=np.where(np.sign(mix) == np.sign(within), within, 0), color=OKABE_ITO[1],
            label="mix of groups")
    for yi, total in zip(y, 100 * data["change"].to_numpy(dtype=float), strict=True):
        ax.text(total, yi, f" {total:+.1f} pts", va="center", fontsize=7)
    ax.axvline(0, color="#000000", lw=0.5)
    ax.set_yticks(y, data["label"])
    ax.invert_yaxis()
    ax.set_xlabel("change in the NSFW share, start to end window (percentage points)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    title = decomposition_finding(data)
    finish(fig, wrapped(title), source_label, synthetic)
    return attach_data(fig, data, title)


def decomposition_finding(data: pd.DataFrame) -> str:
    """What share of the change is mix, per grouping (an exact split, no model behind it)."""
    parts = [f"{row.mix_share_of_change:.0%} by {LABELS.get(row.grouping, row.grouping)}"
             for row in data.itertuples(index=False) if pd.notna(row.mix_share_of_change)]
    if not parts:
        return "The NSFW share did not change between the start and end windows"
    return ("A change in the mix of groups accounts for " + ", ".join(parts)
            + " of the change in the NSFW share; the rest is change within groups")
