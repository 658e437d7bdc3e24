"""θ is chosen on validation data only and frozen; the test split cannot feed it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from predictor.ml.evaluation.backtest import backtest
from predictor.ml.evaluation.threshold import choose_threshold

HORIZON = 2
START = 1_700_000_000


def _market(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opens, forecasts and times where only large forecasts carry information."""
    rng = np.random.default_rng(seed)
    moves = rng.normal(0, 0.01, n)
    opens = 100 * np.exp(np.cumsum(moves))
    future = np.r_[opens[1 + HORIZON :] / opens[1:-HORIZON] - 1, np.full(HORIZON + 1, np.nan)]
    noise = rng.normal(0, 0.01, n)
    informed = rng.random(n) < 0.2
    forecast = np.where(informed, 3 * np.nan_to_num(future), noise)
    return opens, forecast, START + 60 * np.arange(n)


def test_choose_threshold_takes_only_validation_arrays() -> None:
    array_parameters = [
        name
        for name, p in inspect.signature(choose_threshold).parameters.items()
        if p.annotation == "npt.ArrayLike"
    ]
    assert array_parameters == ["validation_open", "validation_forecast", "validation_times"]
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY
        for p in inspect.signature(choose_threshold).parameters.values()
    )


def test_choose_threshold_maximises_net_sharpe_among_candidates_with_enough_trades() -> None:
    opens, forecast, times = _market(0)
    chosen = choose_threshold(
        validation_open=opens,
        validation_forecast=forecast,
        validation_times=times,
        horizon=HORIZON,
        bars_per_year=525_600,
        min_trades=30,
    )
    eligible = [c for c in chosen.candidates if c.n_trades >= 30]
    assert chosen.meets_min_trades
    assert chosen.validation_sharpe == max(c.sharpe for c in eligible)
    rerun = backtest(opens, forecast, horizon=HORIZON, theta=chosen.theta, bars_per_year=525_600)
    assert rerun.stats.sharpe == pytest.approx(chosen.validation_sharpe)
    assert chosen.quantile > 0  # trading every noisy signal is not the best choice here


def test_too_few_trades_everywhere_is_reported_not_hidden() -> None:
    opens, forecast, times = _market(1, n=200)
    chosen = choose_threshold(
        validation_open=opens,
        validation_forecast=forecast,
        validation_times=times,
        horizon=HORIZON,
        bars_per_year=525_600,
        min_trades=10_000,
    )
    assert not chosen.meets_min_trades
    assert chosen.validation_trades == max(c.n_trades for c in chosen.candidates)


def test_threshold_is_frozen() -> None:
    opens, forecast, times = _market(2, n=500)
    chosen = choose_threshold(
        validation_open=opens,
        validation_forecast=forecast,
        validation_times=times,
        horizon=HORIZON,
        bars_per_year=525_600,
    )
    with pytest.raises(AttributeError):
        chosen.theta = 0.0  # type: ignore[misc]


def test_a_threshold_refuses_a_split_that_overlaps_its_validation_span() -> None:
    opens, forecast, times = _market(3, n=1000)
    validation, test = slice(0, 600), slice(600, 1000)
    chosen = choose_threshold(
        validation_open=opens[validation],
        validation_forecast=forecast[validation],
        validation_times=times[validation],
        horizon=HORIZON,
        bars_per_year=525_600,
    )
    chosen.check_out_of_sample(times[test])  # later data: fine
    with pytest.raises(ValueError, match="overlaps"):
        chosen.check_out_of_sample(times[500:])  # starts inside the validation span
    with pytest.raises(ValueError, match="overlaps"):
        chosen.check_out_of_sample(times.astype("datetime64[s]"))


def test_test_data_cannot_move_the_threshold() -> None:
    opens, forecast, times = _market(4, n=1000)
    validation = slice(0, 600)
    kwargs = {"horizon": HORIZON, "bars_per_year": 525_600}
    before = choose_threshold(
        validation_open=opens[validation],
        validation_forecast=forecast[validation],
        validation_times=times[validation],
        **kwargs,
    )
    forecast[600:] = 1.0  # whatever happens after validation ...
    opens[600:] *= 2
    after = choose_threshold(
        validation_open=opens[validation],
        validation_forecast=forecast[validation],
        validation_times=times[validation],
        **kwargs,
    )
    assert after == before  # ... the frozen choice is the same


def test_eligibility_counts_traded_holdings_not_positions_opened() -> None:
    # An always-long forecast is one position but ~99 holdings of 2 bars: that many
    # outcomes stand behind its Sharpe, so it is eligible under min_trades=30.
    n = 200
    opens = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, n)))
    forecast = np.linspace(0.01, 0.02, n)  # θ at quantile 0 is 0.01: all but bar 0 trade
    chosen = choose_threshold(
        validation_open=opens,
        validation_forecast=forecast,
        validation_times=START + 60 * np.arange(n),
        horizon=HORIZON,
        bars_per_year=365 * 1440,
        quantiles=(0.0,),
    )
    run = backtest(opens, forecast, horizon=HORIZON, theta=0.01, bars_per_year=365 * 1440)
    assert run.stats.n_trades == 1
    assert run.stats.n_holdings >= 90
    assert chosen.meets_min_trades
    assert chosen.candidates[0].n_trades == run.stats.n_holdings
