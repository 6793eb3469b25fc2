"""Creator concentration: the Lorenz curve of uploads across (pseudonymous) uploaders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import OKABE_ITO, attach_data, finish, new_figure, pct
from .volume import _require


def gini_from_lorenz(x: np.ndarray, y: np.ndarray) -> float:
    """Gini coefficient as 1 − 2 × the area under the Lorenz curve (trapezoids)."""
    return float(1.0 - 2.0 * np.trapezoid(np.asarray(y, float), np.asarray(x, float)))


def creator_lorenz(frame: pd.DataFrame, *, source_label: str, synthetic: bool):
    """Lorenz curves of uploads across (pseudonymous) creators, per unit (images, models), with
    the Gini and the top-10% share.

    ``frame``: ``unit, share_of_creators, share_of_items`` from (0, 0) to (1, 1), creators sorted
    from fewest to most uploads (table ``lorenz.csv``, notebook 02).
    """
    _require(frame, ["unit", "share_of_creators", "share_of_items"], "creator_lorenz")
    fig, ax = new_figure(figsize=(5.4, 4.8))
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--", label="perfect equality")
    rows, colors = [], {"images": OKABE_ITO[4], "models": OKABE_ITO[0]}
    for unit, part in frame.groupby("unit", sort=True):
        part = part.sort_values("share_of_creators")
        x, y = part["share_of_creators"].to_numpy(), part["share_of_items"].to_numpy()
        gini = gini_from_lorenz(x, y)
        top10 = 1.0 - float(np.interp(0.9, x, y))
        rows.append({"unit": unit, "gini": gini, "top10_share": top10, "points": len(part)})
        color = colors.get(unit, OKABE_ITO[len(rows) + 4])
        ax.plot(x, y, color=color, lw=1.8,
                label=f"{unit} (Gini {gini:.2f}; top 10% hold {pct(top10)})")
        ax.fill_between(x, y, x, color=color, alpha=0.12, edgecolor="none")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("creators, from fewest to most uploads (cumulative %)")
    ax.set_ylabel("items uploaded (cumulative %)")
    ax.legend(loc="upper left", fontsize=7)
    summary = pd.DataFrame(rows)
    lead = summary.set_index("unit").iloc[0]
    if "images" in set(summary["unit"]):
        lead = summary.set_index("unit").loc["images"]
    title = (f"Uploads are concentrated: the top 10% of uploaders post {pct(lead['top10_share'])}"
             f" of {lead.name} (Gini {lead['gini']:.2f})")
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, summary, title)
