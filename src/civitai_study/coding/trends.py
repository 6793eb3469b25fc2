"""Trends of coded category shares over time, with notebook 03's statistics.

Why reuse :mod:`civitai_study.trends`: the category shares must be judged by the same model as
the NSFW share (binomial GLM of monthly counts, quasi-binomial errors for overdispersion, time in
years since 2022-11), so that "booru vocabulary rose" and "NSFW rose" are comparable statements.
This module only reshapes the coder's monthly table into that function's input.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..trends import TrendError, add_time, fit_binomial, slope_row


def share_trends(by_month: pd.DataFrame, field: str = "prompt", se: str = "quasi"
                 ) -> pd.DataFrame:
    """Odds ratio per year of each category's share of coded documents in ``field``.

    ``by_month``: the coder's ``categories_by_month`` table. Month ``unknown`` (documents
    without a date) is left out and its documents counted in ``n_undated``. A category whose
    model cannot be fitted (too few months, no variation) gets NaN and a note, not an error.
    """
    data = by_month[by_month["field"] == field]
    undated = data[data["month"] == "unknown"]
    data = data[data["month"] != "unknown"]
    if data.empty:
        raise ValueError(f"no dated months for field {field!r} in the coded table")
    rows = []
    for cat, group in data.groupby("category", sort=True):
        frame = pd.DataFrame({"period": group["month"].to_numpy(),
                              "k": group["n_documents"].to_numpy(),
                              "n": group["n_total"].to_numpy()})
        frame = add_time(frame, "month")
        labels = {"field": field, "category": cat,
                  "n_undated": int(undated.loc[undated["category"] == cat, "n_total"].sum())}
        try:
            if frame["k"].sum() == 0 or (frame["k"] == frame["n"]).all():
                raise TrendError("no variation: the category is never or always present")
            fit = fit_binomial(frame, ["t"], se=se, name=f"{field}: {cat}",
                               population=f"coded {field} documents per month")
            rows.append(slope_row(fit, **labels))
        except TrendError as err:
            rows.append({**labels, "odds_ratio_per_year": np.nan, "notes": str(err)})
    return pd.DataFrame(rows)
