"""Beta-binomial regression: the likelihood-based alternative to quasi-binomial errors.

Why: quasi-binomial errors assume the variance of a month's NSFW count is a constant multiple of
the binomial one, n p (1 - p). Month-level noise (moderation waves, viral months) instead adds a
variance that grows with n^2, so large months are over-weighted. The beta-binomial lets the
share itself vary between months around the trend (variance n p (1 - p) (1 + (n - 1) rho)), so
big and small months are weighted by how much they really tell. Notebook 03 keeps quasi-binomial
as its main method; the simulation study (:mod:`civitai_study.simulate`) compares the two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.base.model import GenericLikelihoodModel

from .trends import Fit, _check_periods, _quiet


class BetaBinomialLogit(GenericLikelihoodModel):
    """k ~ BetaBinomial(n, mean p, intra-period correlation rho); logit(p) = X b, logit(rho)."""

    def __init__(self, k: pd.Series, n: np.ndarray, exog: pd.DataFrame, **kwargs):
        self.trials = np.asarray(n, dtype=float)
        super().__init__(k.astype(float), exog, extra_params_names=["logit_rho"], **kwargs)

    def loglikeobs(self, params: np.ndarray) -> np.ndarray:
        beta, rho = params[:-1], special.expit(params[-1])
        p = special.expit(self.exog @ beta)
        scale = (1 - rho) / rho
        return stats.betabinom.logpmf(self.endog, self.trials, p * scale, (1 - p) * scale)


def fit_betabinomial(data: pd.DataFrame, columns: list[str], name: str = "", words: str = "",
                     population: str = "") -> Fit:
    """Beta-binomial GLM of ``k`` in ``n`` on ``columns`` (plus a constant), Wald intervals.

    Starts from the binomial fit, so the optimiser begins at the right slope.
    """
    data = data.loc[data["n"] > 0].sort_values("t", kind="stable").reset_index(drop=True)
    _check_periods(data, max(5, len(columns) + 3), name or "beta-binomial trend")
    exog = sm.add_constant(data[columns].astype(float), has_constant="add")
    endog = np.column_stack([data["k"], data["n"] - data["k"]]).astype(float)
    start_fit = sm.GLM(endog, exog, family=sm.families.Binomial()).fit()
    start = np.append(np.asarray(start_fit.params), -5.0)
    model = BetaBinomialLogit(data["k"], data["n"].to_numpy(), exog)
    result, notes = _quiet(lambda: model.fit(start_params=start, method="bfgs", maxiter=500,
                                             disp=0))
    if not result.mle_retvals.get("converged", True):
        notes.append("beta-binomial optimiser did not converge")
    formula = "k ~ BetaBinomial(n, expit(" + " + ".join(["1"] + columns) + "), rho)"
    return Fit(name or "beta-binomial", formula, words, "beta-binomial", result, data,
               population, notes)
