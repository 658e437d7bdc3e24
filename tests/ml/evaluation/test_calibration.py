"""Size and power of the significance tests, measured on seeded no-skill worlds.

Each test simulates ``HIT_REPS`` (or ``REPS``) repetitions of ``N`` bars, runs
a test on every one as the report would, and asserts the rejection rate at
nominal 5 % lies in [3 %, 7 %]. The rate's standard error at 5 % is 0.49 % at
2,000 repetitions and 0.69 % at 1,000 (so the bounds are +-4.1 and +-2.9 standard
errors); everything is seeded, so a pass is reproducible. The binomial test's
rate is compared with the exact size of its rule instead (see below). The
whole file takes about 30 s on one core.
``bench/calibration.py`` prints the fuller table in ``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from predictor.ml.evaluation import nulls
from predictor.ml.evaluation.sharpe import deflated_sharpe_ratio, probabilistic_sharpe_ratio
from predictor.ml.evaluation.stats import (
    binomial_hit_test,
    diebold_mariano,
    hit_rate_t_test,
    pesaran_timmermann,
)

REPS = 1000  # DM
HIT_REPS = 2000  # hit tests and PSR: their true sizes sit up to 1.5 points from 5 % in places
N = 2000  # bars a report sees in a short test split
ALPHA = 0.05
LOW, HIGH = 0.03, 0.07
HORIZONS = (1, 5, 15, 60)
SEED = 20_240_101
HIT_TESTS: dict[str, Callable[..., Any]] = {
    "t-test": hit_rate_t_test,
    "binomial": binomial_hit_test,
    "Pesaran-Timmermann": pesaran_timmermann,
}


def _results(pairs: tuple[np.ndarray, np.ndarray], horizon: int) -> dict[str, list[Any]]:
    predicted, realised = pairs
    return {
        name: [test(predicted[i], realised[i], horizon=horizon) for i in range(len(predicted))]
        for name, test in HIT_TESTS.items()
    }


def _rate(results: list[Any]) -> float:
    return float(np.mean([result.p_value < ALPHA for result in results]))


def mid_p_size(n: int) -> float:
    """The exact size of "mid-p < 5 %" with n i.i.d. fair calls: P(X >= k*), k* the critical count."""
    counts = np.arange(n + 1)
    mid_p = sps.binom.sf(counts, n, 0.5) + 0.5 * sps.binom.pmf(counts, n, 0.5)
    return float(sps.binom.sf(counts[mid_p < ALPHA][0] - 1, n, 0.5))


def test_the_mid_p_binomial_rule_has_a_size_in_bounds_at_every_small_n() -> None:
    """Where the exact test is far too strict (2.5 % at 32 calls), mid-p stays in [3 %, 7 %]."""
    sizes = {n: mid_p_size(n) for n in range(20, 401)}
    assert all(LOW <= size <= HIGH for size in sizes.values()), sizes
    assert sps.binom.sf(21, 32, 0.5) < LOW  # the exact test at 32 calls: P(X >= 22) = 2.5 %


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("world", list(nulls.HIT_NULLS))
def test_hit_tests_reject_a_no_skill_forecast_at_about_the_nominal_rate(
    world: str, horizon: int
) -> None:
    rng = np.random.default_rng([SEED, list(nulls.HIT_NULLS).index(world), horizon])
    results = _results(nulls.HIT_NULLS[world](rng, HIT_REPS, N, horizon), horizon)
    rates = {name: _rate(found) for name, found in results.items()}
    assert LOW <= rates["t-test"] <= HIGH, rates
    assert LOW <= rates["Pesaran-Timmermann"] <= HIGH, rates
    # the subsample's calls are i.i.d. fair coins in these worlds, so the binomial's rate must
    # match the exact size of its rule at that many calls (within 3.5 standard errors)
    calls = {result.n for result in results["binomial"]}
    assert len(calls) == 1
    size = mid_p_size(calls.pop())
    assert abs(rates["binomial"] - size) < 3.5 * np.sqrt(size * (1 - size) / HIT_REPS), rates


def test_the_naive_t_test_is_what_overlap_breaks() -> None:
    """The same persistence forecasts at h = 15, with the calls taken as independent."""
    rng = np.random.default_rng([SEED, 0, 15])
    predicted, realised = nulls.persistence_on_random_walk(rng, REPS, N, 15)
    hits = (np.sign(predicted) == np.sign(realised)).astype(float)
    naive = sps.ttest_1samp(hits, 0.5, axis=1, alternative="greater").pvalue
    assert np.mean(naive < ALPHA) > 0.15
    assert _rate(_results((predicted, realised), 15)["t-test"]) <= HIGH


@pytest.mark.parametrize(
    ("horizon", "edge", "power"), [(1, 0.12, 0.9), (15, 0.35, 0.8), (60, 0.6, 0.6)]
)
def test_every_hit_test_detects_a_planted_edge(horizon: int, edge: float, power: float) -> None:
    """Forecast = next h-bar move + noise with correlation ``edge`` (hit rate 0.5 + asin(edge)/pi)."""
    rng = np.random.default_rng([SEED, 99, horizon])
    results = _results(nulls.planted_edge(rng, 200, N, horizon, edge), horizon)
    rates = {name: _rate(found) for name, found in results.items()}
    assert all(rate >= power for rate in rates.values()), rates


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("world", ["independent MA(h-1) errors", "t(3) MA(h-1) errors"])
def test_diebold_mariano_is_calibrated_for_overlapping_errors(world: str, horizon: int) -> None:
    rng = np.random.default_rng([SEED, 50 + list(nulls.DM_NULLS).index(world), horizon])
    model, bench = nulls.DM_NULLS[world](rng, REPS, N, horizon)
    rejected = [
        diebold_mariano(model[i], bench[i], horizon=horizon).p_value < ALPHA for i in range(REPS)
    ]
    assert LOW <= np.mean(rejected) <= HIGH


@pytest.mark.parametrize("horizon", [1, 15, 60])
def test_diebold_mariano_detects_a_model_with_smaller_errors(horizon: int) -> None:
    rng = np.random.default_rng([SEED, 60, horizon])
    model, bench = nulls.dm_independent_errors(rng, 200, N, horizon)
    rejected = [
        diebold_mariano(0.6 * model[i], bench[i], horizon=horizon).significant for i in range(200)
    ]
    assert np.mean(rejected) >= 0.8


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("market_ar", [0.0, 0.2])
def test_psr_of_a_no_skill_strategy_is_calibrated(market_ar: float, horizon: int) -> None:
    """True Sharpe 0: a blind signal held h bars, t(3) returns, with and without momentum."""
    rng = np.random.default_rng([SEED, 70, horizon, int(market_ar * 10)])
    returns = nulls.no_skill_strategy_returns(rng, HIT_REPS, N, horizon, market_ar)
    rejected = [
        probabilistic_sharpe_ratio(returns[i], horizon=horizon).significant for i in range(HIT_REPS)
    ]
    assert LOW <= np.mean(rejected) <= HIGH


def test_psr_detects_a_strategy_with_a_real_edge() -> None:
    rng = np.random.default_rng([SEED, 71])
    returns = nulls.no_skill_strategy_returns(rng, 200, N, 5) + 0.12  # per-bar Sharpe about 0.1
    assert np.mean([probabilistic_sharpe_ratio(r, horizon=5).significant for r in returns]) >= 0.9


def _best_of(returns: np.ndarray) -> np.ndarray:
    sharpes = returns.mean(axis=2) / returns.std(axis=2, ddof=1)
    best: np.ndarray = returns[np.arange(len(returns)), sharpes.argmax(axis=1)]
    return best


@pytest.mark.parametrize("market_ar", [0.0, 0.2])
def test_dsr_of_the_best_of_ten_no_skill_strategies_rarely_rejects(market_ar: float) -> None:
    """The DSR is conservative by construction: measured about 1 % at nominal 5 %.

    The PSR of the same best-of-ten strategies, which ignores the search,
    rejects far more often: that is what the deflation is for.
    """
    trials = 10
    rng = np.random.default_rng([SEED, 80, int(market_ar * 10)])
    returns = nulls.no_skill_strategy_returns(rng, 400 * trials, N, 5, market_ar)
    best = _best_of(returns.reshape(400, trials, N))
    dsr = np.mean([deflated_sharpe_ratio(r, n_trials=trials, horizon=5).significant for r in best])
    psr = np.mean([probabilistic_sharpe_ratio(r, horizon=5).significant for r in best])
    assert dsr <= ALPHA
    assert psr > 0.2


def test_dsr_detects_one_real_edge_among_ten_trials() -> None:
    trials = 10
    rng = np.random.default_rng([SEED, 81])
    returns = nulls.no_skill_strategy_returns(rng, 200 * trials, N, 5).reshape(200, trials, N)
    returns[:, 0] += 0.15
    best = _best_of(returns)
    assert (
        np.mean([deflated_sharpe_ratio(r, n_trials=trials, horizon=5).significant for r in best])
        >= 0.9
    )
