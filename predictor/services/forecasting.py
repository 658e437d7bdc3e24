"""Forecasts of a trained session stored as ``Prediction`` rows, and their truth filled in later.

:func:`session_forecast` is incremental: without ``start`` it continues at the
bar after the newest stored anchor, reading the window and feature history from
the candles before it, so the new rows join the old ones with no gap at the seam
(the original tool restarted its windows at the last prediction and lost ``W``
points). Windows whose target lies past the last candle are stored too, labelled
``future``; :func:`predictions_fill_actuals` fills their ``actual`` once the target
candle is stored (run it after ``update_stocks``; every forecast run calls it).

Rows go in as one bulk write built from numpy columns, never as model objects (the
ORM's ``bulk_create`` managed 3k rows/s): a CSV ``COPY`` into a temporary table and
one ``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL, one prepared ``INSERT OR
IGNORE`` over all rows on SQLite; a concurrent run of the same session is harmless.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Max

from predictor.ml.config import TrainConfig
from predictor.ml.forecasting import (
    FUTURE,
    Forecasts,
    forecast_windows,
    history_rows,
    realised_values,
    split_labels,
)
from predictor.ml.intervals import parse_interval
from predictor.models import Candle, Market, Prediction, TrainingSession
from predictor.selectors.candles import CandlesMissing, session_frames
from predictor.services.artifacts import session_bundle
from predictor.services.sessions import TrainingError

logger = logging.getLogger(__name__)

UPDATE_BATCH = 500


class ForecastError(Exception):
    """A forecast cannot be made; the message says why."""


@dataclass(frozen=True)
class ForecastResult:
    session_id: str
    windows: int  # anchors predicted in this run
    stored: int  # rows inserted (a row per anchor, market and step)
    future: int  # of those, rows whose target is past the last candle
    actuals_filled: int  # older rows whose target candle has arrived since
    first_anchor: dt.datetime | None
    last_anchor: dt.datetime | None
    last_candle: dt.datetime | None
    splits: dict[str, int] = field(default_factory=dict)


def _utc(seconds: int | np.integer[Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def _epochs(values: Any) -> np.ndarray:
    """Aware datetimes → int64 unix seconds in one conversion."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    return np.asarray(pd.DatetimeIndex(list(values)).as_unit("s").asi8, dtype=np.int64)


def _first_anchor(
    session: TrainingSession, start: dt.datetime | None, step: dt.timedelta
) -> dt.datetime | None:
    """``start``, else the bar after the newest stored anchor, else the training data's start."""
    if start is not None:
        return start
    newest = Prediction.objects.filter(session=session).aggregate(last=Max("anchor_time"))["last"]
    return newest + step if newest is not None else session.data_start


def session_forecast(
    session: TrainingSession,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> ForecastResult:
    """Forecast the windows not yet stored with anchors in ``[start, end]`` and store them."""
    if not session.has_model:
        raise ForecastError(f"session {session.id} is {session.status}: it has no trained model")
    if start is not None and end is not None and start > end:
        raise ForecastError(f"start {start.isoformat()} is after end {end.isoformat()}")
    config = TrainConfig.from_dict(session.config)
    step = dt.timedelta(seconds=parse_interval(session.interval).seconds)
    first = _first_anchor(session, start, step)
    # One bar of slack: on SQLite the selector's start bound drops the candle at ``start``.
    history = (history_rows(config) + 1) * step
    # Candles past the last target the range needs are not read.
    stop = end + (config.reach + 1) * step if end else None
    try:
        frames = session_frames(session, first - history if first else None, stop)
    except CandlesMissing as exc:
        raise ForecastError(str(exc)) from exc
    newest = min(frame.index[-1] for frame in frames.values())
    if first is not None and newest < first:  # no new candle: skip loading the model
        stored, forecasts = 0, None
    else:
        forecasts = forecast_windows(
            session_bundle(session),
            frames,
            start=pd.Timestamp(first) if first else None,
            end=pd.Timestamp(end) if end else None,
        )
        if start is not None:
            forecasts = _without_stored(session, forecasts, start, end)
        stored = store_forecasts(session, forecasts)
    filled = predictions_fill_actuals(session)
    return _result(session, forecasts, stored, filled, newest)


def _result(
    session: TrainingSession,
    forecasts: Forecasts | None,
    stored: int,
    filled: int,
    newest: pd.Timestamp,
) -> ForecastResult:
    if forecasts is None or not len(forecasts):
        return ForecastResult(
            str(session.id), 0, stored, 0, filled, None, None, newest.to_pydatetime()
        )
    return ForecastResult(
        session_id=str(session.id),
        windows=forecasts.n_windows,
        stored=stored,
        future=forecasts.n_future,
        actuals_filled=filled,
        first_anchor=_utc(forecasts.anchor.min()),
        last_anchor=_utc(forecasts.anchor.max()),
        last_candle=_utc(forecasts.last_candle.min()),
        splits=forecasts.split_counts(),
    )


def _without_stored(
    session: TrainingSession, forecasts: Forecasts, start: dt.datetime, end: dt.datetime | None
) -> Forecasts:
    """Drop the anchors a run over ``[start, end]`` finds already stored."""
    rows = Prediction.objects.filter(session=session, anchor_time__gte=start)
    if end is not None:
        rows = rows.filter(anchor_time__lte=end)
    stored = _epochs(rows.order_by().values_list("anchor_time", flat=True).distinct())
    if not len(stored):
        return forecasts
    keep = ~np.isin(forecasts.anchor, stored)
    return forecasts.select(keep)


# --- Writing rows ----------------------------------------------------------------------------


def _market_ids(session: TrainingSession, forecasts: Forecasts) -> np.ndarray:
    """Market ids in the model's market order (the session's symbols)."""
    ids = [m.pk for m in session_markets(session)]
    if len(ids) != len(forecasts.markets):
        raise ForecastError(
            f"the model forecasts {len(forecasts.markets)} market(s), not {len(ids)}"
        )
    return np.asarray(ids, dtype=np.int64)


def _json_lists(values: np.ndarray | None) -> list[Any]:
    """Rows of a ``[n, 3]`` array as JSON-ready lists; a row with a NaN becomes None."""
    if values is None:
        return []
    finite = np.isfinite(values).all(axis=1)
    rows: list[Any] = values.tolist()
    return [row if ok else None for row, ok in zip(rows, finite.tolist(), strict=True)]


def store_forecasts(session: TrainingSession, forecasts: Forecasts) -> int:
    """Insert the rows in one bulk write (rows already stored are skipped); returns rows inserted."""
    if not len(forecasts):
        return 0
    market_ids = _market_ids(session, forecasts)[forecasts.market]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _copy(session, forecasts, market_ids)
        return _insert_many(session, forecasts, market_ids)


def _sqlite_times(seconds: np.ndarray) -> list[str]:
    """Unix seconds as Django stores aware datetimes on SQLite: naive UTC ``YYYY-MM-DD HH:MM:SS``."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return list(np.char.replace(text, "T", " ").tolist())


def _nullable(values: np.ndarray | pd.Series) -> list[Any]:
    """A column with NaN as None (SQL NULL)."""
    column = pd.Series(values, dtype=object)
    return list(column.where(pd.notna(column), None).tolist())


def _insert_many(session: TrainingSession, forecasts: Forecasts, market_ids: np.ndarray) -> int:
    """SQLite: one prepared ``INSERT OR IGNORE`` over columns built by numpy, no model objects."""
    n = len(forecasts)
    rows = zip(
        [session.pk.hex] * n,  # Django keeps UUIDs as 32 hex digits on SQLite
        market_ids.tolist(),
        _sqlite_times(forecasts.anchor),
        _sqlite_times(forecasts.issued),
        _sqlite_times(forecasts.target),
        forecasts.step.tolist(),
        forecasts.horizon.tolist(),
        forecasts.split.tolist(),
        forecasts.predicted.tolist(),
        _nullable(_json_column(forecasts.values, n)),
        _nullable(forecasts.actual),
        _nullable(_json_column(forecasts.actual_values, n)),
        strict=True,
    )
    with connection.cursor() as cur:
        cur.executemany(
            f"INSERT OR IGNORE INTO {Prediction._meta.db_table} ({_COLUMNS}) "
            f"VALUES ({', '.join(['%s'] * 12)})",
            list(rows),
        )
        return int(cur.rowcount)


def _json_column(values: np.ndarray | None, n: int) -> pd.Series:
    """``"[a,b,c]"`` per row (full float precision), NaN where the row is missing or not finite."""
    if values is None:
        return pd.Series(np.full(n, np.nan, dtype=object))
    text = values.astype(str)  # shortest repr that reads back to the same float
    joined = np.char.add(np.char.add(np.char.add("[", text[:, 0]), ","), text[:, 1])
    joined = np.char.add(np.char.add(np.char.add(joined, ","), text[:, 2]), "]")
    column = pd.Series(joined, dtype=object)
    return column.where(np.isfinite(values).all(axis=1), np.nan)


_COLUMNS = (
    "session_id, market_id, anchor_time, issued_at, target_time, step, horizon, split, "
    'predicted, "values", actual, actual_values'
)
_STAGE_COLUMNS = (
    "market_id bigint, anchor bigint, issued bigint, target bigint, step integer, "
    "horizon integer, split text, predicted double precision, vals text, "
    "actual double precision, actual_vals text"
)


def _copy(session: TrainingSession, forecasts: Forecasts, market_ids: np.ndarray) -> int:
    """CSV ``COPY`` into a temporary table, then one ``INSERT … ON CONFLICT DO NOTHING``."""
    n = len(forecasts)
    frame = pd.DataFrame(
        {
            "market_id": market_ids,
            "anchor": forecasts.anchor,
            "issued": forecasts.issued,
            "target": forecasts.target,
            "step": forecasts.step,
            "horizon": forecasts.horizon,
            "split": forecasts.split,
            "predicted": forecasts.predicted,
            "vals": _json_column(forecasts.values, n),
            "actual": np.where(np.isfinite(forecasts.actual), forecasts.actual, np.nan),
            "actual_vals": _json_column(forecasts.actual_values, n),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    buffer.seek(0)
    table = Prediction._meta.db_table
    with connection.cursor() as cur:
        # Dropped below, not ON COMMIT: inside an outer transaction a second run would collide.
        cur.execute(f"CREATE TEMP TABLE forecast_stage ({_STAGE_COLUMNS})")
        cur.copy_expert("COPY forecast_stage FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute(
            f"INSERT INTO {table} ({_COLUMNS}) SELECT %s, market_id, to_timestamp(anchor), to_timestamp(issued), "
            "to_timestamp(target), step, horizon, split, predicted, vals::jsonb, actual, "
            "actual_vals::jsonb FROM forecast_stage "
            "ON CONFLICT (session_id, market_id, anchor_time, step) DO NOTHING",
            [session.pk],
        )
        inserted = int(cur.rowcount)
        cur.execute("DROP TABLE forecast_stage")
    return inserted


# --- Truth for stored forecasts ----------------------------------------------------------------


def predictions_fill_actuals(session: TrainingSession | None = None) -> int:
    """Fill ``actual`` of rows whose target candle has arrived; one session or all. Returns rows."""
    if session is not None:
        return _fill_session(session)
    pending = (
        Prediction.objects.filter(actual__isnull=True)
        .order_by()
        .values_list("session_id", flat=True)
        .distinct()
    )
    filled = 0
    for one in TrainingSession.objects.filter(pk__in=list(pending)):
        try:
            filled += _fill_session(one)
        except (TrainingError, ValueError):  # one session's missing candles must not stop the rest
            logger.warning("filling actuals of session %s failed", one.pk, exc_info=True)
    return filled


def _fill_session(session: TrainingSession) -> int:
    newest = Candle.objects.filter(market__in=session.markets.all()).aggregate(
        last=Max("open_time")
    )["last"]
    if newest is None:
        return 0
    rows = list(
        Prediction.objects.filter(session=session, actual__isnull=True, target_time__lte=newest)
        .order_by("anchor_time")
        .values_list("id", "market_id", "anchor_time", "step", "split")
    )
    if not rows:
        return 0
    ids, market_ids, anchors, steps, splits = zip(*rows, strict=True)
    anchor = _epochs(anchors)
    step = dt.timedelta(seconds=parse_interval(session.interval).seconds)
    frames = session_frames(session, _utc(anchor.min()) - step, None)  # slack: see above
    config = TrainConfig.from_dict(session.config)
    order = {m.pk: i for i, m in enumerate(session_markets(session))}
    actual, actual_values = realised_values(
        config,
        frames,
        anchor,
        np.asarray([order[m] for m in market_ids], dtype=np.int64),
        np.asarray(steps, dtype=np.int64),
    )
    known = np.isfinite(actual)
    relabelled = split_labels(anchor, session.split)
    value_lists = _json_lists(actual_values)
    updates = [
        Prediction(
            id=ids[i],
            actual=float(actual[i]),
            actual_values=value_lists[i] if value_lists else None,
            split=str(relabelled[i]) if splits[i] == FUTURE else splits[i],
        )
        for i in np.flatnonzero(known).tolist()
    ]
    with transaction.atomic():
        Prediction.objects.bulk_update(
            updates, ["actual", "actual_values", "split"], batch_size=UPDATE_BATCH
        )
    return len(updates)


def session_markets(session: TrainingSession) -> list[Market]:
    """The session's markets in the model's order (its symbols)."""
    by_symbol = {m.symbol: m for m in session.markets.all()}
    return [by_symbol[symbol] for symbol in session.symbols]
