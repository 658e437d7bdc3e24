"""update_stocks, the update service and the beat task against a local fake exchange."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from werkzeug import Response

from predictor.ml.intervals import parse_interval
from predictor.models import Candle, Market
from predictor.services.providers import MarketMismatch
from predictor.services.updating import (
    MarketBusy,
    UpdateError,
    UpdateFailed,
    _file_lock,
    _postgres_lock,
    _redis_lock,
    market_update,
    market_update_lock,
    markets_update_tracked,
)
from tests.predictor.fake_exchange import FakeExchange, configure, synthetic_candle

pytestmark = pytest.mark.django_db
MINUTE = parse_interval("1m")


def _at(unix_seconds: int) -> datetime:
    return datetime.fromtimestamp(unix_seconds, UTC)


@pytest.fixture
def fake(httpserver, settings):
    configure(settings, httpserver)
    settings.MARKET_DATA_RETRY_SECONDS = 3  # a failing run gives up quickly
    exchange = FakeExchange()
    exchange.install(httpserver)
    return exchange


@pytest.fixture
def live_fake(fake):
    """The series ends now: its last candle is the one still trading."""
    minute = int(datetime.now(UTC).timestamp()) // 60 * 60
    fake.start = minute - (fake.count - 1) * 60
    return fake


@pytest.fixture
def spot():
    return Market.objects.create(
        exchange="binance", symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT"
    )


def _stored(market: Market) -> list[int]:
    times = Candle.objects.filter(market=market, interval="1m").values_list("open_time", flat=True)
    return [int(t.timestamp()) for t in times.order_by("open_time")]


def _assert_contiguous(times: list[int]) -> None:
    assert times == sorted(set(times)), "duplicates or disorder"
    assert all(b - a == 60 for a, b in itertools.pairwise(times)), "a gap"


# --- the service -----------------------------------------------------------------------------


def test_update_stores_every_closed_candle_across_pages_but_not_the_open_one(fake, spot):
    fake.page_cap = 30
    now = _at(fake.end - 20)
    result = market_update(spot, provider="binance", interval="1m", since=_at(fake.start), now=now)
    assert (result.status, result.fetched, result.inserted, result.pages) == ("updated", 99, 99, 4)
    times = _stored(spot)
    assert times == fake.open_times[:-1]
    assert result.last_stored == _at(fake.open_times[-2])
    candle = Candle.objects.get(market=spot, open_time=_at(fake.start))
    values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
    assert values == pytest.approx(synthetic_candle(fake.start))


def test_a_second_run_resumes_after_the_last_stored_candle(fake, spot):
    market_update(
        spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end - 20)
    )
    fake.count += 10
    fake.requests.clear()
    result = market_update(spot, provider="binance", interval="1m", now=_at(fake.end))
    assert int(fake.requests[0]["startTime"]) // 1000 == fake.start + 99 * 60
    assert (result.fetched, result.inserted, result.duplicates, result.gaps) == (11, 11, 0, 0)
    _assert_contiguous(_stored(spot))
    assert len(_stored(spot)) == 110


def test_failure_midway_keeps_stored_pages_and_the_next_run_fills_the_rest(fake, spot):
    fake.page_cap = 25
    pages_before_outage = 2

    def outage(request):
        if len(fake.requests) > pages_before_outage:
            return Response("bad gateway", status=502)
        return None

    fake.outage = outage
    with pytest.raises(UpdateFailed) as caught:
        market_update(
            spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end)
        )
    failed = caught.value.result
    assert failed.status == "failed"
    assert failed.inserted == 50
    assert failed.last_stored == _at(fake.start + 49 * 60)
    assert "last stored candle: 2024-01-01 00:49:00 UTC" in str(caught.value)
    assert "HTTP 502" in str(caught.value)
    assert _stored(spot) == fake.open_times[:50]

    fake.outage = None
    fake.requests.clear()
    result = market_update(spot, provider="binance", interval="1m", now=_at(fake.end))
    assert int(fake.requests[0]["startTime"]) // 1000 == fake.start + 50 * 60
    assert (result.inserted, result.duplicates, result.gaps) == (50, 0, 0)
    times = _stored(spot)
    _assert_contiguous(times)
    assert times == fake.open_times


def test_a_malformed_page_writes_nothing_of_that_page(fake, spot):
    fake.page_cap = 40
    fake.inject(lambda request: None, Response("[[1, 2, 3]]", content_type="application/json"))
    with pytest.raises(UpdateFailed, match=r"binance: malformed response, field kline \(row 0\)"):
        market_update(
            spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end)
        )
    assert _stored(spot) == fake.open_times[:40]


def test_gaps_left_by_the_exchange_are_counted(fake, spot):
    fake.missing = {fake.start + 10 * 60, fake.start + 11 * 60}
    fake.page_cap = 10  # the gap straddles a page boundary
    result = market_update(
        spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end)
    )
    assert (result.inserted, result.gaps, result.missing_bars) == (98, 1, 2)


def test_coinapi_update_of_a_gemini_market(fake):
    market = Market.objects.create(
        exchange="gemini", symbol="BTCUSD", coinapi_symbol_id="GEMINI_SPOT_BTC_USD"
    )
    result = market_update(
        market, provider="coinapi", interval="1m", since=_at(fake.start), now=_at(fake.end - 1)
    )
    assert result.inserted == 99
    assert _stored(market) == fake.open_times[:-1]


def test_binance_bars_are_never_stored_on_a_gemini_market(fake):
    market = Market.objects.create(exchange="gemini", symbol="BTCUSD")
    with pytest.raises(MarketMismatch, match="mix two exchanges"):
        market_update(market, provider="binance", interval="1m", since=_at(fake.start))
    market.coinapi_symbol_id = "BINANCE_SPOT_BTC_USDT"
    with pytest.raises(MarketMismatch, match="refusing to fill one exchange's market"):
        market_update(market, provider="coinapi", interval="1m", since=_at(fake.start))
    assert fake.requests == []
    assert not Candle.objects.filter(market=market).exists()


def test_nothing_stored_and_no_since_asks_for_since(fake, spot):
    with pytest.raises(UpdateError, match="pass --since"):
        market_update(spot, provider="binance", interval="1m")


def test_a_second_update_of_a_locked_market_exits_cleanly(fake, spot):
    with market_update_lock(spot):
        result = market_update(
            spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end)
        )
    assert result.status == "already-running"
    assert "already running" in result.message
    assert fake.requests == []
    after = market_update(
        spot, provider="binance", interval="1m", since=_at(fake.start), now=_at(fake.end)
    )
    assert after.inserted == 100  # the lock was released


def _lock_backends():
    backends = [pytest.param(_file_lock, id="file")]
    if connection.vendor == "postgresql":
        backends.append(pytest.param(_postgres_lock, id="postgres"))
    if os.environ.get("REDIS_URL"):
        backends.append(pytest.param(_redis_lock, id="redis"))
    return backends


@pytest.mark.parametrize("lock", _lock_backends())
def test_each_lock_backend_excludes_a_second_holder_until_released(lock, spot, settings):
    with lock(spot) as keepalive:
        keepalive()
        with pytest.raises(MarketBusy), lock(spot):
            pass
        other = Market.objects.create(exchange="binance", symbol="ETHUSDT")
        with lock(other):
            pass  # another market is not blocked
    with lock(spot):
        pass


def test_tracked_markets_are_updated_and_others_left_alone(fake, spot, settings):
    settings.UPDATE_BACKFILL_HOURS = 1
    spot.tracked = True
    spot.save()
    untracked = Market.objects.create(exchange="binance", symbol="ETHUSDT")
    now = _at(fake.start + 60 * 60)  # the backfill starts at the series' first candle
    fake.count = 60
    results = markets_update_tracked(now=now)
    assert [(r.market, r.status, r.inserted) for r in results] == [
        ("binance:BTCUSDT", "updated", 60)
    ]
    assert not Candle.objects.filter(market=untracked).exists()


def test_tracked_market_on_the_wrong_provider_is_refused_not_raised(fake, settings):
    Market.objects.create(exchange="other", symbol="BTCUSD", tracked=True)
    results = markets_update_tracked(now=_at(fake.end))
    assert [r.status for r in results] == ["refused"]
    assert "no CoinAPI exchange id" in results[0].message


# --- the command -------------------------------------------------------------------------


def test_command_creates_the_market_and_prints_a_summary(live_fake):
    before = int(datetime.now(UTC).timestamp())
    out = StringIO()
    call_command(
        "update_stocks",
        "--exchange",
        "binance",
        "--symbol",
        "btc-usdt",
        "--since",
        _at(live_fake.start).isoformat(),
        stdout=out,
        stderr=StringIO(),
    )
    after = int(datetime.now(UTC).timestamp())
    market = Market.objects.get(exchange="binance", symbol="BTCUSDT")
    assert (market.base_asset, market.quote_asset) == ("BTC", "USDT")
    times = _stored(market)
    assert all(t + 60 <= after for t in times), "the still-open candle was stored"
    if before // 60 == after // 60:  # no minute boundary crossed while it ran
        assert len(times) == 99
    assert f"inserted {len(times)}" in out.getvalue()
    assert "gaps left 0" in out.getvalue()
    assert "last stored candle" in out.getvalue()


def test_command_coinapi_for_a_new_gemini_market(live_fake):
    out = StringIO()
    call_command(
        "update_stocks",
        "--exchange",
        "gemini",
        "--symbol",
        "BTCUSD",
        "--provider",
        "coinapi",
        "--since",
        _at(live_fake.start).isoformat(),
        stdout=out,
        stderr=StringIO(),
    )
    market = Market.objects.get(exchange="gemini", symbol="BTCUSD")
    assert len(_stored(market)) >= 99
    assert live_fake.requests[0]["path"] == "/v1/ohlcv/GEMINI_SPOT_BTC_USD/history"


def test_command_failure_is_nonzero_and_names_the_last_stored_time(live_fake):
    live_fake.page_cap = 40

    def outage(request):
        return Response("down", status=503) if len(live_fake.requests) > 1 else None

    live_fake.outage = outage
    with pytest.raises(CommandError, match=r"last stored candle: .* UTC; the next run resumes"):
        call_command(
            "update_stocks",
            "--exchange",
            "binance",
            "--symbol",
            "BTCUSDT",
            "--since",
            _at(live_fake.start).isoformat(),
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert len(_stored(Market.objects.get(symbol="BTCUSDT"))) == 40


def test_command_refuses_mixing_exchanges_without_creating_the_market(live_fake):
    with pytest.raises(CommandError, match="binance provider quotes only binance"):
        call_command(
            "update_stocks",
            "--exchange",
            "gemini",
            "--symbol",
            "BTCUSD",
            "--provider",
            "binance",
            "--since",
            "2024-01-01",
            stdout=StringIO(),
        )
    assert not Market.objects.exists()


def test_command_all_updates_tracked_markets(live_fake, spot):
    spot.tracked = True
    spot.save()
    out = StringIO()
    call_command("update_stocks", "--all", stdout=out, stderr=StringIO())
    assert len(_stored(spot)) >= 99
    assert "binance:BTCUSDT 1m via binance: fetched" in out.getvalue()


# --- the schedule and the real worker ---------------------------------------------------------


def test_the_beat_schedule_runs_the_update_task_every_configured_interval(settings):
    from cryptooracle.celery import app
    from predictor import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["update-tracked-markets"]
    assert entry["task"] == tasks.update_tracked_markets.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] == float(settings.UPDATE_SCHEDULE_SECONDS)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis broker)")
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_stores_candles_on_a_real_celery_worker(live_fake, settings):
    from celery.contrib.testing.worker import start_worker

    from cryptooracle.celery import app
    from predictor.tasks import update_tracked_markets

    settings.UPDATE_BACKFILL_HOURS = 2  # reaches back past the series' first candle
    market = Market.objects.create(exchange="binance", symbol="BTCUSDT", tracked=True)
    queue = f"test-update-{uuid.uuid4().hex[:8]}"  # no other worker on this Redis takes it
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
    ):
        outcome = update_tracked_markets.apply_async(queue=queue).get(timeout=60)
    stored = _stored(market)
    assert outcome["inserted"] == len(stored) >= 99
    assert outcome["statuses"] == {"updated": 1}
    _assert_contiguous(stored)
    assert max(stored) + 60 <= int(datetime.now(UTC).timestamp())


def test_update_task_returns_a_small_json_summary(fake, spot):
    from predictor.tasks import update_tracked_markets

    spot.tracked = True
    spot.save()
    Candle.objects.create(
        market=spot,
        interval="1m",
        open_time=_at(fake.start),
        open=1,
        high=1,
        low=1,
        close=1,
        volume=0,
    )
    outcome = update_tracked_markets.apply().get()
    assert json.loads(json.dumps(outcome)) == {
        "actuals_filled": 0,  # no forecasts waiting for these candles
        "updates": 1,
        "inserted": 99,
        "statuses": {"updated": 1},
        "problems": [],
    }
