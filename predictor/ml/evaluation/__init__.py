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
from predictor.ml.evaluation.kinds import (
    ClassificationReport,
    RealityCheckReport,
    ReportKind,
    report_kind,
)
from predictor.ml.evaluation.leakage import LeakageAlarm, leakage_alarm
from predictor.ml.evaluation.report import (
    EvaluationInputs,
    SplitName,
    SplitReport,
    evaluation_report,
    split_name,
)
from predictor.ml.evaluation.tables import (
    SIGNIFICANCE_TESTS,
    STRATEGY_ROWS,
    format_report_table,
)
from predictor.ml.evaluation.threshold import ChosenThreshold, choose_threshold, given_threshold

__all__ = [
    "SIGNIFICANCE_TESTS",
    "STRATEGY_ROWS",
    "BacktestResult",
    "BacktestStats",
    "ChosenThreshold",
    "ClassificationReport",
    "EvaluationInputs",
    "LeakageAlarm",
    "RealityCheckReport",
    "ReportKind",
    "SplitName",
    "SplitReport",
    "Trades",
    "backtest",
    "backtest_baselines",
    "baseline_forecasts",
    "choose_threshold",
    "evaluation_report",
    "format_report_table",
    "given_threshold",
    "leakage_alarm",
    "report_kind",
    "split_name",
]
