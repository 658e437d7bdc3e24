"""The bars a paper session trades: its markets on the session's grid, and a forecast per close.

Prices are the stored float64 candles (a gap-filled bar is flat at the last real
close, as ``align_markets`` fills it, and is marked not real). Forecasts come from
the session's model through ``forecast_windows`` on the same candles the
``forecast`` command reads, made only for windows whose last bar has closed: with
candles stored at a finer interval than the session's, a session bar counts as
closed only once the last finer candle inside it is stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import Max

from predictor.ml.arrays import align_markets, unix_seconds
from predictor.ml.config import TrainConfig
from predictor.ml.forecasting import forecast_return, forecast_windows, history_rows
from predictor.ml.intervals import parse_interval
from predictor.models import Candle, Market, TrainingSession
from predictor.selectors.candles import CandlesMissing, session_frames, stored_intervals
from predictor.services.artifacts import forecasters


class PaperDataError(Exception):
    """The candles a paper step needs are not there; the message says which."""


@dataclass(frozen=True)
class MarketBars:
    """One market's bars in time order; ``forecast[i]`` is made at the close of bar ``i``."""

    symbol: str
    market_id: int
    times: np.ndarray  # int64 unix open times, on the session's grid
    open: np.ndarray  # float64
    real: np.ndarray  # bool: False where a gap was filled in
    forecast: np.ndarray  # float64 return over the horizon; NaN where the window has none

    def __len__(self) -> int:
        return len(self.times)


def utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def bar_seconds(session: TrainingSession) -> int:
    return parse_interval(session.interval).seconds


def session_markets(session: TrainingSession) -> list[Market]:
    """The session's markets in the model's order (its symbols)."""
    by_symbol = {m.symbol: m for m in session.markets.all()}
    return [by_symbol[symbol] for symbol in session.symbols]


def last_closed_bar(session: TrainingSession) -> int | None:
    """Open time (unix) of the newest session bar closed in every market, None if any has none."""
    step = bar_seconds(session)
    closes = []
    for market in session_markets(session):
        finest = stored_intervals(market)
        if not finest:
            return None
        newest = Candle.objects.filter(market=market, interval=finest[0].seconds).aggregate(
            last=Max("open_time")
        )["last"]
        if newest is None:
            return None
        closes.append(int(newest.timestamp()) + finest[0].seconds)  # when that candle closed
    closed = min(closes)
    return (closed // step) * step - step  # the last bar whose close is at or before it


def _prices(frame: pd.DataFrame, grid: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Opens on the grid in float64 and whether each bar is real; a gap is flat at the last close."""
    data = frame[["open", "close"]].astype("float64")
    data.index = pd.DatetimeIndex(data.index).tz_convert("UTC")
    # From the first candle read, so a gap at the grid's start still finds the close before it.
    full = pd.date_range(min(data.index[0], grid[0]), grid[-1], freq=grid.freq, tz="UTC")
    data = data.reindex(full)
    real = data["close"].notna()
    open_ = data["open"].fillna(data["close"].ffill())
    return open_.loc[grid].to_numpy(dtype=np.float64), real.loc[grid].to_numpy(dtype=bool)


def _forecast_returns(config: TrainConfig, predicted: np.ndarray, base: np.ndarray, values):  # type: ignore[no-untyped-def]
    if config.target == "updown":
        # No return is forecast: P(buy) − P(sell) stands in for one, as in the evaluation.
        return np.asarray(values[:, 2] - values[:, 0], dtype=np.float64)
    return forecast_return(config.target, predicted, base, values)


def paper_bars(session: TrainingSession, after: int, until: int) -> dict[str, MarketBars]:
    """Every market's bars with open time in ``(after, until]`` and the forecasts at their closes.

    ``until`` must be a closed bar (:func:`last_closed_bar`); reads the window's history too.
    """
    config = TrainConfig.from_dict(session.config)
    step = bar_seconds(session)
    first = after + step
    if until < first:
        return {}
    history = (history_rows(config) + 1) * step  # one bar of slack, as session_forecast
    try:
        frames = session_frames(session, utc(first - history), utc(until))
    except CandlesMissing as exc:
        raise PaperDataError(str(exc)) from exc
    markets = session_markets(session)
    grid = pd.date_range(utc(first), utc(until), freq=pd.Timedelta(seconds=step), tz="UTC")
    times = unix_seconds(grid)
    aligned = align_markets({m.symbol: frames[m.symbol] for m in markets}, config.interval)
    close = aligned.field("close").astype(np.float64)
    rows_of = {int(t): i for i, t in enumerate(unix_seconds(aligned.index).tolist())}
    forecasts = forecast_windows(
        forecasters.get(session).bundle,
        frames,
        start=pd.Timestamp(utc(first)),
        end=pd.Timestamp(utc(until)),
    )
    result = {}
    for m, market in enumerate(markets):
        open_, real = _prices(frames[market.symbol], grid)
        forecast = np.full(len(grid), np.nan)
        pick = (forecasts.step == 1) & (forecasts.market == m)
        anchors = forecasts.anchor[pick]
        if len(anchors):
            base = close[[rows_of[int(a)] for a in anchors.tolist()], m]
            values = forecasts.values[pick] if forecasts.values is not None else None
            made = _forecast_returns(config, forecasts.predicted[pick], base, values)
            forecast[(anchors - first) // step] = made
        result[market.symbol] = MarketBars(market.symbol, market.pk, times, open_, real, forecast)
    return result
