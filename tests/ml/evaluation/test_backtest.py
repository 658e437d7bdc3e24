"""The backtest engine: timing, costs computed by hand, holding modes, baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import numpy.typing as npt
import pytest

from predictor.ml.evaluation.backtest import (
    _non_overlapping_starts,
    backtest,
    backtest_baselines,
    baseline_forecasts,
    break_even_hit_rate,
)

FloatArray = npt.NDArray[np.float64]


def _run(open_: list[float], forecast: list[float], **kwargs: object) -> object:
    defaults: dict[str, object] = {"horizon": 1, "theta": 0.01, "bars_per_year": 4.0}
    return backtest(np.array(open_), np.array(forecast), **{**defaults, **kwargs})  # type: ignore[arg-type]


def test_fees_change_the_result_exactly_as_computed_by_hand() -> None:
    # Two trades: long 100 -> 110 (+10 %), then short 110 -> 99 (+10 %).
    opens = [100.0, 100.0, 110.0, 110.0, 99.0, 100.0]
    forecast = [0.05, 0.0, -0.05, np.nan, np.nan, np.nan]
    free = backtest(
        np.array(opens), np.array(forecast), horizon=1, theta=0.01, bars_per_year=4, fee=0.0
    )
    costly = backtest(np.array(opens), np.array(forecast), horizon=1, theta=0.01, bars_per_year=4)
    assert free.trades.side.tolist() == [1, -1]
    assert free.trades.gross_return.tolist() == pytest.approx([0.10, 0.10])
    assert free.equity[-1] == pytest.approx(1.21)
    # each round trip: 1.10 * 0.999 * 0.999 - 1 = 0.0978011
    assert costly.trades.net_return.tolist() == pytest.approx([0.0978011, 0.0978011], abs=1e-12)
    assert costly.equity[-1] == pytest.approx(1.0978011**2, abs=1e-12)
    assert costly.stats.turnover == pytest.approx(4.0)  # four legs of the whole capital
    assert costly.stats.n_trades == 2


def test_slippage_is_charged_on_both_legs_like_the_fee() -> None:
    opens = [100.0, 100.0, 110.0, 110.0]
    forecast = [0.05, np.nan, np.nan, np.nan]
    result = backtest(
        np.array(opens),
        np.array(forecast),
        horizon=1,
        theta=0.0,
        bars_per_year=4,
        fee=0.001,
        slippage=0.002,
    )
    assert result.trades.net_return[0] == pytest.approx(1.1 * (0.999 * 0.998) ** 2 - 1)


def test_entry_is_at_the_next_bars_open_not_the_signal_bars_close() -> None:
    # The forecast is made at bar 0's close (100). The market gaps up to open
    # bar 1 at 120; buying at the close would have captured +32 %, the honest
    # entry at the next open gets only +10 %.
    close_bar0 = 100.0
    opens = [99.0, 120.0, 132.0, 132.0]
    result = backtest(
        np.array(opens),
        np.array([0.5, np.nan, np.nan, np.nan]),
        horizon=1,
        theta=0.0,
        bars_per_year=4,
        fee=0.0,
    )
    assert result.trades.entry_index.tolist() == [1]
    assert result.trades.exit_index.tolist() == [2]
    assert result.trades.gross_return[0] == pytest.approx(132 / 120 - 1)
    assert result.trades.gross_return[0] != pytest.approx(132 / close_bar0 - 1)


def test_forecasts_whose_exit_is_past_the_data_are_not_traded() -> None:
    result = backtest(
        np.array([100.0, 101.0, 102.0]),
        np.array([0.5, 0.5, 0.5]),
        horizon=1,
        theta=0.0,
        bars_per_year=4,
    )
    assert result.trades.signal_index.tolist() == [0]  # t = 1 would exit at open 3


def test_non_overlapping_mode_skips_signals_while_a_position_is_open() -> None:
    opens = np.linspace(100, 110, 8)
    forecast = np.array([0.1, 0.1, 0.1, -0.1, 0.1, np.nan, np.nan, np.nan])
    result = backtest(opens, forecast, horizon=2, theta=0.0, bars_per_year=4)
    assert result.trades.signal_index.tolist() == [0, 2, 4]
    assert result.stats.n_holdings == 3
    assert result.stats.n_trades == 1  # three long holdings back to back: one position


def test_overlapping_mode_gives_each_signal_one_hth_of_capital() -> None:
    # h = 2: signals at t=0 and t=1 each get half the capital.
    # A: open 1 -> open 3 = 100 -> 121 (+21 %); B: open 2 -> open 4 = 110 -> 121 (+10 %).
    opens = np.array([100.0, 100.0, 110.0, 121.0, 121.0, 121.0])
    forecast = np.array([0.1, 0.1, np.nan, np.nan, np.nan, np.nan])
    fee = 0.001
    result = backtest(
        opens, forecast, horizon=2, theta=0.0, bars_per_year=4, fee=fee, mode="overlapping"
    )
    assert result.trades.weight.tolist() == [0.5, 0.5]
    expected = 0.5 * 1.21 * (1 - fee) ** 2 + 0.5 * 1.10 * (1 - fee) ** 2
    assert result.equity[-1] == pytest.approx(expected, abs=1e-12)
    # at open 2 sleeve A is marked at 110/100 after its entry fee, sleeve B has just paid its fee
    assert result.equity[2] == pytest.approx(0.5 * 1.1 * (1 - fee) + 0.5 * (1 - fee), abs=1e-12)
    assert result.stats.exposure == pytest.approx((0.5 + 1.0 + 0.5 + 0.0) / 5)


def test_consecutive_same_side_holdings_pay_no_fee_in_between() -> None:
    opens = np.array([100.0, 100.0, 105.0, 103.0, 120.0, 120.0])
    always_long = np.full(6, 1.0)
    result = backtest(opens, always_long, horizon=1, theta=0.0, bars_per_year=4, fee=0.01)
    assert result.stats.n_holdings == 4
    assert result.stats.n_trades == 1
    assert result.equity[-1] == pytest.approx(120 / 100 * 0.99**2)  # one entry, one exit
    assert result.stats.turnover == pytest.approx(2.0)
    assert result.trades.cost.tolist() == pytest.approx([0.01, 0.0, 0.0, 0.01])


def test_summary_statistics_match_a_hand_computation() -> None:
    # Trades: +10 % then -5 %; equity at the opens 1, 1, 1.1, 1.1, 1.045, 1.045.
    opens = [100.0, 100.0, 110.0, 110.0, 104.5, 104.5]
    forecast = [0.05, np.nan, 0.05, np.nan, np.nan, np.nan]
    result = backtest(
        np.array(opens), np.array(forecast), horizon=1, theta=0.0, bars_per_year=4, fee=0.0
    )
    stats = result.stats
    np.testing.assert_allclose(result.equity, [1, 1, 1.1, 1.1, 1.045, 1.045])
    bar = np.array([0.0, 0.1, 0.0, -0.05, 0.0])
    np.testing.assert_allclose(result.bar_returns, bar, atol=1e-12)
    assert stats.total_return == pytest.approx(0.045)
    assert stats.annualised_return == pytest.approx(1.045 ** (4 / 5) - 1)
    assert stats.sharpe == pytest.approx(bar.mean() / bar.std(ddof=1) * 2)
    assert stats.sortino == pytest.approx(0.01 / math.sqrt(0.0025 / 5) * 2)
    assert stats.max_drawdown == pytest.approx(1.045 / 1.1 - 1)
    assert stats.calmar == pytest.approx((1.045**0.8 - 1) / 0.05)
    assert stats.profit_factor == pytest.approx(0.10 / 0.05)
    assert stats.hit_rate == pytest.approx(0.5)
    assert stats.exposure == pytest.approx(2 / 5)
    assert stats.break_even_hit_rate == pytest.approx(0.05 / (0.10 + 0.05))  # no costs: L / (W + L)
    assert np.min(result.drawdown) == pytest.approx(stats.max_drawdown)


def test_break_even_hit_rate_rises_with_costs() -> None:
    # Two stand-alone round trips (+10 %, -5 %), each paying both legs: c = 1 - 0.99 ** 2.
    opens = [100.0, 100.0, 110.0, 110.0, 104.5, 104.5]
    forecast = [0.05, np.nan, 0.05, np.nan, np.nan, np.nan]
    fee = 0.01
    result = backtest(
        np.array(opens), np.array(forecast), horizon=1, theta=0.0, bars_per_year=4, fee=fee
    )
    cost = 1 - (1 - fee) ** 2
    assert result.stats.mean_cost == pytest.approx(cost)
    assert result.stats.break_even_hit_rate == pytest.approx((cost + 0.05) / 0.15)
    assert result.stats.break_even_note == ""


def test_break_even_counts_only_the_legs_a_continuation_and_a_flip_pay() -> None:
    # long 100 -> 110 -> 121 (two holdings, one position), flip to short 121 -> 108.9 -> 119.79.
    # Gross moves +10 %, +10 %, +10 %, -10 %; legs paid: entry, flip exit, flip entry, exit,
    # so every holding pays exactly one leg of 1 %: c = 0.01, W = 0.10, L = 0.10.
    opens = np.array([100.0, 100.0, 110.0, 121.0, 108.9, 119.79])
    forecast = np.array([0.05, 0.05, -0.05, -0.05, np.nan, np.nan])
    result = backtest(opens, forecast, horizon=1, theta=0.0, bars_per_year=4, fee=0.01)
    np.testing.assert_allclose(result.trades.gross_return, [0.1, 0.1, 0.1, -0.1], atol=1e-12)
    np.testing.assert_allclose(result.trades.cost, [0.01] * 4, atol=1e-12)
    stats = result.stats
    assert stats.gross_hit_rate == pytest.approx(0.75)
    assert stats.break_even_hit_rate == pytest.approx((0.01 + 0.10) / (0.10 + 0.10))
    # a full round trip per holding would have asked for (0.0199 + 0.10) / 0.20
    assert stats.n_trades == 2  # the long, then the short
    assert stats.turnover == pytest.approx(4.0)  # entry 1, flip 2, exit 1
    assert stats.n_holdings == 4


def test_break_even_formula_by_hand() -> None:
    gross = np.array([0.04, 0.02, -0.01, -0.03, 0.0])
    cost = np.array([0.002, 0.0, 0.0, 0.002, 0.001])
    even = break_even_hit_rate(gross, cost)
    # W = 0.03, L = (0.01 + 0.03 + 0) / 3, c = 0.001: p = (c + L) / (W + L)
    loss = 0.04 / 3
    assert even.mean_win == pytest.approx(0.03)
    assert even.mean_loss == pytest.approx(loss)
    assert even.mean_cost == pytest.approx(0.001)
    assert even.rate == pytest.approx((0.001 + loss) / (0.03 + loss))
    assert even.rate * 0.03 - (1 - even.rate) * loss == pytest.approx(0.001)
    assert even.note == ""
    no_losses = break_even_hit_rate(np.array([0.02, 0.04]), np.array([0.01, 0.01]))
    assert no_losses.rate == pytest.approx(0.01 / 0.03)


def test_break_even_is_impossible_when_costs_reach_the_mean_winning_move() -> None:
    # Stand-alone round trips of +1 % and -1 % at 1 % a side: c = 1.99 % > W = 1 %.
    opens = [100.0, 100.0, 101.0, 101.0, 99.99, 99.99]
    forecast = [0.05, np.nan, 0.05, np.nan, np.nan, np.nan]
    result = backtest(
        np.array(opens), np.array(forecast), horizon=1, theta=0.0, bars_per_year=4, fee=0.01
    )
    stats = result.stats
    assert math.isnan(stats.break_even_hit_rate)
    assert stats.break_even_note.startswith("impossible")
    assert "100 % hit rate" in stats.break_even_note
    assert stats.to_dict()["break_even_hit_rate"] is None
    # exactly at c = W a perfect record only breaks even: still no rate to aim for
    assert math.isnan(break_even_hit_rate(np.array([0.01]), np.array([0.01])).rate)


def test_break_even_is_undefined_without_winners_or_trades() -> None:
    none_won = break_even_hit_rate(np.array([-0.01, 0.0]), np.array([0.002, 0.002]))
    assert math.isnan(none_won.rate)
    assert "no holding won" in none_won.note
    empty = break_even_hit_rate(np.zeros(0), np.zeros(0))
    assert math.isnan(empty.rate)
    assert empty.note == "no trades"


def test_zero_threshold_and_nan_forecasts_mean_no_signal() -> None:
    result = backtest(
        np.full(5, 100.0),
        np.array([np.nan, 0.0, np.nan, 0.0, 0.0]),
        horizon=1,
        theta=0.0,
        bars_per_year=4,
    )
    assert result.stats.n_trades == 0
    assert result.equity.tolist() == [1.0] * 5
    assert math.isnan(result.stats.sharpe)


def test_baseline_forecasts_are_built_from_prices() -> None:
    close = np.array([100.0, 110.0, 121.0, 108.9])
    naive = baseline_forecasts(close, horizon=2)
    assert np.all(naive["buy_and_hold"] > 1e9)
    assert naive["zero_return"].tolist() == [0.0] * 4
    assert naive["persistence"][:2].tolist() == pytest.approx([np.nan, np.nan], nan_ok=True)
    assert naive["persistence"][2:].tolist() == pytest.approx([0.21, 108.9 / 110 - 1])


def test_buy_and_hold_baseline_pays_one_round_trip_through_the_same_engine() -> None:
    rng = np.random.default_rng(4)
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 50)))
    runs = backtest_baselines(opens, opens, horizon=3, theta=0.002, bars_per_year=365, fee=0.001)
    assert set(runs) == {"buy_and_hold", "zero_return", "persistence"}
    # the last tradable signal is t = 50 - 1 - 3 - 1 = 45; it exits at open 49
    assert runs["buy_and_hold"].equity[-1] == pytest.approx(opens[49] / opens[1] * 0.999**2)
    assert runs["buy_and_hold"].stats.n_trades == 1
    assert runs["buy_and_hold"].stats.turnover == pytest.approx(2.0)  # one entry, one exit
    assert runs["buy_and_hold"].stats.n_holdings == 16  # t = 0, 3, ..., 45
    assert runs["zero_return"].stats.n_trades == 0
    assert runs["persistence"].stats.n_trades > 0


def test_overlapping_buy_and_hold_opens_one_position_per_sleeve_and_turns_over_twice() -> None:
    opens = np.linspace(100.0, 120.0, 30)
    runs = backtest_baselines(
        opens, opens, horizon=3, theta=0.0, bars_per_year=365, mode="overlapping"
    )
    stats = runs["buy_and_hold"].stats
    assert stats.n_trades == 3  # each sleeve of a third of the capital enters once
    assert stats.turnover == pytest.approx(2.0)
    assert stats.n_holdings == 30 - 1 - 3


def test_baselines_never_open_a_position_on_a_filled_bar() -> None:
    opens = np.linspace(100.0, 130.0, 40)
    real = np.ones(40, dtype=bool)
    real[:20] = False  # a hole: the first 20 bars were filled, not traded
    runs = backtest_baselines(
        opens, opens, horizon=3, theta=0.0, bars_per_year=365, fee=0.001, tradable=real
    )
    hold = runs["buy_and_hold"]
    assert hold.stats.n_trades == 1
    # signals at the real bars 20, 23, ..., 35: entry at open 21, exit at open 39
    assert hold.trades.signal_index.tolist() == [20, 23, 26, 29, 32, 35]
    assert hold.equity[-1] == pytest.approx(opens[39] / opens[21] * 0.999**2)
    assert all(runs[name].trades.signal_index.min(initial=40) >= 20 for name in runs)


def _greedy_reference(active: np.ndarray, horizon: int) -> list[int]:
    taken, free_from = [], 0
    for t in np.flatnonzero(active).tolist():
        if t >= free_from:
            taken.append(t)
            free_from = t + horizon
    return taken


def test_vectorised_non_overlapping_selection_equals_a_greedy_loop() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        n, horizon = int(rng.integers(1, 80)), int(rng.integers(1, 9))
        active = rng.random(n) < rng.random()
        assert _non_overlapping_starts(active, horizon).tolist() == _greedy_reference(
            active, horizon
        )


def _reference_equity(
    opens: FloatArray, signal: np.ndarray, h: int, leg: float, mode: str
) -> FloatArray:
    """Bar-by-bar simulation of every sleeve, written independently of the engine."""
    n = len(opens)
    sleeves = 1 if mode == "non_overlapping" else h
    taken = [t for t in range(n - 1 - h) if signal[t] != 0]
    if mode == "non_overlapping":
        taken = _greedy_reference(signal[: max(n - 1 - h, 0)] != 0, h)
    total = np.zeros(n)
    for sleeve in range(sleeves):
        starts = {t + 1: t for t in taken if mode == "non_overlapping" or t % h == sleeve}
        cash, side, entry, base = 1.0 / sleeves, 0, 0, 0.0
        for k in range(n):
            continuing = False
            if side and k == entry + h:
                nxt = starts.get(k)
                continuing = nxt is not None and signal[nxt] == side
                cash = (
                    base * (1 + side * (opens[k] / opens[entry] - 1)) * (1.0 if continuing else leg)
                )
                side = 0
            if k in starts:
                side, entry = int(signal[starts[k]]), k
                base = cash if continuing else cash * leg
            total[k] += base * (1 + side * (opens[k] / opens[entry] - 1)) if side else cash
    return total


@pytest.mark.parametrize("mode", ["non_overlapping", "overlapping"])
def test_engine_equity_equals_a_bar_by_bar_simulation(mode: str) -> None:
    rng = np.random.default_rng(6)
    for _ in range(100):
        n, h = int(rng.integers(4, 40)), int(rng.integers(1, 5))
        opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
        forecast = rng.normal(0, 1, n)
        forecast[rng.random(n) < 0.1] = np.nan
        theta = float(rng.choice([0.0, 0.5]))
        result = backtest(
            opens,
            forecast,
            horizon=h,
            theta=theta,
            bars_per_year=365,
            fee=0.01,
            slippage=0.002,
            mode=mode,
        )  # type: ignore[arg-type]
        signal = np.where(forecast > theta, 1, np.where(forecast < -theta, -1, 0))
        expected = _reference_equity(opens, signal, h, 0.99 * 0.998, mode)
        np.testing.assert_allclose(result.equity, expected, rtol=1e-10)


def test_backtest_result_to_dict_is_json_safe_and_sampled() -> None:
    rng = np.random.default_rng(7)
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 5000)))
    result = backtest(opens, rng.normal(0, 1, 5000), horizon=2, theta=0.5, bars_per_year=365)
    payload = result.to_dict(max_points=100)
    assert len(payload["equity"]) == 100
    assert len(payload["trades"]["net_return"]) == result.stats.n_holdings
    assert len(payload["trades"]["cost"]) == result.stats.n_holdings
    json.dumps(payload, allow_nan=False)


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="horizon"):
        backtest(np.ones(5), np.ones(5), horizon=0, theta=0.0, bars_per_year=1)
    with pytest.raises(ValueError, match="theta"):
        backtest(np.ones(5), np.ones(5), horizon=1, theta=-0.1, bars_per_year=1)
    with pytest.raises(ValueError, match="mode"):
        backtest(np.ones(5), np.ones(5), horizon=1, theta=0.0, bars_per_year=1, mode="both")  # type: ignore[arg-type]
