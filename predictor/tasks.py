"""Celery tasks: each one thin, ids in, a small dict out.

The beat schedule that runs ``update_tracked_markets`` lives in one place,
``CELERY_BEAT_SCHEDULE`` in settings (``UPDATE_SCHEDULE_SECONDS``, default 60).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task

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
