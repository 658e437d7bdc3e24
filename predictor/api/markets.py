# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Markets with their data coverage, and their candles a bounded page at a time.

A candle page is one time slice ``[start, start + limit · interval)`` read by
``candles_frame`` (one query straight into numpy, resampled by pandas), never a
list of ORM rows. ``next`` starts at the first stored candle after the slice,
so a gap of months costs one indexed lookup, not a run of empty pages.

Coverage (candle counts per market and interval) comes from the selector's cache
(``COVERAGE_CACHE_SECONDS``), keyed by the markets' candle tokens: a write recounts it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param

from predictor.api.pagination import Pages
from predictor.api.renderers import FastJSONRenderer
from predictor.api.serializers import (
    ID_PATTERN,
    MAX_SOURCE_ROWS_PER_PAGE,
    CandlePageSerializer,
    CandleQuerySerializer,
    MarketQuerySerializer,
    MarketSerializer,
)
from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.intervals import Interval, parse_interval
from predictor.models import Market
from predictor.selectors.candles import (
    candle_first_open,
    candles_frame,
    market_coverage_list,
    market_list,
    stored_intervals,
)

_FIELDS = OHLCV_FIELDS
# Python datetimes end in year 9999; a page reaching past that is clamped.
_LAST_SECOND = int(dt.datetime(9999, 12, 31, tzinfo=dt.UTC).timestamp())


def coverage_by_market() -> dict[int, list[dict[str, Any]]]:
    """Each market's stored intervals, finest first, with counts and time ranges."""
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in market_coverage_list(cache_seconds=settings.COVERAGE_CACHE_SECONDS):
        grouped[row.market_id].append(
            {
                "interval": row.interval,
                "candles": row.candles,
                "first_open": row.first_open,
                "last_open": row.last_open,
            }
        )
    for rows in grouped.values():
        rows.sort(key=lambda r: parse_interval(r["interval"]).seconds)
    return dict(grouped)


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(min(seconds, _LAST_SECOND), tz=dt.UTC)


def _floor(moment: dt.datetime, interval: Interval) -> int:
    seconds = int(moment.timestamp())
    anchor = interval.anchor_seconds
    return (seconds - anchor) // interval.seconds * interval.seconds + anchor


def _source_for(market: Market, target: Interval | None) -> tuple[Interval, Interval] | None:
    """(stored series to read, interval to answer in); None when nothing is stored."""
    stored = stored_intervals(market)  # one query of index probes, always current
    if not stored:
        return None
    target = target or stored[0]
    usable = [s for s in stored if s.seconds <= target.seconds and target.seconds % s.seconds == 0]
    if not usable:
        codes = ", ".join(s.code for s in stored)
        raise serializers.ValidationError(
            {"interval": [f"cannot build {target.code} bars from the stored {codes} candles"]}
        )
    return usable[-1], target  # the coarsest series that divides the target reads fewest rows


def candle_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A candle frame as JSON-ready dicts: columns converted once, then zipped."""
    seconds = pd.DatetimeIndex(frame.index).as_unit("s").asi8
    times = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    columns = [frame[name].to_numpy(dtype=np.float64).tolist() for name in _FIELDS]
    bars = frame["bars"].tolist() if "bars" in frame else [1] * len(frame)
    return [
        {
            "open_time": f"{t}Z",
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
            "bars": b,
        }
        for t, o, h, lo, c, v, b in zip(times.tolist(), *columns, bars, strict=True)
    ]


class MarketViewSet(viewsets.ReadOnlyModelViewSet[Market]):
    """Markets and, per stored interval, how many candles they hold and from when to when."""

    serializer_class = MarketSerializer
    pagination_class = Pages
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Market]:
        if self.action != "list":
            return market_list()
        query = MarketQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return market_list(**query.validated_data)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if self.action in ("list", "retrieve"):
            context["coverage"] = coverage_by_market()
        return context

    @extend_schema(parameters=[MarketQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[CandleQuerySerializer],
        responses=CandlePageSerializer,
        description=(
            "Candles in [start, end), a page of at most `limit` bars, resampled to `interval`. "
            "`start` is rounded down to the interval's grid so the first bar is whole; "
            "follow `next` for the rest."
        ),
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[
            FastJSONRenderer,
            *(r for r in api_settings.DEFAULT_RENDERER_CLASSES if r is not JSONRenderer),
        ],
    )
    def candles(self, request: Request, pk: str | None = None) -> Response:
        market = self.get_object()
        query = CandleQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        return Response(self._page(request, market, params))

    def _page(self, request: Request, market: Market, params: dict[str, Any]) -> dict[str, Any]:
        start, end = params.get("start"), params.get("end")
        found = _source_for(market, params.get("interval"))
        page: dict[str, Any] = {
            "market": market.pk,
            "exchange": market.exchange,
            "symbol": market.symbol,
            "interval": found[1].code if found else None,
            "source_interval": found[0].code if found else None,
            "start": start,
            "end": start,
            "count": 0,
            "gaps": {"count": 0, "missing_bars": 0},
            "next": None,
            "results": [],
        }
        first = candle_first_open(market, found[0], start, end) if found else None
        if found is None or first is None:
            return page
        source, target = found
        limit = min(
            params["limit"], max(1, MAX_SOURCE_ROWS_PER_PAGE // (target.seconds // source.seconds))
        )
        page_start = _floor(first, target)
        stop = page_start + limit * target.seconds
        if end is not None:
            stop = min(stop, int(np.ceil(end.timestamp())))
        page_end = _utc(stop)
        frame = candles_frame(
            market,
            _utc(page_start),
            page_end,
            interval=target,
            source_interval=source,
            cache_seconds=settings.CANDLE_CACHE_SECONDS,
        )
        gaps = frame.attrs["gaps"]
        following = (
            candle_first_open(market, source, page_end, end) if stop < _LAST_SECOND else None
        )
        if following is not None:
            next_start = _utc(_floor(following, target)).isoformat().replace("+00:00", "Z")
            page["next"] = replace_query_param(request.build_absolute_uri(), "start", next_start)
        page.update(
            start=_utc(page_start),
            end=page_end,
            count=len(frame),
            gaps={"count": gaps.count, "missing_bars": gaps.missing_bars},
            results=candle_rows(frame),
        )
        return page
