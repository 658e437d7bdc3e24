"""Binance public klines: spot ``/api/v3/klines`` and USDⓈ-M futures ``/fapi/v1/klines``.

No key. Each kline is a 12-element array::

    [open_time_ms, "open", "high", "low", "close", "volume", close_time_ms,
     "quote_volume", trades, "taker_buy_base", "taker_buy_quote", "ignore"]

``startTime``/``endTime`` select by open time; a page holds at most 1000 (spot)
or 1500 (futures) klines. The last kline of a recent request is usually the
one still trading: it is dropped (``close_time >= now``), never stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictor.ml.candles import OHLCV_FIELDS, CandleChunk, IntArray
from predictor.ml.intervals import Interval
from predictor.models import Exchange, Market
from predictor.services.providers.base import (
    CandlePage,
    MarketMismatch,
    check_prices,
    chunk_from_columns,
    float_column,
    paged,
)
from predictor.services.providers.http import HttpClient, MalformedPayload

SPOT_INTERVALS = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w"}
)
FUTURES_INTERVALS = SPOT_INTERVALS - {"1s"}
_PRICE_FIELDS = OHLCV_FIELDS


@dataclass(frozen=True, slots=True)
class _Venue:
    label: str
    url: str
    limit: int
    intervals: frozenset[str]


class BinanceProvider:
    name = "binance"

    def __init__(
        self,
        *,
        spot_url: str,
        futures_url: str,
        client: HttpClient | None = None,
        spot_limit: int = 1000,
        futures_limit: int = 1500,
    ) -> None:
        self.client = client or HttpClient(self.name)
        self._venues = {
            Exchange.BINANCE.value: _Venue(
                "spot", f"{spot_url.rstrip('/')}/api/v3/klines", spot_limit, SPOT_INTERVALS
            ),
            Exchange.BINANCE_FUTURES.value: _Venue(
                "USDⓈ-M futures",
                f"{futures_url.rstrip('/')}/fapi/v1/klines",
                futures_limit,
                FUTURES_INTERVALS,
            ),
        }

    def check_market(self, market: Market, interval: Interval) -> None:
        venue = self._venues.get(market.exchange)
        if venue is None:
            raise MarketMismatch(
                f"the binance provider quotes only binance and binance-futures markets, "
                f"not {market} (exchange {market.exchange!r}): storing Binance bars there would "
                f"mix two exchanges' prices; use --provider coinapi for that market"
            )
        if not market.symbol.isalnum() or market.symbol != market.symbol.upper():
            raise MarketMismatch(
                f"{market}: Binance symbols are upper-case letters and digits (e.g. BTCUSDT), "
                f"got {market.symbol!r}"
            )
        if interval.code not in venue.intervals:
            raise MarketMismatch(
                f"Binance {venue.label} has no {interval.code} klines; "
                f"use one of {', '.join(sorted(venue.intervals))}"
            )

    def pages(
        self, market: Market, interval: Interval, start: int, end: int, *, now: int
    ) -> Iterator[CandlePage]:
        self.check_market(market, interval)
        venue = self._venues[market.exchange]

        def fetch(cursor: int, until: int) -> tuple[CandleChunk, str]:
            params = {
                "symbol": market.symbol,
                "interval": interval.code,
                "startTime": cursor * 1000,
                "endTime": until * 1000 - 1,
                "limit": venue.limit,
            }
            payload, url = self.client.get_json(venue.url, params=params)
            chunk, close_ms = self.parse(payload, url)
            still_open = close_ms >= now * 1000
            return (chunk.take(~still_open) if still_open.any() else chunk), url

        yield from paged(self.name, interval, start, min(end, now), fetch, time_field="open_time")

    def parse(self, payload: Any, url: str) -> tuple[CandleChunk, IntArray]:
        """A klines array as a chunk (open times in seconds) and the close times in ms."""
        if not isinstance(payload, list):
            raise MalformedPayload(
                self.name,
                url,
                "body",
                f"expected a JSON array of klines, got {type(payload).__name__}",
            )
        for row, kline in enumerate(payload):
            if not isinstance(kline, list) or len(kline) < 7:
                raise MalformedPayload(
                    self.name,
                    url,
                    f"kline (row {row})",
                    f"expected an array of 12 values, got {str(kline)[:80]}",
                )
        open_ms = self._millis([k[0] for k in payload], "open_time", url)
        close_ms = self._millis([k[6] for k in payload], "close_time", url)
        if np.any(open_ms % 1000):
            row = int(np.flatnonzero(open_ms % 1000)[0])
            raise MalformedPayload(
                self.name, url, f"open_time (row {row})", f"{open_ms[row]} ms is not a whole second"
            )
        columns = {
            field: float_column([k[i] for k in payload], field, provider=self.name, url=url)
            for i, field in enumerate(_PRICE_FIELDS, start=1)
        }
        chunk = chunk_from_columns(open_ms // 1000, columns)
        check_prices(chunk, provider=self.name, url=url)
        if np.any(np.diff(chunk.open_time) <= 0):
            raise MalformedPayload(
                self.name, url, "open_time", "klines are not in increasing time order"
            )
        return chunk, close_ms

    def _millis(self, values: list[Any], field: str, url: str) -> IntArray:
        for row, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MalformedPayload(
                    self.name,
                    url,
                    f"{field} (row {row})",
                    f"expected epoch milliseconds, got {value!r}",
                )
        return np.asarray(values, dtype=np.int64)
