"""Evaluation reports of a session, built from its stored forecasts, and SPA across sessions.

:func:`session_evaluate` scores the ``train`` (in-sample, labelled so),
``validation`` and ``test`` forecasts of an evaluation session against the
candles: θ is chosen on the validation split only and frozen for the others
(the report refuses a test split that overlaps it), the deflated Sharpe counts
every evaluation session run on the market, and one ``EvaluationReport`` row per
split keeps the JSON and the leakage alarm. Price, return, log-return and range
forecasts (range: its end-change output) go through the full report; ``updown``
probabilities get classification metrics instead, since they forecast no price.

:func:`sessions_reality_check` asks whether any of a market's evaluation sessions
beats holding cash on their common test bars after the search across them
(Hansen's SPA and White's Reality Check, ``arch``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction

from predictor.ml.arrays import (
    MarketArray,
    align_markets,
    filled_by_market,
    filled_reads,
    unix_seconds,
)
from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import (
    ChosenThreshold,
    backtest,
    choose_threshold,
    evaluation_report,
    leakage_alarm,
)
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.evaluation.kinds import ClassificationReport, RealityCheckReport
from predictor.ml.evaluation.metrics import (
    classification_metrics,
    directional_accuracy,
    information_coefficient,
    range_errors,
)
from predictor.ml.evaluation.report import (
    SPLIT_LABELS,
    EvaluationInputs,
    GapCounts,
    SplitReport,
    check_validation_forecasts,
    split_name,
)
from predictor.ml.evaluation.sharpe import reality_check
from predictor.ml.features import feature_lookback
from predictor.ml.forecasting import evaluation_inputs, forecast_return
from predictor.ml.intervals import parse_interval
from predictor.ml.splits import PART_NAMES
from predictor.ml.training import sample_reach
from predictor.models import (
    EvaluationReport,
    Market,
    Prediction,
    SessionMode,
    SessionStatus,
    TrainingSession,
)
from predictor.selectors.candles import candles_frame
from predictor.selectors.sessions import evaluation_session_count
from predictor.services.forecasting import ForecastResult, session_forecast, session_markets

SPA_SPLIT = "spa"


class EvaluationError(Exception):
    """A session cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class SplitEvaluation:
    split: str  # train, validation or test, as stored
    report: SplitReport | ClassificationReport
    data: dict[str, Any]  # the stored JSON
    leakage_alarm: bool


@dataclass(frozen=True)
class EvaluationResult:
    session_id: str
    n_trials: int
    splits: list[SplitEvaluation]
    forecast: ForecastResult | None  # set when the forecasts had to be made first


@dataclass(frozen=True)
class _Rows:
    """One split's step-1 forecasts of one market, as arrays."""

    anchor: np.ndarray
    predicted: np.ndarray
    values: np.ndarray  # [n, 3], NaN where the target has none
    actual: np.ndarray
    actual_values: np.ndarray

    def __len__(self) -> int:
        return len(self.anchor)

    def select(self, keep: np.ndarray) -> _Rows:
        return _Rows(
            self.anchor[keep],
            self.predicted[keep],
            self.values[keep],
            self.actual[keep],
            self.actual_values[keep],
        )


def _split_rows(session: TrainingSession, market: Market, split: str) -> _Rows:
    """One query straight into numpy, the JSON lists unpacked by the database."""
    if connection.vendor == "postgresql":
        epoch = "extract(epoch FROM anchor_time)::bigint"
        item = '({column}->>{i})::double precision'  # fmt: skip
    else:
        epoch = "CAST(strftime('%%s', anchor_time) AS INTEGER)"
        item = "json_extract({column}, '$[{i}]')"
    picks = [item.format(column=c, i=i) for c in ('"values"', "actual_values") for i in range(3)]
    sql = (
        f"SELECT {epoch}, predicted, actual, {', '.join(picks)} "
        f"FROM {Prediction._meta.db_table} "
        "WHERE session_id = %s AND market_id = %s AND split = %s AND step = 1 "
        "ORDER BY anchor_time"
    )
    session_key = session.pk if connection.vendor == "postgresql" else session.pk.hex
    with connection.cursor() as cur:
        cur.execute(sql, [session_key, market.pk, split])
        data = np.array(cur.fetchall(), dtype=np.float64).reshape(-1, 9)
    return _Rows(data[:, 0].astype(np.int64), data[:, 1], data[:, 3:6], data[:, 2], data[:, 6:9])


def _market_array(market: Market, interval: str, start: dt.datetime | None) -> MarketArray:
    # One bar of slack: on SQLite the selector's start bound drops the candle at ``start``.
    slack = dt.timedelta(seconds=parse_interval(interval).seconds)
    frame = candles_frame(market, start - slack if start else None, interval=interval)
    return align_markets({market.symbol: frame[list(OHLCV_FIELDS)]}, interval)


def _check(session: TrainingSession) -> TrainConfig:
    if session.mode == SessionMode.PRODUCTION:
        raise EvaluationError(
            f"session {session.id} is a production session: it trained on all data and has no "
            "test split to evaluate; train an evaluation session"
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


def _usable(config: TrainConfig, array: MarketArray) -> np.ndarray:
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


def _inputs(
    session: TrainingSession, config: TrainConfig, market: Market, array: MarketArray
) -> tuple[dict[str, EvaluationInputs], dict[str, _Rows], dict[str, GapCounts]]:
    stops = _part_starts(session)
    times = unix_seconds(array.index)
    seconds = parse_interval(config.interval).seconds
    usable = _usable(config, array)
    inputs: dict[str, EvaluationInputs] = {}
    rows: dict[str, _Rows] = {}
    counts: dict[str, GapCounts] = {}
    for name in PART_NAMES:
        part = _split_rows(session, market, name)
        positions = (part.anchor - int(times[0])) // seconds
        if len(part) < 2 or positions.min() < 0:
            continue
        base = array.field("close")[positions, 0].astype(np.float64)
        forecast = _forecast(config, part, base)
        # A forecast whose window or target reads a gap is no evidence: not scored, not traded.
        keep = usable[np.minimum(positions, len(usable) - 1)]
        inputs[name] = evaluation_inputs(
            array,
            0,
            part.anchor,
            np.where(keep, forecast, np.nan),
            horizon=config.effective_horizon,
            stop=stops[name],
        )
        rows[name] = part.select(keep)
        counts[name] = _gap_counts(config, array, inputs[name], usable)
    return inputs, rows, counts


def _forecast(config: TrainConfig, rows: _Rows, base: np.ndarray) -> np.ndarray:
    if config.target == "updown":
        # No return is forecast: the direction score P(buy) − P(sell) stands in for one.
        return np.asarray(rows.values[:, 2] - rows.values[:, 0], dtype=np.float64)
    return forecast_return(config.target, rows.predicted, base, rows.values)


def _threshold(
    inputs: dict[str, EvaluationInputs],
    counts: dict[str, GapCounts],
    fee: float,
    slippage: float,
    mode: Mode,
) -> ChosenThreshold:
    validation = inputs.get("validation")
    if validation is None:
        raise EvaluationError(
            "the session has no validation forecasts, so θ cannot be chosen without "
            "touching the test split; train it with a validation split (val_split > 0)"
        )
    try:
        check_validation_forecasts(
            counts["validation"], settings.EVALUATION_MIN_VALIDATION_FORECASTS
        )
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    return choose_threshold(
        validation_tradable=validation.real,
        validation_open=validation.open,
        validation_forecast=validation.predicted_return,
        validation_times=validation.times,
        horizon=validation.horizon,
        bars_per_year=validation.bars_per_year,
        fee=fee,
        slippage=slippage,
        mode=mode,
    )


def session_evaluate(
    session: TrainingSession,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
) -> EvaluationResult:
    """Score the session's stored forecasts per split and store one report row per split.

    Forecasts are made first (:func:`session_forecast`) when the test split has none.
    """
    config = _check(session)
    forecast = None
    if not Prediction.objects.filter(session=session, split="test").exists():
        forecast = session_forecast(session)
    markets = session_markets(session)
    counts = {m.symbol: evaluation_session_count(m) for m in markets}
    per_market = [
        _evaluate_market(session, config, m, counts[m.symbol], fee, slippage, mode) for m in markets
    ]
    splits = []
    with transaction.atomic():
        for name in PART_NAMES:
            found = [result[name] for result in per_market if name in result]
            if not found:
                continue
            data = dict(found[0].data)
            if len(found) > 1:
                data["other_markets"] = {f.data["market"]: f.data for f in found[1:]}
            alarm = any(f.leakage_alarm for f in found)
            EvaluationReport.objects.update_or_create(
                session=session,
                split=name,
                defaults={
                    "report": data,
                    "n_trials": counts[markets[0].symbol],
                    "leakage_alarm": alarm,
                },
            )
            splits.append(SplitEvaluation(name, found[0].report, data, alarm))
    if not splits:
        raise EvaluationError(f"session {session.id} has no forecasts to evaluate")
    return EvaluationResult(str(session.id), counts[markets[0].symbol], splits, forecast)


def _evaluate_market(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    n_trials: int,
    fee: float,
    slippage: float,
    mode: Mode,
) -> dict[str, SplitEvaluation]:
    array = _market_array(market, config.interval, session.data_start)
    inputs, rows, counts = _inputs(session, config, market, array)
    common = {
        "market": market.symbol,
        "target": config.target,
        "n_trials": n_trials,
        "n_trials_counts": (
            f"evaluation sessions run on {market} so far, this one included "
            "(the deflated Sharpe ratio allows for all of them)"
        ),
    }
    if config.output_size > 1:
        common["steps_note"] = (
            f"Step 1 of {config.output_size} (horizon {config.effective_horizon} bars) is scored."
        )
    if config.target == "updown":
        return {
            name: _classification(name, inputs[name], rows[name], {**common, "gaps": counts[name]})
            for name in inputs
        }
    threshold = _threshold(inputs, counts, fee, slippage, mode)
    results = {}
    for name, split_inputs in inputs.items():
        report = evaluation_report(
            split_inputs,
            split=split_name(name),
            threshold=threshold,
            n_trials=n_trials,
            gaps=counts[name],
        )
        data = {**report.to_dict(), **common}
        if config.target == "range":
            data["range"] = range_errors(rows[name].actual_values, rows[name].values).to_dict()
        results[name] = SplitEvaluation(name, report, data, report.leakage.flagged)
    return results


def _classification(
    name: str, inputs: EvaluationInputs, rows: _Rows, common: dict[str, Any]
) -> SplitEvaluation:
    """Sell/hold/buy probabilities: confusion matrix, and P(buy) − P(sell) as a direction score."""
    known = np.isfinite(rows.actual)
    guess = np.argmax(rows.values[known], axis=1)
    truth = rows.actual[known].astype(np.int64)
    score = inputs.predicted_return  # P(buy) − P(sell) went in as the "return" of each bar
    realised = inputs.realised_return
    direction = directional_accuracy(score, realised)
    ic = information_coefficient(score, realised, inputs.times)
    alarm = leakage_alarm(
        ic=ic.ic,
        rank_ic=ic.rank_ic,
        directional_accuracy=direction.accuracy,
        horizon_seconds=inputs.horizon * inputs.bar_seconds,
    )
    times = inputs.times.astype("datetime64[s]")
    gaps = common.get("gaps")
    report = ClassificationReport(
        split=split_name(name),
        label=SPLIT_LABELS[name],
        in_sample=name == "train",
        start=str(times.min()),
        end=str(times.max()),
        n_forecasts=len(rows),
        horizon=inputs.horizon,
        bar_seconds=inputs.bar_seconds,
        classification=classification_metrics(truth, guess),
        direction=direction,
        ic=ic,
        leakage=alarm,
        notes=(
            "updown forecasts no price: no strategy or θ; the direction score is "
            "P(buy) − P(sell), compared with the realised return over the horizon.",
        ),
        gaps=gaps,
        extra={key: value for key, value in common.items() if key != "gaps"},
    )
    return SplitEvaluation(name, report, report.to_dict(), alarm.flagged)


# --- Reality Check / SPA across a market's sessions ---------------------------------------------


def sessions_reality_check(
    session: TrainingSession,
    *,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
    reps: int = 1000,
    seed: int = 0,
) -> RealityCheckReport:
    """Hansen SPA / White RC over every evaluation session on this session's first market.

    Each session trades its test forecasts with θ chosen on its own validation
    split; the strategies' net bar returns on the test bars they share are the
    models, cash (zero return) the benchmark. Stored as this session's ``spa``
    report and returned.
    """
    _check(session)
    market = session_markets(session)[0]
    others = (
        TrainingSession.objects.filter(
            markets=market, status=SessionStatus.SUCCEEDED, interval=session.interval
        )
        .exclude(mode=SessionMode.PRODUCTION)
        .order_by("created")
    )
    starts = [s.data_start for s in others if s.data_start is not None]
    array = _market_array(market, session.interval, min(starts, default=None))
    returns: dict[str, pd.Series] = {}
    skipped: dict[str, str] = {}
    for other in others:
        try:
            returns[str(other.pk)] = _strategy_returns(other, market, array, fee, slippage, mode)
        except EvaluationError as exc:
            skipped[str(other.pk)] = str(exc)
    if not returns:
        raise EvaluationError(f"no evaluation session on {market} has test forecasts to compare")
    table = pd.concat(returns, axis=1, join="inner")
    if len(table) < 10:
        raise EvaluationError(
            f"the sessions' test periods share {len(table)} bars; SPA needs them to overlap"
        )
    stamps = table.index.to_numpy().astype("datetime64[s]")
    report = RealityCheckReport(
        result=reality_check(np.zeros(len(table)), -table.to_numpy(), reps=reps, seed=seed),
        market=str(market),
        benchmark="cash: no position, zero return per bar",
        sessions=tuple(str(column) for column in table.columns),
        skipped=skipped,
        start=str(stamps.min()),
        end=str(stamps.max()),
        costs={"fee": fee, "slippage": slippage, "mode": mode},
    )
    EvaluationReport.objects.update_or_create(
        session=session,
        split=SPA_SPLIT,
        defaults={
            "report": report.to_dict(),
            "n_trials": len(table.columns),
            "leakage_alarm": False,
        },
    )
    return report


def _strategy_returns(
    session: TrainingSession,
    market: Market,
    array: MarketArray,
    fee: float,
    slippage: float,
    mode: Mode,
) -> pd.Series:
    """Net open-to-open returns of the session's test strategy, indexed by bar time."""
    config = TrainConfig.from_dict(session.config)
    if config.target == "updown":
        raise EvaluationError("updown forecasts no return to trade")
    inputs, _, counts = _inputs(session, config, market, array)
    if "test" not in inputs:
        raise EvaluationError("no test forecasts stored; run forecast first")
    threshold = _threshold(inputs, counts, fee, slippage, mode)
    test = inputs["test"]
    run = backtest(
        test.open,
        test.predicted_return,
        horizon=test.horizon,
        theta=threshold.theta,
        bars_per_year=test.bars_per_year,
        fee=fee,
        slippage=slippage,
        mode=mode,
        tradable=test.real,
    )
    return pd.Series(run.bar_returns, index=np.asarray(test.times[:-1]))
