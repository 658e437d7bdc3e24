"""Significance of a paper trading record: its closed holdings, forward and out of sample.

Holdings overlap in the overlapping mode (one opens every bar, each lasts ``h``),
so the tests are told the overlap: the binomial uses every ``h``-th holding, the
t-test of the mean a HAC variance over ``h - 1`` lags. One-position-at-a-time
holdings never overlap (``overlap = 1``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.ml.evaluation._common import ToDict, as_float_array
from predictor.ml.evaluation.overlap import hac_mean_test
from predictor.ml.evaluation.stats import HitRateTest, binomial_hit_test

LABEL = "forward, paper"


@dataclass(frozen=True, slots=True)
class PaperSignificance(ToDict):
    label: str
    n: int  # closed holdings
    hit: HitRateTest  # net return > 0 against a coin flip
    mean_net_return: float
    t_statistic: float  # of mean net return > 0
    t_p_value: float
    effective_n: int
    sentence: str


def paper_significance(
    net_returns: npt.ArrayLike, *, overlap: int = 1, alpha: float = 0.05
) -> PaperSignificance:
    """Hit rate (net > 0) against 0.5 with the binomial test, and the mean net return's t."""
    net = as_float_array(net_returns, "net_returns")
    net = net[np.isfinite(net)]
    hit = binomial_hit_test(np.ones(len(net)), net, horizon=overlap, alpha=alpha)
    mean = float(net.mean()) if len(net) else np.nan
    test = hac_mean_test(net, 0.0, overlap)
    sentence = (
        f"{len(net)} closed holding(s); mean net return {mean * 100:+.3f} % "
        f"(t = {test.statistic:.2f}, one-sided p = {test.p_value:.3g}). {hit.sentence}"
        if len(net)
        else "No closed holding yet."
    )
    return PaperSignificance(
        label=LABEL,
        n=len(net),
        hit=hit,
        mean_net_return=mean,
        t_statistic=test.statistic,
        t_p_value=test.p_value,
        effective_n=test.effective_n,
        sentence=sentence,
    )


def realised_returns(rows: Iterable[tuple[object, int, float, float]]) -> list[float]:
    """The account's return after each closed holding, from ``(market, sleeve, weight, net)``
    in exit order: each sleeve of each market compounds its own holdings, capital is split
    evenly over the markets seen, and a sleeve not yet used holds its cash."""
    growth: dict[tuple[object, int], float] = {}
    weight: dict[tuple[object, int], float] = {}
    out = []
    for market, sleeve, share, net in rows:
        key = (market, sleeve)
        growth[key] = growth.get(key, 1.0) * (1.0 + net)
        weight[key] = share
        markets = len({k[0] for k in growth})
        used = sum(weight.values()) / markets
        value = sum(weight[k] * growth[k] for k in growth) / markets
        out.append(value + (1.0 - used) - 1.0)
    return out
