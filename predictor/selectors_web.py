"""Reads for the pages: session lists, predictions as arrays, reports.

Predictions are read with one ``values_list`` query into a DataFrame, never as
ORM objects; the CSV download streams rows straight from the cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db.models import Count, Max, Min, Q, QuerySet

from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.intervals import Interval, parse_interval
from predictor.models import (
    Candle,
    EvaluationReport,
    Market,
    Prediction,
    SessionMode,
    SessionStatus,
    TrainingSession,
)
from predictor.prediction_columns import (
    CSV_COLUMNS,
    FRAME_COLUMNS,
    TIME_COLUMNS,
    prediction_lookups,
)
from predictor.selectors import MarketCoverage, candles_frame, market_coverage_list

# Reports read in this order: out-of-sample first, the in-sample one last.
REPORT_ORDER: tuple[str, ...] = ("test", "spa", "walk_forward", "validation", "train", "training")


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


def candles_window(
    market: Market, start: dt.datetime, end: dt.datetime, interval: Interval
) -> pd.DataFrame:
    """Candles of ``market`` opened in [start, end) at ``interval`` (resampled if coarser)."""
    return candles_frame(market, start, end, interval=interval)


def production_session_list() -> QuerySet[TrainingSession]:
    """Production sessions, newest first, with their prediction counts."""
    return TrainingSession.objects.filter(mode=SessionMode.PRODUCTION).annotate(
        n_predictions=Count("predictions")
    )


def evaluation_session_list() -> QuerySet[TrainingSession]:
    """Evaluation and walk-forward sessions, newest first, with their report counts."""
    return (
        TrainingSession.objects.exclude(mode=SessionMode.PRODUCTION)
        .filter(status=SessionStatus.SUCCEEDED)
        .annotate(n_reports=Count("reports", distinct=True))
    )


def default_session(sessions: Sequence[TrainingSession], counted: str) -> TrainingSession | None:
    """The newest session that has something to show (``counted`` > 0), else the newest.

    ``sessions``: a page's session list, newest first, annotated with ``counted``.
    """
    shown = next((s for s in sessions if (getattr(s, counted, 0) or 0) > 0), None)
    return shown or (sessions[0] if sessions else None)


def prediction_span(session: TrainingSession) -> dict[str, Any]:
    """First and last target time of a session's predictions and of its future ones, with
    the counts (all, future, with actuals) and the newest issue time.

    Predictions are only ever added, or completed with their actuals (a retry starts the
    session's attempt count anew), so these figures and ``session.attempts`` change
    whenever what a page shows of them does: :func:`predictions_fingerprint`.
    """
    return Prediction.objects.filter(session=session).aggregate(
        first=Min("target_time"),
        last=Max("target_time"),
        last_anchor=Max("anchor_time", filter=Q(split="future")),
        last_issued=Max("issued_at"),
        n=Count("id"),
        n_future=Count("id", filter=Q(split="future")),
        n_actual=Count("id", filter=Q(actual__isnull=False)),
    )


def predictions_fingerprint(session: TrainingSession, span: dict[str, Any]) -> str:
    """A cache key part that changes whenever the session's predictions do."""
    last = span["last_issued"].isoformat() if span["last_issued"] else "-"
    return (
        f"{session.pk}:{session.attempts}:{span['n']}:{span['n_future']}:{span['n_actual']}:{last}"
    )


def _predictions(
    session: TrainingSession,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    splits: Sequence[str] | None,
    step: int | None,
    market: Market | None,
) -> QuerySet[Prediction]:
    rows = Prediction.objects.filter(session=session)
    if start is not None:
        rows = rows.filter(target_time__gte=start)
    if end is not None:
        rows = rows.filter(target_time__lt=end)
    if splits:
        rows = rows.filter(split__in=list(splits))
    if step is not None:
        rows = rows.filter(step=step)
    if market is not None:
        rows = rows.filter(market=market)
    return rows.order_by("market__symbol", "target_time", "step")


def predictions_frame(
    session: TrainingSession,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    splits: Sequence[str] | None = None,
    step: int | None = None,
    market: Market | None = None,
) -> pd.DataFrame:
    """A session's predictions with target time in [start, end), in one query.

    Columns: ``symbol``, the times (UTC, aware), ``step``, ``horizon``, ``split``,
    ``predicted`` and ``actual`` (NaN until known).
    """
    rows = _predictions(session, start=start, end=end, splits=splits, step=step, market=market)
    frame = pd.DataFrame.from_records(
        list(rows.values_list(*prediction_lookups(FRAME_COLUMNS))),
        columns=list(FRAME_COLUMNS),
    )
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("predicted", "actual"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def prediction_rows(
    session: TrainingSession,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Every prediction of a session in the range, for the CSV download, streamed."""
    rows = _predictions(session, start=start, end=end, splits=None, step=None, market=None)
    return rows.values_list(*prediction_lookups(CSV_COLUMNS)).iterator(chunk_size=2000)


def session_report_list(session: TrainingSession) -> list[EvaluationReport]:
    """A session's reports, out-of-sample first."""
    reports = list(EvaluationReport.objects.filter(session=session))
    rank = {name: i for i, name in enumerate(REPORT_ORDER)}
    return sorted(reports, key=lambda r: (rank.get(r.split, len(rank)), r.split))


def session_steps(session: TrainingSession) -> list[int]:
    """The output steps a session's predictions have (1…O)."""
    return list(
        Prediction.objects.filter(session=session)
        .order_by("step")
        .values_list("step", flat=True)
        .distinct()
    )


# The admin's candle browser: a page of a market's candles, keyset-paged by time.
CANDLE_PAGE_ROWS = 100
_CANDLE_FIELDS = ("open_time", *OHLCV_FIELDS)


@dataclass(frozen=True, slots=True)
class CandlePage:
    """One page of candles, newest first, and where the neighbouring pages start."""

    rows: list[dict[str, Any]]
    newer: dt.datetime | None  # open time of the first row, when newer candles exist
    older: dt.datetime | None  # open time of the last row, when older candles exist


def candle_page(
    market: Market,
    interval: str,
    *,
    before: dt.datetime | None = None,
    after: dt.datetime | None = None,
    size: int = CANDLE_PAGE_ROWS,
) -> CandlePage:
    """Up to ``size`` candles before ``before`` (or after ``after``, or the newest).

    Each page is one index range scan on (market, interval, open_time) plus two
    index probes for its neighbours, however deep into the history it is.
    """
    candles = Candle.objects.filter(market=market, interval=interval)
    rows: list[dict[str, Any]] = []
    if after is not None:
        newer = candles.filter(open_time__gt=after).order_by("open_time")
        rows = list(newer.values(*_CANDLE_FIELDS)[:size])[::-1]
    if after is None or len(rows) < size:  # paging back up to the top ends on the newest page
        older = candles.filter(open_time__lt=before) if before is not None else candles
        rows = list(older.order_by("-open_time").values(*_CANDLE_FIELDS)[:size])
    if not rows:
        return CandlePage([], newer=None, older=None)
    first, last = rows[0]["open_time"], rows[-1]["open_time"]
    return CandlePage(
        rows,
        newer=first if candles.filter(open_time__gt=first).exists() else None,
        older=last if candles.filter(open_time__lt=last).exists() else None,
    )
