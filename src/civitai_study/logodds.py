"""Weighted log-odds ratios with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008).

Used to find terms over-represented in one group of documents against another (NSFW against
SFW prompts, real-person against other models). The prior shrinks rare terms towards zero so that
a term seen twice does not top the list; the z-score divides by the estimate's standard error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def weighted_log_odds(counts_a: pd.Series, counts_b: pd.Series,
                      prior: pd.Series | None = None, prior_scale: float = 500.0
                      ) -> pd.DataFrame:
    """Log-odds of each term in group A against group B, with z-scores.

    ``counts_a``/``counts_b``: term → count in each group. ``prior``: term → background count
    (default: the pooled counts A + B), rescaled to ``prior_scale`` pseudo-counts in total
    (Monroe et al.'s alpha_0). Returns columns ``term, n_a, n_b, log_odds, se, z`` sorted by
    ``z`` descending, then by term.
    """
    terms = counts_a.index.union(counts_b.index)
    a = counts_a.reindex(terms, fill_value=0).astype(float)
    b = counts_b.reindex(terms, fill_value=0).astype(float)
    pooled = (a + b) if prior is None else prior.reindex(terms, fill_value=0).astype(float)
    if pooled.sum() <= 0:
        raise ValueError("weighted_log_odds: no counts in either group")
    alpha = (pooled / pooled.sum() * prior_scale).clip(lower=1e-3)
    a0, b0 = alpha.sum(), alpha.sum()
    na, nb = a.sum(), b.sum()
    log_a = np.log((a + alpha) / (na + a0 - a - alpha))
    log_b = np.log((b + alpha) / (nb + b0 - b - alpha))
    delta = log_a - log_b
    se = np.sqrt(1.0 / (a + alpha) + 1.0 / (b + alpha))
    out = pd.DataFrame({"term": terms, "n_a": a.astype(int).values, "n_b": b.astype(int).values,
                        "log_odds": delta.values, "se": se.values})
    out["z"] = out["log_odds"] / out["se"]
    return out.sort_values(["z", "term"], ascending=[False, True], ignore_index=True)
