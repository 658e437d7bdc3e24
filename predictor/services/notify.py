"""Webhook notifications: one call, :func:`notify`, that never blocks and never raises.

With ``NOTIFY_WEBHOOK_URL`` set, :func:`notify` hands the message to the Celery task
``predictor.tasks.notify_webhook`` on the default queue once the current transaction
commits (a rolled-back change announces nothing). The task POSTs one JSON body that
Slack (``text``) and Discord (``content``) both read, and retries connection errors,
timeouts, 429 and 5xx with exponential backoff and jitter, waiting what ``Retry-After``
asks when the server says. Any other answer is final: logged, never retried.

The URL is read when the message is delivered, not stored in it: a webhook URL is a
secret, and the broker is no place for secrets.

Nothing here may fail the caller: a training run or a trade must finish whatever the
webhook, the broker or the payload do.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import requests
from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from predictor.models import TrainingSession
from predictor.services.providers.http import USER_AGENT, RetryPolicy, retry_after_seconds

logger = logging.getLogger(__name__)

TASK_NAME = "predictor.tasks.notify_webhook"
# Discord refuses a ``content`` longer than this; Slack takes far more.
CONTENT_LIMIT = 2000
# Retry number n waits about base * 2**(n-1) seconds, half of it jittered, at most max_delay.
BACKOFF = RetryPolicy(base_delay=2.0, max_delay=600.0)
# A Retry-After beyond this is not honoured as asked: the message would be stale by then.
RETRY_AFTER_MAX_SECONDS = 3600.0


class WebhookRetry(Exception):
    """A delivery worth trying again; ``retry_after`` is the wait the server asked for."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Encoder(DjangoJSONEncoder):
    """Dates, UUIDs and decimals as Django writes them; anything else as its ``str``."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def notify_payload(event: str, text: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body: ``text`` for Slack, ``content`` for Discord, the rest for machines."""
    return {
        "text": text,
        "content": text[:CONTENT_LIMIT],
        "event": event,
        # Through JSON once here, so the Celery message serialises whatever callers pass.
        "data": json.loads(json.dumps(data, cls=_Encoder)),
        "sent_at": timezone.now().isoformat(),
    }


def notify(event: str, text: str, **data: Any) -> None:
    """Announce ``event`` on the webhook, if one is configured; never blocks, never raises."""
    if not settings.NOTIFY_WEBHOOK_URL:
        return
    try:
        payload = notify_payload(event, text, data)
        transaction.on_commit(lambda: _send(payload), robust=True)
    except Exception:
        logger.warning("notification %s not queued", event, exc_info=True)


def _send(payload: dict[str, Any]) -> None:
    try:
        # By name: tasks import services, never the other way round. No publish retries:
        # with the broker down, waiting for it would block the caller.
        task = current_app.tasks[TASK_NAME]
        task.apply_async(args=[payload], queue="default", retry=False)
    except Exception:
        logger.warning(
            "notification %s not sent: the broker refused it", payload.get("event"), exc_info=True
        )


def webhook_post(payload: dict[str, Any], *, url: str | None = None) -> int:
    """POST ``payload`` once; the HTTP status, or :class:`WebhookRetry` if worth another try.

    A 2xx is delivered; any other answer but 429 and 5xx is logged and final.
    """
    url = url if url is not None else settings.NOTIFY_WEBHOOK_URL
    event = payload.get("event")
    if not url:  # the setting was removed after the message was queued
        return 0
    try:
        response = requests.post(
            url,
            json=payload,
            timeout=settings.NOTIFY_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT},
            # A redirected POST arrives as a GET without its body: report it, do not follow.
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise WebhookRetry(f"webhook timed out ({type(exc).__name__})") from exc
    except requests.ConnectionError as exc:
        raise WebhookRetry(f"webhook unreachable ({type(exc).__name__})") from exc
    status = response.status_code
    if status == 429 or status >= 500:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        raise WebhookRetry(f"webhook answered HTTP {status}", retry_after=wait)
    if not 200 <= status < 300:
        logger.warning(
            "notification %s rejected by the webhook (HTTP %s): %s",
            event,
            status,
            response.text[:200],
        )
    return status


def retry_delay(
    retries: int, retry_after: float | None, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry ``retries + 1``: what the server asked, else jittered backoff."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_MAX_SECONDS)
    return BACKOFF.backoff(retries + 1, rng)


# --- What is announced -------------------------------------------------------------------


def session_end_notify(session_id: Any) -> None:
    """Announce that a training session reached an end state (call once, on the change)."""
    if not settings.NOTIFY_WEBHOOK_URL:  # no read of the row for nothing
        return
    try:
        session = TrainingSession.objects.get(pk=session_id)
        path = reverse("predictor:training_detail", args=[session.pk])
        markets = ", ".join(session.symbols)
        first_line = session.error.strip().splitlines()[0] if session.error.strip() else ""
        text = (
            f"Training session {session.pk} {session.status}: {session.arch} → "
            f"{session.target} on {markets} ({path})"
        )
        if first_line:
            text += f"\n{first_line}"
        notify(
            f"training.{session.status}",
            text,
            session=str(session.pk),
            status=session.status,
            mode=session.mode,
            arch=session.arch,
            target=session.target,
            markets=list(session.symbols),
            error=first_line,
            path=path,
        )
    except Exception:
        logger.warning("training session %s: end not announced", session_id, exc_info=True)


def scheduled_task_names() -> set[str]:
    """The tasks beat runs, by name."""
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", {}) or {}
    return {entry["task"] for entry in schedule.values() if "task" in entry}


def task_failure_notify(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    """Celery's ``task_failure`` receiver: announce a scheduled task's failure.

    The delivery task itself is never announced: a dead webhook would otherwise
    queue a notification about every notification it failed to take.
    """
    name = getattr(sender, "name", None) or str(sender)
    if name == TASK_NAME or name not in scheduled_task_names():
        return
    error = f"{type(exception).__name__}: {exception}" if exception is not None else "failed"
    first_line = error.strip().splitlines()[0][:500]
    notify(
        "task.failed",
        f"Scheduled task {name} failed: {first_line}",
        task=name,
        task_id=task_id or "",
        error=first_line,
    )
