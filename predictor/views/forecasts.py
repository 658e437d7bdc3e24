"""The forecast page: a production session's forecasts against what happened, and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode

from predictor.forms import SessionPickForm
from predictor.ml.charts import forecast_figure
from predictor.ml.intervals import parse_interval
from predictor.models import SessionMode, TrainingSession
from predictor.prediction_columns import CSV_COLUMNS
from predictor.selectors.predictions import (
    prediction_rows,
    prediction_span,
    predictions_fingerprint,
    predictions_frame,
)
from predictor.selectors.sessions import default_session, production_session_list, session_steps
from predictor.views._common import DEFAULT_SPAN, TARGET_UNITS, chart, default_range, interval_text


def _times(column: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(column).tz_convert(None).to_numpy()


def _market_chart(
    session: TrainingSession, symbol: str, frame: pd.DataFrame, step: int
) -> dict[str, Any]:
    rows = frame[frame["symbol"] == symbol]
    known = rows[(rows["split"] != "future") & (rows["step"] == step)]
    future = rows[rows["split"] == "future"]
    if len(future):
        last_candle = future["anchor_time"].max()
    elif known["actual"].notna().any():
        last_candle = known.loc[known["actual"].notna(), "target_time"].max()
    else:
        last_candle = None
    figure = forecast_figure(
        (_times(known["target_time"]), known["actual"].to_numpy()),
        (_times(known["target_time"]), known["predicted"].to_numpy()),
        (
            _times(future["target_time"]),
            future["predicted"].to_numpy(),
            _times(future["issued_at"]),
            future["horizon"].to_numpy(),
        ),
        last_candle=None if last_candle is None else np.datetime64(last_candle.tz_convert(None)),
        y_title=TARGET_UNITS.get(session.target, session.target),
    )
    return {
        "symbol": symbol,
        "figure": chart(figure) if len(rows) else None,
        "caption": f"{symbol} · {session.interval} · step {step}: actual vs predicted",
        "points": len(known),
        "future": len(future),
        "last_candle": last_candle,
    }


def _latest_forecasts(session: TrainingSession) -> list[dict[str, Any]]:
    """The forecasts past the last candle, with when they were made and how far ahead."""
    future = predictions_frame(session, splits=["future"])
    interval = parse_interval(session.interval)
    return [
        {str(k): v for k, v in row.items()}
        | {"horizon_text": interval_text(interval, int(row["horizon"]))}
        for row in future.to_dict("records")
    ]


def _session_context(session: TrainingSession, data: dict[str, Any]) -> dict[str, Any]:
    span = prediction_span(session)
    context: dict[str, Any] = {"span": span}
    if not span["n"]:
        return context
    interval = parse_interval(session.interval)
    start, end = default_range(
        span["last"],
        interval,
        start=data.get("start"),
        end=data.get("end"),
        span=max(DEFAULT_SPAN, dt.timedelta(seconds=100 * interval.seconds)),
    )
    # Charts and tables, cached under a fingerprint of the predictions (counts, actuals
    # filled, newest issue, attempt): any change to them is a new key.
    key = (
        f"predictor:forecast-page:{predictions_fingerprint(session, span)}:"
        f"{start.isoformat()}:{end.isoformat()}:{data.get('step') or ''}"
    )
    ttl = settings.CANDLE_CACHE_SECONDS
    shown = cache.get(key) if ttl else None
    if shown is None:
        shown = _shown(session, start, end, data.get("step"))
        if ttl:
            cache.set(key, shown, ttl)
    query = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    csv_url = f"{reverse('predictor:forecast_csv', args=[session.pk])}?{query}"
    return context | shown | {"start": start, "end": end, "csv_url": csv_url}


def _shown(
    session: TrainingSession, start: dt.datetime, end: dt.datetime, step: int | None
) -> dict[str, Any]:
    latest = _latest_forecasts(session)
    steps = session_steps(session)
    step = step or steps[0]
    frame = predictions_frame(session, start=start, end=end)
    return {
        "latest": latest,
        "newest": max(latest, key=lambda row: row["issued_at"]) if latest else None,
        "step": step,
        "steps": steps,
        "charts": [_market_chart(session, symbol, frame, step) for symbol in session.symbols],
        "rows_in_range": len(frame),
    }


def forecast(request: HttpRequest) -> HttpResponse:
    sessions = list(production_session_list())  # read once: the picker, the choice and the default
    form = SessionPickForm(request.GET or None, sessions=sessions)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    session = data.get("session") or default_session(sessions, "n_predictions")
    context: dict[str, Any] = {"form": form, "sessions": sessions, "session": session}
    if session is not None:
        context.update(_session_context(session, data))
    return render(request, "predictor/forecast.html", context)


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(session: TrainingSession, start: Any, end: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in prediction_rows(session, start=start, end=end):
        *head, values = row
        cells = [v.isoformat() if isinstance(v, dt.datetime) else v for v in head]
        yield writer.writerow([*cells, "" if values is None else json.dumps(values)])


def forecast_csv(request: HttpRequest, pk: UUID) -> StreamingHttpResponse:
    session = get_object_or_404(TrainingSession, pk=pk, mode=SessionMode.PRODUCTION)
    form = SessionPickForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    response = StreamingHttpResponse(
        _csv_lines(session, data.get("start"), data.get("end")), content_type="text/csv"
    )
    name = f"forecast-{'-'.join(session.symbols)}-{str(session.pk)[:8]}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
