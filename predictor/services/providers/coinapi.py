"""CoinAPI OHLCV history: ``GET /v1/ohlcv/{symbol_id}/history``.

The key travels in the ``X-CoinAPI-Key`` header and comes from the
``COINAPI_KEY`` environment variable only. Each item of the JSON array is::

    {"time_period_start": "2024-01-01T00:00:00.0000000Z",
     "time_period_end": "2024-01-01T00:01:00.0000000Z",
     "time_open": ..., "time_close": ...,
     "price_open": 42000.1, "price_high": ..., "price_low": ..., "price_close": ...,
     "volume_traded": 1.25, "trades_count": 17}

``time_period_start`` is the open time. Periods without trades are absent, so
a page may have gaps. The period still in progress is dropped, never stored.
A symbol id reads ``EXCHANGE_TYPE_BASE_QUOTE`` (``GEMINI_SPOT_BTC_USD``); its
exchange prefix must name the market's own exchange.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import requests

from predictor.ml.candles import CandleChunk, IntArray
from predictor.ml.intervals import Interval
from predictor.models import Exchange, Market
from predictor.services.providers.base import (
    CandlePage,
    MarketMismatch,
    check_prices,
    chunk_from_columns,
    float_column,
    normalise_asset,
    normalise_symbol,
    paged,
)
from predictor.services.providers.http import (
    ErrorHook,
    HttpClient,
    MalformedPayload,
    ProviderError,
    ProviderRejected,
    QuotaExhausted,
)

# CoinAPI's documented OHLCV period ids up to 10 days (months and years are not fixed lengths).
_UNIT = {"SEC": 1, "MIN": 60, "HRS": 3600, "DAY": 86400}
PERIOD_IDS: dict[int, str] = {
    count * _UNIT[unit]: f"{count}{unit}"
    for unit, counts in (
        ("SEC", (1, 2, 3, 4, 5, 6, 10, 15, 20, 30)),
        ("MIN", (1, 2, 3, 4, 5, 6, 10, 15, 20, 30)),
        ("HRS", (1, 2, 3, 4, 6, 8, 12)),
        ("DAY", (1, 2, 3, 5, 7, 10)),
    )
    for count in counts
}
# CoinAPI exchange ids of the exchanges a Market can be on, and the symbol types quoted there.
EXCHANGE_IDS: dict[str, tuple[str, tuple[str, ...]]] = {
    Exchange.GEMINI.value: ("GEMINI", ("SPOT",)),
    Exchange.BINANCE.value: ("BINANCE", ("SPOT",)),
    Exchange.BINANCE_FUTURES.value: ("BINANCEFTS", ("PERP",)),
    Exchange.BITSTAMP.value: ("BITSTAMP", ("SPOT",)),
    Exchange.KRAKEN.value: ("KRAKEN", ("SPOT",)),
    Exchange.COINBASE.value: ("COINBASE", ("SPOT",)),
    Exchange.BITFINEX.value: ("BITFINEX", ("SPOT",)),
}
_SYMBOL_ID = re.compile(r"^([A-Z0-9]+)_([A-Z]+)_([A-Z0-9]+)_([A-Z0-9]+)$")
_FIELDS = {
    "open": "price_open",
    "high": "price_high",
    "low": "price_low",
    "close": "price_close",
    "volume": "volume_traded",
}


def coinapi_error_hook(provider: str) -> ErrorHook:
    """Recognise an exhausted quota or a refused key before the generic retry rules."""

    def hook(response: requests.Response, url: str) -> ProviderError | None:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        text = str(error or response.text[:200])
        if response.status_code == 403 and "quota" in text.lower():
            return QuotaExhausted(provider, url, f"CoinAPI quota exhausted (HTTP 403): {text}")
        if response.status_code == 429 and error and not response.headers.get("Retry-After"):
            return QuotaExhausted(
                provider,
                url,
                f"CoinAPI request limit reached (HTTP 429): {text}; "
                "wait for the quota to reset or upgrade the plan",
            )
        if response.status_code == 401:
            return ProviderRejected(
                provider, url, f"CoinAPI refused the key (HTTP 401): {text}; check COINAPI_KEY", 401
            )
        return None

    return hook


class CoinApiProvider:
    name = "coinapi"

    def __init__(
        self, *, base_url: str, api_key: str, client: HttpClient | None = None, limit: int = 1000
    ) -> None:
        self.url = base_url.rstrip("/")
        self.api_key = api_key
        self.limit = limit
        self.client = client or HttpClient(self.name, error_hook=coinapi_error_hook(self.name))
        if self.client.error_hook is None:
            self.client.error_hook = coinapi_error_hook(self.name)

    def symbol_id(self, market: Market) -> str:
        """The market's CoinAPI symbol id, checked against its exchange and symbol."""
        exchange = EXCHANGE_IDS.get(market.exchange)
        if exchange is None:
            raise MarketMismatch(
                f"{market}: no CoinAPI exchange id is known for exchange {market.exchange!r}, "
                "so the provider cannot prove it quotes this market"
            )
        exchange_id, types = exchange
        symbol_id = market.coinapi_symbol_id.strip().upper()
        if not symbol_id:
            if not (market.base_asset and market.quote_asset):
                raise MarketMismatch(
                    f"{market}: set its coinapi_symbol_id (e.g. {exchange_id}_{types[0]}_BTC_USD) "
                    "or its base and quote assets"
                )
            symbol_id = (
                f"{exchange_id}_{types[0]}_{market.base_asset.upper()}_{market.quote_asset.upper()}"
            )
        match = _SYMBOL_ID.match(symbol_id)
        if not match:
            raise MarketMismatch(
                f"{market}: CoinAPI symbol id {symbol_id!r} is not EXCHANGE_TYPE_BASE_QUOTE"
            )
        prefix, kind, base, quote = match.groups()
        if prefix != exchange_id or kind not in types:
            raise MarketMismatch(
                f"CoinAPI symbol id {symbol_id} quotes exchange {prefix} ({kind}), but market "
                f"{market} is on {market.exchange} ({exchange_id}_{'/'.join(types)}): "
                "refusing to fill one exchange's market with another exchange's bars"
            )
        if normalise_asset(base) + normalise_asset(quote) != normalise_symbol(market.symbol):
            raise MarketMismatch(
                f"CoinAPI symbol id {symbol_id} is {base}/{quote}, but market {market} "
                f"trades {market.symbol}"
            )
        return symbol_id

    def check_market(self, market: Market, interval: Interval) -> None:
        self.symbol_id(market)
        if interval.seconds not in PERIOD_IDS:
            raise MarketMismatch(f"CoinAPI has no OHLCV period of {interval.code}")
        if not self.api_key:
            raise MarketMismatch(
                "COINAPI_KEY is not set: put your CoinAPI key in the environment "
                "(never in the repository)"
            )

    def pages(
        self, market: Market, interval: Interval, start: int, end: int, *, now: int
    ) -> Iterator[CandlePage]:
        self.check_market(market, interval)
        url = f"{self.url}/v1/ohlcv/{self.symbol_id(market)}/history"

        def fetch(cursor: int, until: int) -> tuple[CandleChunk, str]:
            params = {
                "period_id": PERIOD_IDS[interval.seconds],
                "time_start": _iso(cursor),
                "time_end": _iso(until),
                "limit": self.limit,
            }
            payload, request_url = self.client.get_json(
                url, params=params, headers={"X-CoinAPI-Key": self.api_key}
            )
            return self.parse(payload, request_url), request_url

        yield from paged(
            self.name, interval, start, min(end, now), fetch, time_field="time_period_start"
        )

    def parse(self, payload: Any, url: str) -> CandleChunk:
        if not isinstance(payload, list):
            error = payload.get("error") if isinstance(payload, dict) else None
            detail = f": {error}" if error else f", got {type(payload).__name__}"
            raise MalformedPayload(
                self.name, url, "body", f"expected a JSON array of periods{detail}"
            )
        for row, item in enumerate(payload):
            if not isinstance(item, dict):
                raise MalformedPayload(
                    self.name, url, f"item (row {row})", "expected a JSON object"
                )
            missing = [k for k in ("time_period_start", *_FIELDS.values()) if k not in item]
            if missing:
                raise MalformedPayload(self.name, url, f"{missing[0]} (row {row})", "missing")
        open_time = self._open_times([item["time_period_start"] for item in payload], url)
        columns = {
            field: float_column([item[key] for item in payload], key, provider=self.name, url=url)
            for field, key in _FIELDS.items()
        }
        chunk = chunk_from_columns(open_time, columns)
        check_prices(chunk, provider=self.name, url=url)
        if np.any(np.diff(chunk.open_time) <= 0):
            raise MalformedPayload(
                self.name, url, "time_period_start", "periods are not in increasing time order"
            )
        return chunk

    def _open_times(self, values: list[Any], url: str) -> IntArray:
        stamps = pd.to_datetime(
            pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce"
        )
        bad = stamps.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise MalformedPayload(
                self.name,
                url,
                f"time_period_start (row {row})",
                f"not an ISO 8601 time: {values[row]!r}",
            )
        nanos = stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if np.any(nanos % 1_000_000_000):
            row = int(np.flatnonzero(nanos % 1_000_000_000)[0])
            raise MalformedPayload(
                self.name, url, f"time_period_start (row {row})", "not a whole second"
            )
        return nanos // 1_000_000_000


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
