"""One forecast from posted candles: frames → aligned window → model → JSON body.

It runs in a Celery worker (the ``live_forecast`` task, through
:func:`live_forecast_by_id`) unless ``PREDICT_IN_WORKER`` is off; then the API's
predict view imports it on its first call. Either way the web process imports
it only when it forecasts itself: the ML core it uses brings in Keras.

The window is built exactly as training built it: the candles go through
``align_markets`` and ``build_features`` via :func:`latest_window`, so the
channels (and their order) are the ones the scaler and network were fitted on;
a mismatch is refused rather than fed to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.artifacts import ArtifactError, latest_window
from predictor.ml.candles import OHLCV_FIELDS, CandleWindow
from predictor.ml.config import TrainConfig
from predictor.ml.features import feature_lookback
from predictor.ml.intervals import Interval, parse_interval
from predictor.ml.targets import UPDOWN_CLASSES
from predictor.models import TrainingSession
from predictor.services.artifacts import forecasters


class CandlesRefused(ValueError):
    """The posted candles cannot feed the session's model; ``field`` says which ones."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ForecastUnavailable(Exception):
    """The model cannot answer (damaged artifact, non-finite output); not the client's fault."""


def required_candles(config: TrainConfig) -> int:
    """The window plus the history its feature sets need before their first value."""
    return config.window + feature_lookback(config.features)


def _frame(window: CandleWindow, interval: Interval, field: str, longest: int) -> pd.DataFrame:
    if window.times is None:
        # No times given: a grid of the right spacing on which every market's last candle
        # is the same bar; no target times are answered then.
        bars = np.arange(longest - len(window), longest)
        seconds = interval.anchor_seconds + interval.seconds * bars
    else:
        seconds = window.times
        if not interval.on_grid(seconds).all():
            raise CandlesRefused(
                field, f"open_time must be a bar open time of the session's {interval.code} grid"
            )
    index = pd.DatetimeIndex(seconds.astype("datetime64[s]")).tz_localize("UTC")
    return pd.DataFrame(window.values, index=index, columns=list(OHLCV_FIELDS))


def _frames(
    session: TrainingSession, config: TrainConfig, windows: dict[str, CandleWindow], field: str
) -> tuple[pd.DataFrame | dict[str, pd.DataFrame], bool]:
    interval = parse_interval(config.interval)
    needed = required_candles(config)
    timed = {w.times is not None for w in windows.values()}
    if len(timed) > 1:
        raise CandlesRefused(field, "give open_time for every market or for none")
    if "time" in config.features and timed != {True}:
        raise CandlesRefused(field, "open_time is required: the session's features include 'time'")
    frames: dict[str, pd.DataFrame] = {}
    longest = max(len(w) for w in windows.values())
    for symbol, window in windows.items():
        where = field if field == "candles" else f"{field}.{symbol}"
        if len(window) < needed:
            history = (
                f" plus {needed - config.window} of history for the features "
                f"{list(config.features)}"
                if needed > config.window
                else ""
            )
            raise CandlesRefused(
                where,
                f"needs at least {needed} candles: a window of {config.window}{history}"
                f"; got {len(window)}",
            )
        frames[symbol] = _frame(window, interval, where, longest)
    # One market trains (and so predicts) on a bare frame, several on {symbol: frame}.
    data = frames[session.symbols[0]] if len(session.symbols) == 1 else frames
    return data, timed == {True}


def _iso(moment: pd.Timestamp) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def forecast_body(
    session: TrainingSession,
    config: TrainConfig,
    anchor: pd.Timestamp | None,
    outputs: npt.NDArray[np.float64],
) -> dict[str, Any]:
    """The answer: per market, range percentages, class probabilities or values per step."""
    interval = pd.Timedelta(seconds=parse_interval(config.interval).seconds)
    horizon = config.effective_horizon

    def at(bars: int) -> str | None:
        return None if anchor is None else _iso(anchor + bars * interval)

    symbols: Sequence[str] = session.symbols
    per_market = len(outputs) // len(symbols)
    forecasts: list[dict[str, Any]] = []
    for m, symbol in enumerate(symbols):
        out = [float(v) for v in outputs[m * per_market : (m + 1) * per_market]]
        item: dict[str, Any] = {"market": symbol}
        if config.target == "range":
            item.update(maxRisePct=out[0], maxDeclinePct=out[1], endChangePct=out[2])
            item["target_time"] = at(horizon)
        elif config.target == "updown":
            item["probabilities"] = dict(zip(UPDOWN_CLASSES, out, strict=True))
            item["label"] = UPDOWN_CLASSES[int(np.argmax(out))]
            item["target_time"] = at(horizon)
        else:
            bars = [horizon * (j + 1) for j in range(per_market)]
            item.update(values=out, horizons=bars, target_times=[at(b) for b in bars])
        forecasts.append(item)
    body: dict[str, Any] = {
        "session": str(session.pk),
        "arch": config.arch,
        "target": config.target,
        "interval": config.interval,
        "horizon": horizon,
        "anchor_time": None if anchor is None else _iso(anchor),
        "issued_at": at(1),
        "forecasts": forecasts,
    }
    if len(forecasts) == 1:  # one market: its answer at the top level too, as Coinfarm's was
        body.update({k: v for k, v in forecasts[0].items() if k != "market"})
    return body


def live_forecast(
    session: TrainingSession, windows: dict[str, CandleWindow], field: str
) -> dict[str, Any]:
    """Check the candles against the session, run its model once, and build the answer.

    Raises :class:`CandlesRefused` for candles the model cannot take (the client's
    fault, with the request field to blame) and :class:`ForecastUnavailable` when
    the model itself cannot answer.
    """
    config = TrainConfig.from_dict(session.config)
    data, timed = _frames(session, config, windows, field)
    try:
        forecaster = forecasters.get(session)
    except ArtifactError as exc:
        raise ForecastUnavailable(f"the session's model cannot be loaded: {exc}") from exc
    try:
        anchor, window = latest_window(forecaster.bundle, data)
    except ValueError as exc:  # other channels than trained (ArtifactError), too little history
        raise CandlesRefused(field, str(exc)) from None
    outputs = forecaster.forecast(window)
    if not np.isfinite(outputs).all():
        raise ForecastUnavailable("the model's output is not finite; retrain the session")
    return forecast_body(session, config, anchor if timed else None, outputs)


# What a forecast reads of a session: its config and manifest, not the per-epoch history.
_UNUSED_COLUMNS = ("history", "folds", "versions", "split", "samples", "error", "worker")


def live_forecast_by_id(
    session_id: str, windows: dict[str, dict[str, Any]], field: str
) -> dict[str, Any]:
    """:func:`live_forecast` for a worker: the session by id, each market's candles as
    :meth:`CandleWindow.to_plain` made them. The web checked the session before sending;
    one retried or deleted since is refused on ``session`` as the web would have."""
    session = TrainingSession.objects.defer(*_UNUSED_COLUMNS).filter(pk=session_id).first()
    if session is None:
        raise CandlesRefused("session", "no such training session")
    if not session.has_model:
        raise CandlesRefused("session", f"session is {session.status}; it has no trained model")
    candles = {symbol: CandleWindow.from_plain(plain) for symbol, plain in windows.items()}
    return live_forecast(session, candles, field)
