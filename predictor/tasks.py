"""Celery tasks: each one thin, ids in, a small dict out.

The beat schedule that runs ``update_tracked_markets`` lives in one place,
``CELERY_BEAT_SCHEDULE`` in settings (``UPDATE_SCHEDULE_SECONDS``, default 60).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task

from predictor.services.training import session_run, sessions_reap
from predictor.services.updating import markets_update_tracked

# --- Market data (issue 3) -------------------------------------------------------------


@shared_task(name="predictor.tasks.update_tracked_markets", ignore_result=False)  # type: ignore[untyped-decorator]
def update_tracked_markets() -> dict[str, Any]:
    """Bring every tracked market up to date; a market already updating is skipped."""
    results = markets_update_tracked()
    statuses = Counter(result.status for result in results)
    return {
        "updates": len(results),
        "inserted": sum(result.inserted for result in results),
        "statuses": dict(statuses),
        "problems": [
            f"{r.market} {r.interval}: {r.message}"
            for r in results
            if r.status in ("failed", "refused")
        ][:20],
    }


# --- End of market data tasks -------------------------------------------------------------


# --- Training (issue 4) ----------------------------------------------------------------------


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="predictor.tasks.train",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=False,
)
def train(self: Any, session_id: str) -> dict[str, Any]:
    """Run one training session by id. A redelivered message for a session that is no
    longer queued returns its state and trains nothing."""
    session = session_run(session_id, task_id=self.request.id or "")
    return {"session": str(session.pk), "status": session.status, "error": session.error[:500]}


@shared_task(name="predictor.tasks.reap_training_sessions", ignore_result=False)  # type: ignore[untyped-decorator]
def reap_training_sessions() -> dict[str, Any]:
    """Fail running sessions whose worker stopped sending heartbeats."""
    reaped = sessions_reap()
    return {"reaped": [str(s.pk) for s in reaped]}
