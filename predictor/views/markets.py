"""The index page: markets with data coverage and a price chart of one of them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from predictor.forms import CHART_INTERVALS, ChartForm
from predictor.ml.charts import candles_figure
from predictor.ml.downsample import MAX_POINTS, interval_for_points
from predictor.ml.intervals import Interval, parse_interval
from predictor.models import Market
from predictor.selectors import market_coverage_list
from predictor.selectors_web import MarketSeries, candles_window, market_series_list
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
    frame = candles_window(market, start, end, shown)
    gaps = frame.attrs["gaps"]
    if gaps.count:
        notes.append(
            f"{gaps.count} gap(s) in this range, {gaps.missing_bars:,} missing {shown.code} bar(s); "
            "the chart does not fill them."
        )
    style = data.get("style") or "candles"
    figure = None
    if not frame.empty:
        figure = chart(
            candles_figure(
                frame.index,
                {k: frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume")},
                style=style,
            )
        )
    return {
        "series": series,
        "start": start,
        "end": end,
        "interval": shown,
        "intervals": [
            c for c in CHART_INTERVALS if parse_interval(c).seconds % series.finest.seconds == 0
        ],
        "bars": len(frame),
        "figure": figure,
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
