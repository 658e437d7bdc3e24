"""Sweeps and their trials: the page and API lists, a sweep's trials, its winner's test report.

Reads are public like the sessions' (the pages and the API show every sweep); who
may cancel or resume one is ``services.permissions``' business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from predictor.models import EvaluationReport, SessionStatus, Sweep, TrainingSession

FINISHED = (SessionStatus.SUCCEEDED, SessionStatus.FAILED, SessionStatus.CANCELLED)


def sweep_list(*, status: str | None = None) -> QuerySet[Sweep]:
    """Sweeps newest first, with who started them, the winner and their trial counts."""
    sweeps = Sweep.objects.select_related("created_by", "winner").annotate(
        n_created=Count("trials", distinct=True),
        n_done=Count("trials", filter=Q(trials__status__in=FINISHED), distinct=True),
    )
    if status is not None:
        sweeps = sweeps.filter(status=status)
    return sweeps.order_by("-created")


def sweep_trial_list(sweep: Sweep) -> list[TrainingSession]:
    """A sweep's trials in trial order."""
    return list(sweep.trials.order_by("trial_number"))


def sweep_winner_report(sweep: Sweep) -> EvaluationReport | None:
    """The winner's test report: the one test split of the sweep that was ever evaluated."""
    if sweep.winner_id is None:
        return None
    return EvaluationReport.objects.filter(session_id=sweep.winner_id, split="test").first()


@dataclass(frozen=True, slots=True)
class ReportHeadline:
    """The figures a sweep page shows of its winner's test report (``None``: not in the report)."""

    market: str | None
    n_forecasts: int | None
    ic: float | None
    rank_ic: float | None
    direction_accuracy: float | None
    theta: float | None
    total_return: float | None
    sharpe: float | None
    n_trades: int | None
    n_trials: int | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _part(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def report_headline(report: EvaluationReport) -> ReportHeadline:
    """Headline figures read from a stored report's JSON; a report of another kind (a
    classifier's, one stored by an older version) gives ``None`` where it lacks them."""
    data = report.report if isinstance(report.report, dict) else {}
    stats = _part(data, "strategy", "stats")
    return ReportHeadline(
        market=str(data["market"]) if isinstance(data.get("market"), str) else None,
        n_forecasts=_count(data.get("n_forecasts")),
        ic=_number(_part(data, "ic", "ic")),
        rank_ic=_number(_part(data, "ic", "rank_ic")),
        direction_accuracy=_number(_part(data, "direction", "accuracy")),
        theta=_number(_part(data, "threshold", "theta")),
        total_return=_number(_part(stats, "total_return")),
        sharpe=_number(_part(stats, "sharpe")),
        n_trades=_count(_part(stats, "n_trades")),
        n_trials=report.n_trials,
    )
