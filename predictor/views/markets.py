"""The index page: markets with data coverage and a price chart of one of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString

from predictor.forms import CHART_INTERVALS, ChartForm
from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.charts import candles_figure
from predictor.ml.downsample import MAX_POINTS, interval_for_points
from predictor.ml.intervals import Interval, parse_interval
from predictor.models import Market
from predictor.selectors.candles import candles_window, market_coverage_list
from predictor.selectors.pages import MarketSeries, market_series_list
from predictor.views._common import chart, default_range


def _interval(asked: str | None, series: MarketSeries, notes: list[str]) -> Interval:
    """The asked interval if the stored candles can make it, else the finest stored."""
    source = series.finest
    if not asked:
        return source
    wanted = parse_interval(asked)
    if wanted.seconds % source.seconds:
        notes.append(
            f"{series.symbol} is stored at {source.code} at the finest, which cannot make "
            f"{wanted.code} bars; showing {source.code}."
        )
        return source
    return wanted


@dataclass(frozen=True, slots=True)
class _Drawn:
    figure: SafeString | None
    bars: int
    gap_count: int
    missing_bars: int


def _drawn_chart(
    market: Market, start: dt.datetime, end: dt.datetime, shown: Interval, style: str
) -> _Drawn:
    """The price chart's JSON and what the page says about it, cached by the market's
    ``candles_token`` (replaced by every candle write, so never stale)."""
    key = (
        f"predictor:price-chart:{market.pk}:{market.candles_token}:{start.isoformat()}:"
        f"{end.isoformat()}:{shown.code}:{style}"
    )
    ttl = settings.CANDLE_CACHE_SECONDS
    cached = cache.get(key) if ttl and market.candles_token else None
    if cached is not None:
        return cast(_Drawn, cached)
    frame = candles_window(market, start, end, shown)
    figure = None
    if not frame.empty:
        ohlcv = {k: frame[k].to_numpy() for k in OHLCV_FIELDS}
        figure = chart(candles_figure(frame.index, ohlcv, style=style))
    gaps = frame.attrs["gaps"]
    drawn = _Drawn(figure, len(frame), gaps.count, gaps.missing_bars)
    if ttl and market.candles_token:
        cache.set(key, drawn, ttl)
    return drawn


def _price_chart(series: MarketSeries, data: dict[str, Any]) -> dict[str, Any]:
    notes: list[str] = []
    asked = _interval(data.get("interval"), series, notes)
    start, end = default_range(
        series.last_open, series.finest, start=data.get("start"), end=data.get("end")
    )
    shown = interval_for_points((end - start).total_seconds(), asked, MAX_POINTS)
    if shown != asked:
        bars = int((end - start).total_seconds() // asked.seconds)
        notes.append(
            f"Showing {shown.code} bars: {asked.code} would be {bars:,} bars, and charts show "
            f"at most {MAX_POINTS:,} per series."
        )
    market = Market.objects.get(pk=series.market_id)
    style = data.get("style") or "candles"
    drawn = _drawn_chart(market, start, end, shown, style)
    if drawn.gap_count:
        notes.append(
            f"{drawn.gap_count} gap(s) in this range, {drawn.missing_bars:,} missing "
            f"{shown.code} bar(s); the chart does not fill them."
        )
    return {
        "series": series,
        "start": start,
        "end": end,
        "interval": shown,
        "intervals": [
            c for c in CHART_INTERVALS if parse_interval(c).seconds % series.finest.seconds == 0
        ],
        "bars": drawn.bars,
        "figure": drawn.figure,
        "caption": f"{series.symbol} · {series.exchange} · {shown.code} bars",
        "notes": notes,
        "style": style,
    }


def index(request: HttpRequest) -> HttpResponse:
    coverage = market_coverage_list(cache_seconds=settings.COVERAGE_CACHE_SECONDS)
    markets = market_series_list(coverage)
    form = ChartForm(request.GET or None, markets=[(m.market_id, m.label) for m in markets])
    context: dict[str, Any] = {"coverage": coverage, "markets": markets, "form": form}
    if markets:
        data = form.cleaned_data if form.is_bound and form.is_valid() else {}
        chosen = next((m for m in markets if m.market_id == data.get("market")), markets[0])
        context["price"] = _price_chart(chosen, data)
    return render(request, "predictor/index.html", context)
