"""Simulation study: do notebook 03's estimators keep their promises on data with a known truth?

Why: one synthetic sample can only show that an interval covered the truth once. Here the
estimators of :mod:`civitai_study.trends` run over many small datasets from generators that are
right and wrong on purpose, and the study counts how often the 95% intervals cover the truth and
how often the event tests fire when there is no event:

* ``correct``: logit(NSFW share) = b0 + b1 t + independent N(0, sd) month noise (the sample's
  own generator, with its calibrated b0, b1);
* ``ar1``: the same with AR(1) month noise (same marginal sd), i.e. slow waves;
* ``composition``: the NSFW share is constant within each of three base-model groups, but the
  group mix moves towards the NSFW-heavy group (no within-group change: the within-group odds
  ratio is 1, while the pooled share rises);
* ``break``: ``correct`` plus one true level shift at :data:`BREAK_MONTH`.

Counts are generated directly per month and group (the monthly volume curve of the sample,
scaled to ``n_images``), not as full snapshots: every estimator here needs only counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import trends
from .betabinomial import fit_betabinomial
from .paths import CALIBRATION_DIR
from .synthetic import (
    WINDOW_END,
    WINDOW_START,
    _allocate,
    _interp_log,
    _read,
    fit_nsfw_trend,
    load_calibration,
    months_between,
)

GENERATORS = ("correct", "ar1", "composition", "break")
#: The true break of the ``break`` generator: an event kept by ``select_events`` (2023-11).
BREAK_MONTH = "2023-11"
#: Three groups (think base models): their NSFW logits in ``composition`` and their mix drift.
GROUP_LOGITS = (-1.5, 0.0, 1.5)
GROUP_DRIFT = (-1.0, 0.0, 1.0)  # log-weight change per year: the mix moves to the last group
WEEKS_PER_MONTH = 4


@dataclass(frozen=True)
class SimConfig:
    n_images: int = 20_000
    month_noise_sd: float = 0.08
    ar1_rho: float = 0.7
    break_size: float = 0.5  # logit level shift of the ``break`` generator
    min_side: int = 3
    seed: int = 20250507


def design(config: SimConfig) -> tuple[pd.DataFrame, float, float]:
    """Months, their time and image volume (the sample's volume curve), and the true b0, b1."""
    months = months_between(WINDOW_START, WINDOW_END)
    anchors = _read("volume_anchors.csv", CALIBRATION_DIR)
    volume = _allocate(config.n_images, _interp_log(months, anchors, "relative_images"))
    b0, b1 = fit_nsfw_trend(load_calibration(CALIBRATION_DIR))
    frame = pd.DataFrame({"period": months, "n_month": volume})
    return trends.add_time(frame, "month"), b0, b1


def _month_noise(rng: np.random.Generator, size: int, sd: float, rho: float = 0.0) -> np.ndarray:
    """Gaussian month noise with marginal ``sd``; AR(1) with coefficient ``rho`` when rho > 0."""
    e = rng.normal(0, sd, size)
    if rho <= 0:
        return e
    out = np.empty(size)
    out[0] = e[0]
    for i in range(1, size):
        out[i] = rho * out[i - 1] + math.sqrt(1 - rho ** 2) * e[i]
    return out


def generate(generator: str, rng: np.random.Generator, config: SimConfig, base: pd.DataFrame,
             b0: float, b1: float) -> pd.DataFrame:
    """One dataset: ``period, month, t, group, n, k`` per month and group (rated images)."""
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; choose one of {list(GENERATORS)}")
    m = len(base)
    t = base["t"].to_numpy()
    rho = config.ar1_rho if generator == "ar1" else 0.0
    noise = _month_noise(rng, m, config.month_noise_sd, rho)
    weights = np.exp(np.outer(t, GROUP_DRIFT))
    weights /= weights.sum(axis=1, keepdims=True)
    rows = []
    for i in range(m):
        n_g = rng.multinomial(int(base["n_month"].iloc[i]), weights[i])
        for g, n in enumerate(n_g):
            if generator == "composition":
                eta = GROUP_LOGITS[g] + noise[i]
            else:
                eta = b0 + b1 * t[i] + noise[i]
                if generator == "break" and base["month"].iloc[i] >= BREAK_MONTH:
                    eta += config.break_size
            k = rng.binomial(n, 1 / (1 + math.exp(-eta)))
            rows.append((base["period"].iloc[i], base["month"].iloc[i], t[i], f"g{g}", n, k))
    return pd.DataFrame(rows, columns=["period", "month", "t", "group", "n", "k"])


def monthly(data: pd.DataFrame) -> pd.DataFrame:
    """Month totals (the unit of notebook 03's main model)."""
    return data.groupby(["period", "month", "t"], as_index=False)[["n", "k"]].sum()


def weekly(data: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Split each month into :data:`WEEKS_PER_MONTH` sub-periods sharing the month's share.

    Within a month the images are a multinomial split and the NSFW ones a hypergeometric one,
    so the weekly rows carry the same month noise: pseudo-replicates of the month.
    """
    month = monthly(data)
    rows = []
    for row in month.itertuples(index=False):
        n_w = rng.multinomial(int(row.n), [1 / WEEKS_PER_MONTH] * WEEKS_PER_MONTH)
        k_w = rng.multivariate_hypergeometric(n_w, int(row.k))
        for w in range(WEEKS_PER_MONTH):
            rows.append((f"{row.period}-w{w}", row.month,
                         row.t + (w + 0.5 - WEEKS_PER_MONTH / 2) / (12 * WEEKS_PER_MONTH),
                         n_w[w], k_w[w]))
    return pd.DataFrame(rows, columns=["period", "month", "t", "n", "k"])


# ---- what is measured on each dataset ------------------------------------------------------

def _slope_interval(fit: trends.Fit) -> tuple[float, float]:
    row = fit.tidy().set_index("term").loc["t"]
    return float(row["ci_low"]), float(row["ci_high"])


SLOPE_ESTIMATORS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], trends.Fit]] = {
    "monthly quasi-binomial (main)": lambda d, w: trends.fit_binomial(monthly(d), ["t"], "quasi"),
    "monthly HAC": lambda d, w: trends.fit_binomial(monthly(d), ["t"], "hac"),
    "monthly binomial (no overdispersion)":
        lambda d, w: trends.fit_binomial(monthly(d), ["t"], "binomial"),
    "monthly beta-binomial": lambda d, w: fit_betabinomial(monthly(d), ["t"]),
    "weekly quasi-binomial": lambda d, w: trends.fit_binomial(w, ["t"], "quasi"),
    "weekly clustered by month": lambda d, w: trends.fit_binomial(w, ["t"], "cluster"),
    "within groups (group fixed effects, clustered by month)":
        lambda d, w: trends.within_group_trend(None, counts=d, by="group", min_images=1),
}


#: The estimators the test suite's small study runs (the rest are contrasts for the benchmark).
LIGHT_ESTIMATORS = ("monthly quasi-binomial (main)", "weekly clustered by month",
                    "within groups (group fixed effects, clustered by month)")


def measure(generator: str, data: pd.DataFrame, week: pd.DataFrame, b1: float,
            events: pd.DataFrame, min_side: int, light: bool = False) -> list[dict]:
    """Per estimator: whether the interval covers the truth; per event test: whether it fired.

    ``light``: only :data:`LIGHT_ESTIMATORS`, and the event tests only where they are asserted
    (no events in ``composition``), no quasi-AIC or Ljung-Box: the test suite's version.
    """
    out = []
    truths = {"correct": b1, "ar1": b1, "composition": None, "break": None}
    for name, make in SLOPE_ESTIMATORS.items():
        if light and name not in LIGHT_ESTIMATORS:
            continue
        truth = truths[generator]
        if generator == "composition" and name.startswith("within"):
            truth = 0.0  # no within-group change
        if truth is None:
            continue
        try:
            low, high = _slope_interval(make(data, week))
            out.append({"estimator": name, "metric": "coverage_95", "hit": low <= truth <= high})
        except (trends.TrendError, np.linalg.LinAlgError, ValueError):
            out.append({"estimator": name, "metric": "coverage_95", "hit": None})
    if generator == "composition":  # the pooled share model's trend is pure composition
        low, high = _slope_interval(trends.fit_binomial(monthly(data), ["t"], "quasi"))
        out.append({"estimator": "monthly quasi-binomial (main), pooled over groups",
                    "metric": "rejects no-within-change (composition only)",
                    "hit": not low <= 0 <= high})
        if light:
            return out
    month = monthly(data)
    table, fits = trends.segmented(month, events, ["t"], "sim", "simulated", min_side, "quasi")
    terms = table[table["change"].isin(["level", "slope"]) & (table["kind"] == "behaviour")]
    joint = terms[terms["specification"] == "joint"]
    single_f = table[table["change"] == "event F (level + slope)"]
    omnibus = table[table["change"] == "omnibus F (any event)"]
    fired = {
        "omnibus F (any event), p < 0.05": bool((omnibus["p_value"] < 0.05).any()),
        "joint model terms, Holm p < 0.05": bool((joint["p_holm"] < 0.05).any()),
        "single-event F tests, Holm p < 0.05": bool((single_f["p_holm"] < 0.05).any()),
        "joint model terms, raw p < 0.05 (uncorrected)": bool((joint["p_value"] < 0.05).any()),
        "single-event terms, raw p < 0.05 (uncorrected)":
            bool((terms[terms["specification"] == "single event"]["p_value"] < 0.05).any()),
    }
    metric = "detects the true break" if generator == "break" else "familywise_false_positive"
    for name, hit in fired.items():
        out.append({"estimator": name, "metric": metric, "hit": hit})
    if generator == "break":
        at = single_f[single_f["break_month"] == BREAK_MONTH]
        out.append({"estimator": f"single-event F at {BREAK_MONTH}, Holm p < 0.05",
                    "metric": metric, "hit": bool((at["p_holm"] < 0.05).any())})
    if light:
        return out
    linear = trends.fit_binomial(month, ["t"], "quasi")
    comparison = trends.model_comparison({"linear": linear, "joint": fits[-1]})
    best = comparison.sort_values("qaic").iloc[0]["fit"]
    out.append({"estimator": "quasi-AIC prefers the joint segmented model",
                "metric": "detects the true break" if generator == "break"
                else "familywise_false_positive", "hit": best == "joint"})
    if generator in ("correct", "ar1"):
        lb = trends.ljung_box(linear)
        out.append({"estimator": "Ljung-Box on standardised residuals, p < 0.05",
                    "metric": "rejection rate", "hit": lb["p_value"] < 0.05})
        out.append({"estimator": "Ljung-Box on standardised residuals, no df adjustment, "
                                 "p < 0.05", "metric": "rejection rate",
                    "hit": lb["p_value_plain_df"] < 0.05})
    return out


def run_study(n_seeds: int = 200, config: SimConfig = SimConfig(),
              generators: tuple[str, ...] = GENERATORS,
              events: pd.DataFrame | None = None, light: bool = False) -> pd.DataFrame:
    """Run every generator ``n_seeds`` times; one row per generator, estimator and metric.

    ``rate``: share of seeds with a hit among those where the estimator ran; ``mc_se``: its
    Monte-Carlo standard error; ``band_low``/``band_high``: the central 99% range of that share
    if the true rate were the nominal one (0.95 for coverage, 0.05 for false positives).
    """
    events = trends.load_events() if events is None else events
    base, b0, b1 = design(config)
    records = []
    for g_index, generator in enumerate(generators):
        for seed in range(n_seeds):
            rng = np.random.default_rng([config.seed, g_index, seed])
            data = generate(generator, rng, config, base, b0, b1)
            week = weekly(data, rng)
            for row in measure(generator, data, week, b1, events, config.min_side, light):
                records.append({"generator": generator, "seed": seed, **row})
    return summarise(pd.DataFrame(records), b1)


NOMINAL = {"coverage_95": 0.95, "familywise_false_positive": 0.05, "rejection rate": 0.05}


def summarise(records: pd.DataFrame, b1: float) -> pd.DataFrame:
    """Rates per generator, estimator and metric, with Monte-Carlo errors and nominal bands."""
    rows = []
    for (generator, estimator, metric), part in records.groupby(
            ["generator", "estimator", "metric"], sort=True):
        ran = part["hit"].dropna().astype(bool)
        n = len(ran)
        rate = float(ran.mean()) if n else float("nan")
        nominal = NOMINAL.get(metric)
        low = high = float("nan")
        if nominal is not None and n:
            low = stats.binom.ppf(0.005, n, nominal) / n
            high = stats.binom.ppf(0.995, n, nominal) / n
        rows.append({"generator": generator, "estimator": estimator, "metric": metric,
                     "rate": round(rate, 4), "n_seeds": n, "n_failed": int(len(part) - n),
                     "mc_se": round(math.sqrt(rate * (1 - rate) / n), 4) if n else float("nan"),
                     "nominal": nominal, "band_low": round(low, 4), "band_high": round(high, 4),
                     "true_slope_per_year": round(b1, 4)})
    return pd.DataFrame(rows)
