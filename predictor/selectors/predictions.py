"""A session's predictions: span and fingerprint for caches, a DataFrame, a CSV stream, API lists.

Predictions are read with one ``values_list`` query into a DataFrame, never as
ORM objects; the CSV download streams rows straight from the cursor.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from django.db.models import Count, Max, Min, Q, QuerySet

from predictor.models import Market, Prediction, TrainingSession
from predictor.prediction_columns import (
    CSV_COLUMNS,
    FRAME_COLUMNS,
    TIME_COLUMNS,
    prediction_lookups,
)


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


def prediction_list(
    session: uuid.UUID,
    *,
    market_id: int | None = None,
    symbol: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    split: str | None = None,
) -> QuerySet[Prediction]:
    """A session's predictions with target time in [start, end), narrowed by the filters given.

    Unordered: the API's cursor pagination orders by (target_time, id) on the
    (session, target_time) index, and an order here would only be replaced.
    ``symbol`` matches in any case.
    """
    rows = Prediction.objects.filter(session_id=session)
    if market_id is not None:
        rows = rows.filter(market_id=market_id)
    if symbol is not None:
        rows = rows.filter(market__symbol=symbol.upper())
    if start is not None:
        rows = rows.filter(target_time__gte=start)
    if end is not None:
        rows = rows.filter(target_time__lt=end)
    if split is not None:
        rows = rows.filter(split=split)
    return rows
