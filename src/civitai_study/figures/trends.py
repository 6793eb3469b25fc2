"""Notebook 03's regressions against the data: fitted against observed shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import trends as models
from .style import attach_data, finish, new_figure
from .volume import _require

FITTED_COLUMNS = ["fit", "period", "t", "n", "observed_share", "fitted_share"]
#: One colour per fit, in the order the fits are listed (the linear trend first).
FIT_COLORS = ["#D55E00", "#009E73", "#CC79A7", "#E69F00"]
OBSERVED_COLOR = "#0072B2"


def fit_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Per fit: the trial-weighted mean absolute gap between fitted and observed share.

    ``frame``: ``fit, n, observed_share, fitted_share`` (``trends.fitted_vs_observed``).
    """
    rows = []
    for fit, part in frame.groupby("fit", sort=False):
        gap = (part["fitted_share"] - part["observed_share"]).abs()
        rows.append({"fit": fit, "n_periods": len(part), "n": int(part["n"].sum()),
                     "mean_abs_gap": float(np.average(gap, weights=part["n"]))})
    return pd.DataFrame(rows)


def _month_x(periods: pd.Series) -> np.ndarray:
    """Months since notebook 03's time origin (x positions that keep gaps between months)."""
    return np.array([models.month_index(str(p)[:7]) for p in periods], dtype=float)


def _month_ticks(ax, x: np.ndarray, every: int = 6) -> None:
    lo, hi = int(x.min()), int(x.max())
    origin_y, origin_m = map(int, models.TIME_ORIGIN.split("-"))
    ticks = [v for v in range(lo, hi + 1) if v % every == 0] or [lo]
    labels = [f"{origin_y + (origin_m - 1 + v) // 12:04d}-{(origin_m - 1 + v) % 12 + 1:02d}"
              for v in ticks]
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_xlim(lo - 0.8, hi + 0.8)


def _event_months(events: pd.DataFrame | None) -> list[str]:
    if events is None or not len(events):
        return []
    if "break_month" in events.columns:
        return sorted(set(events["break_month"].astype(str)))
    return sorted({models.break_month(str(d)) for d in events["date"]})


def fitted_vs_observed(fitted_nsfw: pd.DataFrame | None, fitted_poi: pd.DataFrame | None = None,
                       events: pd.DataFrame | None = None, *, source_label: str,
                       synthetic: bool, comparison: pd.DataFrame | None = None):
    """Observed monthly shares (points, area ~ trials) against notebook 03's fitted shares (the
    linear trend and the segmented fit), one panel per outcome; dotted lines at event months.

    ``fitted_nsfw`` / ``fitted_poi``: ``fit, period, t, n, observed_share, fitted_share``
    (tables ``fitted_nsfw_share.csv`` and ``fitted_poi_share.csv``); either may be ``None`` or
    empty (that panel is left out). ``events``: ``break_month`` (or ``date``).
    ``comparison``: ``outcome, fit, delta_qaic`` (``trends.model_comparison``); the title names
    the fit quasi-AIC prefers, never the one closest in-sample (which is always the one with
    more parameters). Without it the title states only the observed change.
    """
    panels = []
    for key, frame, what, unit in (
            ("nsfw_share", fitted_nsfw, "NSFW share of rated images", "rated images"),
            ("poi_share", fitted_poi, "real-person (poi) share of new models", "new models")):
        if frame is None or not len(frame):
            continue
        _require(frame, FITTED_COLUMNS, "fitted_vs_observed")
        panels.append((key, frame.sort_values(["fit", "period"], kind="stable"), what, unit))
    if not panels:
        raise ValueError("fitted_vs_observed: no fitted table has rows; run notebook 03's "
                         "trend cells on a snapshot with enough months")
    fig, axes = new_figure(1, len(panels), figsize=(7.5, 3.9), squeeze=False)
    breaks = _event_months(events)
    data, gaps = [], []
    for ax, (key, frame, what, unit) in zip(axes[0], panels, strict=True):
        fits = list(dict.fromkeys(frame["fit"]))
        observed = frame[frame["fit"] == fits[0]]
        x = _month_x(observed["period"])
        ax.scatter(x, observed["observed_share"], s=6 + 50 * observed["n"] / observed["n"].max(),
                   color=OBSERVED_COLOR, alpha=0.6, edgecolor="none", label="observed")
        panel_gaps = fit_gaps(frame)
        for k, fit in enumerate(fits):
            part = frame[frame["fit"] == fit]
            ax.plot(_month_x(part["period"]), part["fitted_share"],
                    color=FIT_COLORS[k % len(FIT_COLORS)], lw=1.4, label=fit)
        for month in breaks:
            pos = models.month_index(month)
            if x.min() < pos < x.max():
                ax.axvline(pos, color="#999999", ls=":", lw=0.8)
        _month_ticks(ax, x)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
        ax.set_title(what, fontsize=8.5, fontweight="normal", loc="left")
        ax.set_xlabel("month (UTC); dotted lines: platform events")
        ax.set_ylabel(f"share of the month's {unit} (%)")
        ax.legend(loc="upper left", fontsize=6.5)
        data.append(frame[FITTED_COLUMNS].assign(outcome=key))
        gaps.append(panel_gaps.assign(outcome=key))
    points = pd.concat(data, ignore_index=True)[["outcome"] + FITTED_COLUMNS]
    gaps = pd.concat(gaps, ignore_index=True)[["outcome", "fit", "n_periods", "n",
                                                "mean_abs_gap"]]
    title = _finding(points, comparison)
    finish(fig, title, source_label, synthetic)
    return attach_data(fig, {"points": points, "gaps": gaps}, title)


def _finding(points: pd.DataFrame, comparison: pd.DataFrame | None) -> str:
    """Observed change of the first outcome and, given a quasi-AIC table, the preferred fit."""
    outcome = points["outcome"].iloc[0]
    part = points[points["outcome"] == outcome]
    first_fit = part["fit"].iloc[0]
    observed = part[part["fit"] == first_fit].sort_values("period")
    # the first and last three months, pooled by trials, so one sparse month cannot set the title
    head, tail = observed.head(3), observed.tail(3)
    start = float(np.average(head["observed_share"], weights=head["n"]))
    end = float(np.average(tail["observed_share"], weights=tail["n"]))
    what = "NSFW share" if outcome == "nsfw_share" else "Real-person share of new models"
    text = f"{what}: {100 * start:.0f}% → {100 * end:.0f}% (first/last 3 months)"
    if comparison is not None and len(comparison):
        shown = set(part["fit"])
        c = comparison[(comparison["outcome"] == outcome) & comparison["fit"].isin(shown)]
        if len(c) > 1:
            c = c.sort_values("delta_qaic", kind="stable")
            gap = float(c["delta_qaic"].iloc[-1] - c["delta_qaic"].iloc[0])
            text += (f"; quasi-AIC prefers the {c['fit'].iloc[0]}"
                     + (f" (by {gap:.1f})" if gap >= 2 else f" (by {gap:.1f}: no clear winner)"))
    return text
