"""Reads only page assembly needs: each market once, with the intervals stored for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from predictor.ml.intervals import Interval, parse_interval
from predictor.selectors.candles import MarketCoverage, market_coverage_list


@dataclass(frozen=True, slots=True)
class MarketSeries:
    """One market with the intervals stored for it, finest first."""

    market_id: int
    exchange: str
    symbol: str
    intervals: tuple[str, ...]
    candles: int
    first_open: dt.datetime
    last_open: dt.datetime

    @property
    def finest(self) -> Interval:
        return parse_interval(self.intervals[0])

    @property
    def label(self) -> str:
        return f"{self.symbol} · {self.exchange}"


def market_series_list(coverage: Sequence[MarketCoverage] | None = None) -> list[MarketSeries]:
    """Markets with candles, one entry per market; times span the finest stored interval."""
    rows = market_coverage_list() if coverage is None else coverage
    by_market: dict[int, list[MarketCoverage]] = {}
    for row in rows:
        by_market.setdefault(row.market_id, []).append(row)
    result = []
    for market_id, group in by_market.items():
        group.sort(key=lambda r: parse_interval(r.interval).seconds)
        finest = group[0]
        result.append(
            MarketSeries(
                market_id,
                finest.exchange,
                finest.symbol,
                tuple(r.interval for r in group),
                finest.candles,
                finest.first_open,
                finest.last_open,
            )
        )
    return sorted(result, key=lambda m: (m.symbol, m.exchange))
