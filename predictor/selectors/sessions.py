"""Training sessions and their evaluation reports: page lists, API lists, trial counts.

Reads are public (the API answers reads to anyone; the pages list every session),
so no list here takes a user: who may change a session is the API permission's
business, not what a read returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from predictor.models import (
    EvaluationReport,
    Market,
    Prediction,
    SessionMode,
    SessionStatus,
    TrainingSession,
)

# Reports read in this order: never seen in training first, the in-sample one last.
REPORT_ORDER: tuple[str, ...] = (
    "forward", "test", "spa", "walk_forward", "validation", "train", "training",
)  # fmt: skip


def session_list(
    *,
    status: str | None = None,
    mode: str | None = None,
    arch: str | None = None,
    target: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
) -> QuerySet[TrainingSession]:
    """Sessions newest first, with who started them, narrowed by the filters given.

    ``symbol`` matches any of a session's markets, in any case; the join through
    the markets is made distinct, so a page counts each session once.
    """
    sessions = TrainingSession.objects.select_related("created_by").order_by("-created")
    if symbol is not None:
        sessions = sessions.filter(markets__symbol=symbol.upper()).distinct()
    fields = {"status": status, "mode": mode, "arch": arch, "target": target, "exchange": exchange}
    return sessions.filter(**{name: value for name, value in fields.items() if value is not None})


def session_detail_list() -> QuerySet[TrainingSession]:
    """The sessions a detail lookup picks one from, with their markets prefetched."""
    return session_list().prefetch_related("markets")


def production_session_list() -> QuerySet[TrainingSession]:
    """Production sessions, newest first, with their prediction counts."""
    return TrainingSession.objects.filter(mode=SessionMode.PRODUCTION).annotate(
        n_predictions=Count("predictions")
    )


def evaluation_session_list() -> QuerySet[TrainingSession]:
    """Evaluation and walk-forward sessions, and production ones judged forward, newest
    first, with their report counts."""
    judged = EvaluationReport.objects.filter(split="forward").values("session_id")
    return (
        TrainingSession.objects.filter(~Q(mode=SessionMode.PRODUCTION) | Q(pk__in=judged))
        .filter(status=SessionStatus.SUCCEEDED)
        .annotate(n_reports=Count("reports", distinct=True))
    )


@dataclass(frozen=True)
class TrialCount:
    """The trained evaluation configurations a deflated Sharpe ratio must allow for.

    Every succeeded non-production session on the market with the same target counts
    once: a plain evaluation session, each trial of a sweep, and each walk-forward
    session (its folds retrain one configuration). A re-run with a new seed is a new
    configuration tried, and counts too.
    """

    market: str
    target: str
    sessions: int
    sweep_trials: int
    sweeps: int
    walk_forward: int

    @property
    def total(self) -> int:
        return self.sessions + self.sweep_trials + self.walk_forward

    def text(self, whose: str = "this one included") -> str:
        return (
            f"{self.total} trained evaluation configuration(s) on {self.market} for target "
            f"{self.target}, {whose}: {self.sessions} evaluation session(s), "
            f"{self.sweep_trials} sweep trial(s) from {self.sweeps} sweep(s), "
            f"{self.walk_forward} walk-forward session(s) "
            "(the deflated Sharpe ratio allows for all of them)"
        )


def trial_count(market: Market, target: str) -> TrialCount:
    """Trained evaluation configurations on ``market`` for ``target``, by where they came from."""
    found = (
        TrainingSession.objects.filter(
            markets=market, target=target, status=SessionStatus.SUCCEEDED
        )
        .exclude(mode=SessionMode.PRODUCTION)
        .aggregate(
            walk_forward=Count("pk", filter=Q(mode=SessionMode.WALK_FORWARD)),
            sweep_trials=Count(
                "pk", filter=Q(sweep__isnull=False) & ~Q(mode=SessionMode.WALK_FORWARD)
            ),
            sweeps=Count("sweep", distinct=True),
            total=Count("pk"),
        )
    )
    return TrialCount(
        market=market.symbol,
        target=target,
        sessions=found["total"] - found["walk_forward"] - found["sweep_trials"],
        sweep_trials=found["sweep_trials"],
        sweeps=found["sweeps"],
        walk_forward=found["walk_forward"],
    )


def default_session(sessions: Sequence[TrainingSession], counted: str) -> TrainingSession | None:
    """The newest session that has something to show (``counted`` > 0), else the newest.

    ``sessions``: a page's session list, newest first, annotated with ``counted``.
    """
    shown = next((s for s in sessions if (getattr(s, counted, 0) or 0) > 0), None)
    return shown or (sessions[0] if sessions else None)


def session_steps(session: TrainingSession) -> list[int]:
    """The output steps a session's predictions have (1…O)."""
    return list(
        Prediction.objects.filter(session=session)
        .order_by("step")
        .values_list("step", flat=True)
        .distinct()
    )


def session_report_list(session: TrainingSession) -> list[EvaluationReport]:
    """A session's reports, out-of-sample first."""
    reports = list(EvaluationReport.objects.filter(session=session))
    rank = {name: i for i, name in enumerate(REPORT_ORDER)}
    return sorted(reports, key=lambda r: (rank.get(r.split, len(rank)), r.split))


def report_list(
    *, session: uuid.UUID | None = None, split: str | None = None
) -> QuerySet[EvaluationReport]:
    """Evaluation reports newest first (ties by id), of one session and split if given."""
    reports = EvaluationReport.objects.order_by("-created", "id")
    if session is not None:
        reports = reports.filter(session_id=session)
    if split is not None:
        reports = reports.filter(split=split)
    return reports
