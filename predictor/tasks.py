"""Celery tasks: each one thin, ids in, a small dict out.

The beat schedule that runs ``update_tracked_markets`` lives in one place,
``CELERY_BEAT_SCHEDULE`` in settings (``UPDATE_SCHEDULE_SECONDS``, default 60).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task
from django.conf import settings

from predictor.models import TrainingSession
from predictor.selectors.paper import paper_live_exists
from predictor.services.notify import WebhookRetry, retry_delay, webhook_post
from predictor.services.sessions import sessions_reap
from predictor.services.training import session_run
from predictor.services.updating import markets_update_tracked

# --- Market data -------------------------------------------------------------------------


@shared_task(name="predictor.tasks.update_tracked_markets", ignore_result=False)  # type: ignore[untyped-decorator]
def update_tracked_markets() -> dict[str, Any]:
    """Bring every tracked market up to date; a market already updating is skipped."""
    results = markets_update_tracked()
    statuses = Counter(result.status for result in results)
    inserted = sum(result.inserted for result in results)
    # New candles are the truth for forecasts made earlier: fill those in now.
    from predictor.services.forecasting import predictions_fill_actuals

    filled = predictions_fill_actuals(None) if inserted else 0
    if inserted and paper_live_exists():
        paper_trade_live.delay()  # the new bars are what live paper sessions trade on
    return {
        "actuals_filled": filled,
        "updates": len(results),
        "inserted": inserted,
        "statuses": dict(statuses),
        "problems": [
            f"{r.market} {r.interval}: {r.message}"
            for r in results
            if r.status in ("failed", "refused")
        ][:20],
    }


@shared_task(name="predictor.tasks.paper_trade_live", ignore_result=False)  # type: ignore[untyped-decorator]
def paper_trade_live() -> dict[str, Any]:
    """Step every live paper session over its new closed bars; a bar done already is skipped."""
    from predictor.services.paper import paper_step_live  # Keras: only where it runs

    return {"sessions": paper_step_live()}


# --- Training ------------------------------------------------------------------------------


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
    """Fail running sessions whose worker stopped sending heartbeats; their sweeps move on."""
    reaped = sessions_reap()
    sweeps = {s.sweep_id for s in reaped if s.sweep_id is not None}
    if sweeps:
        from predictor.services.sweeps import sweep_advance  # Keras: only where it runs

        for sweep_id in sweeps:
            sweep_advance(sweep_id)
    return {"reaped": [str(s.pk) for s in reaped]}


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="predictor.tasks.sweep_trial",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=False,
)
def sweep_trial(self: Any, session_id: str) -> dict[str, Any]:
    """Train one sweep trial, score it on validation, and start the sweep's next step."""
    from predictor.services.sweeps import sweep_trial_run  # Keras: only where it runs

    session = sweep_trial_run(session_id, task_id=self.request.id or "")
    return {
        "session": str(session.pk),
        "status": session.status,
        "objective": session.objective_value,
        "error": session.error[:500],
    }


@shared_task(  # type: ignore[untyped-decorator]
    bind=True,
    name="predictor.tasks.walk_forward_fold",
    acks_late=True,
    reject_on_worker_lost=True,
)
def walk_forward_fold_task(self: Any, session_id: str, index: int) -> dict[str, Any]:
    """Train one walk-forward fold and store its out-of-sample forecasts."""
    from predictor.services.walkforward import walk_forward_fold  # Keras: only where it runs

    return walk_forward_fold(session_id, index, task_id=self.request.id or "")


@shared_task(name="predictor.tasks.walk_forward_finish")  # type: ignore[untyped-decorator]
def walk_forward_finish_task(session_id: str) -> dict[str, Any]:
    """After all folds: evaluate the stitched forecasts, or record why not."""
    from predictor.services.walkforward import walk_forward_finish  # Keras: only where it runs

    session = walk_forward_finish(session_id)
    return {"session": str(session.pk), "status": session.status, "error": session.error[:500]}


# --- Notifications -------------------------------------------------------------------------


@shared_task(bind=True, name="predictor.tasks.notify_webhook")  # type: ignore[untyped-decorator]
def notify_webhook(self: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one notification; connection errors, timeouts, 429 and 5xx are retried later."""
    try:
        status = webhook_post(payload)
    except WebhookRetry as exc:
        # Retry-After when the server gave one, else exponential backoff with jitter.
        raise self.retry(
            exc=exc,
            countdown=retry_delay(self.request.retries, exc.retry_after),
            max_retries=settings.NOTIFY_MAX_RETRIES,
        ) from None
    return {"event": payload.get("event"), "status": status}


# --- Forecasts and evaluation ----------------------------------------------------------------


@shared_task(name="predictor.tasks.forecast_session")  # type: ignore[untyped-decorator]
def forecast_session(session_id: str) -> dict[str, Any]:
    """Forecast the windows of a session not yet predicted (past the last candle included)."""
    from predictor.services.forecasting import session_forecast  # Keras: only where it runs

    result = session_forecast(TrainingSession.objects.get(pk=session_id))
    return {
        "session": session_id,
        "stored": result.stored,
        "future": result.future,
        "actuals_filled": result.actuals_filled,
    }


@shared_task(name="predictor.tasks.fill_actuals")  # type: ignore[untyped-decorator]
def fill_actuals() -> dict[str, Any]:
    """Fill the realised values of forecasts whose target candle has arrived."""
    from predictor.services.forecasting import predictions_fill_actuals

    return {"filled": predictions_fill_actuals(None)}


@shared_task(name="predictor.tasks.evaluate_session")  # type: ignore[untyped-decorator]
def evaluate_session(
    session_id: str,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: str = "non_overlapping",
    forward: bool = False,
    theta: float | None = None,
    theta_from: str | None = None,
) -> dict[str, Any]:
    """Store the session's evaluation reports, one per split; ``forward``: its forward report."""
    session = TrainingSession.objects.get(pk=session_id)
    if forward:
        from predictor.services.forward import session_evaluate_forward

        judged = session_evaluate_forward(
            session,
            theta=theta,
            theta_from=TrainingSession.objects.get(pk=theta_from) if theta_from else None,
            fee=fee,
            slippage=slippage,
            mode=mode,  # type: ignore[arg-type]
        )
        return {
            "session": session_id,
            "n_trials": judged.n_trials,
            "splits": [judged.split.split],
            "leakage_alarm": judged.split.leakage_alarm,
            "theta_source": judged.theta_source,
        }
    from predictor.services.evaluation import session_evaluate

    result = session_evaluate(
        session,
        fee=fee,
        slippage=slippage,
        mode=mode,  # type: ignore[arg-type]
    )
    return {
        "session": session_id,
        "n_trials": result.n_trials,
        "splits": [s.split for s in result.splits],
        "leakage_alarm": any(s.leakage_alarm for s in result.splits),
    }


@shared_task(name="predictor.tasks.reality_check")  # type: ignore[untyped-decorator]
def reality_check(session_id: str, reps: int = 1000) -> dict[str, Any]:
    """Hansen's SPA / White's Reality Check across the market's evaluation sessions (slow)."""
    from predictor.services.reality_check import sessions_reality_check

    sessions_reality_check(TrainingSession.objects.get(pk=session_id), reps=reps)
    return {"session": session_id}


# --- Live forecasts (POST /api/predict) ------------------------------------------------------
# Kept in its own block: the API view sends this by name and waits for the answer.


@shared_task(name="predictor.tasks.live_forecast", ignore_result=False)  # type: ignore[untyped-decorator]
def live_forecast_task(
    session_id: str, windows: dict[str, dict[str, Any]], field: str
) -> dict[str, Any]:
    """One forecast for the web, which waits for it: ``{"forecast": body}``, or why not as
    data the web maps to its HTTP answer: ``{"refused": {"field", "detail"}}`` (400, the
    request field to blame) or ``{"unavailable": detail}`` (409). Plain JSON both ways."""
    from predictor.services.live_forecast import (  # Keras: only where it runs
        CandlesRefused,
        ForecastUnavailable,
        live_forecast_by_id,
    )

    try:
        return {"forecast": live_forecast_by_id(session_id, windows, field)}
    except CandlesRefused as exc:
        return {"refused": {"field": exc.field, "detail": str(exc)}}
    except ForecastUnavailable as exc:
        return {"unavailable": str(exc)}
