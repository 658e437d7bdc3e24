"""Every way a training session ends is announced on the webhook exactly once.

The ends are ``session_finish``, ``session_cancel`` (a queued session), ``session_reap``
and ``walk_forward_finish``; a local HTTP server receives the notifications.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from predictor.models import Market, SessionStatus, TrainingSession
from predictor.services.notify import WebhookRetry, webhook_post
from predictor.services.sessions import session_cancel, session_create, session_finish
from tests.predictor.conftest import TINY
from tests.predictor.webhook_receiver import (  # noqa: F401  (fixtures: eager, webhook)
    HOOK,
    bodies,
    eager_fixture,
    events,
    ok,
    webhook_fixture,
)

pytestmark = pytest.mark.django_db


def _queued(make_market: Callable[..., Market], **overrides: Any) -> TrainingSession:
    from predictor.ml.config import TrainConfig

    market = make_market("BTCUSDT", 400)
    return session_create(TrainConfig(**{**TINY, **overrides}), symbols=[market.symbol])


def test_a_dead_webhook_never_fails_a_training_session(
    make_market: Callable[..., Market],
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import predictor.tasks
    from predictor.services.training import session_run

    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.NOTIFY_WEBHOOK_URL = f"http://127.0.0.1:{port}/hook"
    settings.NOTIFY_MAX_RETRIES = 1
    failures: list[str] = []

    def post(payload: dict[str, Any]) -> int:
        try:
            return webhook_post(payload)
        except WebhookRetry as exc:
            failures.append(str(exc))
            raise

    monkeypatch.setattr(predictor.tasks, "webhook_post", post)
    session = _queued(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        session = session_run(session.pk)
    assert session.status == SessionStatus.SUCCEEDED, session.error
    assert failures == ["webhook unreachable (ConnectionError)"] * 2


def test_a_succeeded_session_is_announced_once_with_its_page(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    from predictor.services.training import session_run

    ok(webhook)
    session = _queued(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        session_run(session.pk)
        session_run(session.pk)  # a redelivered message ends nothing
    [body] = bodies(webhook)
    assert body["event"] == "training.succeeded"
    assert body["data"] == {
        "session": str(session.pk),
        "status": "succeeded",
        "mode": "evaluation",
        "arch": "lstm",
        "target": "price",
        "markets": ["BTCUSDT"],
        "error": "",
        "path": f"/training/{session.pk}/",
    }
    assert f"/training/{session.pk}/" in body["text"]
    assert "succeeded: lstm → price on BTCUSDT" in body["text"]


def test_a_failed_session_is_announced_once_with_its_error_first_line(
    webhook: Any,
    make_market: Callable[..., Market],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import predictor.services.training
    from predictor.services.training import session_run

    def broken(*args: Any) -> None:
        raise RuntimeError("the candles ran out\nsecond line")

    monkeypatch.setattr(predictor.services.training, "_train", broken)
    ok(webhook)
    session = _queued(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        session = session_run(session.pk)
    assert session.status == SessionStatus.FAILED
    [body] = bodies(webhook)
    assert body["event"] == "training.failed"
    assert body["data"]["error"] == "RuntimeError: the candles ran out"
    assert body["text"].endswith("\nRuntimeError: the candles ran out")


def test_a_queued_session_cancelled_is_announced_once(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    session = _queued(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        session_cancel(session)
        session_cancel(session)
    assert events(webhook) == ["training.cancelled"]
    assert bodies(webhook)[0]["data"]["error"] == "cancelled before it started"


def test_a_running_session_is_announced_when_it_stops_not_when_asked_to(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    ok(webhook)
    session = _queued(make_market)
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        session_cancel(session)  # only asks: the run stops after its batch
    assert webhook.log == []
    with django_capture_on_commit_callbacks(execute=True):
        session_finish(session, SessionStatus.CANCELLED, error="cancelled while training")
        session_finish(session, SessionStatus.FAILED, error="too late: not running any more")
    assert events(webhook) == ["training.cancelled"]


def test_a_reaped_session_is_announced_once_and_its_late_finish_not_at_all(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    from predictor.services.sessions import sessions_reap

    ok(webhook)
    session = _queued(make_market)
    old = timezone.now() - dt.timedelta(hours=1)
    TrainingSession.objects.filter(pk=session.pk).update(
        status=SessionStatus.RUNNING, heartbeat=old, started=old, worker="gpu-1:42"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert [s.pk for s in sessions_reap(60)] == [session.pk]
        assert sessions_reap(60) == []
        session_finish(session, SessionStatus.SUCCEEDED)  # the worker was not dead after all
    [body] = bodies(webhook)
    assert body["event"] == "training.failed"
    assert body["data"]["error"].startswith("the worker gpu-1:42 stopped: no heartbeat since")


def _walk_forward(make_market: Callable[..., Market]) -> TrainingSession:
    from predictor.services.runs import RunRequest, run_start
    from predictor.services.walkforward import WalkForwardSpec

    make_market("BTCUSD", 500)
    request = RunRequest(
        given={k: v for k, v in TINY.items() if k != "interval"},
        symbols=["BTCUSD"],
        walk_forward=WalkForwardSpec(step=100, min_train=250),
    )
    return run_start(request, queue=False)


def test_a_walk_forward_run_is_announced_once_when_judged(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    from predictor.services.runs import run_enqueue

    ok(webhook)
    session = _walk_forward(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        run_enqueue(session)
    session.refresh_from_db()
    assert session.status == SessionStatus.SUCCEEDED, session.error
    [body] = bodies(webhook)
    assert body["event"] == "training.succeeded"
    assert body["data"]["mode"] == "walk_forward"
    assert body["data"]["markets"] == ["BTCUSD"]


@pytest.mark.parametrize(
    ("fold_status", "cancel", "event", "error"),
    [
        ("failed", False, "training.failed", "fold 0: out of memory; fold 1: out of memory"),
        ("succeeded", True, "training.cancelled", "cancelled"),
        # Every fold trained but nothing was stored: the evaluation's failure is the end.
        ("succeeded", False, "training.failed", "evaluation: "),
    ],
)
def test_a_walk_forward_finish_is_announced_once_with_its_final_state(
    webhook: Any,
    make_market: Callable[..., Market],
    django_capture_on_commit_callbacks: Any,
    fold_status: str,
    cancel: bool,
    event: str,
    error: str,
) -> None:
    from predictor.services.walkforward import walk_forward_finish

    ok(webhook)
    session = _walk_forward(make_market)
    folds = [{**f, "status": fold_status, "error": "out of memory"} for f in session.folds]
    TrainingSession.objects.filter(pk=session.pk).update(
        status=SessionStatus.RUNNING, folds=folds, cancel_requested=cancel
    )
    with django_capture_on_commit_callbacks(execute=True):
        walk_forward_finish(session.pk)
        walk_forward_finish(session.pk)  # a redelivered finisher
    [body] = bodies(webhook)
    assert body["event"] == event
    assert body["data"]["error"].startswith(error)


def test_a_queued_walk_forward_cancelled_is_announced_by_the_cancel_only(
    webhook: Any, make_market: Callable[..., Market], django_capture_on_commit_callbacks: Any
) -> None:
    from predictor.services.walkforward import walk_forward_finish

    ok(webhook)
    session = _walk_forward(make_market)
    with django_capture_on_commit_callbacks(execute=True):
        session_cancel(session)
        walk_forward_finish(session.pk)
    assert events(webhook) == ["training.cancelled"]
