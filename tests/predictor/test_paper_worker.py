"""Paper trading on the real worker path: a Celery worker process (prefork, Redis broker,
PostgreSQL) runs the scheduled update against the local Binance stand-in, which chains the live
task; the trades it stores equal the backtest over the same bars."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from predictor.models import PaperSignal, PaperTrade, TrainingSession
from tests.predictor.fake_exchange import FakeExchange
from tests.predictor.test_paper import (  # noqa: F401  (fixtures)
    MINUTE,
    _backtest_of_stored,
    _backtest_rows,
    _rows,
    _same,
    _settled,
    eager,
    exchange,
    live,
)
from tests.predictor.test_training_worker import worker_starter


@pytest.fixture
def default_worker(settings: Any) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Default-queue workers that also reach this test's local exchange."""
    yield from worker_starter(
        settings,
        "default",
        "paper",
        {
            "BINANCE_API_URL": settings.BINANCE_API_URL,
            "BINANCE_FUTURES_API_URL": settings.BINANCE_FUTURES_API_URL,
            "MARKET_DATA_TIMEOUT_SECONDS": "5",
            "MARKET_DATA_RETRY_SECONDS": "10",
            "UPDATE_BACKFILL_HOURS": str(settings.UPDATE_BACKFILL_HOURS),
        },
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trades_new_candles_as_the_backtest_does(
    live: Callable[..., TrainingSession],  # noqa: F811 (the imported fixture)
    exchange: FakeExchange,  # noqa: F811
    default_worker: Callable[[], Any],
) -> None:
    from cryptooracle.celery import app
    from predictor.tasks import update_tracked_markets

    session = live("non_overlapping", 0.0, "ridge")  # trained and marked live in this process
    app.conf.task_always_eager = False  # from here on, tasks go through Redis to the worker
    exchange.count += 20
    default_worker()
    sent = update_tracked_markets.apply_async(queue="default")
    assert type(sent).__name__ == "AsyncResult"  # sent through the broker, not run here
    assert sent.get(timeout=240)["inserted"] == 20  # the worker fetched and stored them
    deadline = time.monotonic() + 240
    while PaperSignal.objects.filter(session=session).count() < 21:
        assert time.monotonic() < deadline, "the worker never traded the new bars"
        time.sleep(0.5)
    time.sleep(1.0)  # let the last bar's transaction settle before reading the trades
    stored = list(PaperTrade.objects.filter(session=session).order_by("entry_time", "sleeve"))
    result, times = _backtest_of_stored(session)
    assert len(times) == 21  # the bar it went live on and the 20 the update stored
    settled = _settled(_rows(stored), times, session.paper.horizon)
    assert len(settled) >= 3
    _same(settled, _settled(_backtest_rows(result, times), times, session.paper.horizon))
