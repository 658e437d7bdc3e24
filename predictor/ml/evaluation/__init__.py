"""Framework-free evaluation of forecasts: errors, a costed backtest, significance tests.

Everything here is a pure function over numpy arrays returning a frozen
dataclass with ``to_dict()`` (JSON-safe; NaN becomes None).
"""

from __future__ import annotations

from predictor.ml.evaluation.backtest import (
    BacktestResult,
    BacktestStats,
    Trades,
    backtest,
    backtest_baselines,
    baseline_forecasts,
)
from predictor.ml.evaluation.leakage import LeakageAlarm, leakage_alarm
from predictor.ml.evaluation.report import (
    EvaluationInputs,
    EvaluationReport,
    evaluation_report,
    format_report_table,
)
from predictor.ml.evaluation.threshold import ChosenThreshold, choose_threshold

__all__ = [
    "BacktestResult",
    "BacktestStats",
    "ChosenThreshold",
    "EvaluationInputs",
    "EvaluationReport",
    "LeakageAlarm",
    "Trades",
    "backtest",
    "backtest_baselines",
    "baseline_forecasts",
    "choose_threshold",
    "evaluation_report",
    "format_report_table",
    "leakage_alarm",
]
