"""The paper record's significance panel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from predictor.ml.evaluation.paper_stats import LABEL, paper_significance


def test_hit_rate_and_mean_test_match_scipy_on_non_overlapping_holdings():
    net = np.array([0.01, -0.004, 0.006, 0.002, -0.001, 0.008, 0.003, -0.002, 0.005, 0.004])
    result = paper_significance(net)
    assert result.label == LABEL == "forward, paper"
    assert (result.n, result.hit.hits) == (10, 7)
    exact = stats.binomtest(7, 10, 0.5, alternative="greater").pvalue
    assert result.hit.exact_p_value == pytest.approx(exact)
    t = stats.ttest_1samp(net, 0.0, alternative="greater")
    assert result.t_statistic == pytest.approx(t.statistic)
    assert result.t_p_value == pytest.approx(t.pvalue)


def test_overlapping_holdings_count_one_in_h():
    net = np.tile([0.01, -0.002, 0.004], 10)
    assert paper_significance(net, overlap=3).hit.n == 10


def test_no_holdings_says_so():
    result = paper_significance([])
    assert result.n == 0
    assert result.sentence == "No closed holding yet."
