"""The evaluation page: one session's reports, the forward one (never seen in training) first.

Everything shown comes from the stored report JSON (``SplitReport.to_dict()`` and
the typed ``kinds`` reports) and the session's stored predictions; nothing is
recomputed here. In-sample figures carry the report's own label. Each report is
drawn by the partial of its kind (``EvaluationReport.kind``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from predictor.forms import SessionPickForm
from predictor.ml.charts import actual_vs_predicted_figure, curves_figure
from predictor.ml.evaluation.backtest import BASELINES
from predictor.ml.evaluation.kinds import ClassificationReport, RealityCheckReport, ReportKind
from predictor.ml.evaluation.report import split_name
from predictor.ml.evaluation.tables import (
    SIGNIFICANCE_TESTS,
    STRATEGY_ROWS,
    StrategyRow,
    break_even_sentence,
)
from predictor.models import EvaluationReport, TrainingSession
from predictor.selectors.predictions import predictions_frame
from predictor.selectors.sessions import (
    default_session,
    evaluation_session_list,
    session_report_list,
)
from predictor.views._common import TARGET_UNITS, chart

# Each kind of report renders through its own partial.
TEMPLATES: dict[ReportKind, str] = {
    "strategy": "predictor/evaluation/_strategy.html",
    "classification": "predictor/evaluation/_classification.html",
    "spa": "predictor/evaluation/_spa.html",
    "other": "predictor/evaluation/_other.html",
}


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if kind == "pct":
        percent = value * 100
        return f"{percent:.2e} %" if abs(percent) >= 1e5 else f"{percent:.2f} %"
    if kind == "p":
        return "< 0.0001" if value < 1e-4 else f"{value:.4f}" if value < 0.01 else f"{value:.2f}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:.2e}"


def _curve_times(report: dict[str, Any], run: dict[str, Any]) -> np.ndarray:
    """Bar open times of a sampled curve: the split's bars are consecutive from its start."""
    start = np.datetime64(pd.Timestamp(report["start"]).tz_localize(None), "s")
    index = np.asarray(run["curve_index"], dtype=np.int64)
    return start + index * np.timedelta64(int(report["bar_seconds"]), "s")


def _runs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The model, then the baselines in their canonical order (jsonb keeps no key order)."""
    baselines = report["baselines"]
    order = [name for name in BASELINES if name in baselines]
    order += sorted(set(baselines) - set(order))
    return {"model": report["strategy"], **{name: baselines[name] for name in order}}


def _curves(report: dict[str, Any], key: str) -> dict[str, np.ndarray]:
    runs = _runs(report)
    return {
        name: np.array([np.nan if v is None else v for v in run[key]], dtype=float)
        for name, run in runs.items()
        if key == "equity" or name in ("model", "buy_and_hold")
    }


def _break_even_cell(stats: dict[str, Any]) -> str:
    needed = stats.get("break_even_hit_rate")
    if needed is not None and needed > 1:  # stored before the rate was capped at 100 %
        return "impossible"
    if needed is None and stats.get("break_even_note"):
        return str(stats["break_even_note"]).split(":")[0]
    return _fmt(needed, "pct")


def _stat_cell(stats: dict[str, Any], row: StrategyRow) -> str:
    if row.format == "even":
        return _break_even_cell(stats)
    return _fmt(stats.get(row.attribute), row.format)


def _strategy_table(report: dict[str, Any]) -> dict[str, Any]:
    runs = _runs(report)
    return {
        "names": [name.replace("_", " ") for name in runs],
        "rows": [
            (row.label, [_stat_cell(run["stats"], row) for run in runs.values()])
            for row in STRATEGY_ROWS
        ],
    }


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


def _break_even(report: dict[str, Any]) -> dict[str, Any]:
    stats, config = report["strategy"]["stats"], report["strategy"]["config"]
    gross, needed = stats.get("gross_hit_rate"), stats.get("break_even_hit_rate")
    costs = f"fee {config['fee'] * 100:g} %, slippage {config['slippage'] * 100:g} % per side"
    if not stats.get("n_holdings", stats.get("n_trades")):
        sentence = "The strategy made no trades on this split, so there is no hit rate to judge."
    elif "break_even_note" not in stats:  # stored before costs were counted per holding
        impossible = needed is not None and needed > 1
        sentence = "This report was stored when every holding was charged a full round trip; " + (
            "even so, no gross hit rate up to 100 % would have broken even."
            if impossible
            else "its break-even rate overstates the costs of same-side continuations."
        )
    else:
        sentence = break_even_sentence(
            _number(gross),
            _number(needed),
            _number(stats.get("mean_cost")),
            str(stats["break_even_note"]),
        )
        if needed is not None and gross is not None:
            verdict = "clears" if gross > needed else "does not clear"
            sentence += f" The strategy {verdict} it."
    return {
        "gross": _fmt(gross, "pct"),
        "needed": _break_even_cell({**stats, "break_even_hit_rate": needed}),
        "sentence": f"{sentence} Costs: {costs}.",
    }


def _error_rows(errors: dict[str, Any]) -> list[tuple[str, str, str]]:
    """MAPE for prices only; returns are scored against the zero-return forecast.

    A report stored with MAPE on returns shows it as n/a: it meant nothing.
    """
    price, returns = errors.get("price", {}), errors.get("returns", {})
    return [
        ("MAE", _fmt(price.get("mae")), _fmt(returns.get("mae"))),
        ("RMSE", _fmt(price.get("rmse")), _fmt(returns.get("rmse"))),
        ("MAPE % (prices only)", _fmt(price.get("mape_pct")), "—"),
        ("RMSE ÷ zero forecast's (1 = no better)", "—", _fmt(returns.get("rmse_vs_zero"))),
        ("Bias", _fmt(price.get("mean_error")), _fmt(returns.get("mean_error"))),
    ]


def _prediction_charts(
    session: TrainingSession, record: EvaluationReport, title: str
) -> list[dict[str, Any]]:
    try:
        split = split_name(record.split)
    except ValueError:  # spa and walk-forward reports span no one stored split
        return []
    if split == "forward" and session.data_end is not None:  # stored as production or future
        frame = predictions_frame(session, start=session.data_end, step=1)
        anchors = pd.DatetimeIndex(frame["anchor_time"])
        keep = anchors > pd.Timestamp(session.data_end)
        if record.report.get("end"):  # the report's last bar: its period, not newer forecasts
            keep &= anchors <= pd.Timestamp(record.report["end"], tz="UTC")
        frame = frame[keep]
    else:
        frame = predictions_frame(session, splits=[split], step=1)
    charts = []
    for symbol in session.symbols:
        rows = frame[frame["symbol"] == symbol]
        if rows.empty:
            continue
        times = pd.DatetimeIndex(rows["target_time"]).tz_convert(None).to_numpy()
        figure = actual_vs_predicted_figure(
            times,
            rows["actual"].to_numpy(),
            rows["predicted"].to_numpy(),
            y_title=TARGET_UNITS.get(session.target, session.target),
        )
        charts.append(
            {
                "symbol": symbol,
                "figure": chart(figure),
                "caption": f"{title} · {symbol}: actual vs predicted (step 1)",
            }
        )
    return charts


def _common(session: TrainingSession, record: EvaluationReport) -> dict[str, Any]:
    """What every kind of report shows: its label, the alarm, notes and the predictions."""
    report = record.report
    in_sample = bool(report.get("in_sample", record.split not in ("test", "forward")))
    title = f"{'In-sample' if in_sample else 'Out-of-sample'} · {record.split}"
    leakage = report.get("leakage") or {}
    notes = [*report.get("notes", []), report.get("steps_note"), report.get("forward_note")]
    return {
        "record": record,
        "report": report,
        "title": title,
        "in_sample": in_sample,
        "alarm": record.leakage_alarm or bool(leakage.get("flagged")),
        "alarm_message": leakage.get("message", ""),
        "notes": [note for note in notes if note],
        "predictions": _prediction_charts(session, record, title),
        "direction_text": _fmt((report.get("direction") or {}).get("accuracy"), "pct"),
        "ic_text": _fmt((report.get("ic") or {}).get("ic")),
        "rank_ic_text": _fmt((report.get("ic") or {}).get("rank_ic")),
    }


def _strategy_context(report: dict[str, Any]) -> dict[str, Any]:
    tests = report["tests"]
    equity_times = _curve_times(report, report["strategy"])
    equity = curves_figure(equity_times, _curves(report, "equity"), y_title="equity (start = 1)")
    drawdown = curves_figure(
        equity_times, _curves(report, "drawdown"), y_title="drawdown", percent=True
    )
    return {
        "equity": chart(equity),
        "drawdown": chart(drawdown),
        "tests": [
            {
                "title": test.label,
                "statistic": _fmt(tests[test.field].get("statistic")),
                "p_value": _fmt(tests[test.field].get("p_value"), "p"),
                "significant": tests[test.field].get("significant"),
                "sentence": tests[test.field].get("sentence", ""),
            }
            for test in SIGNIFICANCE_TESTS
            if test.field in tests
        ],
        "deflated": {
            **tests.get("deflated_sharpe", {}),
            "probability_text": _fmt(tests.get("deflated_sharpe", {}).get("probability"), "pct"),
        },
        "break_even": _break_even(report),
        "strategy": _strategy_table(report),
        "error_rows": _error_rows(report.get("errors", {})),
        "theta_text": _fmt(report.get("threshold", {}).get("theta")),
    }


def _classification_context(report: ClassificationReport) -> dict[str, Any]:
    metrics = report.classification
    labels = list(metrics.labels)
    return {
        "labels": labels,
        "confusion": list(zip(labels, metrics.confusion, strict=False)),
        "per_class": [
            (label, _fmt(p, "pct"), _fmt(r, "pct"), support)
            for label, p, r, support in zip(
                labels, metrics.precision, metrics.recall, metrics.support, strict=False
            )
        ],
        "accuracy_text": _fmt(metrics.accuracy, "pct"),
    }


def _spa_context(report: RealityCheckReport) -> dict[str, Any]:
    return {
        "spa": report,
        "spa_p": _fmt(report.result.p_value, "p"),
        "rc_p": _fmt(report.result.reality_check_p_value, "p"),
        "statistic": _fmt(report.result.statistic),
        "sessions": len(report.sessions),
        "title": "Across sessions · Reality Check / SPA",
    }


def _kind_context(kind: ReportKind, report: dict[str, Any]) -> dict[str, Any]:
    if kind == "strategy":
        return _strategy_context(report)
    if kind == "classification":
        return _classification_context(ClassificationReport.from_dict(report))
    if kind == "spa":
        return _spa_context(RealityCheckReport.from_dict(report))
    return {}


def report_context(session: TrainingSession, record: EvaluationReport) -> dict[str, Any]:
    """One report's section, rendered by the partial of the report's kind."""
    kind = record.kind
    context = _common(session, record)
    try:
        context.update(_kind_context(kind, record.report))
    except (KeyError, TypeError, ValueError) as exc:  # a stored report this page cannot read
        kind = "other"
        context["notes"].append(f"This stored report could not be read ({exc}).")
    context.update(kind=kind, template=TEMPLATES[kind])
    return context


def evaluation(request: HttpRequest) -> HttpResponse:
    sessions = list(evaluation_session_list())  # read once: the picker, the choice and the default
    form = SessionPickForm(request.GET or None, sessions=sessions)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    session = data.get("session") or default_session(sessions, "n_reports")
    context: dict[str, Any] = {"form": form, "sessions": sessions, "session": session}
    if session is not None:
        context["reports"] = [report_context(session, r) for r in session_report_list(session)]
    return render(request, "predictor/evaluation.html", context)
