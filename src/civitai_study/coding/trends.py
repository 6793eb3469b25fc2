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


#: Image NSFW levels used for within-level trends (unrated, blocked and missing are left out).
WITHIN_LEVELS = ("PG", "PG-13", "R", "X", "XXX")


def within_level_trends(by_month_level: pd.DataFrame, field: str = "prompt",
                        levels: tuple[str, ...] = WITHIN_LEVELS, se: str = "quasi"
                        ) -> pd.DataFrame:
    """Odds ratio per year of each category's share *within* NSFW level (level fixed effects).

    Why: vocabulary tied to explicit images (e.g. 'body') rises whenever the NSFW mix rises,
    even if prompts at every level use it as often as before. With one row per month and level
    and a fixed effect per level, ``exp(t)`` is the common within-level odds ratio per year.
    ``by_month_level``: the coder's ``categories_by_month_level`` table. Levels where a category
    is never or always present carry no information on the slope and are left out (noted).
    """
    data = by_month_level[(by_month_level["field"] == field)
                          & (by_month_level["month"] != "unknown")
                          & by_month_level["nsfw_level"].isin(levels)]
    if data.empty:
        raise ValueError(f"no dated rows at levels {list(levels)} for field {field!r}; pass the "
                         "coder's categories_by_month_level() table")
    rows = []
    for cat, group in data.groupby("category", sort=True):
        frame = pd.DataFrame({"period": group["month"].to_numpy(),
                              "level": group["nsfw_level"].to_numpy(),
                              "k": group["n_documents"].to_numpy(),
                              "n": group["n_total"].to_numpy()})
        frame = add_time(frame, "month")
        labels = {"field": field, "category": cat, "scope": "within NSFW level (level FE)"}
        totals = frame.groupby("level")[["k", "n"]].sum()
        informative = [lv for lv in levels if lv in totals.index
                       and 0 < totals.loc[lv, "k"] < totals.loc[lv, "n"]]
        left_out = sorted(set(totals.index) - set(informative))
        frame = frame[frame["level"].isin(informative)].reset_index(drop=True)
        columns = ["t"]
        for level in informative[1:]:  # the lowest informative level is the reference
            column = f"level[{level}]"
            frame[column] = (frame["level"] == level).astype(float)
            columns.append(column)
        try:
            if not informative:
                raise TrendError("no variation at any level: the category is never or always "
                                 "present")
            fit = fit_binomial(frame, columns, se=se, name=f"{field}: {cat} within level",
                               population=f"coded {field} documents per month and NSFW level")
            row = slope_row(fit, **labels)
            row["levels_used"] = ", ".join(informative)
            if left_out:
                row["notes"] = "; ".join(filter(None, [
                    f"levels without variation left out: {', '.join(left_out)}",
                    str(row.get("notes") or "")]))
            rows.append(row)
        except TrendError as err:
            rows.append({**labels, "odds_ratio_per_year": np.nan, "notes": str(err)})
    return pd.DataFrame(rows)


def marginal_and_within(marginal: pd.DataFrame, within: pd.DataFrame,
                        reliability: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per category: the pooled (marginal) and the within-level odds ratio per year, and
    whether the rise survives within level; with ``reliability`` (``agreement`` table) the trend
    gate (alpha >= 0.667) is added, so no trend claim is read off an unreliable category.
    """
    keep = ["category", "odds_ratio_per_year", "or_ci_low", "or_ci_high", "p_value"]
    left = marginal[[c for c in keep if c in marginal.columns]].rename(
        columns=lambda c: c if c == "category" else f"pooled_{c}")
    right = within[[c for c in keep if c in within.columns]].rename(
        columns=lambda c: c if c == "category" else f"within_{c}")
    out = left.merge(right, on="category", how="outer").sort_values("category",
                                                                    ignore_index=True)
    out["verdict"] = [_verdict(row) for row in out.itertuples(index=False)]
    if reliability is not None:
        from .reliability import trend_gate
        alpha = reliability.set_index("category")["krippendorff_alpha"]
        out["krippendorff_alpha"] = out["category"].map(alpha)
        out["trend_claim"] = [trend_gate(float(a)) for a in out["krippendorff_alpha"]]
    return out


def _verdict(row) -> str:
    """Words for a category's trend: does a pooled rise hold within level?"""
    low = getattr(row, "within_or_ci_low", np.nan)
    high = getattr(row, "within_or_ci_high", np.nan)
    pooled_low = getattr(row, "pooled_or_ci_low", np.nan)
    if np.isnan(low) or np.isnan(high):
        return "within-level trend not estimable"
    if low > 1:
        return "rises within level"
    if high < 1:
        return "falls within level"
    if pooled_low > 1:
        return "pooled rise disappears within level (NSFW mix)"
    return "no clear trend within level"
