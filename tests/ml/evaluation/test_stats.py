"""Known-answer and size tests for the significance tests."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.sandwich_covariance import S_hac_simple

from predictor.ml.evaluation.stats import (
    binomial_hit_test,
    deflated_sharpe_ratio,
    diebold_mariano,
    expected_max_sharpe,
    hit_rate_t_test,
    newey_west_variance,
    pesaran_timmermann,
    pesaran_timmermann_statistic,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    reality_check,
)

# Eight calls, six right: hits 1,1,1,0,1,0,1,1.
PREDICTED = np.array([1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0])
REALISED = np.array([0.5, 0.2, -0.1, -0.3, -0.2, -0.4, 0.1, -0.6])


def test_t_test_matches_a_hand_computation_and_is_not_halved() -> None:
    result = hit_rate_t_test(PREDICTED, REALISED, horizon=1)
    # mean 0.75, s = sqrt((6 * 0.25^2 + 2 * 0.75^2) / 7) = sqrt(1.5 / 7), t = 0.25 / (s / sqrt 8)
    t_by_hand = 0.25 / (math.sqrt(1.5 / 7) / math.sqrt(8))
    assert result.statistic == pytest.approx(t_by_hand)
    assert result.statistic == pytest.approx(1.5275252)
    one_sided = sps.t.sf(t_by_hand, df=7)
    assert result.p_value == pytest.approx(one_sided)
    # the original's bug: it halved a p-value that was already one-sided
    assert result.p_value != pytest.approx(one_sided / 2)
    assert (result.n, result.hits, result.hit_rate) == (8, 6, 0.75)
    assert "Not better than a coin flip at the 5 % level" in result.sentence
    assert "p = 0.09" in result.sentence


def test_binomial_test_matches_the_exact_tail_probability() -> None:
    result = binomial_hit_test(PREDICTED, REALISED, horizon=1)
    assert result.exact_p_value == pytest.approx((28 + 8 + 1) / 256)  # P(X >= 6), X ~ Bin(8, 1/2)
    assert result.p_value == pytest.approx((8 + 1) / 256 + 28 / 256 / 2)  # mid-p
    assert (result.n, result.effective_n, result.subsample_start) == (8, 8, 0)
    assert not result.significant


def test_pesaran_timmermann_matches_a_hand_computed_example() -> None:
    """Pesaran & Timmermann (1992, JBES 10(4) 461-465), eq. for S_n, by hand.

    n = 10 with 4 (up, up), 1 (predicted up, realised down), 2 (down, up), 3 (down, down):
    Py = 0.6, Px = 0.5, P = 0.7, P* = 0.6*0.5 + 0.4*0.5 = 0.5,
    V(P) = 0.5*0.5/10 = 0.025,
    V(P*) = 0.2^2 * 0.25/10 + 0 + 4*0.6*0.5*0.4*0.5/100 = 0.001 + 0.0024 = 0.0034,
    S = 0.2 / sqrt(0.0216) = 1.360828, one-sided p = 1 - Phi(1.360828) = 0.086784 (normal tables).
    """
    predicted_up = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    realised_up = np.array([1, 1, 1, 1, 0, 1, 1, 0, 0, 0], dtype=bool)
    statistic, p_hat, p_star = pesaran_timmermann_statistic(predicted_up, realised_up)
    assert (p_hat, p_star) == pytest.approx((0.7, 0.5))
    assert statistic == pytest.approx(1.360828, abs=1e-6)
    result = pesaran_timmermann(
        np.where(predicted_up, 1.0, -1.0), np.where(realised_up, 1.0, -1.0), horizon=1
    )
    assert result.p_value == pytest.approx(0.086784, abs=1e-6)


def test_pesaran_timmermann_squared_approaches_the_chi_square_independence_test() -> None:
    """PT (1992) show S_n^2 is asymptotically the Pearson chi-square of the 2x2 table."""
    rng = np.random.default_rng(0)
    realised = rng.random(5000) < 0.55
    predicted = np.where(rng.random(5000) < 0.1, realised, rng.random(5000) < 0.6)
    statistic, _, _ = pesaran_timmermann_statistic(predicted, realised)
    table = [
        [np.sum(predicted & realised), np.sum(predicted & ~realised)],
        [np.sum(~predicted & realised), np.sum(~predicted & ~realised)],
    ]
    chi_square = sps.chi2_contingency(table, correction=False)[0]
    assert statistic**2 == pytest.approx(chi_square, rel=1e-3)


def test_always_long_in_a_rising_market_is_not_skill_under_pesaran_timmermann() -> None:
    rng = np.random.default_rng(1)
    realised = rng.normal(0.002, 0.01, 2000)  # about 58 % up moves
    always_long = np.ones(2000)
    result = pesaran_timmermann(always_long, realised, horizon=1)
    assert not result.significant
    assert "undefined" in result.sentence
    # the naive hit-rate tests are fooled by the drift: this is why PT is in the report
    assert hit_rate_t_test(always_long, realised, horizon=1).significant


def test_almost_always_long_in_a_rising_market_is_rejected_at_about_the_nominal_rate() -> None:
    rejections = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        realised = rng.normal(0.003, 0.01, 1000)
        forecast = np.where(rng.random(1000) < 0.97, 1.0, -1.0)  # long 97 % of the time, blindly
        rejections += pesaran_timmermann(forecast, realised, horizon=1).significant
    assert rejections <= 10


@pytest.mark.parametrize("test", [hit_rate_t_test, binomial_hit_test, pesaran_timmermann])
def test_random_predictions_are_not_significant_in_at_least_90_of_100_seeds(test: object) -> None:
    significant = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        result = test(rng.normal(size=500), rng.normal(size=500), horizon=1)  # type: ignore[operator]
        significant += result.significant
    assert significant <= 10


@pytest.mark.parametrize("test", [hit_rate_t_test, binomial_hit_test, pesaran_timmermann])
def test_a_model_given_the_future_is_highly_significant(test: object) -> None:
    realised = np.random.default_rng(2).normal(size=500)
    result = test(realised, realised, horizon=1)  # type: ignore[operator]
    assert result.significant
    assert result.p_value < 1e-10


def test_diebold_mariano_with_h_1_reduces_to_the_t_test_of_the_loss_differential() -> None:
    """For h = 1 the HLN factor sqrt((n - 1)/n) turns DM into the ordinary t-statistic.

    Harvey, Leybourne & Newbold (1997, IJF 13(2) 281-291): the corrected statistic
    is DM * sqrt((n + 1 - 2h + h(h - 1)/n) / n), compared with t(n - 1).
    """
    model = np.array([0.5, -0.2, 0.1, 0.3, -0.4, 0.2])
    bench = np.array([0.9, -0.1, 0.5, 0.2, -0.8, 0.6])
    result = diebold_mariano(model, bench, horizon=1, loss="squared", benchmark="zero_return")
    differential = model**2 - bench**2
    expected = sps.ttest_1samp(differential, 0.0, alternative="less")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)


@pytest.mark.parametrize(("horizon", "loss"), [(3, "squared"), (5, "absolute")])
def test_diebold_mariano_uses_the_unweighted_long_run_variance_hln_assume(
    horizon: int, loss: str
) -> None:
    """HLN's factor corrects g0 + 2 sum_{k<h} g_k, so DM must use that sum, not Bartlett weights.

    statsmodels' HAC with the uniform kernel at h - 1 lags is that sum; its
    Bartlett kernel (what DM used before) gives a different, smaller variance.
    """
    rng = np.random.default_rng(3)
    n = 400
    # h-step forecast errors made every bar overlap: an MA(h - 1) structure
    shocks = rng.normal(size=(n + horizon, 2))
    kernel = np.ones(horizon)
    model = np.convolve(shocks[:, 0], kernel, "valid")[:n]
    bench = 1.1 * np.convolve(shocks[:, 1], kernel, "valid")[:n]
    result = diebold_mariano(model, bench, horizon=horizon, loss=loss)  # type: ignore[arg-type]
    d = (model**2 - bench**2) if loss == "squared" else (np.abs(model) - np.abs(bench))

    def t_value(kernel_name: str) -> float:
        cov = {"maxlags": horizon - 1, "use_correction": False, "kernel": kernel_name}
        return float(sm.OLS(d, np.ones(n)).fit(cov_type="HAC", cov_kwds=cov).tvalues[0])

    hln = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    assert result.statistic == pytest.approx(t_value("uniform") * hln)
    assert result.statistic != pytest.approx(t_value("bartlett") * hln)
    assert result.p_value == pytest.approx(sps.t.cdf(t_value("uniform") * hln, df=n - 1))
    assert result.method.startswith("DM with HLN correction, unweighted")
    assert result.effective_n == n // horizon
    assert f"n_eff ≈ {n // horizon} of {n} overlapping {horizon}-bar calls" in result.sentence


def test_diebold_mariano_falls_back_to_bartlett_when_the_unweighted_sum_is_not_positive() -> None:
    # model errors alternate 2, 0, 2, 0 against a benchmark error of 1: d alternates +1, -1,
    # so g1 is close to -g0 and g0 + 2 g1 < 0 at h = 2
    noise = 0.01 * np.random.default_rng(9).normal(size=100)
    model = np.tile([2.0, 0.0], 50) + noise
    result = diebold_mariano(model, np.ones(100), horizon=2, loss="absolute")
    d = np.abs(model) - 1.0
    centred = d - d.mean()
    assert centred @ centred + 2 * (centred[1:] @ centred[:-1]) < 0
    assert "Bartlett" in result.method
    hln = math.sqrt((100 + 1 - 4 + 2 / 100) / 100)
    expected = d.mean() / math.sqrt(newey_west_variance(d, 1) / 100) * hln
    assert result.statistic == pytest.approx(expected)


def test_diebold_mariano_finds_a_clearly_better_model() -> None:
    rng = np.random.default_rng(4)
    truth = rng.normal(size=1000)
    result = diebold_mariano(0.1 * rng.normal(size=1000), truth, horizon=1, benchmark="zero_return")
    assert result.significant
    assert result.sentence.startswith("More accurate than the zero-return forecast")


def test_sharpe_ratio_tests_reproduce_the_deflated_sharpe_paper_example() -> None:
    """Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", JPM 40(5), numerical example.

    Annualised SR 2.5 over 5 years of daily returns (T = 1250, 250 days a year),
    skewness -3, kurtosis 10, N = 100 trials with annualised variance of trial
    Sharpes 1/2. The paper gives SR*_0 = 0.1132 (not annualised), i.e. about
    1.7894 annualised, and DSR = 0.9004.
    """
    sharpe = 2.5 / math.sqrt(250)
    benchmark = expected_max_sharpe(100, 0.5 / 250)
    assert benchmark == pytest.approx(0.1132, abs=5e-5)
    assert benchmark * math.sqrt(250) == pytest.approx(1.7894, abs=5e-4)
    _, dsr = psr_from_moments(sharpe, 1250, -3.0, 10.0, benchmark)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_uses_skew_and_kurtosis_at_the_benchmark_and_is_the_t_test_against_zero() -> None:
    rng = np.random.default_rng(5)
    returns = rng.standard_t(df=5, size=2000) * 0.01 + 0.001
    sharpe = returns.mean() / returns.std(ddof=1)
    skew, kurtosis = float(sps.skew(returns)), float(sps.kurtosis(returns, fisher=False))
    result = probabilistic_sharpe_ratio(returns, 0.05, lags=0)  # no lags: n_eff = n
    _, expected = psr_from_moments(sharpe, 2000, skew, kurtosis, 0.05, variance_at="benchmark")
    assert result.effective_n == 2000
    assert (result.skew, result.kurtosis) == pytest.approx((skew, kurtosis))
    assert result.probability == pytest.approx(expected)
    assert result.p_value == pytest.approx(1 - expected)
    _, at_estimate = psr_from_moments(sharpe, 2000, skew, kurtosis, 0.05)
    assert result.probability != pytest.approx(at_estimate)
    # against 0 the null's variance is 1 / (n - 1) whatever the skew: z = SR sqrt(n - 1)
    against_zero = probabilistic_sharpe_ratio(returns, lags=0)
    assert against_zero.statistic == pytest.approx(sharpe * math.sqrt(1999))
    # the default lags see no autocorrelation in i.i.d. returns: n_eff stays close to n
    assert probabilistic_sharpe_ratio(returns).effective_n > 1700


def test_psr_counts_autocorrelated_returns_as_fewer_independent_bars() -> None:
    """AR(0.5) returns: LRV / g0 = (1 + 0.5) / (1 - 0.5) = 3, so n_eff is about n / 3."""
    rng = np.random.default_rng(10)
    shocks = rng.normal(0.0005, 0.01, 4000)
    returns = np.empty(4000)
    returns[0] = shocks[0]
    for t in range(1, 4000):
        returns[t] = 0.5 * returns[t - 1] + shocks[t]
    result = probabilistic_sharpe_ratio(returns)
    assert 4000 / 3 * 0.8 < result.effective_n < 4000 / 3 * 1.3
    naive = probabilistic_sharpe_ratio(returns, lags=0)
    assert result.statistic == pytest.approx(
        naive.statistic * math.sqrt((result.effective_n - 1) / 3999)
    )
    assert f"n_eff ≈ {result.effective_n:,} of 4,000 autocorrelated bars" in result.sentence


def test_dsr_with_one_trial_is_the_psr_against_zero_and_falls_as_trials_grow() -> None:
    rng = np.random.default_rng(6)
    returns = rng.normal(0.0008, 0.01, 1500)
    psr = probabilistic_sharpe_ratio(returns)
    single = deflated_sharpe_ratio(returns, n_trials=1)
    many = deflated_sharpe_ratio(returns, n_trials=50)
    assert single.probability == pytest.approx(psr.probability)
    assert many.probability < single.probability
    assert "50 configuration(s) tried" in many.sentence


def test_sharpe_tests_of_a_flat_strategy_are_undefined_not_errors() -> None:
    result = deflated_sharpe_ratio(np.zeros(100), n_trials=3)
    assert math.isnan(result.probability)
    assert not result.significant
    json.dumps(result.to_dict(), allow_nan=False)


def test_reality_check_is_seeded_and_detects_a_dominant_model() -> None:
    rng = np.random.default_rng(7)
    bench = rng.normal(size=600) ** 2
    noise_models = rng.normal(size=(600, 3)) ** 2
    first = reality_check(bench, noise_models, reps=300, seed=11)
    again = reality_check(bench, noise_models, reps=300, seed=11)
    assert first.p_value == again.p_value
    assert first.reality_check_p_value == again.reality_check_p_value
    assert not first.significant
    dominant = np.column_stack([noise_models, 0.3 * bench])
    assert reality_check(bench, dominant, reps=300, seed=11).significant


@pytest.mark.parametrize("lags", [0, 1, 4, 12, 40])  # 40: the FFT path
def test_newey_west_variance_equals_statsmodels_s_hac_simple(lags: int) -> None:
    x = np.random.default_rng(8).normal(size=300).cumsum() % 3.0
    expected = S_hac_simple(x - x.mean(), nlags=lags)[0, 0] / len(x)
    assert newey_west_variance(x, lags) == pytest.approx(expected)


def _overlapping_calls(horizon: int, n: int = 600, seed: int = 12) -> tuple[np.ndarray, ...]:
    """A random walk's next h-bar moves and a persistence forecast of them."""
    steps = np.random.default_rng(seed).normal(size=n + 2 * horizon)
    path = np.cumsum(steps)
    return path[horizon:-horizon] - path[: -2 * horizon], path[2 * horizon :] - path[
        horizon:-horizon
    ]


def test_hit_t_test_divides_by_the_unweighted_long_run_variance_of_the_hits() -> None:
    horizon = 10
    predicted, realised = _overlapping_calls(horizon)
    result = hit_rate_t_test(predicted, realised, horizon=horizon)
    hits = (np.sign(predicted) == np.sign(realised)).astype(float)
    n = len(hits)
    ols = sm.OLS(hits - 0.5, np.ones(n)).fit(
        cov_type="HAC",
        cov_kwds={"maxlags": horizon - 1, "use_correction": False, "kernel": "uniform"},
    )
    hln = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    assert result.statistic == pytest.approx(float(ols.tvalues[0]) * hln)
    assert result.p_value == pytest.approx(sps.t.sf(result.statistic, df=n // horizon - 1))
    assert (result.horizon, result.effective_n) == (horizon, 60)
    assert "n_eff ≈ 60 of 600 overlapping 10-bar calls" in result.sentence
    # the naive t-test treats the 600 calls as independent and is far more confident
    naive = sps.ttest_1samp(hits, 0.5, alternative="greater")
    assert abs(naive.statistic) > 1.5 * abs(result.statistic)


def test_binomial_test_uses_every_hth_call_from_the_first_scored_row() -> None:
    horizon = 4
    predicted, realised = _overlapping_calls(horizon, n=400)
    predicted[:3] = np.nan  # no forecast for the first rows: the subsample starts at row 3
    realised[7] = 0.0  # a zero move on the grid is skipped, not replaced by row 8
    result = binomial_hit_test(predicted, realised, horizon=horizon)
    rows = np.array([r for r in range(3, 400, horizon) if r != 7])
    hits = np.sign(predicted[rows]) == np.sign(realised[rows])
    assert (result.subsample_start, result.n, result.effective_n) == (3, len(rows), len(rows))
    assert result.hits == int(hits.sum())
    k, n = int(hits.sum()), len(rows)
    assert result.exact_p_value == pytest.approx(sps.binomtest(k, n, 0.5, "greater").pvalue)
    mid_p = sps.binom.sf(k, n, 0.5) + 0.5 * sps.binom.pmf(k, n, 0.5)
    assert result.p_value == pytest.approx(mid_p)
    assert f"right of {n} non-overlapping calls (one every 4 bars from row 3)" in result.sentence


def test_pesaran_timmermann_with_overlap_is_a_hac_test_that_states_its_effective_n() -> None:
    predicted, realised = _overlapping_calls(15, n=1500)
    result = pesaran_timmermann(predicted, realised, horizon=15)
    assert "HAC" in result.method
    assert result.effective_n == 100
    assert "n_eff ≈ 100 of 1,500 overlapping 15-bar calls" in result.sentence
    classic = pesaran_timmermann(predicted, realised, horizon=1)
    assert abs(result.statistic) < abs(classic.statistic)  # the overlap widens the error


def test_a_zero_forecast_is_a_miss_for_hit_tests_and_left_out_of_pesaran_timmermann() -> None:
    predicted = np.array([1.0, 0.0, 1.0, -1.0, 0.0, 1.0])
    realised = np.array([1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    assert hit_rate_t_test(predicted, realised, horizon=1).hits == 4
    assert hit_rate_t_test(predicted, realised, horizon=1).n == 6
    assert pesaran_timmermann(predicted, realised, horizon=1).n == 4


@pytest.mark.parametrize("test", [hit_rate_t_test, binomial_hit_test, pesaran_timmermann])
@pytest.mark.parametrize("horizon", [0, -3, 2.5])
def test_a_bad_horizon_is_refused_with_a_clear_error(test: object, horizon: object) -> None:
    with pytest.raises(ValueError, match="horizon must be a whole number of bars"):
        test(np.ones(50), np.ones(50), horizon=horizon)  # type: ignore[operator]
