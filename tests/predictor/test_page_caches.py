"""Cached reads are exact: resampled bar blocks, the index chart and the forecast page are
keyed by what they show, so a candle write or a new prediction is seen at once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from predictor.ml.candles import CandleChunk
from predictor.ml.intervals import parse_interval
from predictor.models import Market
from predictor.selectors.candles import candles_frame
from predictor.services.candle_store import candles_upsert
from tests.predictor.conftest import T0, store_candles

pytestmark = pytest.mark.django_db

HOUR = 3600


@pytest.fixture(autouse=True)
def _caches_on(settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"page-cache-tests-{uuid.uuid4()}",
        }
    }
    settings.CANDLE_CACHE_SECONDS = 600


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(api: APIClient, market: Market, **query: Any) -> dict[str, Any]:
    response = api.get(f"/api/markets/{market.pk}/candles/", query)
    assert response.status_code == 200, response.content
    return response.json()


def test_cached_daily_bars_equal_a_fresh_resample_and_follow_a_replaced_candle(
    make_market, settings
):
    market = make_market("BTCUSDT", 24 * 40)
    api = APIClient()
    query = {"interval": "4h", "start": _iso(T0 + 8 * HOUR), "limit": 50}
    first = _page(api, market, **query)
    again = _page(api, market, **query)  # from the cache
    settings.CANDLE_CACHE_SECONDS = 0
    fresh = _page(api, market, **query)
    assert first["results"] == again["results"] == fresh["results"]
    assert first["count"] == 50
    assert first["results"][0]["open_time"] == _iso(T0 + 8 * HOUR)
    assert first["results"][0]["bars"] == 4

    settings.CANDLE_CACHE_SECONDS = 600
    # A corrected candle inside a cached block: the write replaces the market's token.
    token = Market.objects.get(pk=market.pk).candles_token
    chunk = CandleChunk(
        np.array([T0 + 9 * HOUR]), np.array([100.0]), np.array([10_000.0]), np.array([90.0]),
        np.array([100.0]), np.array([1.0]), np.array([1]),
    )  # fmt: skip
    candles_upsert(market, parse_interval("1h"), [chunk], replace=True)
    assert Market.objects.get(pk=market.pk).candles_token != token
    after = _page(api, market, **query)
    assert after["results"][0]["high"] == 10_000.0


def test_an_off_grid_range_is_read_fresh_not_from_whole_cached_bars(make_market):
    market = make_market("BTCUSDT", 48)
    start = dt.datetime.fromtimestamp(T0 + 2 * HOUR, tz=dt.UTC)
    end = dt.datetime.fromtimestamp(T0 + 26 * HOUR, tz=dt.UTC)
    cached = candles_frame(market, start, end, interval="1d", cache_seconds=600)
    fresh = candles_frame(market, start, end, interval="1d")
    assert cached["bars"].tolist() == fresh["bars"].tolist() == [22, 2]


def test_blocks_read_later_join_the_cached_ones_without_a_seam(make_market):
    market = make_market("BTCUSDT", 24 * 30)
    m = Market.objects.get(pk=market.pk)
    start = dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    a = candles_frame(m, start, start + dt.timedelta(days=3), interval="4h", cache_seconds=600)
    whole = candles_frame(m, start, start + dt.timedelta(days=30), interval="4h", cache_seconds=600)
    fresh = candles_frame(m, start, start + dt.timedelta(days=30), interval="4h")
    assert len(a) == 18
    assert len(whole) == len(fresh) == 180
    assert np.array_equal(whole.to_numpy(), fresh.to_numpy())
    assert whole.index.is_monotonic_increasing


def test_the_index_chart_shows_candles_written_after_it_was_cached(make_market):
    market = make_market("BTCUSDT", 48)
    client = Client()
    assert "48 1h bars" in client.get("/").content.decode()
    store_candles(market, 5, start=T0 + 48 * HOUR, seed=3)
    assert "53 1h bars" in client.get("/").content.decode()


def test_rows_stored_out_of_time_order_are_read_in_time_order(make_market):
    market = make_market("BTCUSDT", 0)
    table = "predictor_candle"
    with connection.cursor() as cur:
        for k in (3, 1, 2, 0):  # physically out of order
            when = dt.datetime.fromtimestamp(T0 + k * HOUR, tz=dt.UTC)
            cur.execute(
                f'INSERT INTO {table} (market_id, "interval", open_time, open, high, low, close, '
                "volume) VALUES (%s, 3600, %s, 1, 2, 0.5, 1.5, 3)",
                [market.pk, connection.ops.adapt_datetimefield_value(when)],
            )
    frame = candles_frame(market)
    assert [int(t.timestamp()) for t in frame.index] == [T0 + k * HOUR for k in range(4)]


def test_the_forecast_page_shows_actuals_filled_after_it_was_cached(make_market):
    from predictor.models import Prediction
    from tests.predictor.pages_data import make_session, store_predictions

    market = make_market("BTCUSDT", 200)
    session = make_session(market, evaluation=False)
    store_predictions(session, market)
    client = Client()
    url = f"/forecast/?session={session.pk}"
    before = client.get(url).content.decode()
    assert client.get(url).content.decode() == before  # served from the cache
    # The actual of a future forecast arrives: the page must move it out of the future.
    future = Prediction.objects.filter(session=session, split="future").order_by("target_time")
    n_future = future.count()
    first = future.first()
    Prediction.objects.filter(pk=first.pk).update(split="production", actual=first.predicted)
    after = client.get(url).content.decode()
    assert after != before
    assert after.count("<tr><td>BTCUSDT</td>") == n_future - 1
    assert before.count("<tr><td>BTCUSDT</td>") == n_future


def test_cached_coverage_counts_follow_a_write_to_a_market_already_counted(make_market, settings):
    settings.COVERAGE_CACHE_SECONDS = 600
    market = make_market("BTCUSDT", 10)
    api = APIClient()

    def count() -> int:
        (row,) = api.get(f"/api/markets/{market.pk}/").json()["coverage"]
        return row["candles"]

    assert count() == 10
    assert count() == 10  # cached
    store_candles(market, 3, start=T0 + 10 * HOUR, seed=2)
    assert count() == 13
