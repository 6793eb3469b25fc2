"""Weighted log-odds with an informative Dirichlet prior, against a hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from civitai_study.logodds import weighted_log_odds


def test_hand_computed_example():
    """A: x 3, y 1; B: x 1, y 3; prior 1 pseudo-count per term (alpha_0 = 2).

    delta_x = ln((3+1)/(4+2-3-1)) - ln((1+1)/(4+2-1-1)) = ln 2 - ln(1/2) = 2 ln 2;
    var = 1/(3+1) + 1/(1+1) = 3/4; z = 2 ln 2 / sqrt(3/4) = 1.6008. y mirrors x.
    """
    a = pd.Series({"x": 3, "y": 1})
    b = pd.Series({"x": 1, "y": 3})
    out = weighted_log_odds(a, b, prior=pd.Series({"x": 1, "y": 1}), prior_scale=2).set_index(
        "term")
    assert list(out.index) == ["x", "y"]  # sorted by z, descending
    assert out.loc["x", "log_odds"] == pytest.approx(2 * math.log(2))
    assert out.loc["x", "se"] == pytest.approx(math.sqrt(0.75))
    assert out.loc["x", "z"] == pytest.approx(2 * math.log(2) / math.sqrt(0.75))
    assert out.loc["x", "z"] == pytest.approx(1.6008, abs=1e-4)
    assert out.loc["y", "log_odds"] == pytest.approx(-2 * math.log(2))
    assert (out.loc["x", "n_a"], out.loc["x", "n_b"]) == (3, 1)


def test_default_prior_is_pooled_counts():
    """Without a prior the pooled counts (4 and 4) are rescaled to prior_scale in total."""
    a = pd.Series({"x": 3, "y": 1})
    b = pd.Series({"x": 1, "y": 3})
    pooled = weighted_log_odds(a, b, prior_scale=2)
    explicit = weighted_log_odds(a, b, prior=pd.Series({"x": 4, "y": 4}), prior_scale=2)
    pd.testing.assert_frame_equal(pooled, explicit)


def test_empty_counts_raise():
    with pytest.raises(ValueError, match="no counts"):
        weighted_log_odds(pd.Series(dtype=float), pd.Series(dtype=float))
