"""Upload volumes and the NSFW share over time (the paper's Figure 3 and its trend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .. import trends
from ..nsfw import DEFINITION_LABELS, LEVEL_LABELS
from .style import (
    DEFINITION_COLORS,
    LEVEL_ORDER,
    attach_data,
    finish,
    level_color,
    month_axis,
    new_figure,
    pct,
    wrapped,
)


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks column(s) {missing}; it needs {columns}")
    if frame.empty:
        raise ValueError(f"{what}: the table is empty; run the earlier notebooks on a snapshot")


def level_matrix(frame: pd.DataFrame, shares: bool = False) -> pd.DataFrame:
    """Month × NSFW level counts (or row shares) from ``month, nsfw_level, n_images``."""
    _require(frame, ["month", "nsfw_level", "n_images"], "uploads_by_nsfw_level")
    wide = frame.pivot_table(index="month", columns="nsfw_level", values="n_images",
                             aggfunc="sum", fill_value=0).sort_index()
    levels = [lv for lv in LEVEL_ORDER if lv in wide.columns]
    wide = wide[levels].astype(float if shares else int)
    if shares:
        wide = wide.div(wide.sum(axis=1), axis=0)
    wide.columns = [int(c) for c in wide.columns]
    return wide


def uploads_by_nsfw_level(frame: pd.DataFrame, *, shares: bool = False, source_label: str,
                          synthetic: bool):
    """Images uploaded per month, stacked by NSFW level, in counts or in shares (paper Fig. 3).

    ``frame``: ``month, nsfw_level, n_images`` (table ``nsfw_share_by_level_month.csv``).
    """
    wide = level_matrix(frame, shares=shares)
    counts = level_matrix(frame, shares=False)
    months = list(wide.index)
    # NSFW shares in titles are of *rated* images (level 0 left out), as everywhere else
    rated = counts[[c for c in counts.columns if c != 0]].sum(axis=1).replace(0, np.nan)
    above_pg = counts[[c for c in counts.columns if c >= 2]].sum(axis=1) / rated
    r_plus = counts[[c for c in counts.columns if c >= 4]].sum(axis=1) / rated
    fig, ax = new_figure()
    bottom = np.zeros(len(months))
    x = np.arange(len(months))
    for level in wide.columns:
        values = wide[level].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, width=0.85, color=level_color(level),
               label=LEVEL_LABELS.get(level, str(level)), edgecolor="none")
        bottom += values
    month_axis(ax, months)
    ax.set_xlabel("upload month (UTC)")
    if shares:
        ax.set_ylabel("share of the month's images (%)")
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
        title = (f"Images rated above PG went from {pct(above_pg.iloc[0])} of rated uploads in "
                 f"{months[0]} to {pct(above_pg.iloc[-1])} in {months[-1]} (R or above: "
                 f"{pct(r_plus.iloc[0])} to {pct(r_plus.iloc[-1])})")
    else:
        ax.set_ylabel("images uploaded per month (count)")
        total = counts.sum(axis=1)
        # the peak, not the last month: a crawl's last month is usually partial
        peak = int(np.argmax(total.to_numpy()))
        title = (f"Monthly uploads went from {int(total.iloc[0]):,} images in {months[0]} to a "
                 f"peak of {int(total.iloc[peak]):,} in {months[peak]}, "
                 f"{pct(above_pg.iloc[peak])} of rated ones above PG then "
                 f"({pct(r_plus.iloc[peak])} R or above)")
    ax.legend(title="NSFW level", ncols=1, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              reverse=True)
    finish(fig, wrapped(title), source_label, synthetic)
    return attach_data(fig, wide, title)


def fit_share_trend(monthly: pd.DataFrame, count_column: str = "n_nsfw",
                    level: float = 0.95, trials: str | None = None
                    ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Quasi-binomial GLM of the monthly share on time, fitted by notebook 03's
    :func:`civitai_study.trends.fit_binomial` (so the figure and notebook 03 report the same odds
    ratio and interval).

    Counts, not shares, enter the model, so sparse early months weigh little; the covariance is
    scaled by Pearson's dispersion (quasi-binomial, t-intervals with the residual degrees of
    freedom). Returns per-month ``share, fitted, ci_low, ci_high`` and the odds ratio per year
    with its interval.

    ``trials``: the denominator column; default ``n_rated`` when present (images with a rated
    level, the population notebook 03 fits), else ``n_images``.
    """
    trials = trials or ("n_rated" if "n_rated" in monthly.columns else "n_images")
    _require(monthly, ["month", trials, count_column], "fit_share_trend")
    data = monthly.loc[monthly[trials] > 0, ["month", trials, count_column]]
    data = data.rename(columns={trials: "n", count_column: "k"}).astype({"month": str})
    data = trends.add_time(data.assign(period=data["month"]), "month")
    fit = trends.fit_binomial(data, ["t"], "quasi", f"share_trend[{count_column}]")
    result, used = fit.result, fit.data
    exog = np.column_stack([np.ones(len(used)), used["t"].to_numpy(dtype=float)])
    cov = np.asarray(result.cov_params())
    q = stats.t.ppf(0.5 + level / 2, max(result.df_resid, 1))
    eta = exog @ np.asarray(result.params)
    se = np.sqrt(np.einsum("ij,jk,ik->i", exog, cov, exog))
    expit = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    out = pd.DataFrame({
        "month": used["month"].to_numpy(),
        "n_images": used["n"].to_numpy(),
        "share": used["k"].to_numpy() / used["n"].to_numpy(),
        "fitted": expit(eta), "ci_low": expit(eta - q * se), "ci_high": expit(eta + q * se),
    })
    slope = trends.tidy(fit, level).set_index("term").loc["t"]
    summary = {"odds_ratio_per_year": float(slope["exp_estimate"]),
               "ci_low": float(slope["exp_ci_low"]), "ci_high": float(slope["exp_ci_high"]),
               "pearson_dispersion": float(slope["dispersion"])}
    return out, summary


def short_event(text: str, limit: int = 42) -> str:
    """An event's label for a figure key: the first clause, without parentheses, capped."""
    label = str(text).split(";")[0].split(" (")[0].strip()
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _draw_events(ax, events: pd.DataFrame, months: list[str]) -> None:
    """Numbered dotted lines at platform events, with a numbered key in the empty upper left."""
    period = pd.PeriodIndex(months, freq="M")
    key: list[str] = []
    numbers: dict[int, list[str]] = {}
    for row in events.sort_values("date").itertuples(index=False):
        month = pd.Period(str(row.date)[:7], freq="M")
        if not period[0] <= month <= period[-1]:
            continue
        pos = (month - period[0]).n
        key.append(f"{len(key) + 1}  {str(row.date)[:7]}  {short_event(row.event)}")
        numbers.setdefault(pos, []).append(str(len(key)))
    for pos, labels in numbers.items():
        ax.axvline(pos, color="#555555", lw=0.6, ls=":")
        ax.text(pos, 1.0, ",".join(labels), fontsize=6.5, ha="center", va="bottom",
                color="#333333", transform=ax.get_xaxis_transform())
    if key:
        ax.text(0.02, 0.97, "\n".join(key), fontsize=6, va="top", ha="left", color="#333333",
                transform=ax.transAxes, linespacing=1.3,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 2})


def _direction(summary: dict[str, float]) -> str:
    if summary["ci_low"] > 1:
        return "rises"
    return "falls" if summary["ci_high"] < 1 else "shows no clear trend"


def headline_finding(summaries: dict[str, dict[str, float]]) -> str:
    """The headline odds ratio under both NSFW definitions, side by side (main one first)."""
    main, strict = summaries["above_pg"], summaries["r_plus"]
    verbs = {_direction(main), _direction(strict)}
    verb = (f"{verbs.pop()} under both definitions" if len(verbs) == 1
            else f"{_direction(main)} above PG and {_direction(strict)} at R or above")

    def odds(s: dict[str, float]) -> str:
        return (f"×{s['odds_ratio_per_year']:.2f} per year (95% CI {s['ci_low']:.2f}–"
                f"{s['ci_high']:.2f})")
    return (f"The NSFW share {verb}: odds of an image above PG (main) {odds(main)}; "
            f"R or above {odds(strict)}")


def nsfw_share_trend(monthly: pd.DataFrame, events: pd.DataFrame | None = None, *,
                     source_label: str, synthetic: bool):
    """NSFW share per month under both definitions, with the fitted quasi-binomial trend, its
    95% confidence band and platform events as candidate breakpoints.

    ``monthly``: ``month, n_images, n_nsfw, n_r_plus`` (table ``images_by_month.csv``);
    ``events``: ``date, event``.
    """
    fig, ax = new_figure(figsize=(7.5, 4.4))
    frames, summaries = [], {}
    for definition, column in (("above_pg", "n_nsfw"), ("r_plus", "n_r_plus")):
        fitted, summary = fit_share_trend(monthly, column)
        fitted.insert(0, "definition", definition)
        frames.append(fitted)
        summaries[definition] = summary
    data = pd.concat(frames, ignore_index=True)
    months = list(data.loc[data["definition"] == "above_pg", "month"])
    x_of = {m: i for i, m in enumerate(months)}
    size_scale = 60.0 / max(1.0, float(data["n_images"].max()))
    for definition, part in data.groupby("definition", sort=False):
        color = DEFINITION_COLORS[definition]
        x = part["month"].map(x_of).to_numpy()
        summary = summaries[definition]
        ax.scatter(x, part["share"], s=4 + part["n_images"] * size_scale, color=color,
                   alpha=0.55, edgecolor="none")
        ax.plot(x, part["fitted"], color=color,
                label=f"{DEFINITION_LABELS[definition]}: odds ×{summary['odds_ratio_per_year']:.2f}"
                      f" per year (95% CI {summary['ci_low']:.2f}–{summary['ci_high']:.2f})")
        ax.fill_between(x, part["ci_low"], part["ci_high"], color=color, alpha=0.2,
                        edgecolor="none")
    if events is not None and len(events):
        _draw_events(ax, events, months)
    month_axis(ax, months)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    ax.set_xlabel("upload month (UTC); dotted lines: platform events")
    rated = "n_rated" in monthly.columns
    ax.set_ylabel(f"NSFW share of the month's {'rated ' if rated else ''}images (%)")
    ax.legend(loc="lower right", fontsize=6.5)
    title = headline_finding(summaries)
    finish(fig, wrapped(title), source_label, synthetic)
    return attach_data(fig, data, title)
