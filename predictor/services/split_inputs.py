"""A session's stored forecasts and its candles, as the inputs of one split's report.

What every evaluation reads the same way: the step-1 forecasts of one market in one
query (:func:`forecast_rows`), the candles on the bar grid (:func:`market_array`), the
session's gap rule applied again (:func:`usable_anchors`), the arrays of one split
(:func:`part_inputs`, :func:`session_inputs`) and θ chosen on the validation split only
(:func:`validation_threshold`). The reports themselves are built in ``evaluation``
(the splits), ``forward`` (after the training data) and ``reality_check`` (across
sessions).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection

from predictor.ml.arrays import (
    MarketArray,
    align_markets,
    filled_by_market,
    filled_reads,
    unix_seconds,
)
from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import ChosenThreshold, choose_threshold
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.evaluation.report import EvaluationInputs, GapCounts, check_validation_forecasts
from predictor.ml.features import feature_lookback
from predictor.ml.forecasting import evaluation_inputs, forecast_return
from predictor.ml.intervals import parse_interval
from predictor.ml.splits import PART_NAMES
from predictor.ml.training import sample_reach
from predictor.models import Market, Prediction, SessionMode, SessionStatus, TrainingSession
from predictor.selectors.candles import candles_frame
from predictor.services.errors import EvaluationError as EvaluationError  # re-exported


@dataclass(frozen=True)
class ForecastRows:
    """One split's step-1 forecasts of one market, as arrays."""

    anchor: np.ndarray
    predicted: np.ndarray
    values: np.ndarray  # [n, 3], NaN where the target has none
    actual: np.ndarray
    actual_values: np.ndarray

    def __len__(self) -> int:
        return len(self.anchor)

    def select(self, keep: np.ndarray) -> ForecastRows:
        return ForecastRows(
            self.anchor[keep],
            self.predicted[keep],
            self.values[keep],
            self.actual[keep],
            self.actual_values[keep],
        )


@dataclass(frozen=True)
class PartInputs:
    """One split of one market, ready for its report."""

    inputs: EvaluationInputs
    rows: ForecastRows  # the forecasts kept by the gap rule
    counts: GapCounts


def forecast_rows(
    session: TrainingSession,
    market: Market,
    *,
    split: str | None = None,
    after: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ForecastRows:
    """Step-1 forecasts of a split, or with anchors in ``(after, until]``, in one query
    straight into numpy, the JSON lists unpacked by the database."""
    if connection.vendor == "postgresql":
        epoch = "extract(epoch FROM anchor_time)::bigint"
        item = '({column}->>{i})::double precision'  # fmt: skip
    else:
        epoch = "CAST(strftime('%%s', anchor_time) AS INTEGER)"
        item = "json_extract({column}, '$[{i}]')"
    picks = [item.format(column=c, i=i) for c in ('"values"', "actual_values") for i in range(3)]
    session_key = session.pk if connection.vendor == "postgresql" else session.pk.hex
    where, params = ["session_id = %s", "market_id = %s", "step = 1"], [session_key, market.pk]
    bounds = ((split, "split = %s"), (after, f"{epoch} > %s"), (until, f"{epoch} <= %s"))
    for value, clause in bounds:
        if value is not None:
            where.append(clause)
            params.append(value if isinstance(value, str) else int(value.timestamp()))
    sql = (
        f"SELECT {epoch}, predicted, actual, {', '.join(picks)} "
        f"FROM {Prediction._meta.db_table} WHERE {' AND '.join(where)} ORDER BY anchor_time"
    )
    with connection.cursor() as cur:
        cur.execute(sql, params)
        data = np.array(cur.fetchall(), dtype=np.float64).reshape(-1, 9)
    return ForecastRows(
        data[:, 0].astype(np.int64), data[:, 1], data[:, 3:6], data[:, 2], data[:, 6:9]
    )


def market_array(market: Market, interval: str, start: dt.datetime | None) -> MarketArray:
    # One bar of slack: on SQLite the selector's start bound drops the candle at ``start``.
    slack = dt.timedelta(seconds=parse_interval(interval).seconds)
    frame = candles_frame(market, start - slack if start else None, interval=interval)
    return align_markets({market.symbol: frame[list(OHLCV_FIELDS)]}, interval)


def evaluation_config(session: TrainingSession) -> TrainConfig:
    """The config of an evaluation session that succeeded; refuses any other."""
    if session.mode == SessionMode.PRODUCTION:
        raise EvaluationError(
            f"session {session.id} is a production session: it trained on all data and has no "
            "test split to evaluate; score its forecasts after its training data with "
            "`evaluate --forward`, or train an evaluation session"
        )
    if session.status != SessionStatus.SUCCEEDED:
        raise EvaluationError(f"session {session.id} is {session.status}: nothing to evaluate")
    return TrainConfig.from_dict(session.config)


def _part_starts(session: TrainingSession) -> dict[str, int | None]:
    """Each part's end bound: the next part's first anchor (unix seconds), so spans never touch."""
    firsts = [session.split.get(name, {}).get("first_time") for name in PART_NAMES]
    stamps = [int(pd.Timestamp(t).timestamp()) if t else None for t in firsts]
    following = [next((s for s in stamps[i + 1 :] if s is not None), None) for i in range(3)]
    return dict(zip(PART_NAMES, following, strict=True))


def usable_anchors(config: TrainConfig, array: MarketArray) -> np.ndarray:
    """``ok[t]``: the sample anchored at ``t`` (window, features' look-back and target) reads
    at most ``max_fill`` of this market's filled bars: the session's own rule, applied again
    here so forecasts stored before it (or by a looser run) are never scored on gaps."""
    before, after = sample_reach(config, feature_lookback(config.features))
    filled = filled_by_market(array)[:, 0]
    return np.asarray(filled_reads(filled, before, after) <= config.max_fill)


def _gap_counts(
    config: TrainConfig, array: MarketArray, inputs: EvaluationInputs, usable: np.ndarray
) -> GapCounts:
    real = inputs.real if inputs.real is not None else np.ones(len(inputs.times), dtype=bool)
    first = int((int(inputs.times[0]) - int(unix_seconds(array.index)[0])) // inputs.bar_seconds)
    # Anchors the split could have scored: its bars but the last ``horizon``, whose targets
    # lie past the split's end.
    span = usable[first : first + len(real) - config.effective_horizon]
    return GapCounts(
        max_fill=config.max_fill,
        real_bars=int(np.count_nonzero(real)),
        filled_bars=int(np.count_nonzero(~real)),
        windows_dropped=int(np.count_nonzero(~span)),
        real_forecasts=int(np.count_nonzero(np.isfinite(inputs.predicted_price))),
    )


def _forecast(config: TrainConfig, rows: ForecastRows, base: np.ndarray) -> np.ndarray:
    if config.target == "updown":
        # No return is forecast: the direction score P(buy) − P(sell) stands in for one.
        return np.asarray(rows.values[:, 2] - rows.values[:, 0], dtype=np.float64)
    return forecast_return(config.target, rows.predicted, base, rows.values)


def part_inputs(
    config: TrainConfig,
    array: MarketArray,
    usable: np.ndarray,
    part: ForecastRows,
    stop: int | None = None,
) -> PartInputs | None:
    """A split's arrays on the bar grid, forecasts that break the gap rule as NaN bars;
    None when fewer than two forecasts lie on the candles."""
    times = unix_seconds(array.index)
    positions = (part.anchor - int(times[0])) // parse_interval(config.interval).seconds
    if len(part) < 2 or positions.min() < 0:
        return None
    base = array.field("close")[positions, 0].astype(np.float64)
    forecast = _forecast(config, part, base)
    # A forecast whose window or target reads a gap is no evidence: not scored, not traded.
    keep = usable[np.minimum(positions, len(usable) - 1)]
    inputs = evaluation_inputs(
        array,
        0,
        part.anchor,
        np.where(keep, forecast, np.nan),
        horizon=config.effective_horizon,
        stop=stop,
    )
    return PartInputs(inputs, part.select(keep), _gap_counts(config, array, inputs, usable))


def session_inputs(
    session: TrainingSession, config: TrainConfig, market: Market, array: MarketArray
) -> dict[str, PartInputs]:
    """The train, validation and test splits of one market that have forecasts."""
    stops = _part_starts(session)
    usable = usable_anchors(config, array)
    found = {}
    for name in PART_NAMES:
        made = part_inputs(
            config, array, usable, forecast_rows(session, market, split=name), stops[name]
        )
        if made is not None:
            found[name] = made
    return found


def validation_threshold(
    parts: dict[str, PartInputs], fee: float, slippage: float, mode: Mode
) -> ChosenThreshold:
    """θ chosen on the validation split only, refused on too few real forecasts."""
    validation = parts.get("validation")
    if validation is None:
        raise EvaluationError(
            "the session has no validation forecasts, so θ cannot be chosen without "
            "touching the test split; train it with a validation split (val_split > 0)"
        )
    try:
        check_validation_forecasts(validation.counts, settings.EVALUATION_MIN_VALIDATION_FORECASTS)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    inputs = validation.inputs
    return choose_threshold(
        validation_tradable=inputs.real,
        validation_open=inputs.open,
        validation_forecast=inputs.predicted_return,
        validation_times=inputs.times,
        horizon=inputs.horizon,
        bars_per_year=inputs.bars_per_year,
        fee=fee,
        slippage=slippage,
        mode=mode,
    )
