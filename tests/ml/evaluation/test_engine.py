"""The position engine: one bar at a time, the backtest's rules, resumable state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.ml.evaluation.backtest import backtest, signals_from_forecast
from predictor.ml.evaluation.engine import (
    ClosedHolding,
    EngineConfig,
    EngineState,
    PositionEngine,
)

FEE = 0.001
LEG = 1.0 - FEE


def _engine(horizon: int = 2, mode: str = "non_overlapping") -> PositionEngine:
    return PositionEngine(EngineConfig(horizon, FEE, 0.0, mode))  # type: ignore[arg-type]


def _run(engine: PositionEngine, opens, signals, real=None, first: int = 1) -> list[ClosedHolding]:
    """Step every bar from ``first``: the live path, which does not know where data ends."""
    closed = []
    for bar in range(first, len(opens)):
        step = engine.step(
            bar,
            opens[bar],
            real=True if real is None else bool(real[bar]),
            signal=int(signals[bar - 1]),
            signal_real=True if real is None else bool(real[bar - 1]),
        )
        closed.extend(step.closed)
    return closed


def test_a_signal_enters_at_the_next_open_and_exits_h_bars_later_paying_both_legs():
    engine = _engine(horizon=2)
    opens = [100.0, 101.0, 103.0, 106.0, 110.0]
    closed = _run(engine, opens, [1, 0, 0, 0, 0])
    assert len(closed) == 1
    trade = closed[0]
    assert (trade.entry_index, trade.exit_index) == (1, 3)
    assert (trade.entry_price, trade.exit_price) == (101.0, 106.0)
    assert trade.gross_return == pytest.approx(106 / 101 - 1)
    assert trade.net_return == pytest.approx((106 / 101) * LEG**2 - 1)
    assert trade.cost == pytest.approx(1 - LEG**2)


def test_same_side_continuation_trades_nothing_at_the_seam():
    engine = _engine(horizon=1)
    opens, signals = [10.0, 11, 12, 13], [1, 1, 0, 0]
    fills = []
    for bar in range(1, len(opens)):
        fills.extend(engine.step(bar, opens[bar], signal=signals[bar - 1]).fills)
    assert [(f.leg, f.index) for f in fills] == [("entry", 1), ("exit", 3)]


def test_a_flip_pays_both_legs_at_the_seam():
    engine = _engine(horizon=1)
    closed = _run(engine, [10.0, 11, 12, 13], [1, -1, 0, 0])
    assert [c.exit_traded for c in closed] == [True, True]
    assert [c.entry_traded for c in closed] == [True, True]


def test_non_overlapping_skips_signals_while_a_position_is_open():
    engine = _engine(horizon=3)
    closed = _run(engine, np.linspace(100, 110, 10).tolist(), [1, -1, -1, 1, 0, 0, 0, 0, 0, 0])
    assert [(c.signal_index, c.side) for c in closed] == [(0, 1), (3, 1)]


def test_overlapping_takes_every_signal_in_its_sleeve():
    engine = _engine(horizon=2, mode="overlapping")
    closed = _run(engine, np.linspace(100, 110, 8).tolist(), [1, -1, 1, 0, 0, 0, 0, 0])
    assert [(c.signal_index, c.sleeve, c.weight) for c in closed] == [
        (0, 0, 0.5),
        (1, 1, 0.5),
        (2, 0, 0.5),
    ]


def test_no_position_opens_on_or_from_a_filled_bar():
    engine = _engine(horizon=1)
    real = [True, False, True, True, True]
    closed = _run(engine, [10.0, 10, 11, 12, 13], [1, 1, 0, 0, 0], real=real)
    assert closed == []  # bar 1 is filled: the signal of bar 0 cannot enter, bar 1's is no signal


def test_a_skipped_due_exit_and_a_repeated_bar_are_refused():
    engine = _engine(horizon=2)
    engine.step(1, 10.0, signal=1)
    with pytest.raises(ValueError, match="already stepped"):
        engine.step(1, 10.0)
    with pytest.raises(ValueError, match="skipped"):
        engine.step(4, 10.0)


@pytest.mark.parametrize("mode", ["non_overlapping", "overlapping"])
def test_state_round_trips_through_json_mid_stream(mode):
    rng = np.random.default_rng(3)
    opens = (100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))).tolist()
    signals = rng.choice([-1, 0, 1], 200).tolist()
    whole = _run(_engine(3, mode), opens, signals)
    first = _engine(3, mode)
    head = _run(first, opens[:97], signals)
    stored = json.loads(json.dumps(first.state.to_dict()))
    resumed = PositionEngine(first.config, EngineState.from_dict(stored))
    tail = _run(resumed, opens, signals, first=97)
    assert head + tail == whole
    assert len(whole) > 20


@pytest.mark.parametrize("mode", ["non_overlapping", "overlapping"])
def test_stepping_every_bar_gives_the_backtest_trades(mode):
    rng = np.random.default_rng(7)
    n, h = 300, 3
    opens = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    forecast = rng.normal(0, 0.01, n)
    real = rng.random(n) > 0.05
    result = backtest(
        opens, forecast, horizon=h, theta=0.004, bars_per_year=8760, mode=mode, tradable=real
    )
    signals = signals_from_forecast(forecast, 0.004)
    engine = _engine(h, mode)
    closed = []
    for bar in range(1, n):
        step = engine.step(
            bar,
            float(opens[bar]),
            real=bool(real[bar]),
            signal=int(signals[bar - 1]),
            signal_real=bool(real[bar - 1]),
            can_hold=bar + h <= n - 1,
        )
        closed.extend(step.closed)
    assert [c.entry_index for c in closed] == result.trades.entry_index.tolist()
    assert [c.side for c in closed] == result.trades.side.tolist()
    assert [c.net_return for c in closed] == result.trades.net_return.tolist()
    assert len(closed) > 10
