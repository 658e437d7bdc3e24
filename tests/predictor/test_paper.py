"""Paper trading end to end: candles from the local Binance stand-in, the scheduled update,
the live task, and the trades it stores against the backtest of the same bars."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from predictor.ml.evaluation.backtest import backtest
from predictor.models import Market, PaperFill, PaperSignal, PaperTrade, TrainingSession
from predictor.selectors.candles import candles_frame
from predictor.services.paper import (
    PaperError,
    paper_replay,
    paper_start,
    paper_step,
    paper_stop,
)
from tests.predictor import fake_exchange
from tests.predictor.fake_exchange import FakeExchange, configure

pytestmark = pytest.mark.django_db
MINUTE = 60
FEE, SLIPPAGE = 0.001, 0.0005


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks sent with ``delay`` run in this process, as the filesystem broker cannot reach
    a worker that shares SQLite's in-memory test database."""
    from cryptooracle.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def noisy_candle(open_time: int) -> tuple[float, float, float, float, float]:
    """The stand-in's wave plus deterministic noise per bar, so forecasts change side often."""
    step = open_time // 60
    noise = np.random.default_rng(step).normal(0.0, 40.0, 2)
    mid = 40_000.0 + 250.0 * np.sin(step / 37.0)
    open_, close = round(mid + noise[0], 2), round(mid + noise[1], 2)
    high, low = max(open_, close) + 5.0, min(open_, close) - 5.0
    return open_, high, low, close, 1.0 + (step % 13) * 0.137


@pytest.fixture
def exchange(httpserver: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> FakeExchange:
    monkeypatch.setattr(fake_exchange, "synthetic_candle", noisy_candle)
    configure(settings, httpserver)
    settings.MARKET_DATA_RETRY_SECONDS = 3
    settings.UPDATE_BACKFILL_HOURS = 48  # reaches back to the series' first candle
    fake = FakeExchange(count=300)
    fake.start = int(time.time()) // MINUTE * MINUTE - 2000 * MINUTE  # every bar long closed
    fake.install(httpserver)
    return fake


def _update() -> dict[str, Any]:
    """The scheduled beat task, as the worker runs it."""
    from predictor.tasks import update_tracked_markets

    return dict(update_tracked_markets.apply().get())


@pytest.fixture
def live(
    exchange: FakeExchange, trained_session: Callable[..., TrainingSession], eager: None
) -> Callable[..., TrainingSession]:
    """A session trained on the stand-in's first 300 one-minute candles, then marked live."""

    def make(
        mode: str = "non_overlapping", theta: float = 0.0, arch: str = "ridge"
    ) -> TrainingSession:
        market = Market.objects.create(exchange="binance", symbol="BTCUSDT", tracked=True)
        assert _update()["inserted"] == 300
        session = trained_session(
            market=market, interval="1m", horizon=2, target="return", arch=arch
        )
        paper_start(session, theta=theta, fee=FEE, slippage=SLIPPAGE, mode=mode)
        return session

    return make


def _feed(exchange: FakeExchange, bars: int) -> None:
    exchange.count += bars
    assert _update()["inserted"] == bars - len(
        [t for t in exchange.missing if t >= exchange.end - bars * MINUTE]
    )


def _backtest_of_stored(session: TrainingSession) -> tuple[Any, np.ndarray]:
    """The backtest over the bars the session traded: stored candles and its stored signals."""
    account = session.paper
    signals = list(PaperSignal.objects.filter(session=session).order_by("bar_time"))
    times = np.array([int(s.bar_time.timestamp()) for s in signals])
    assert np.all(np.diff(times) == MINUTE), "a bar was skipped or repeated"
    frame = candles_frame(session.markets.get())
    stored = {int(t.timestamp()): float(o) for t, o in zip(frame.index, frame["open"], strict=True)}
    closes = dict(zip((int(t.timestamp()) for t in frame.index), frame["close"], strict=True))
    real = np.array([s.real for s in signals])
    assert real.tolist() == [int(t) in stored for t in times]
    # A gap-filled bar is flat at the last close before it.
    opens = [
        stored[t] if t in stored else float(closes[max(k for k in closes if k < t)])
        for t in times.tolist()
    ]
    forecast = np.array([np.nan if s.forecast is None else s.forecast for s in signals])
    result = backtest(
        np.array(opens),
        forecast,
        horizon=account.horizon,
        theta=account.theta,
        bars_per_year=525_600,
        fee=FEE,
        slippage=SLIPPAGE,
        mode=account.mode,
        tradable=real,
    )
    return result, times


def _rows(trades: Any) -> list[tuple[int, int, int, float, float]]:
    return [
        (
            int(t.entry_time.timestamp()),
            int(t.exit_time.timestamp()),
            t.side,
            t.gross_return,
            t.net_return,
        )
        for t in trades
    ]


def _backtest_rows(result: Any, times: np.ndarray) -> list[tuple[int, int, int, float, float]]:
    trades = result.trades
    return [
        (int(times[e]), int(times[x]), int(s), float(g), float(n))
        for e, x, s, g, n in zip(
            trades.entry_index,
            trades.exit_index,
            trades.side,
            trades.gross_return,
            trades.net_return,
            strict=True,
        )
    ]


def _settled(rows: list[Any], times: np.ndarray, horizon: int) -> list[Any]:
    """Holdings that closed ``horizon`` bars before the end: live and a backtest cut off at the
    end agree on these (live, a continuation past the end is not yet known to be cut off)."""
    return [r for r in rows if r[1] <= int(times[-1]) - horizon * MINUTE]


def _same(live_rows: list[Any], expected: list[Any]) -> None:
    assert [r[:3] for r in live_rows] == [r[:3] for r in expected]
    for got, want in zip(live_rows, expected, strict=True):
        assert got[3] == pytest.approx(want[3], abs=1e-12)
        assert got[4] == pytest.approx(want[4], abs=1e-12)


@pytest.mark.parametrize(
    ("arch", "mode", "theta"),
    [
        ("ridge", "non_overlapping", 0.0),
        ("ridge", "overlapping", 0.0005),
        ("lstm", "non_overlapping", 0.0),
    ],
)
def test_live_trades_bar_by_bar_equal_the_backtest_and_the_replay(
    live, exchange, arch, mode, theta
):
    session = live(mode, theta, arch)
    for _ in range(24):
        _feed(exchange, 1)  # each update chains the live task, which trades the new bar
    _feed(exchange, 6)  # a missed tick: six bars at once, caught up in order

    stored = list(PaperTrade.objects.filter(session=session).order_by("entry_time", "sleeve"))
    result, times = _backtest_of_stored(session)
    assert len(times) == 31  # the bar it went live on and the 30 that arrived
    assert result.stats.n_holdings >= 5
    settled = _settled(_rows(stored), times, 2)
    assert len(settled) >= 5
    _same(settled, _settled(_backtest_rows(result, times), times, 2))

    replay = paper_replay(
        session,
        dt.datetime.fromtimestamp(times[0], dt.UTC),
        dt.datetime.fromtimestamp(times[-1], dt.UTC),
    )
    replayed = [
        (
            c.holding.entry_time,
            c.holding.exit_time,
            c.holding.side,
            c.holding.gross_return,
            c.holding.net_return,
        )
        for c in replay.trades
    ]
    _same(replayed, _backtest_rows(result, times))  # knowing the end, the replay is the backtest
    assert replay.total_return == pytest.approx(result.stats.total_return, abs=1e-12)


def test_a_redelivered_task_and_a_second_step_store_nothing_twice(live, exchange):
    from predictor.tasks import paper_trade_live

    session = live()
    _feed(exchange, 8)
    counts = (
        PaperSignal.objects.count(),
        PaperFill.objects.count(),
        PaperTrade.objects.count(),
    )
    assert counts[0] == 9
    assert counts[1] > 0
    outcome = paper_trade_live.apply().get()
    assert outcome == {"sessions": {str(session.pk): "0 bar(s)"}}
    assert paper_step(session).bars == 0
    session.paper.refresh_from_db()
    assert (
        PaperSignal.objects.count(),
        PaperFill.objects.count(),
        PaperTrade.objects.count(),
    ) == counts


def test_no_position_opens_on_a_gap_filled_bar(live, exchange):
    session = live("overlapping")  # every signal is taken unless a gap refuses it
    gap = exchange.end + 3 * MINUTE
    exchange.missing = {gap}
    _feed(exchange, 12)
    signals = {int(s.bar_time.timestamp()): s for s in PaperSignal.objects.filter(session=session)}
    assert signals[gap].real is False
    assert signals[gap - MINUTE].side != 0  # the signal whose entry would be the filled open
    entries = {
        int(t.timestamp())
        for t in PaperTrade.objects.filter(session=session).values_list("entry_time", flat=True)
    }
    assert gap - 2 * MINUTE in entries  # a real bar's signal is taken, as ever
    assert gap not in entries  # no entry at a filled open
    assert gap + MINUTE not in entries  # nor from a signal at its close
    result, times = _backtest_of_stored(session)
    stored = _rows(PaperTrade.objects.filter(session=session).order_by("entry_time", "sleeve"))
    _same(_settled(stored, times, 2), _settled(_backtest_rows(result, times), times, 2))


def test_a_stopped_session_does_not_trade_and_resumes_in_order(live, exchange):
    session = live()
    paper_stop(session)
    _feed(exchange, 3)
    assert PaperSignal.objects.filter(session=session).count() == 0
    paper_start(session)
    paper_step(session)
    assert PaperSignal.objects.filter(session=session).count() == 4  # caught up, in order


def test_theta_comes_from_the_validation_report_or_must_be_given(
    trained_session: Callable[..., TrainingSession],
) -> None:
    from predictor.services.evaluation import session_evaluate

    session = trained_session()
    with pytest.raises(PaperError, match="no stored validation report"):
        paper_start(session)
    session_evaluate(session, fee=0.002, mode="overlapping")
    threshold = session.reports.get(split="validation").report["threshold"]
    account = paper_start(session)
    assert account.theta == threshold["theta"]
    assert (account.fee, account.mode) == (0.002, "overlapping")
    assert str(session.pk) in account.theta_source
    with pytest.raises(PaperError, match="frozen"):
        paper_start(session, theta=0.5)


def test_a_production_session_needs_theta(trained_session: Callable[..., TrainingSession]) -> None:
    session = trained_session(evaluation=False, val_split=0.0)
    with pytest.raises(PaperError, match="production session"):
        paper_start(session)
    assert paper_start(session, theta=0.001).theta_source == "given"
