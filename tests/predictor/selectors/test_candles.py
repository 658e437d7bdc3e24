from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from predictor.ml.candles import CandleChunk
from predictor.ml.intervals import parse_interval
from predictor.models import Market
from predictor.selectors.candles import (
    candle_first_open,
    candle_page,
    candles_frame,
    candles_frames,
    market_coverage_list,
    market_get,
    market_list,
)

pytestmark = pytest.mark.django_db
T0 = 1_704_067_200


def store(symbol: str, minutes: list[int]) -> Market:
    from predictor.services.candle_store import candles_upsert

    market = Market.objects.create(exchange="binance", symbol=symbol)
    times = np.array([T0 + 60 * m for m in minutes], dtype=np.int64)
    price = np.arange(1, len(minutes) + 1, dtype=np.float64)
    chunk = CandleChunk(
        times,
        price,
        price + 1,
        price - 0.5,
        price + 0.5,
        np.full(len(minutes), 2.0),
        np.arange(len(minutes), dtype=np.int64),
    )
    candles_upsert(market, parse_interval("1m"), [chunk])
    return market


def test_frame_holds_the_stored_candles_in_time_order_with_utc_open_times() -> None:
    market = store("BTCUSDT", [2, 0, 1])
    frame = candles_frame(market)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index[0] == datetime.fromtimestamp(T0, tz=UTC)
    assert frame["open"].tolist() == [2.0, 3.0, 1.0]  # stored by time, not by insertion
    assert frame.attrs["gaps"].count == 0


def test_range_is_half_open_and_gaps_are_reported_or_marked() -> None:
    market = store("BTCUSDT", [0, 1, 2, 5, 6])
    start = datetime.fromtimestamp(T0 + 60, tz=UTC)
    end = datetime.fromtimestamp(T0 + 6 * 60, tz=UTC)
    frame = candles_frame(market, start, end)
    assert len(frame) == 3
    assert frame.attrs["gaps"].missing_bars == 2
    marked = candles_frame(market, gaps="mark")
    assert marked["missing"].sum() == 2
    assert np.isnan(marked["volume"]).sum() == 2


def test_resampling_through_the_selector_uses_the_seed_letters() -> None:
    market = store("BTCUSDT", list(range(120)))
    hourly = candles_frame(market, interval="H")
    assert len(hourly) == 2
    assert hourly["volume"].tolist() == [120.0, 120.0]
    assert hourly.attrs["interval"] == "1h"


def test_several_markets_share_one_grid_with_nan_where_one_is_missing() -> None:
    a = store("BTCUSDT", [0, 1, 2])
    b = store("ETHUSDT", [1, 2, 3])
    joined = candles_frames([a, b])
    assert len(joined) == 4
    assert np.isnan(joined[("BTCUSDT", "close")].iloc[3])
    assert np.isnan(joined[("ETHUSDT", "close")].iloc[0])


def test_coverage_lists_count_and_range_per_market_and_interval() -> None:
    store("BTCUSDT", [0, 1, 5])
    [row] = market_coverage_list()
    assert (row.symbol, row.interval, row.candles) == ("BTCUSDT", "1m", 3)
    assert row.last_open == datetime.fromtimestamp(T0 + 300, tz=UTC)


def test_market_lookup_needs_the_exchange_when_a_symbol_is_on_two() -> None:
    Market.objects.create(exchange="binance", symbol="BTCUSD")
    Market.objects.create(exchange="gemini", symbol="BTCUSD")
    with pytest.raises(Market.MultipleObjectsReturned):
        market_get("BTCUSD")
    assert market_get("btcusd", "gemini").exchange == "gemini"


def test_deleting_a_market_deletes_its_candles_only() -> None:
    from predictor.models import Candle

    a = store("BTCUSDT", [0, 1, 2])
    store("ETHUSDT", [0, 1])
    a.delete()
    assert Candle.objects.count() == 2
    assert set(Candle.objects.values_list("market__symbol", flat=True)) == {"ETHUSDT"}


def test_market_list_is_ordered_by_exchange_then_symbol_and_filters_in_any_case() -> None:
    for exchange, symbol in (("gemini", "BTCUSD"), ("binance", "ETHUSDT"), ("binance", "BTCUSD")):
        Market.objects.create(exchange=exchange, symbol=symbol)
    listed = [(m.exchange, m.symbol) for m in market_list()]
    assert listed == [("binance", "BTCUSD"), ("binance", "ETHUSDT"), ("gemini", "BTCUSD")]
    assert [m.exchange for m in market_list(symbol="btcusd")] == ["binance", "gemini"]
    assert [m.symbol for m in market_list(exchange="binance", symbol="ethusdt")] == ["ETHUSDT"]
    assert list(market_list(exchange="kraken")) == []


def test_first_open_is_the_first_stored_candle_in_a_half_open_range() -> None:
    market = store("BTCUSDT", [0, 1, 5, 6])
    minute = parse_interval("1m")

    def at(m: int) -> datetime:
        return datetime.fromtimestamp(T0 + 60 * m, tz=UTC)

    assert candle_first_open(market, minute) == at(0)
    assert candle_first_open(market, minute, at(2)) == at(5)
    assert candle_first_open(market, minute, at(2), at(5)) is None  # before is exclusive
    assert candle_first_open(market, minute, at(7)) is None
    assert candle_first_open(market, parse_interval("1h")) is None


def test_candle_pages_walk_back_from_the_newest_and_forward_again() -> None:
    market = store("BTCUSDT", list(range(5)))
    newest = candle_page(market, "1m", size=2)
    assert [r["open"] for r in newest.rows] == [5.0, 4.0]
    assert newest.newer is None
    older = candle_page(market, "1m", before=newest.older, size=2)
    assert [r["open"] for r in older.rows] == [3.0, 2.0]
    oldest = candle_page(market, "1m", before=older.older, size=2)
    assert [r["open"] for r in oldest.rows] == [1.0]
    assert oldest.older is None
    back = candle_page(market, "1m", after=oldest.newer, size=2)
    assert [r["open"] for r in back.rows] == [3.0, 2.0]
    assert candle_page(market, "1h").rows == []
