"""Evaluation reports of a session's splits, built from its stored forecasts.

:func:`session_evaluate` scores the ``train`` (in-sample, labelled so),
``validation`` and ``test`` forecasts of an evaluation session against the
candles: θ is chosen on the validation split only and frozen for the others
(the report refuses a test split that overlaps it), the deflated Sharpe counts
every evaluation session run on the market, and one ``EvaluationReport`` row per
split keeps the JSON and the leakage alarm. Price, return, log-return and range
forecasts (range: its end-change output) go through the full report; ``updown``
probabilities get classification metrics instead, since they forecast no price.

The forecasts after the training data are scored by ``forward``; SPA across a
market's sessions is ``reality_check``; what they all read is ``split_inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import ChosenThreshold, evaluation_report, leakage_alarm
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.evaluation.kinds import ClassificationReport
from predictor.ml.evaluation.metrics import (
    classification_metrics,
    directional_accuracy,
    information_coefficient,
    range_errors,
)
from predictor.ml.evaluation.report import SPLIT_LABELS, SplitReport, split_name
from predictor.ml.splits import PART_NAMES
from predictor.models import EvaluationReport, Market, Prediction, TrainingSession
from predictor.selectors.sessions import TrialCount, trial_count
from predictor.services.forecasting import ForecastResult, session_forecast, session_markets
from predictor.services.split_inputs import (
    EvaluationError,
    PartInputs,
    evaluation_config,
    market_array,
    session_inputs,
    validation_threshold,
)

__all__ = [
    "EvaluationError",
    "EvaluationResult",
    "SplitEvaluation",
    "session_evaluate",
    "split_report",
    "store_split_report",
]


@dataclass(frozen=True)
class SplitEvaluation:
    split: str  # train, validation, test or forward, as stored
    report: SplitReport | ClassificationReport
    data: dict[str, Any]  # the stored JSON
    leakage_alarm: bool


@dataclass(frozen=True)
class EvaluationResult:
    session_id: str
    n_trials: int
    splits: list[SplitEvaluation]
    forecast: ForecastResult | None  # set when the forecasts had to be made first


def session_evaluate(
    session: TrainingSession,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
) -> EvaluationResult:
    """Score the session's stored forecasts per split and store one report row per split.

    Forecasts are made first (:func:`session_forecast`) when the test split has none.
    """
    config = evaluation_config(session)
    forecast = None
    if not Prediction.objects.filter(session=session, split="test").exists():
        forecast = session_forecast(session)
    markets = session_markets(session)
    counts = {m.symbol: trial_count(m, config.target) for m in markets}
    per_market = [
        _evaluate_market(session, config, m, counts[m.symbol], fee, slippage, mode) for m in markets
    ]
    splits = []
    with transaction.atomic():
        for name in PART_NAMES:
            found = [result[name] for result in per_market if name in result]
            if found:
                splits.append(
                    store_split_report(session, name, found, counts[markets[0].symbol].total)
                )
    if not splits:
        raise EvaluationError(f"session {session.id} has no forecasts to evaluate")
    return EvaluationResult(str(session.id), counts[markets[0].symbol].total, splits, forecast)


def store_split_report(
    session: TrainingSession, name: str, found: list[SplitEvaluation], n_trials: int
) -> SplitEvaluation:
    """One row per session and split (replacing an older one): the first market's report,
    the other markets' beside it, the alarm raised if any market raised it."""
    data = dict(found[0].data)
    if len(found) > 1:
        data["other_markets"] = {f.data["market"]: f.data for f in found[1:]}
    alarm = any(f.leakage_alarm for f in found)
    EvaluationReport.objects.update_or_create(
        session=session,
        split=name,
        defaults={"report": data, "n_trials": n_trials, "leakage_alarm": alarm},
    )
    return SplitEvaluation(name, found[0].report, data, alarm)


def report_common(
    market: Market, config: TrainConfig, trials: TrialCount, whose: str = "this one included"
) -> dict[str, Any]:
    """What every split's stored JSON carries beside its report."""
    common: dict[str, Any] = {
        "market": market.symbol,
        "target": config.target,
        "n_trials": max(trials.total, 1),
        "n_trials_counts": trials.text(whose),
        "n_trials_sources": {
            "evaluation_sessions": trials.sessions,
            "sweep_trials": trials.sweep_trials,
            "sweeps": trials.sweeps,
            "walk_forward_sessions": trials.walk_forward,
        },
    }
    if config.output_size > 1:
        common["steps_note"] = (
            f"Step 1 of {config.output_size} (horizon {config.effective_horizon} bars) is scored."
        )
    return common


def split_report(
    name: str,
    config: TrainConfig,
    part: PartInputs,
    threshold: ChosenThreshold | None,
    common: dict[str, Any],
    theta_source: str | None = None,
) -> SplitEvaluation:
    """One split's report and its stored JSON; ``threshold`` may be None for updown only."""
    if config.target == "updown":
        return _classification(name, part, {**common, "gaps": part.counts})
    if threshold is None:
        raise ValueError("a strategy report needs a θ")
    report = evaluation_report(
        part.inputs,
        split=split_name(name),
        threshold=threshold,
        n_trials=common["n_trials"],
        gaps=part.counts,
        theta_source=theta_source,
    )
    data = {**report.to_dict(), **common}
    if config.target == "range":
        data["range"] = range_errors(part.rows.actual_values, part.rows.values).to_dict()
    return SplitEvaluation(name, report, data, report.leakage.flagged)


def _evaluate_market(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    trials: TrialCount,
    fee: float,
    slippage: float,
    mode: Mode,
) -> dict[str, SplitEvaluation]:
    array = market_array(market, config.interval, session.data_start)
    parts = session_inputs(session, config, market, array)
    common = report_common(market, config, trials)
    threshold = (
        None if config.target == "updown" else validation_threshold(parts, fee, slippage, mode)
    )
    return {
        name: split_report(name, config, part, threshold, common) for name, part in parts.items()
    }


def _classification(name: str, part: PartInputs, common: dict[str, Any]) -> SplitEvaluation:
    """Sell/hold/buy probabilities: confusion matrix, and P(buy) − P(sell) as a direction score."""
    inputs, rows = part.inputs, part.rows
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
