"""Trend regressions (notebook 03): is the rise in NSFW content real, disproportionate, and tied to
platform events; and the same for the real-person share of new models.

Why these models:

* Shares are modelled from counts (binomial GLM), so a month with 20 images weighs less than a month
  with 20,000. Monthly shares vary more than binomial sampling allows (moderation waves, viral
  months), so the standard errors are inflated by the Pearson dispersion (quasi-binomial) or made
  robust to heteroskedasticity and autocorrelation (HAC, Newey-West); both are reported.
* "Disproportionate" compares growth. Stacked NSFW and SFW counts need month fixed effects
  (monthly volume is far from log-linear); with them the ratio of the two annual growth factors
  *is* the share model's odds ratio per year (same null: a constant NSFW share), so it is shown
  as such, not as independent evidence. The substantive test is against a composition-adjusted
  expectation: the trend within base models (base-model fixed effects), which is zero when the
  NSFW rise only reflects a shift of uploads towards base models that were always more NSFW.
* Platform events (``data/events.csv``, each with a source and a kind) enter as level and slope
  changes (segmented regression), one event at a time and jointly, with at least ``min_side``
  months between consecutive breaks; a change of measurement (the 2024 rating rework) enters as
  a level shift only. Event p-values come with Holm and Benjamini-Hochberg adjustments and one
  omnibus drop-in-deviance F test; linear and segmented fits are compared by quasi-AIC.

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
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.stattools import durbin_watson
from statsmodels.tools import sm_exceptions

from . import describe
from .describe import REAL_PERSON_TAGS, _period_sql, sql_list
from .nsfw import check_definition, sql_coarse_decided, sql_coarse_is_nsfw
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
                               (SELECT unnest({sql_list(REAL_PERSON_TAGS)}))) AS poi_tag
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
    return stack_counts(nsfw_counts(con, definition, freq))


def stack_counts(wide: pd.DataFrame) -> pd.DataFrame:
    """``period, t, month, n, k`` per period → two rows per period (``nsfw`` 0/1, ``count``)."""
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
    ``se='hac'``: Newey-West sandwich over periods in time order; ``se='cluster'``: sandwich
    clustered by calendar month, t-based with (months - 1) df (for weekly rows or month x group
    panels, whose month noise is shared, so rows within a month are not independent);
    ``se='binomial'``: the plain binomial errors (shown only to make the overdispersion visible).
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
    elif se == "cluster":
        groups = pd.factorize(data["month"], sort=True)[0]
        result, notes = _quiet(lambda: model.fit(cov_type="cluster", use_t=True,
                                                 cov_kwds={"groups": groups}))
    elif se == "binomial":
        result, notes = _quiet(lambda: model.fit())
    else:
        raise ValueError(f"unknown standard-error method {se!r}; choose quasi, hac, cluster or "
                         "binomial")
    formula = "cbind(k, n - k) ~ " + " + ".join(["1"] + columns)
    return Fit(name, formula, words, se, result, data, population, notes)


def tidy(fit: Fit, level: float = 0.95) -> pd.DataFrame:
    """Coefficient table: estimate, std_err, CI, p, and exponentiated estimate and CI."""
    res = fit.result
    ci = np.asarray(res.conf_int(alpha=1 - level))
    frame = pd.DataFrame({
        "term": (list(res.params.index) if hasattr(res.params, "index")
                 else list(res.model.exog_names)),  # generic-likelihood fits return arrays
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


GROWTH_NULL = ("H0: the NSFW share of rated images is constant over time, i.e. NSFW and SFW "
               "uploads grow by the same factor each year (ratio of growth factors = odds ratio "
               "per year = 1)")
WITHIN_NULL = ("H0: within each base model the NSFW share is constant over time, i.e. the NSFW "
               "rise is only a shift of uploads towards base models that were always more NSFW "
               "(odds ratio per year within base models = 1)")


def growth_ratio(con: duckdb.DuckDBPyConnection | None, definition: str = "above_pg",
                 freq: str = "month", drop_first: int = 0,
                 counts: pd.DataFrame | None = None) -> Fit:
    """log E[uploads] = month effect + b2 nsfw + b3 t x nsfw (stacked NSFW/SFW counts).

    The month fixed effects absorb any volume curve, so ``exp(b3)`` is the ratio of the NSFW and
    SFW annual growth factors free of the assumption that volume grows log-linearly. Conditioning
    on each month's total turns the two Poisson counts into a binomial one, so ``b3`` and its
    quasi-Poisson interval equal the share model's slope and quasi-binomial interval exactly:
    this is the share model written as counts (the same null hypothesis, :data:`GROWTH_NULL`),
    kept only to show that identity, never as a second piece of evidence.
    """
    data = volume_counts(con, definition, freq) if counts is None else counts
    data = drop_first_months(data, drop_first)
    periods = sorted(set(data["period"]))
    keep = data.groupby("period")["count"].transform("sum") > 0
    data = data.loc[keep].sort_values(["period", "nsfw"], kind="stable").reset_index(drop=True)
    _check_periods(data, 5, "growth ratio")
    data["t_x_nsfw"] = data["t"] * data["nsfw"]
    dummies = pd.get_dummies(data["period"], prefix="month", dtype=float)
    exog = pd.concat([dummies, data[["nsfw", "t_x_nsfw"]].astype(float)], axis=1)
    endog = data["count"].astype(float)
    model = sm.GLM(endog, exog, family=sm.families.Poisson())
    plain, notes = _quiet(lambda: model.fit())
    phi = float(plain.pearson_chi2 / plain.df_resid) if plain.df_resid > 0 else 1.0
    result, more = _quiet(lambda: model.fit(scale=phi, use_t=True))
    words = (f"Quasi-Poisson model of image uploads per {freq}, NSFW ({definition}) and SFW "
             f"series stacked, with one fixed effect per {freq} ({len(periods)}), NSFW and "
             "time x NSFW; exp(t_x_nsfw) is the ratio of the annual growth factors (NSFW/SFW), "
             "identical to the share model's odds ratio per year.")
    formula = "count ~ 0 + month + nsfw + t:nsfw"
    return Fit(f"growth[{definition},{freq},month-fe]", formula, words, "quasi", result,
               data.assign(n=data["count"]), "rated images, split NSFW/SFW, per " + freq,
               sorted(set(notes) | set(more)))


def group_counts(con: duckdb.DuckDBPyConnection, definition: str = "above_pg",
                 by: str = "base_model") -> pd.DataFrame:
    """Rated (``n``) and NSFW (``k``) images per month and ``by`` group (missing: 'unknown')."""
    check_definition(definition)
    if by not in {"base_model"}:
        raise ValueError(f"unknown grouping {by!r}; images can be grouped by 'base_model'")
    frame = con.execute(f"""
        SELECT {_period_sql("month")} AS period, coalesce({by}, 'unknown') AS "group",
               count(*) AS n,
               count(*) FILTER (WHERE {sql_coarse_is_nsfw("nsfw_level", "nsfw_flag", definition)})
                   AS k
        FROM images
        WHERE created_at IS NOT NULL AND {sql_coarse_decided("nsfw_level", "nsfw_flag", definition)}
        GROUP BY ALL ORDER BY period, "group" """).df()
    return add_time(frame, "month")


def within_group_trend(con: duckdb.DuckDBPyConnection | None, definition: str = "above_pg",
                       by: str = "base_model", drop_first: int = 0, min_images: int = 30,
                       counts: pd.DataFrame | None = None) -> Fit:
    """logit P(NSFW) = group effect + b1 t: the NSFW trend against a composition-adjusted
    expectation (:data:`WITHIN_NULL`).

    The group effects carry each group's own NSFW share, so a rise that only comes from the mix
    moving towards NSFW-heavy groups leaves b1 at 0. Errors are clustered by month (the month's
    noise is shared by its groups). Groups with fewer than ``min_images`` rated images, or with
    no variation, carry no information on the slope and are left out (noted).
    """
    data = group_counts(con, definition, by) if counts is None else counts
    data = drop_first_months(data, drop_first)
    totals = data.groupby("group")[["n", "k"]].sum()
    informative = totals.index[(totals["k"] > 0) & (totals["k"] < totals["n"])
                               & (totals["n"] >= min_images)]
    notes = []
    left_out = sorted(set(totals.index) - set(informative))
    if left_out:
        notes.append(f"groups left out (under {min_images} images or no variation; "
                     f"{int(totals.loc[left_out, 'n'].sum()):,} images): " + ", ".join(left_out))
    data = data.loc[data["group"].isin(informative)].reset_index(drop=True)
    ordered = list(totals.loc[informative].sort_values("n", ascending=False).index)
    columns = ["t"]
    for group in ordered[1:]:  # the largest group is the reference
        column = f"{by}[{group}]"
        data[column] = (data["group"] == group).astype(float)
        columns.append(column)
    words = (f"Binomial GLM (logit link) of NSFW images ({definition}) among rated images per "
             f"month and {by}, with {by} fixed effects, on time in years since {TIME_ORIGIN}; "
             f"exp(t) is the odds ratio per year within {by} (errors clustered by month).")
    fit = fit_binomial(data, columns, "cluster", f"nsfw_share_within[{definition},{by}]", words,
                       f"rated images, per month and {by}")
    fit.notes = notes + fit.notes
    return fit


def growth_table(share: Fit, counts_fit: Fit | None, within: Fit | None,
                 truth: dict[str, Any] | None = None) -> pd.DataFrame:
    """The "disproportionate growth" estimands side by side, each with its null hypothesis.

    ``truth`` (synthetic data): the generator's ``nsfw_above_pg_logit`` record. Its images are
    NSFW with logit(p) = intercept + slope t + month noise, independent of the base model, so
    the true value of all three rows is exp(slope): the odds ratio per year.
    """
    rows = []
    for fit, term, quantity, null in (
            (share, "t", "NSFW odds ratio per year (share model)", GROWTH_NULL),
            (counts_fit, "t_x_nsfw", "ratio of growth factors NSFW / SFW (counts, month fixed "
                                     "effects; = share model)", GROWTH_NULL),
            (within, "t", "NSFW odds ratio per year within base models (composition-adjusted)",
             WITHIN_NULL)):
        if fit is None:
            continue
        row = tidy(fit).set_index("term").loc[term]
        rows.append({"quantity": quantity, "estimate": row["exp_estimate"],
                     "ci_low": row["exp_ci_low"], "ci_high": row["exp_ci_high"],
                     "p_value": row["p_value"], "null_hypothesis": null, "model": fit.name,
                     "se_method": fit.se_method, "n_periods": row["n_periods"],
                     "population": fit.population, "notes": "; ".join(fit.notes)})
    out = pd.DataFrame(rows)
    if truth and len(out):
        true = math.exp(float(truth["slope_per_year"]))
        out["true_value"] = true
        out["covered"] = (out["ci_low"] <= true) & (true <= out["ci_high"])
    return out


# ---- events and segmented regression ------------------------------------------------------

EVENT_KINDS = ("behaviour", "measurement")


def load_events(path: Path | str = EVENTS_CSV) -> pd.DataFrame:
    """Platform events with their source and kind; the break month is the first full month after.

    ``kind``: 'behaviour' (may change what is uploaded: level and slope change) or 'measurement'
    (changes how content is rated: a level shift only, a nuisance term, never tested as an event).
    A file without the column is read as all 'behaviour'.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: restore data/events.csv (date, event, "
                                "source, kind) from git")
    events = pd.read_csv(path, dtype=str)
    missing = {"date", "event", "source"} - set(events.columns)
    if missing:
        raise ValueError(f"{path}: columns {sorted(missing)} missing; expected date, event, "
                         "source")
    if events["source"].isna().any():
        raise ValueError(f"{path}: every event needs a source (row(s) "
                         f"{list(events.index[events['source'].isna()])})")
    if "kind" not in events.columns:
        events["kind"] = "behaviour"
    events["kind"] = events["kind"].fillna("behaviour").str.strip()
    bad = sorted(set(events["kind"]) - set(EVENT_KINDS))
    if bad:
        raise ValueError(f"{path}: unknown event kind(s) {bad}; use one of {list(EVENT_KINDS)}")
    events["break_month"] = [break_month(d) for d in events["date"]]
    return events


def break_month(date: str) -> str:
    """First full calendar month on or after ``date`` (YYYY-MM or YYYY-MM-DD)."""
    parts = date.split("-")
    y, m = int(parts[0]), int(parts[1])
    if len(parts) > 2 and int(parts[2]) > 1:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return f"{y:04d}-{m:02d}"


def select_events(events: pd.DataFrame, months: list[str], min_side: int = 3,
                  measurement: bool = True) -> pd.DataFrame:
    """Which events a segmented model can use, and why the others are left out.

    Walking in time order, an event is kept when at least ``min_side`` months of data lie between
    the previous kept break (or the first month) and it, and at least ``min_side`` months from it
    to the end, so no segment is shorter than ``min_side`` months. Events in the same break month
    are merged into the first; events too close to a kept one are dropped (the earlier event
    wins). ``measurement=False``: measurement breaks do not apply to this outcome (dropped).
    Returns the events with ``status`` ('used' or 'dropped') and ``reason``.
    """
    if "kind" not in events.columns:
        events = events.assign(kind="behaviour")
    months = sorted(set(months))
    out = events.sort_values(["break_month", "date"], kind="stable").reset_index(drop=True)
    status, reason, previous = [], [], None
    for row in out.itertuples(index=False):
        start = previous or (months[0] if months else row.break_month)
        before = sum(start <= m < row.break_month for m in months)
        after = sum(m >= row.break_month for m in months)
        if row.kind == "measurement" and not measurement:
            status.append("dropped")
            reason.append("measurement break of the NSFW rating; does not apply to this outcome")
        elif previous == row.break_month:
            status.append("dropped")
            reason.append(f"same break month as a kept event ({previous}): merged into it")
        elif before < min_side:
            status.append("dropped")
            reason.append(f"only {before} month(s) of data after "
                          f"{'break ' + previous if previous else 'the first month'} "
                          f"(min_side {min_side})")
        elif after < min_side:
            status.append("dropped")
            reason.append(f"only {after} month(s) of data from it to the end (min_side "
                          f"{min_side})")
        else:
            status.append("used")
            reason.append("level shift only (change of measurement)"
                          if row.kind == "measurement" else "level and slope change")
            previous = row.break_month
    return out.assign(status=status, reason=reason)


def _segment_columns(data: pd.DataFrame, events: pd.DataFrame
                     ) -> tuple[pd.DataFrame, list[str], list[dict[str, str]]]:
    """Level-step (and, for behaviour events, slope-change) columns for the given events."""
    data = data.copy()
    columns, used = [], []
    for row in events.itertuples(index=False):
        key = row.break_month
        data[f"level[{key}]"] = (data["month"] >= key).astype(float)
        changes = ["level"]
        if row.kind != "measurement":
            data[f"slope[{key}]"] = np.clip(data["t"] - month_index(key) / 12, 0, None)
            changes.append("slope")
        columns += [f"{c}[{key}]" for c in changes]
        used.append({"break_month": key, "date": row.date, "event": row.event,
                     "source": row.source, "kind": row.kind, "changes": changes})
    return data, columns, used


def _deviance_f(full: Fit, null: Fit) -> tuple[float, int, int, float]:
    """Drop-in-deviance F test: ((D0 - D1) / q) / dispersion of the full model, on (q, df)."""
    q = int(null.result.df_resid - full.result.df_resid)
    df = int(full.result.df_resid)
    phi = _dispersion(full)
    if q <= 0 or df <= 0 or not phi > 0:
        return float("nan"), q, df, float("nan")
    f = float((null.result.deviance - full.result.deviance) / q / phi)
    return f, q, df, float(stats.f.sf(f, q, df))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: max over j <= i of (m - j + 1) p_(j), capped at 1.

    Equal to ``multipletests(method="holm")`` (tested), which calls ``gc.collect()`` on every
    use; the simulation study adjusts thousands of families, so the same formula is used here.
    """
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(steps, 1.0)
    return out


def _adjust(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """Holm (family-wise) and Benjamini-Hochberg (false discovery) p-values over ``mask`` rows."""
    pvals = frame.loc[mask, "p_value"].astype(float)
    ok = pvals.notna()
    if ok.any():
        idx = pvals.index[ok]
        frame.loc[idx, "p_holm"] = holm(pvals[ok].to_numpy())
        frame.loc[idx, "p_bh"] = multipletests(pvals[ok], method="fdr_bh")[1]
    return frame


SEGMENT_COLUMNS = ["specification", "break_month", "event", "kind", "source", "change",
                   *TIDY_COLUMNS, "p_holm", "p_bh", "df_num", "df_den", "dispersion",
                   "n_periods", "population", "notes"]


def segmented(data: pd.DataFrame, events: pd.DataFrame, base_columns: list[str], name: str,
              population: str, min_side: int = 3, se: str = "quasi", joint: bool = True,
              measurement: bool = True) -> tuple[pd.DataFrame, list[Fit]]:
    """Level and slope change at each event (one model per event, and all events jointly).

    Events are first thinned by :func:`select_events` (no segment under ``min_side`` months);
    measurement breaks enter every model as a level shift only (a nuisance term, also in the
    null model). The table holds, per specification, each change term with raw, Holm and
    Benjamini-Hochberg p-values (the family: all behaviour-event terms of that specification),
    one drop-in-deviance F test per event (single-event models, adjusted over events) and one
    omnibus F test of all events against the trend (joint model), plus a row per dropped event
    saying why. The fits come back as [null model, single-event models..., joint model].
    """
    chosen = select_events(events, list(data["month"]), min_side, measurement)
    used = chosen[chosen["status"] == "used"]
    nuisance = used[used["kind"] == "measurement"]
    behaviour = used[used["kind"] != "measurement"]
    base_data, nuisance_cols, nuisance_used = _segment_columns(data, nuisance)
    null = fit_binomial(base_data, base_columns + nuisance_cols, se, f"{name} | no events",
                        f"{name}" + (" with the measurement level shift(s)" if nuisance_cols
                                     else ""), population)
    rows: list[dict[str, Any]] = []
    fits = [null]
    for ev in nuisance_used:
        rows += _change_rows(null, [ev], "trend + measurement")
    singles = []
    for i in range(len(behaviour)):
        seg, columns, ev = _segment_columns(base_data, behaviour.iloc[[i]])
        fit = fit_binomial(seg, base_columns + nuisance_cols + columns, se,
                           f"{name} | {ev[0]['break_month']}",
                           f"{name} with a level and slope change at {ev[0]['break_month']}",
                           population)
        fits.append(fit)
        singles += _change_rows(fit, ev, "single event")
        f, q, df, p = _deviance_f(fit, null)
        singles.append(_test_row("single event", ev[0], "event F (level + slope)", f, q, df, p,
                                 fit))
    rows += singles
    if joint and len(behaviour):
        seg, columns, evs = _segment_columns(base_data, behaviour)
        if seg["period"].nunique() > len(base_columns) + len(nuisance_cols) + len(columns) + 3:
            fit = fit_binomial(seg, base_columns + nuisance_cols + columns, se, f"{name} | joint",
                               f"{name} with level and slope changes at all events", population)
            fits.append(fit)
            rows += _change_rows(fit, evs, "joint")
            f, q, df, p = _deviance_f(fit, null)
            rows.append(_test_row("joint", {"break_month": "all", "event": "all events",
                                            "kind": "behaviour", "source": ""},
                                  "omnibus F (any event)", f, q, df, p, fit))
    for row in chosen[chosen["status"] == "dropped"].itertuples(index=False):
        rows.append({"specification": "dropped", "break_month": row.break_month,
                     "event": row.event, "kind": row.kind, "source": row.source,
                     "change": "not estimated", "notes": row.reason})
    table = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    if len(table):
        behaviour_term = (table["kind"] == "behaviour") & table["change"].isin(["level", "slope"])
        for spec in ("single event", "joint"):
            table = _adjust(table, behaviour_term & (table["specification"] == spec))
        table = _adjust(table, table["change"] == "event F (level + slope)")
    return table, fits


def _change_rows(fit: Fit, used: list[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    table = tidy(fit).set_index("term")
    out = []
    for ev in used:
        for change in ev["changes"]:
            row = table.loc[f"{change}[{ev['break_month']}]"]
            out.append({"specification": spec, "break_month": ev["break_month"],
                        "event": ev["event"], "kind": ev["kind"], "source": ev["source"],
                        "change": change, **{c: row[c] for c in TIDY_COLUMNS if c != "term"},
                        "term": f"{change}[{ev['break_month']}]", "df_den": fit.result.df_resid,
                        "dispersion": row["dispersion"], "n_periods": row["n_periods"],
                        "population": row["population"], "notes": row["notes"]})
    return out


def _test_row(spec: str, ev: dict[str, Any], change: str, f: float, q: int, df: int, p: float,
              fit: Fit) -> dict[str, Any]:
    """A row holding an F test: ``estimate`` is the F statistic on (df_num, df_den)."""
    return {"specification": spec, "break_month": ev["break_month"], "event": ev["event"],
            "kind": ev["kind"], "source": ev["source"], "change": change, "term": change,
            "estimate": f, "p_value": p, "df_num": q, "df_den": df,
            "dispersion": _dispersion(fit), "n_periods": fit.data["period"].nunique(),
            "population": fit.population,
            "notes": "estimate is the F statistic (drop in deviance per df / dispersion)"}


def binomial_loglik(fit: Fit) -> float:
    """Binomial log-likelihood of a share fit (the quasi-likelihood before scaling)."""
    data = fit.data
    p = np.clip(np.asarray(fit.result.fittedvalues, dtype=float), 1e-12, 1 - 1e-12)
    return float(stats.binom.logpmf(data["k"].to_numpy(), data["n"].to_numpy(), p).sum())


def model_comparison(fits: dict[str, Fit], reference: str | None = None) -> pd.DataFrame:
    """Quasi-AIC of nested share models: QAIC = -2 logL / c + 2 (K + 1).

    ``c``: the Pearson dispersion of ``reference`` (default: the fit with most parameters), the
    same for every model, as quasi-AIC requires; K counts the mean parameters, +1 for c. Lower
    is better; a difference under 2 does not separate two models. This replaces comparing
    in-sample gaps, which always favour the model with more parameters.
    """
    if not fits:
        return pd.DataFrame(columns=["fit", "k_params", "loglik", "c_hat", "qaic", "delta_qaic"])
    ref = fits[reference] if reference else max(fits.values(), key=lambda f: len(f.result.params))
    c_hat = max(1.0, _dispersion(ref))
    rows = []
    for label, fit in fits.items():
        k = len(fit.result.params)
        ll = binomial_loglik(fit)
        rows.append({"fit": label, "k_params": k, "loglik": ll, "c_hat": c_hat,
                     "qaic": -2 * ll / c_hat + 2 * (k + 1)})
    out = pd.DataFrame(rows)
    out["delta_qaic"] = out["qaic"] - out["qaic"].min()
    return out


def joint_fit(fits: list[Fit]) -> Fit | None:
    """The joint segmented fit among :func:`segmented`'s fits (None when it was not estimable)."""
    return next((f for f in fits if f.name.endswith("| joint")), None)


def segmented_comparison(linear: Fit, fits: list[Fit], outcome: str) -> pd.DataFrame:
    """Quasi-AIC of the linear trend, the trend with measurement steps, each single-event model
    and the joint model (labels as in the fitted-vs-observed table)."""
    labelled = {"linear trend": linear}
    for fit in fits:
        tail = fit.name.split(" | ")[-1]
        if tail == "no events":
            if len(fit.result.params) > len(linear.result.params):
                labelled["trend + measurement step"] = fit
        else:
            labelled["segmented (joint)" if tail == "joint" else f"single event {tail}"] = fit
    return model_comparison(labelled).assign(outcome=outcome)


# ---- diagnostics, fitted values, sensitivity ----------------------------------------------------

def standardised_residuals(fit: Fit) -> pd.Series:
    """Per-period Pearson residuals divided by sqrt(dispersion x (1 - leverage)), in time order.

    Panels (several rows per period) are first summed per period: (K - mu) / sqrt(sum n p (1-p)),
    so each period's residual has variance near the dispersion whatever its size.
    """
    res, data = fit.result, fit.data
    phi = _dispersion(fit)
    phi = phi if phi == phi and phi > 0 else 1.0
    p = np.asarray(res.fittedvalues, dtype=float)
    frame = pd.DataFrame({"period": data["period"].to_numpy(), "k": data["k"].to_numpy(),
                          "mu": data["n"].to_numpy() * p,
                          "var": data["n"].to_numpy() * p * (1 - p)})
    if data["period"].nunique() == len(data):
        hat = np.asarray(res.get_hat_matrix_diag(observed=False), dtype=float)
        frame["var"] = frame["var"] * np.clip(1 - hat, 1e-6, None)
    per = frame.groupby("period")[["k", "mu", "var"]].sum().sort_index()
    return (per["k"] - per["mu"]) / np.sqrt(per["var"] * phi)


def ljung_box(fit: Fit, lags: int | None = None) -> dict[str, float]:
    """Ljung-Box test on :func:`standardised_residuals`, reported (never used as a gate).

    The chi-square df is ``lags`` minus the number of time terms (trend, level and slope
    changes; ``model_df``, at most lags - 1): the residuals of a fitted trend have spent those
    degrees of freedom.
    """
    resid = standardised_residuals(fit)
    lags = lags or max(1, min(6, len(resid) // 5))
    slopes = [n for n in fit.result.params.index
              if n == "t" or str(n).startswith(("level[", "slope["))]  # not group effects
    model_df = min(lags - 1, len(slopes))
    lb = acorr_ljungbox(resid.to_numpy(), lags=[lags], model_df=model_df)
    plain = acorr_ljungbox(resid.to_numpy(), lags=[lags])
    return {"lags": lags, "model_df": model_df, "q": float(lb["lb_stat"].iloc[0]),
            "p_value": float(lb["lb_pvalue"].iloc[0]),
            "p_value_plain_df": float(plain["lb_pvalue"].iloc[0])}


def diagnostics(fit: Fit, first_months: int = 3) -> pd.DataFrame:
    """Residual autocorrelation and the weight of the first sparse months for a binomial fit.

    Ljung-Box (standardised per-period residuals, df reduced by the slope parameters; reported,
    not a gate) and Durbin-Watson on the same residuals; Cook's distance (largest overall and
    largest among the first ``first_months`` months); share of trials in those months.
    """
    res, data = fit.result, fit.data
    per_period = standardised_residuals(fit)
    lb = ljung_box(fit)
    first = min(data["month"])
    early = np.array([month_index(m, first) < first_months for m in data["month"]])
    influence, notes = _quiet(lambda: res.get_influence(observed=False))
    cooks = np.asarray(influence.cooks_distance[0])
    rows = [
        ("dispersion (Pearson chi2 / df)", _dispersion(fit)),
        (f"Ljung-Box Q (lag {lb['lags']}, df {lb['lags'] - lb['model_df']})", lb["q"]),
        (f"Ljung-Box p (lag {lb['lags']}, df {lb['lags'] - lb['model_df']})", lb["p_value"]),
        (f"Ljung-Box p (lag {lb['lags']}, df {lb['lags']}, no adjustment)",
         lb["p_value_plain_df"]),
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

    NSFW: both definitions x all months/without the first ``drop_months``, monthly with
    quasi-binomial or HAC errors and weekly with errors clustered by month. Real people: both
    signals x all/without the first months.
    Specifications without enough data are listed with a note instead of an estimate.
    """
    rows = []
    cache = {(d, f): nsfw_counts(con, d, f) for d in ("above_pg", "r_plus")
             for f in ("month", "week")}
    for (definition, freq), counts in cache.items():
        for drop in (0, drop_months):
            # weekly rows share their month's noise: cluster by month, never treat weeks as
            # independent (quasi) or Newey-West over weeks
            for se in (("quasi", "hac") if freq == "month" else ("cluster",)):
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
