"""What an evaluation report lists, once: the strategy rows and the significance tests.

The evaluation page, the ``evaluate`` command's text and anything else that shows a
report read these tables, so a row or test added here reaches every reader. The
plain-text rendering of a report lives here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

from predictor.ml.evaluation.backtest import BacktestStats
from predictor.ml.evaluation.kinds import ClassificationReport
from predictor.ml.evaluation.report import SplitReport

RowFormat = Literal["pct", "num", "int", "even"]


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """One row of the strategy-vs-baselines table.

    ``format``: ``pct`` a fraction shown in per cent, ``num`` a ratio, ``int`` a count,
    ``even`` the break-even hit rate, or why there is none.
    """

    label: str
    attribute: str  # a BacktestStats field
    format: RowFormat


STRATEGY_ROWS: tuple[StrategyRow, ...] = (
    StrategyRow("Total return", "total_return", "pct"),
    StrategyRow("Annualised return", "annualised_return", "pct"),
    StrategyRow("Sharpe (annualised)", "sharpe", "num"),
    StrategyRow("Sortino (annualised)", "sortino", "num"),
    StrategyRow("Calmar", "calmar", "num"),
    StrategyRow("Max drawdown", "max_drawdown", "pct"),
    StrategyRow("Profit factor", "profit_factor", "num"),
    StrategyRow("Hit rate (net)", "hit_rate", "pct"),
    StrategyRow("Gross hit rate", "gross_hit_rate", "pct"),
    StrategyRow("Break-even gross hit rate", "break_even_hit_rate", "even"),
    StrategyRow("Mean cost per holding", "mean_cost", "pct"),
    StrategyRow("Holdings", "n_holdings", "int"),
    StrategyRow("Trades (positions opened)", "n_trades", "int"),
    StrategyRow("Turnover (× capital)", "turnover", "num"),
    StrategyRow("Exposure", "exposure", "pct"),
)


@dataclass(frozen=True, slots=True)
class SignificanceRow:
    """One significance test: its ``SignificanceTests`` field (also the stored key) and label."""

    field: str
    label: str


SIGNIFICANCE_TESTS: tuple[SignificanceRow, ...] = (
    SignificanceRow("t_test", "Hit rate, one-sided t-test"),
    SignificanceRow("binomial", "Hit rate, exact binomial test"),
    SignificanceRow("pesaran_timmermann", "Pesaran-Timmermann (direction)"),
    SignificanceRow("dm_vs_zero_return", "Diebold-Mariano vs zero return"),
    SignificanceRow("dm_vs_persistence", "Diebold-Mariano vs persistence"),
    SignificanceRow("probabilistic_sharpe", "Probabilistic Sharpe ratio"),
    SignificanceRow("deflated_sharpe", "Deflated Sharpe ratio"),
)

_LABEL_WIDTH = max(len(row.label) for row in STRATEGY_ROWS) + 2


def _num(value: float, spec: str = ".4f") -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def _pct(value: float) -> str:
    return f"{value * 100:.2f} %" if np.isfinite(value) else "n/a"


def _cell(stats: BacktestStats, row: StrategyRow) -> str:
    value = getattr(stats, row.attribute)
    if row.format == "int":
        return str(value)
    if row.format == "even" and not np.isfinite(value) and stats.break_even_note:
        return stats.break_even_note.split(":")[0]  # "impossible", "undefined", "no trades"
    return _pct(value) if row.format in ("pct", "even") else _num(value, ".3f")


def break_even_sentence(
    gross_hit_rate: float, break_even_hit_rate: float, mean_cost: float, note: str
) -> str:
    """The gross hit rate beside the one needed at the cost actually paid, or why none is."""
    if np.isfinite(break_even_hit_rate):
        return (
            f"Gross hit rate {_pct(gross_hit_rate)} vs {_pct(break_even_hit_rate)} needed to "
            f"break even at the cost paid per holding ({_pct(mean_cost)} on average)."
        )
    verdict, _, reason = note.partition(": ")
    if verdict == "impossible":
        return f"No gross hit rate up to 100 % breaks even: {reason}."
    return f"No break-even gross hit rate: {reason or verdict or 'not computed'}."


def _strategy_table(report: SplitReport) -> list[str]:
    runs = {"model": report.strategy, **report.baselines}
    lines = ["  " + " " * _LABEL_WIDTH + "".join(f"{name:>15}" for name in runs)]
    for row in STRATEGY_ROWS:
        cells = "".join(f"{_cell(run.stats, row):>15}" for run in runs.values())
        lines.append(f"  {row.label:{_LABEL_WIDTH}}" + cells)
    stats = report.strategy.stats
    sentence = break_even_sentence(
        stats.gross_hit_rate, stats.break_even_hit_rate, stats.mean_cost, stats.break_even_note
    )
    lines.append(f"  Model: {sentence}")
    return lines


def format_report_table(report: SplitReport | ClassificationReport) -> str:
    """A plain-text rendering for ``manage.py evaluate``."""
    if isinstance(report, ClassificationReport):
        return format_classification_table(report)
    config = report.strategy.config
    errors = report.errors
    lines = [
        f"Evaluation report — {report.label}",
        f"{report.start} → {report.end} · horizon {report.horizon} bar(s) of "
        f"{report.bar_seconds} s · {report.n_forecasts} forecasts",
    ]
    if report.gaps is not None:
        gaps = report.gaps
        lines.append(
            f"Bars: {gaps.real_bars} real, {gaps.filled_bars} filled (gaps); windows dropped "
            f"for gaps: {gaps.windows_dropped} (max_fill {gaps.max_fill})"
        )
    if report.leakage.flagged:
        lines += ["", f"!! LEAKAGE ALARM: {report.leakage.message}"]
    lines += [
        "",
        "Forecast errors                  price           return",
        f"  MAE             {_num(errors.price.mae):>15}  {_num(errors.returns.mae, '.6f'):>15}",
        f"  RMSE            {_num(errors.price.rmse):>15}  {_num(errors.returns.rmse, '.6f'):>15}",
        f"  MAPE %          {_num(errors.price.mape_pct):>15}  {'—':>15}",
        f"  RMSE / zero     {'—':>15}  {_num(errors.returns.rmse_vs_zero, '.4f'):>15}",
        "  (RMSE / zero: the return RMSE over that of forecasting no move; 1 = no better)",
        "",
        f"Direction: accuracy {_pct(report.direction.accuracy)} over {report.direction.n} moves; "
        f"IC {_num(report.ic.ic, '.3f')}, rank IC {_num(report.ic.rank_ic, '.3f')}",
        "Accuracy by confidence decile (1 = smallest |forecast|):",
        "  " + "  ".join(f"{d.decile}: {_pct(d.accuracy)}" for d in report.deciles),
        "",
        f"Strategy: θ = {config.theta:.6g}, fee {config.fee * 100:g} %/side, "
        f"slippage {config.slippage * 100:g} %/side, {config.mode.replace('_', '-')} holding",
        *([f"θ source: {report.theta_source}"] if report.theta_source else []),
        *_strategy_table(report),
        "",
        "Significance",
    ]
    for test in SIGNIFICANCE_TESTS:
        lines.append(f"  - {getattr(report.tests, test.field).sentence}")
    lines += ["", "Notes", *(f"  - {note}" for note in report.notes)]
    return "\n".join(lines)


def format_classification_table(report: ClassificationReport) -> str:
    """The text of an updown report: accuracy, the confusion matrix and the direction score."""
    classes = report.classification
    lines = [
        f"Evaluation report — {report.label}",
        f"{report.start} → {report.end} · horizon {report.horizon} bar(s) · "
        f"{report.n_forecasts} forecasts (sell/hold/buy)",
    ]
    if report.leakage.flagged:
        lines.append(f"!! LEAKAGE ALARM: {report.leakage.message}")
    lines.append(f"  accuracy {_num(classes.accuracy)}")
    confusion = json.dumps([list(row) for row in classes.confusion])
    lines.append(f"  confusion (rows true, columns predicted): {confusion}")
    lines.append(f"  direction accuracy {_num(report.direction.accuracy)}, IC {_num(report.ic.ic)}")
    lines += [f"  - {note}" for note in report.notes]
    return "\n".join(lines)
