"""Trend regressions (notebook 03): is the rise in NSFW content real, disproportionate, and tied to
platform events; and the same for the real-person share of new models.

Why these models:

* Shares are modelled from counts (binomial GLM), so a month with 20 images weighs less than a month
  with 20,000. Monthly shares vary more than binomial sampling allows (moderation waves, viral
  months), so the standard errors are inflated by the Pearson dispersion (quasi-binomial) or made
  robust to heteroskedasticity and autocorrelation (HAC, Newey-West); both are reported.
* "Disproportionate" compares growth: a Poisson model of monthly NSFW and SFW counts with a
  time x NSFW interaction (robust, Driscoll-Kraay errors; negative binomial as a check); the
  exponentiated interaction is the ratio of the two annual growth factors.
* Platform events (``data/events.csv``, each with a source) enter as level and slope changes
  (segmented regression), one event at a time and jointly.

Time is in years since 2022-11 (month index / 12), the unit in which the synthetic generator's
truth is stated, so the estimates can be checked against it. All row scans run in DuckDB; the
models see one row per period. Known statsmodels warnings (perfect separation, convergence, an
ill-conditioned covariance) are caught here and returned as notes, never shown as warnings.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson
from statsmodels.tools import sm_exceptions

from . import describe
from .describe import REAL_PERSON_TAGS, _sql_list
from .nsfw import check_definition
from .paths import DATA_DIR

TIME_ORIGIN = "2022-11"
EVENTS_CSV = DATA_DIR / "events.csv"
TIDY_COLUMNS = ["term", "estimate", "std_err", "ci_low", "ci_high", "p_value", "exp_estimate",
                "exp_ci_low", "exp_ci_high"]
_KNOWN_WARNINGS = (sm_exceptions.ConvergenceWarning, sm_exceptions.HessianInversionWarning,
                   sm_exceptions.PerfectSeparationWarning, sm_exceptions.DomainWarning,
                   sm_exceptions.ValueWarning, sm_exceptions.IterationLimitWarning,
                   RuntimeWarning)


class TrendError(ValueError):
    """Too little data for a model; the message says what is missing."""


@dataclass
class Fit:
    """A fitted model with its description, tidy coefficients and caught warnings."""

    name: str
    formula: str
    words: str
    se_method: str
    result: Any
    data: pd.DataFrame
    population: str
    notes: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        return tidy(self)


# ---- data -------------------------------------------------------------------------------------

def month_index(month: str, origin: str = TIME_ORIGIN) -> int:
    y, m = map(int, month.split("-")[:2])
    oy, om = map(int, origin.split("-")[:2])
    return (y - oy) * 12 + (m - om)


def _period_sql(freq: str, column: str = "created_at") -> str:
    if freq == "month":
        return f"strftime({column}, '%Y-%m')"
    if freq == "week":
        return f"strftime(date_trunc('week', {column}), '%Y-%m-%d')"
    raise ValueError(f"unknown aggregation {freq!r}; choose 'month' or 'week'")


def add_time(frame: pd.DataFrame, freq: str, origin: str = TIME_ORIGIN) -> pd.DataFrame:
    """Add ``t``: years since ``origin`` (month index / 12; for weeks, days / 365.25)."""
    out = frame.copy()
    if freq == "month":
        out["t"] = [month_index(p, origin) / 12 for p in out["period"]]
    else:
        start = pd.Timestamp(origin + "-01")
        out["t"] = (pd.to_datetime(out["period"]) - start).dt.days / 365.25
    if freq == "month":
        out["month"] = [p[:7] for p in out["period"]]
    else:  # a week belongs to the month of its Thursday (ISO 8601), not of its first day
        thursdays = pd.to_datetime(out["period"]) + pd.Timedelta(days=3)
        out["month"] = thursdays.dt.strftime("%Y-%m").tolist()
    return out


def nsfw_counts(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                freq: str = "month") -> pd.DataFrame:
    """Rated images (``n``) and NSFW images (``k``) per period; unrated (level 0) left out."""
    check_definition(definition)
    # the denominator shared with notebook 02 and the claims table (describe.rated_nsfw_counts)
    return add_time(describe.rated_nsfw_counts(con, definition, freq), freq)


def poi_counts(con: duckdb.DuckDBPyConnection, signal: str = "poi",
               freq: str = "month") -> pd.DataFrame:
    """New models (``n``) and real-person models (``k``) per period and model type.

    ``signal='poi'``: the platform's flag; ``'tag'``: a real-person tag. The period is that of
    the model's first version (the model's own date when it has no versions).
    """
    if signal == "poi":
        flag = "coalesce(m.poi, false)"
    elif signal == "tag":
        flag = "coalesce(tg.poi_tag, false)"
    else:
        raise ValueError(f"unknown real-person signal {signal!r}; choose 'poi' or 'tag'")
    frame = con.execute(f"""
        WITH fv AS (SELECT model_id, min(created_at) AS first_at FROM model_versions
                    GROUP BY model_id),
             tg AS (SELECT model_id, bool_or(lower(trim(tag)) IN
                               (SELECT unnest({_sql_list(REAL_PERSON_TAGS)}))) AS poi_tag
                    FROM model_tags GROUP BY model_id)
        SELECT {_period_sql(freq, "coalesce(fv.first_at, m.created_at)")} AS period,
               coalesce(m.type, 'unknown') AS type, count(*) AS n,
               count(*) FILTER (WHERE {flag}) AS k
        FROM models m LEFT JOIN fv ON fv.model_id = m.id LEFT JOIN tg ON tg.model_id = m.id
        WHERE coalesce(fv.first_at, m.created_at) IS NOT NULL
        GROUP BY ALL ORDER BY period, type""").df()
    return add_time(frame, freq)


def volume_counts(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                  freq: str = "month") -> pd.DataFrame:
    """Image uploads per period split into NSFW and SFW (long format: period, nsfw, count)."""
    wide = nsfw_counts(con, definition, freq)
    rows = []
    for flag in (0, 1):
        part = wide[["period", "t", "month"]].copy()
        part["nsfw"] = flag
        part["count"] = wide["k"] if flag else wide["n"] - wide["k"]
        rows.append(part)
    return pd.concat(rows, ignore_index=True).sort_values(["period", "nsfw"], ignore_index=True)


def drop_first_months(frame: pd.DataFrame, months: int) -> pd.DataFrame:
    """Leave out the first ``months`` calendar months of the data (sparse, launch period)."""
    if months <= 0 or frame.empty:
        return frame
    first = min(frame["month"])
    keep = [month_index(m, first) >= months for m in frame["month"]]
    return frame.loc[keep].reset_index(drop=True)


# ---- fitting ------------------------------------------------------------------------------------

def _quiet(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run a statsmodels fit, turning its known warnings into notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in _KNOWN_WARNINGS:
            warnings.simplefilter("always", category)
        result = fn()
    notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    unknown = [w for w in caught if not issubclass(w.category, _KNOWN_WARNINGS)]
    for w in unknown:  # anything unexpected is re-raised as a warning, not hidden
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, notes


def _hac_lags(n: int) -> int:
    """Newey-West rule of thumb: floor(4 (n/100)^(2/9)), at least 1."""
    return max(1, int(math.floor(4 * (n / 100) ** (2 / 9))))


def _check_periods(data: pd.DataFrame, minimum: int, what: str) -> None:
    periods = data["period"].nunique() if len(data) else 0
    if periods < minimum:
        raise TrendError(
            f"{what}: {periods} period(s) with data, at least {minimum} needed; use a snapshot "
            "covering more months (or weekly aggregation) for a trend")


def fit_binomial(data: pd.DataFrame, columns: list[str], se: str = "quasi", name: str = "",
                 words: str = "", population: str = "") -> Fit:
    """Binomial GLM of ``k`` successes in ``n`` trials on ``columns`` (plus a constant).

    ``se='quasi'``: scale = Pearson chi2 / df, t-based intervals (quasi-binomial);
    ``se='hac'``: Newey-West sandwich over periods in time order; ``se='binomial'``: the plain
    binomial errors (shown only to make the overdispersion visible).
    """
    data = data.loc[data["n"] > 0].sort_values(["t"] + [c for c in ("type",) if c in data],
                                               kind="stable").reset_index(drop=True)
    _check_periods(data, max(4, len(columns) + 2), name or "binomial trend")
    endog = np.column_stack([data["k"], data["n"] - data["k"]]).astype(float)
    exog = sm.add_constant(data[columns].astype(float), has_constant="add")
    model = sm.GLM(endog, exog, family=sm.families.Binomial())
    if se == "quasi":
        # statsmodels' scale="X2" ignores the trial counts of a two-column binomial endog, so the
        # Pearson dispersion is computed from the plain fit and passed as a fixed scale.
        plain, notes = _quiet(lambda: model.fit())
        phi = float(plain.pearson_chi2 / plain.df_resid) if plain.df_resid > 0 else 1.0
        result, more = _quiet(lambda: model.fit(scale=phi, use_t=True))
        notes = sorted(set(notes) | set(more))
    elif se == "hac":
        lags = _hac_lags(data["period"].nunique())
        if len(data) > data["period"].nunique():
            # several rows per period (a panel, e.g. one per model type): Newey-West must lag
            # over periods, not rows, so use Driscoll-Kraay sums within each period.
            time_index = pd.factorize(data["period"], sort=True)[0]
            kw = {"cov_type": "hac-groupsum", "cov_kwds": {"time": time_index, "maxlags": lags}}
        else:
            kw = {"cov_type": "HAC", "cov_kwds": {"maxlags": lags}}
        result, notes = _quiet(lambda: model.fit(**kw))
    elif se == "binomial":
        result, notes = _quiet(lambda: model.fit())
    else:
        raise ValueError(f"unknown standard-error method {se!r}; choose quasi, hac or binomial")
    formula = "cbind(k, n - k) ~ " + " + ".join(["1"] + columns)
    return Fit(name, formula, words, se, result, data, population, notes)


def tidy(fit: Fit, level: float = 0.95) -> pd.DataFrame:
    """Coefficient table: estimate, std_err, CI, p, and exponentiated estimate and CI."""
    res = fit.result
    ci = np.asarray(res.conf_int(alpha=1 - level))
    frame = pd.DataFrame({
        "term": list(res.params.index),
        "estimate": np.asarray(res.params, dtype=float),
        "std_err": np.asarray(res.bse, dtype=float),
        "ci_low": ci[:, 0], "ci_high": ci[:, 1],
        "p_value": np.asarray(res.pvalues, dtype=float),
    })
    frame["exp_estimate"] = np.exp(frame["estimate"])
    frame["exp_ci_low"] = np.exp(frame["ci_low"])
    frame["exp_ci_high"] = np.exp(frame["ci_high"])
    frame["model"] = fit.name
    frame["se_method"] = fit.se_method
    frame["dispersion"] = _dispersion(fit)
    frame["n_periods"] = fit.data["period"].nunique()
    frame["n_obs"] = int(fit.data["n"].sum()) if "n" in fit.data else int(fit.data["count"].sum())
    frame["population"] = fit.population
    frame["notes"] = "; ".join(fit.notes)
    return frame


def _dispersion(fit: Fit) -> float:
    res = fit.result
    try:
        return float(res.pearson_chi2 / res.df_resid) if res.df_resid > 0 else float("nan")
    except AttributeError:
        return float("nan")


NSFW_POPULATION = "rated images (level 0 'unrated' left out), per {freq}"


def nsfw_trend(con: duckdb.DuckDBPyConnection, definition: str = "above_pg", freq: str = "month",
               se: str = "quasi", drop_first: int = 0,
               counts: pd.DataFrame | None = None) -> Fit:
    """logit P(image is NSFW) = b0 + b1 t: the NSFW share's trend, ``exp(b1)`` = OR per year."""
    data = nsfw_counts(con, definition, freq) if counts is None else counts
    data = drop_first_months(data, drop_first)
    words = (f"Binomial GLM (logit link) of NSFW images ({definition}) among rated images per "
             f"{freq} on time in years since {TIME_ORIGIN}; exp(t) is the odds ratio per year.")
    return fit_binomial(data, ["t"], se, f"nsfw_share[{definition},{freq}]", words,
                        NSFW_POPULATION.format(freq=freq))


def poi_trend(con: duckdb.DuckDBPyConnection, signal: str = "poi", se: str = "quasi",
              drop_first: int = 0, by_type: bool = True,
              counts: pd.DataFrame | None = None) -> Fit:
    """logit P(new model is a real person) = type effect + b1 t.

    Model types differ in their real-person share and the type mix shifts over time (LoRA grows),
    so type fixed effects keep the trend within types. Types where every or no model is a real
    person carry no information on the slope (their effect is infinite) and are left out.
    """
    data = poi_counts(con, signal) if counts is None else counts
    data = drop_first_months(data, drop_first)
    notes = []
    columns = ["t"]
    if by_type:
        totals = data.groupby("type")[["n", "k"]].sum()
        informative = totals.index[(totals["k"] > 0) & (totals["k"] < totals["n"])]
        left_out = sorted(set(totals.index) - set(informative))
        if left_out:
            n_left = int(totals.loc[left_out, "n"].sum())
            notes.append(f"types without variation left out ({n_left:,} models): "
                         + ", ".join(left_out))
        data = data.loc[data["type"].isin(informative)].reset_index(drop=True)
        ordered = list(totals.loc[informative].sort_values("n", ascending=False).index)
        for typ in ordered[1:]:  # the largest type is the reference
            column = f"type[{typ}]"
            data[column] = (data["type"] == typ).astype(float)
            columns.append(column)
    else:
        data = data.groupby(["period", "month", "t"], as_index=False)[["n", "k"]].sum()
    label = "the poi flag" if signal == "poi" else "a real-person tag"
    words = (f"Binomial GLM (logit link) of new models with {label} among new models per month "
             f"and type, on time in years since {TIME_ORIGIN}"
             + (" with type fixed effects" if by_type else "") + "; exp(t) is the odds ratio per "
             "year.")
    fit = fit_binomial(data, columns, se, f"poi_share[{signal}]", words,
                       "models caught by the snapshot, per month of first version"
                       + (" and type" if by_type else ""))
    fit.notes = notes + fit.notes
    return fit


def growth_ratio(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                 freq: str = "month", method: str = "poisson", drop_first: int = 0,
                 counts: pd.DataFrame | None = None) -> Fit:
    """log E[uploads] = b0 + b1 t + b2 nsfw + b3 t x nsfw: does NSFW volume grow faster?

    ``exp(b1)``: annual growth factor of SFW uploads; ``exp(b3)``: the NSFW growth factor divided
    by the SFW one (1 = proportional growth). ``method='poisson'``: Poisson with Driscoll-Kraay
    errors (HAC over periods, summed across the two series); ``'negbin'``: negative binomial
    (NB2) with its own dispersion parameter.
    """
    data = volume_counts(con, definition, freq) if counts is None else counts
    data = drop_first_months(data, drop_first).copy()
    _check_periods(data, 5, "growth ratio")
    data["t_x_nsfw"] = data["t"] * data["nsfw"]
    exog = sm.add_constant(data[["t", "nsfw", "t_x_nsfw"]].astype(float))
    endog = data["count"].astype(float)
    periods = pd.factorize(data["period"], sort=True)[0]
    if method == "poisson":
        model = sm.GLM(endog, exog, family=sm.families.Poisson())
        result, notes = _quiet(lambda: model.fit(
            cov_type="hac-groupsum",
            cov_kwds={"time": periods, "maxlags": _hac_lags(int(periods.max()) + 1)}))
        se = "driscoll-kraay"
    elif method == "negbin":
        model = sm.NegativeBinomial(endog, exog, loglike_method="nb2")
        result, notes = _quiet(lambda: model.fit(disp=0, maxiter=200))
        se = "negbin-mle"
    else:
        raise ValueError(f"unknown count model {method!r}; choose poisson or negbin")
    words = (f"{'Poisson' if method == 'poisson' else 'Negative binomial (NB2)'} model of image "
             f"uploads per {freq}, NSFW ({definition}) and SFW series stacked, on time, NSFW and "
             "time x NSFW; exp(t_x_nsfw) is the ratio of the annual growth factors (NSFW/SFW).")
    formula = "count ~ 1 + t + nsfw + t:nsfw"
    return Fit(f"growth[{definition},{freq},{method}]", formula, words, se, result,
               data.assign(n=data["count"]), "rated images, split NSFW/SFW, per " + freq, notes)


# ---- events and segmented regression ------------------------------------------------------

def load_events(path: Path | str = EVENTS_CSV) -> pd.DataFrame:
    """Platform events with their source; the break month is the first full month after it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: restore data/events.csv (date, event, "
                                "source) from git")
    events = pd.read_csv(path, dtype=str)
    missing = {"date", "event", "source"} - set(events.columns)
    if missing:
        raise ValueError(f"{path}: columns {sorted(missing)} missing; expected date, event, "
                         "source")
    if events["source"].isna().any():
        raise ValueError(f"{path}: every event needs a source (row(s) "
                         f"{list(events.index[events['source'].isna()])})")
    events["break_month"] = [break_month(d) for d in events["date"]]
    return events


def break_month(date: str) -> str:
    """First full calendar month on or after ``date`` (YYYY-MM or YYYY-MM-DD)."""
    parts = date.split("-")
    y, m = int(parts[0]), int(parts[1])
    if len(parts) > 2 and int(parts[2]) > 1:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return f"{y:04d}-{m:02d}"


def _segment_columns(data: pd.DataFrame, events: pd.DataFrame, min_side: int
                     ) -> tuple[pd.DataFrame, list[str], list[dict[str, str]]]:
    """Add level-step and slope-change columns for events with ``min_side`` months each side."""
    data = data.copy()
    months = sorted(set(data["month"]))
    columns, used = [], []
    for row in events.itertuples(index=False):
        before = sum(m < row.break_month for m in months)
        after = sum(m >= row.break_month for m in months)
        if before < min_side or after < min_side:
            continue
        tb = month_index(row.break_month) / 12
        key = row.break_month
        data[f"level[{key}]"] = (data["month"] >= key).astype(float)
        data[f"slope[{key}]"] = np.clip(data["t"] - tb, 0, None)
        if f"level[{key}]" not in columns:
            columns += [f"level[{key}]", f"slope[{key}]"]
            used.append({"break_month": key, "date": row.date, "event": row.event,
                         "source": row.source})
    return data, columns, used


def segmented(data: pd.DataFrame, events: pd.DataFrame, base_columns: list[str], name: str,
              population: str, min_side: int = 3, se: str = "quasi",
              joint: bool = True) -> tuple[pd.DataFrame, list[Fit]]:
    """Level and slope change at each event (one model per event, and all events jointly).

    Returns a tidy table of the change terms (``model`` names the event or ``joint``) with the
    event and its source, and the fits (the joint fit last, for the fitted-vs-observed plot).
    """
    rows, fits = [], []
    for _, event in events.iterrows():
        single = events.loc[[event.name]]
        seg, columns, used = _segment_columns(data, single, min_side)
        if not columns:
            continue
        fit = fit_binomial(seg, base_columns + columns, se, f"{name} | {used[0]['break_month']}",
                           f"{name} with a level and slope change at {used[0]['break_month']}",
                           population)
        fits.append(fit)
        rows.append(_change_terms(fit, used, "single event"))
    if joint:
        seg, columns, used = _segment_columns(data, events, min_side)
        if columns and seg["period"].nunique() > len(base_columns) + len(columns) + 3:
            fit = fit_binomial(seg, base_columns + columns, se, f"{name} | joint",
                               f"{name} with level and slope changes at all events", population)
            fits.append(fit)
            rows.append(_change_terms(fit, used, "joint"))
    if not rows:
        return pd.DataFrame(columns=["specification", "break_month", "event", "source", "change"]
                            + TIDY_COLUMNS), fits
    return pd.concat(rows, ignore_index=True), fits


def _change_terms(fit: Fit, used: list[dict[str, str]], spec: str) -> pd.DataFrame:
    table = tidy(fit)
    out = []
    for ev in used:
        for change in ("level", "slope"):
            row = table.loc[table["term"] == f"{change}[{ev['break_month']}]"].iloc[0]
            out.append({"specification": spec, "break_month": ev["break_month"],
                        "event": ev["event"], "source": ev["source"], "change": change,
                        **{c: row[c] for c in TIDY_COLUMNS}, "dispersion": row["dispersion"],
                        "n_periods": row["n_periods"], "population": row["population"],
                        "notes": row["notes"]})
    return pd.DataFrame(out)


# ---- diagnostics, fitted values, sensitivity ----------------------------------------------------

def diagnostics(fit: Fit, first_months: int = 3) -> pd.DataFrame:
    """Residual autocorrelation and the weight of the first sparse months for a binomial fit.

    Ljung-Box and Durbin-Watson on the Pearson residuals aggregated per period in time order;
    Cook's distance (largest overall and largest among the first ``first_months`` months);
    share of trials in those months.
    """
    res, data = fit.result, fit.data
    resid = pd.Series(np.asarray(res.resid_pearson), index=data.index)
    per_period = resid.groupby(data["period"]).sum().sort_index()
    lags = max(1, min(6, len(per_period) // 5))
    lb = acorr_ljungbox(per_period.values, lags=[lags])
    first = min(data["month"])
    early = np.array([month_index(m, first) < first_months for m in data["month"]])
    influence, notes = _quiet(lambda: res.get_influence(observed=False))
    cooks = np.asarray(influence.cooks_distance[0])
    rows = [
        ("dispersion (Pearson chi2 / df)", _dispersion(fit)),
        (f"Ljung-Box Q (lag {lags})", float(lb["lb_stat"].iloc[0])),
        (f"Ljung-Box p (lag {lags})", float(lb["lb_pvalue"].iloc[0])),
        ("Durbin-Watson", float(durbin_watson(per_period.values))),
        ("lag-1 autocorrelation of residuals",
         float(per_period.autocorr(1)) if len(per_period) > 2 else float("nan")),
        ("max Cook's distance", float(np.nanmax(cooks))),
        (f"max Cook's distance, first {first_months} months",
         float(np.nanmax(cooks[early])) if early.any() else float("nan")),
        (f"share of trials in first {first_months} months",
         float(data.loc[early, "n"].sum() / data["n"].sum())),
    ]
    out = pd.DataFrame(rows, columns=["statistic", "value"])
    out.insert(0, "model", fit.name)
    return out


def fitted_vs_observed(fit: Fit, label: str) -> pd.DataFrame:
    """Observed and fitted share per period (trials summed over types), for plots and tables."""
    data = fit.data.copy()
    data["fitted_k"] = np.asarray(fit.result.fittedvalues) * data["n"]
    out = data.groupby(["period", "month", "t"], as_index=False)[["n", "k", "fitted_k"]].sum()
    out["observed_share"] = out["k"] / out["n"]
    out["fitted_share"] = out["fitted_k"] / out["n"]
    out["fit"] = label
    return out[["fit", "period", "t", "n", "k", "observed_share", "fitted_share"]]


def slope_row(fit: Fit, **labels: Any) -> dict[str, Any]:
    """The time term of ``fit`` as one row of a sensitivity table."""
    table = tidy(fit).set_index("term")
    row = table.loc["t"]
    return {**labels, "estimate": row["estimate"], "std_err": row["std_err"],
            "ci_low": row["ci_low"], "ci_high": row["ci_high"], "p_value": row["p_value"],
            "odds_ratio_per_year": row["exp_estimate"], "or_ci_low": row["exp_ci_low"],
            "or_ci_high": row["exp_ci_high"], "dispersion": row["dispersion"],
            "n_periods": row["n_periods"], "n_obs": row["n_obs"],
            "population": row["population"], "notes": row["notes"]}


def sensitivity(con: duckdb.DuckDBPyConnection, drop_months: int = 3) -> pd.DataFrame:
    """The NSFW and real-person slopes under every reasonable alternative specification.

    NSFW: both definitions x monthly/weekly x all months/without the first ``drop_months`` x
    quasi-binomial/HAC errors. Real people: both signals x all/without the first months.
    Specifications without enough data are listed with a note instead of an estimate.
    """
    rows = []
    cache = {(d, f): nsfw_counts(con, d, f) for d in ("above_pg", "r_plus")
             for f in ("month", "week")}
    for (definition, freq), counts in cache.items():
        for drop in (0, drop_months):
            for se in ("quasi", "hac"):
                labels = {"outcome": "nsfw_share", "definition": definition, "aggregation": freq,
                          "dropped_first_months": drop, "se_method": se}
                rows.append(_try_slope(lambda c=counts, d=definition, f=freq, dr=drop, s=se:
                                       nsfw_trend(con, d, f, s, dr, counts=c), labels))
    for signal in ("poi", "tag"):
        counts = poi_counts(con, signal)
        for drop in (0, drop_months):
            for se in ("quasi", "hac"):
                labels = {"outcome": "poi_share", "definition": signal, "aggregation": "month",
                          "dropped_first_months": drop, "se_method": se}
                rows.append(_try_slope(lambda c=counts, sg=signal, dr=drop, s=se:
                                       poi_trend(con, sg, s, dr, counts=c), labels))
    return pd.DataFrame(rows)


def _try_slope(make: Callable[[], Fit], labels: dict[str, Any]) -> dict[str, Any]:
    try:
        return slope_row(make(), **labels)
    except TrendError as err:
        return {**labels, "notes": f"not estimated: {err}"}


def growth_summary(fit: Fit) -> pd.DataFrame:
    """Annual growth factors of SFW and NSFW uploads and their ratio, with 95% intervals."""
    res = fit.result
    names = list(res.params.index)
    rows = []
    for label, weights in (("SFW growth factor per year", {"t": 1}),
                           ("NSFW growth factor per year", {"t": 1, "t_x_nsfw": 1}),
                           ("ratio of growth factors (NSFW / SFW)", {"t_x_nsfw": 1})):
        vec = np.array([weights.get(n, 0.0) for n in names], dtype=float)
        est = float(vec @ np.asarray(res.params))
        var = float(vec @ np.asarray(res.cov_params()) @ vec)
        se = math.sqrt(var) if var > 0 else float("nan")
        z = stats.norm.ppf(0.975)
        p = 2 * stats.norm.sf(abs(est / se)) if se == se and se > 0 else float("nan")
        rows.append({"quantity": label, "log_estimate": est, "std_err": se,
                     "estimate": math.exp(est), "ci_low": math.exp(est - z * se),
                     "ci_high": math.exp(est + z * se), "p_value": p, "model": fit.name,
                     "se_method": fit.se_method, "population": fit.population,
                     "notes": "; ".join(fit.notes)})
    return pd.DataFrame(rows)


def truth_check(fit: Fit, truth: dict[str, Any], term: str = "t") -> dict[str, Any]:
    """Whether the generator's true slope lies inside the fit's 95% interval (synthetic data)."""
    row = tidy(fit).set_index("term").loc[term]
    true = float(truth["slope_per_year"])
    return {"model": fit.name, "se_method": fit.se_method, "true_slope": true,
            "estimate": float(row["estimate"]),
            "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
            "covered": bool(row["ci_low"] <= true <= row["ci_high"])}


# ---- presenting fits in notebook 03 -----------------------------------------------------------

#: Coefficient columns shown for every fit.
FIT_COLUMNS = ["term", "estimate", "std_err", "ci_low", "ci_high", "p_value", "exp_estimate",
               "exp_ci_low", "exp_ci_high"]


def attempt(make: Callable[[], Any]) -> Any:
    """Fit, or say in words why the snapshot cannot support the model (and return None)."""
    try:
        return make()
    except TrendError as err:
        print(f"not estimated: {err}")
        return None


def show_fit(fit: Fit) -> None:
    """Print a fit as a reviewer reads it: the model in words, its formula, notes, coefficients."""
    from .describe import printable

    print(fit.words)
    print("formula:", fit.formula, f"| errors: {fit.se_method} | population: {fit.population}")
    for note in fit.notes:
        print("note:", note)
    print(printable(fit.tidy()[FIT_COLUMNS + ["dispersion", "n_periods"]]))
