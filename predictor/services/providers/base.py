"""What every candle provider offers, and the column checks they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from predictor.ml.candles import CandleChunk, FloatArray, IntArray
from predictor.ml.intervals import Interval
from predictor.models import Market
from predictor.services.providers.http import MalformedPayload

# XBT is Kraken's (and BitMEX's) spelling of BTC.
_ASSET_ALIASES = {"XBT": "BTC"}


class MarketMismatch(ValueError):
    """The provider does not quote this market's exchange and symbol."""


@dataclass(frozen=True, slots=True)
class CandlePage:
    """The closed candles of one API response, in time order."""

    chunk: CandleChunk
    url: str


class CandleProvider(Protocol):
    name: str

    def check_market(self, market: Market, interval: Interval) -> None:
        """Raise MarketMismatch unless this provider quotes exactly this market and interval."""

    def pages(
        self, market: Market, interval: Interval, start: int, end: int, *, now: int
    ) -> Iterator[CandlePage]:
        """Closed candles with ``start <= open_time`` and ``open_time + interval <= min(end, now)``.

        Times are Unix seconds. A page is parsed and checked whole before it is
        yielded, so a malformed page raises before any of it can be stored.
        """
        ...


def normalise_asset(asset: str) -> str:
    asset = asset.strip().upper()
    return _ASSET_ALIASES.get(asset, asset)


def normalise_symbol(symbol: str) -> str:
    """``btc-usd``, ``BTC/USD``, ``XBTUSD`` -> ``BTCUSD`` for comparisons."""
    cleaned = "".join(ch for ch in symbol.upper() if ch.isalnum())
    for alias, canonical in _ASSET_ALIASES.items():
        if cleaned.startswith(alias):
            cleaned = canonical + cleaned[len(alias) :]
    return cleaned


def float_column(values: Sequence[Any], field: str, *, provider: str, url: str) -> FloatArray:
    """Numbers (or numeric strings) as float64; names the first bad row otherwise."""
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        column = None
    if column is not None and column.shape == (len(values),) and np.isfinite(column).all():
        return column
    for row, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not np.isfinite(number):
            raise MalformedPayload(
                provider, url, f"{field} (row {row})", f"not a number: {value!r}"
            )
    raise MalformedPayload(provider, url, field, "not a column of numbers")


def check_prices(chunk: CandleChunk, *, provider: str, url: str) -> None:
    """Reject a page with high < low (positivity and the grid are checked on upsert)."""
    bad = np.flatnonzero(chunk.high < chunk.low)
    if bad.size:
        row = int(bad[0])
        raise MalformedPayload(
            provider,
            url,
            f"high (row {row})",
            f"high {chunk.high[row]} is below low {chunk.low[row]}",
        )


def closed_only(chunk: CandleChunk, interval: Interval, start: int, end: int) -> CandleChunk:
    """Rows with ``start <= open_time`` and ``open_time + interval <= end``."""
    keep = (chunk.open_time >= start) & (chunk.open_time + interval.seconds <= end)
    return chunk if bool(keep.all()) else chunk.take(keep)


def chunk_from_columns(
    open_time: IntArray,
    columns: dict[str, FloatArray],
) -> CandleChunk:
    return CandleChunk(
        open_time=open_time,
        open=columns["open"],
        high=columns["high"],
        low=columns["low"],
        close=columns["close"],
        volume=columns["volume"],
        line=np.arange(open_time.shape[0], dtype=np.int64),
    )


def grid_ceil(seconds: int, interval: Interval) -> int:
    """The first bar start at or after ``seconds``."""
    offset = (seconds - interval.anchor_seconds) % interval.seconds
    return seconds if offset == 0 else seconds + interval.seconds - offset


def paged(
    provider: str,
    interval: Interval,
    start: int,
    end: int,
    fetch: Callable[[int, int], tuple[CandleChunk, str]],
    *,
    time_field: str,
) -> Iterator[CandlePage]:
    """The closed candles in [start, end) page by page: ``fetch(cursor, end)`` asks the API
    for the bars from ``cursor`` (a bar start) and answers the parsed page and its URL.

    The next page starts one bar after the last one seen. An empty page ends the walk;
    a page that ends before its own start would loop for ever, so it is refused,
    naming the provider, the request and ``time_field``.
    """
    cursor = grid_ceil(start, interval)
    while cursor + interval.seconds <= end:
        chunk, url = fetch(cursor, end)
        if len(chunk) == 0:
            return
        last_seen = int(chunk.open_time[-1])
        if last_seen < cursor:
            raise MalformedPayload(
                provider,
                url,
                time_field,
                f"the page ends at {last_seen}, before its start {cursor}: it does not advance",
            )
        chunk = closed_only(chunk, interval, cursor, end)
        if len(chunk):
            yield CandlePage(chunk, url)
        cursor = last_seen + interval.seconds
