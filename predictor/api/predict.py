# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""``POST /api/predict``: a session id and a window of candles in, the forecast out.

JSON only (the parser refuses anything else with 415), bounded by
``DATA_UPLOAD_MAX_MEMORY_SIZE`` and :data:`MAX_CANDLES`, throttled per client
(scope ``predict``, ``API_PREDICT_RATE``). Candles are checked as arrays: one
pass turns the list of objects into a ``[n, 5]`` float array, and only a list
that fails is walked again to say which candle and which field is wrong.

The web checks the request; the model runs in a default-queue Celery worker
(``PREDICT_IN_WORKER``, on in production), so this process never loads Keras:
503 when the broker cannot be reached, 504 when no worker answers within
``PREDICT_TIMEOUT_SECONDS``. Off, the web forecasts in-process.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from celery import current_app
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from kombu.exceptions import OperationalError
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from predictor.api.throttling import ScopeThrottle
from predictor.ml.candles import OHLCV_FIELDS, CandleWindow
from predictor.models import TrainingSession

logger = logging.getLogger(__name__)

MAX_CANDLES = 5000  # per market: a window plus the longest feature history (≈2,200) fits
MAX_MARKETS = 20
_SHOWN_ERRORS = 5
_UNUSED_COLUMNS = ("history", "folds", "versions", "split", "samples", "error", "worker")


class ForecastFailed(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The session's model cannot forecast."
    default_code = "forecast_unavailable"


class ForecastQueueDown(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The forecast queue cannot be reached; try again later."
    default_code = "forecast_queue_unavailable"


class ForecastTimedOut(APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "No forecast worker answered in time; try again later."
    default_code = "forecast_timeout"


class CandleInSerializer(serializers.Serializer):
    open_time = serializers.DateTimeField(
        required=False, help_text="Bar open time, ISO 8601 (UTC). On every candle or on none."
    )
    open = serializers.FloatField(min_value=0, help_text="> 0")
    high = serializers.FloatField(min_value=0, help_text="> 0, >= low")
    low = serializers.FloatField(min_value=0, help_text="> 0")
    close = serializers.FloatField(min_value=0, help_text="> 0")
    volume = serializers.FloatField(min_value=0)


def _row_errors(data: list[Any]) -> dict[str, Any]:
    """Which candles cannot be read, and why (only run when the fast path failed)."""
    errors: dict[str, Any] = {}
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            errors[str(i)] = ["expected an object with open, high, low, close, volume"]
        else:
            bad = {}
            for name in OHLCV_FIELDS:
                value = row.get(name)
                if name not in row:
                    bad[name] = ["this field is required"]
                elif isinstance(value, bool) or not isinstance(value, int | float):
                    bad[name] = ["a number is required"]
            if bad:
                errors[str(i)] = bad
        if len(errors) >= _SHOWN_ERRORS:
            break
    return errors or {"non_field_errors": ["candles must be objects of numbers"]}


def _value_errors(values: np.ndarray) -> dict[str, Any]:
    o, h, lo, c, v = values.T
    problems = [
        (~np.isfinite(values).all(axis=1), "every value must be a finite number"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "prices must be positive"),
        (h < lo, "high is below low"),
        (v < 0, "volume is negative"),
    ]
    errors: dict[str, Any] = {}
    for mask, message in problems:
        for i in np.flatnonzero(mask)[:_SHOWN_ERRORS]:
            errors.setdefault(str(int(i)), []).append(message)
    return errors


def _open_times(data: list[dict[str, Any]]) -> np.ndarray | None:
    given = [row.get("open_time") is not None for row in data]
    if not any(given):
        return None
    if not all(given):
        raise serializers.ValidationError("give open_time on every candle or on none")
    stamps = [row["open_time"] for row in data]
    if not all(isinstance(s, str) for s in stamps):
        raise serializers.ValidationError("open_time must be an ISO 8601 string")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True, format="ISO8601"))
    except (ValueError, TypeError, OverflowError):
        raise serializers.ValidationError("open_time must be an ISO 8601 date and time") from None
    seconds = np.asarray(index.as_unit("s").asi8, dtype=np.int64)
    if seconds.size > 1 and not (np.diff(seconds) > 0).all():
        raise serializers.ValidationError("open_time must increase from candle to candle")
    return seconds


@extend_schema_field(CandleInSerializer(many=True))
class CandlesField(serializers.Field):
    """A list of candle objects, oldest first, as a ``CandleWindow``."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, list) or not data:
            raise serializers.ValidationError("expected a non-empty list of candle objects")
        if len(data) > MAX_CANDLES:
            raise serializers.ValidationError(f"at most {MAX_CANDLES} candles")
        try:
            values = np.array(
                [[row[name] for name in OHLCV_FIELDS] for row in data], dtype=np.float64
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise serializers.ValidationError(_row_errors(data)) from None
        if values.shape != (len(data), len(OHLCV_FIELDS)):
            raise serializers.ValidationError(_row_errors(data))
        errors = _value_errors(values)
        if errors:
            raise serializers.ValidationError(errors)
        return CandleWindow(values, _open_times(data))

    def to_representation(self, value: Any) -> Any:
        return value


class SessionRows:
    """Sessions as forecasts read them, kept in this process.

    A forecast needs the session's config and manifest (≈2 kB of JSON), which cost
    more to fetch and decode than the model takes to run. The row is re-read only when
    its (status, attempts, finished) differ from the kept one's, read by one indexed
    lookup per forecast: every training run, retry or cancel changes them.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._rows: OrderedDict[Any, tuple[tuple[Any, ...], TrainingSession]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, pk: Any) -> TrainingSession | None:
        field = TrainingSession._meta.pk
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT status, attempts, finished FROM {TrainingSession._meta.db_table} "
                f"WHERE {field.column} = %s",
                [field.get_db_prep_value(pk, connection)],
            )
            state = cur.fetchone()
        if state is None:
            return None
        with self._lock:
            kept = self._rows.get(pk)
            if kept is not None and kept[0] == tuple(state):
                self._rows.move_to_end(pk)
                return kept[1]
        # Not the per-epoch history and the like: a forecast reads the config and manifest.
        session = TrainingSession.objects.defer(*_UNUSED_COLUMNS).filter(pk=pk).first()
        if session is None:
            return None
        with self._lock:
            self._rows[pk] = (tuple(state), session)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return session

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


sessions = SessionRows()


class PredictSerializer(serializers.Serializer):
    session = serializers.UUIDField(help_text="A succeeded training session.")
    candles = CandlesField(
        required=False,
        help_text="The newest candles of a one-market session, oldest first: the window "
        "(W candles), plus the history its feature sets need.",
    )
    markets = serializers.DictField(
        child=CandlesField(),
        required=False,
        help_text="Several-market sessions: {symbol: candles} for each of its markets.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("candles" in attrs) == ("markets" in attrs):
            raise serializers.ValidationError({"candles": ["give either candles or markets"]})
        if len(attrs.get("markets", {})) > MAX_MARKETS:
            raise serializers.ValidationError({"markets": [f"at most {MAX_MARKETS} markets"]})
        session = sessions.get(attrs["session"])
        if session is None:
            raise serializers.ValidationError({"session": ["no such training session"]})
        if not session.has_model:
            raise serializers.ValidationError(
                {"session": [f"session is {session.status}; it has no trained model"]}
            )
        attrs["session"] = session
        if "candles" in attrs:
            if len(session.symbols) != 1:
                raise serializers.ValidationError(
                    {"markets": [f"this session needs candles of {session.symbols}"]}
                )
            attrs["windows"] = {session.symbols[0]: attrs.pop("candles")}
            attrs["field"] = "candles"
        else:
            given = {k.upper(): v for k, v in attrs.pop("markets").items()}
            if sorted(given) != sorted(session.symbols):
                raise serializers.ValidationError(
                    {"markets": [f"this session needs candles of exactly {session.symbols}"]}
                )
            attrs["windows"] = given
            attrs["field"] = "markets"
        return attrs


class MarketForecastSerializer(serializers.Serializer):
    market = serializers.CharField()
    maxRisePct = serializers.FloatField(
        required=False, help_text="range: highest high, % over close."
    )
    maxDeclinePct = serializers.FloatField(required=False, help_text="range: lowest low, %.")
    endChangePct = serializers.FloatField(required=False, help_text="range: close at horizon, %.")
    probabilities = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="updown: sell, hold, buy."
    )
    label = serializers.ChoiceField(choices=("sell", "hold", "buy"), required=False)
    values = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="price/return: per step."
    )
    horizons = serializers.ListField(child=serializers.IntegerField(), required=False)
    target_times = serializers.ListField(
        child=serializers.DateTimeField(allow_null=True), required=False
    )
    target_time = serializers.DateTimeField(required=False, allow_null=True)


class ForecastSerializer(MarketForecastSerializer):
    """The forecast; a one-market session's answer is at the top level as well."""

    market = None
    session = serializers.UUIDField()
    arch = serializers.CharField()
    target = serializers.CharField()
    interval = serializers.CharField()
    horizon = serializers.IntegerField()
    anchor_time = serializers.DateTimeField(
        allow_null=True, help_text="Open time of the last candle; null without open_time."
    )
    issued_at = serializers.DateTimeField(allow_null=True)
    forecasts = MarketForecastSerializer(many=True)


class PredictView(APIView):
    """Forecast from a window of candles with a trained session's model."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [ScopeThrottle]
    throttle_scope = "predict"

    @extend_schema(
        request=PredictSerializer,
        responses={
            200: ForecastSerializer,
            400: OpenApiResponse(description="Invalid candles or session, with field messages."),
            409: OpenApiResponse(description="The session's model cannot be used."),
            413: OpenApiResponse(description="Body over the size limit."),
            415: OpenApiResponse(description="Not application/json."),
            429: OpenApiResponse(description="Rate limit reached."),
            503: OpenApiResponse(description="The forecast queue cannot be reached."),
            504: OpenApiResponse(description="No forecast worker answered in time."),
        },
    )
    def post(self, request: Request) -> Response:
        form = PredictSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if settings.PREDICT_IN_WORKER:
            return Response(_forecast_in_worker(data["session"], data["windows"], data["field"]))
        # The ML core (Keras) loads with the first forecast, not with the web process.
        from predictor.services.live_forecast import (
            CandlesRefused,
            ForecastUnavailable,
            live_forecast,
        )

        try:
            body = live_forecast(data["session"], data["windows"], data["field"])
        except CandlesRefused as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        except ForecastUnavailable as exc:
            raise ForecastFailed(str(exc)) from None
        return Response(body)


def _forecast_in_worker(
    session: TrainingSession, windows: dict[str, CandleWindow], field: str
) -> dict[str, Any]:
    """Send the forecast to a default-queue worker and wait for its answer, at most
    ``PREDICT_TIMEOUT_SECONDS``. By name: adapters do not import each other, and this
    process must not import the service, which brings in Keras."""
    timeout = settings.PREDICT_TIMEOUT_SECONDS
    task = current_app.tasks["predictor.tasks.live_forecast"]
    plain = {symbol: window.to_plain() for symbol, window in windows.items()}
    try:
        sent = task.apply_async(
            args=[str(session.pk), plain, field],
            queue="default",
            expires=timeout,  # nobody waits for it after that: a late worker drops it unrun
            soft_time_limit=timeout,
            time_limit=timeout + 5,
        )
    except OperationalError as exc:
        logger.warning("predict: the broker refused the forecast: %s", exc)
        raise ForecastQueueDown() from None
    try:
        answer = sent.get(timeout=timeout, interval=0.05)
    except CeleryTimeoutError:
        raise ForecastTimedOut(
            f"No forecast worker answered within {timeout:g} s; try again later."
        ) from None
    finally:
        sent.forget()  # the answer is read once; no result row is left behind
    if "refused" in answer:
        refused = answer["refused"]
        raise serializers.ValidationError({refused["field"]: [refused["detail"]]})
    if "unavailable" in answer:
        raise ForecastFailed(answer["unavailable"])
    return dict(answer["forecast"])
