"""Webhook notifications: delivery, retries, scheduled-task failures and the settings.

A local HTTP server receives them through eager Celery (``webhook_receiver``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from cryptooracle.env import Env
from predictor.services import notify as notify_module
from predictor.services.notify import (
    WebhookRetry,
    notify,
    retry_delay,
    task_failure_notify,
    webhook_post,
)
from tests.predictor.webhook_receiver import (  # noqa: F401  (fixtures: eager, webhook)
    HOOK,
    bodies,
    eager_fixture,
    events,
    ok,
    webhook_fixture,
)

pytestmark = pytest.mark.django_db


# --- Delivery ---------------------------------------------------------------------------


def test_the_webhook_receives_slack_and_discord_text_with_the_event_and_data(
    webhook: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    at = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        notify("paper.opened", "Opened BTCUSDT long", symbol="BTCUSDT", size=Decimal("0.5"), at=at)
    [(request, response)] = webhook.log
    assert response.status_code == 200
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("CryptoOracle/")
    body = json.loads(request.get_data())
    assert set(body) == {"text", "content", "event", "data", "sent_at"}
    assert body["text"] == body["content"] == "Opened BTCUSDT long"
    assert body["event"] == "paper.opened"
    assert body["data"] == {"symbol": "BTCUSDT", "size": "0.5", "at": "2024-01-01T12:00:00Z"}
    sent = dt.datetime.fromisoformat(body["sent_at"])
    assert abs((timezone.now() - sent).total_seconds()) < 60


def test_discord_content_is_cut_to_its_limit_and_slack_text_is_whole(
    webhook: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    with django_capture_on_commit_callbacks(execute=True):
        notify("task.failed", "x" * 2500)
    [body] = bodies(webhook)
    assert len(body["text"]) == 2500
    assert len(body["content"]) == 2000


def test_an_unset_url_sends_nothing_and_queues_nothing(
    httpserver: Any, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    ok(httpserver)
    settings.NOTIFY_WEBHOOK_URL = ""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notify("paper.closed", "Closed BTCUSDT")
    assert callbacks == []
    assert httpserver.log == []


def test_nothing_is_sent_before_the_transaction_commits(
    webhook: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    with django_capture_on_commit_callbacks() as callbacks:
        notify("paper.closed", "Closed BTCUSDT")
        assert webhook.log == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert events(webhook) == ["paper.closed"]


def test_a_503_then_200_is_retried_and_delivered_once(
    webhook: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predictor.tasks

    asked: list[tuple[int, float | None]] = []

    def spy(retries: int, retry_after: float | None) -> float:
        asked.append((retries, retry_after))
        return retry_delay(retries, retry_after)

    monkeypatch.setattr(predictor.tasks, "retry_delay", spy)
    webhook.expect_oneshot_request(HOOK, method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    webhook.expect_oneshot_request(HOOK, method="POST").respond_with_data("busy", status=503)
    ok(webhook)
    with django_capture_on_commit_callbacks(execute=True):
        notify("paper.opened", "Opened ETHUSDT short")
    assert [response.status_code for _request, response in webhook.log] == [429, 503, 200]
    assert events(webhook) == ["paper.opened"] * 3
    # The first wait is the one the server asked for, the second the backoff's.
    assert asked == [(0, 7.0), (1, None)]


def test_a_400_is_not_retried_and_is_logged(
    webhook: Any, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.expect_request(HOOK, method="POST").respond_with_data("invalid_payload", status=400)
    with (
        caplog.at_level(logging.WARNING, logger="predictor.services.notify"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notify("paper.opened", "Opened BTCUSDT long")
    assert len(webhook.log) == 1
    assert "rejected by the webhook (HTTP 400): invalid_payload" in caplog.text


def test_retries_stop_at_the_maximum_and_never_announce_themselves(
    webhook: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.NOTIFY_MAX_RETRIES = 2
    webhook.expect_request(HOOK, method="POST").respond_with_data("down", status=502)
    with django_capture_on_commit_callbacks(execute=True):
        notify("paper.closed", "Closed BTCUSDT")
    # One try and two retries; the delivery task's own failure is not a "task.failed".
    assert events(webhook) == ["paper.closed"] * 3


def test_a_429_carries_its_retry_after_and_a_5xx_none(httpserver: Any) -> None:
    url = httpserver.url_for(HOOK)
    httpserver.expect_oneshot_request(HOOK).respond_with_data(
        "", status=429, headers={"Retry-After": "30"}
    )
    httpserver.expect_oneshot_request(HOOK).respond_with_data("", status=500)
    httpserver.expect_oneshot_request(HOOK).respond_with_data("", status=302)
    with pytest.raises(WebhookRetry, match="HTTP 429") as first:
        webhook_post({"event": "x"}, url=url)
    assert first.value.retry_after == 30.0
    with pytest.raises(WebhookRetry, match="HTTP 500") as second:
        webhook_post({"event": "x"}, url=url)
    assert second.value.retry_after is None
    assert webhook_post({"event": "x"}, url=url) == 302  # final: a redirect is not followed


def test_backoff_grows_with_jitter_up_to_a_cap_and_retry_after_wins() -> None:
    assert retry_delay(0, None, rng=lambda: 0.0) == 1.0
    assert retry_delay(0, None, rng=lambda: 1.0) == 2.0
    assert retry_delay(3, None, rng=lambda: 1.0) == 16.0
    assert retry_delay(20, None, rng=lambda: 1.0) == 600.0
    assert retry_delay(0, 7.0, rng=lambda: 1.0) == 7.0
    assert retry_delay(0, 10 * 86400.0) == 3600.0


def test_a_dead_broker_is_logged_and_the_caller_goes_on(
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from celery import current_app
    from kombu.exceptions import OperationalError

    settings.NOTIFY_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    task = current_app.tasks[notify_module.TASK_NAME]
    sent: list[dict[str, Any]] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        sent.append(kwargs)
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(task, "apply_async", refuse)
    with (
        caplog.at_level(logging.WARNING, logger="predictor.services.notify"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notify("paper.opened", "Opened BTCUSDT long")
    assert sent == [{"args": sent[0]["args"], "queue": "default", "retry": False}]
    assert "notification paper.opened not sent: the broker refused it" in caplog.text


# --- Scheduled tasks ------------------------------------------------------------------------


def test_a_failing_scheduled_task_is_announced(
    webhook: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import predictor.tasks

    def down() -> None:
        raise ConnectionError("api.binance.com unreachable")

    monkeypatch.setattr(predictor.tasks, "markets_update_tracked", down)
    ok(webhook)
    with django_capture_on_commit_callbacks(execute=True):
        result = predictor.tasks.update_tracked_markets.apply()
    assert result.failed()
    [body] = bodies(webhook)
    assert body["event"] == "task.failed"
    assert body["data"]["task"] == "predictor.tasks.update_tracked_markets"
    assert body["data"]["task_id"] == result.id
    assert body["data"]["error"] == "ConnectionError: api.binance.com unreachable"
    assert "Scheduled task predictor.tasks.update_tracked_markets failed" in body["text"]


def test_a_failing_task_beat_does_not_run_is_not_announced(
    webhook: Any, django_capture_on_commit_callbacks: Any
) -> None:
    import predictor.tasks

    ok(webhook)
    with django_capture_on_commit_callbacks(execute=True):
        result = predictor.tasks.forecast_session.apply(
            args=["00000000-0000-0000-0000-0000000000ff"]
        )
    assert result.failed()
    assert webhook.log == []


def test_the_delivery_task_failing_is_never_announced_even_if_scheduled(
    webhook: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    settings.CELERY_BEAT_SCHEDULE = {
        **settings.CELERY_BEAT_SCHEDULE,
        "ping": {"task": notify_module.TASK_NAME, "schedule": 60.0},
    }
    sender = type("Task", (), {"name": notify_module.TASK_NAME})()
    with django_capture_on_commit_callbacks(execute=True):
        task_failure_notify(sender=sender, task_id="t", exception=RuntimeError("webhook down"))
    assert webhook.log == []


# --- Settings ---------------------------------------------------------------------------


def test_the_webhook_url_must_be_http_or_https_with_a_host() -> None:
    assert Env({}).url("NOTIFY_WEBHOOK_URL") == ""
    url = "https://hooks.slack.com/services/T0/B0/secret"
    assert Env({"NOTIFY_WEBHOOK_URL": url}).url("NOTIFY_WEBHOOK_URL") == url
    for bad in ("ftp://example.com/hook", "hooks.slack.com/services/x", "https:///secret"):
        with pytest.raises(ImproperlyConfigured, match="NOTIFY_WEBHOOK_URL must be an http") as e:
            Env({"NOTIFY_WEBHOOK_URL": bad}).url("NOTIFY_WEBHOOK_URL")
        assert "secret" not in str(e.value)  # a webhook URL is a credential: never echoed


def test_a_bad_webhook_url_stops_the_settings_from_loading() -> None:
    from tests.predictor.test_settings import load_settings

    result = load_settings(NOTIFY_WEBHOOK_URL="mailto:ops@example.com")
    assert result.returncode != 0
    assert "NOTIFY_WEBHOOK_URL must be an http:// or https:// URL" in result.stderr
