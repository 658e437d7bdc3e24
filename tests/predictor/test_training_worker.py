"""Sessions under a real Celery worker: trained end to end, cancelled, killed and reaped."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from predictor.ml.config import TrainConfig
from predictor.models import Market, SessionStatus, TrainingSession
from predictor.services.runs import run_enqueue, run_retry
from predictor.services.sessions import session_cancel, session_create, sessions_reap
from predictor.services.training import session_run
from tests.predictor.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def test_reaper_fails_a_running_session_whose_heartbeat_stopped(
    make_market: Callable[..., Market],
) -> None:
    market = make_market("BTCUSD", 50)
    session = session_create(TrainConfig(**TINY), symbols=[market.symbol])
    stale = timezone.now() - dt.timedelta(seconds=120)
    fresh = timezone.now()
    TrainingSession.objects.filter(pk=session.pk).update(
        status=SessionStatus.RUNNING, heartbeat=stale, worker="host:123"
    )
    other = session_create(TrainConfig(**TINY), symbols=[market.symbol])
    TrainingSession.objects.filter(pk=other.pk).update(
        status=SessionStatus.RUNNING, heartbeat=fresh
    )

    reaped = sessions_reap(stale_after=60)

    assert [s.pk for s in reaped] == [session.pk]
    session.refresh_from_db()
    other.refresh_from_db()
    assert session.status == SessionStatus.FAILED
    assert "host:123 stopped" in session.error
    assert session.finished is not None
    assert other.status == SessionStatus.RUNNING


def test_a_redelivered_message_does_not_train_a_session_twice(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session()
    history = session.history
    again = session_run(session.pk)  # what a redelivered Celery message does
    assert again.status == SessionStatus.SUCCEEDED
    assert again.history == history
    assert again.attempts == 1


class CancelAfterBatches(keras.callbacks.Callback):  # type: ignore[misc]
    """Asks for the cancel through the database, as the web page and --cancel do."""

    def __init__(self, session_id: Any, after: int) -> None:
        super().__init__()
        self.session_id = session_id
        self.after = after
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        if self.batches == self.after:
            session_cancel(TrainingSession.objects.get(pk=self.session_id))
        if self.batches >= self.after:
            time.sleep(0.05)  # let the heartbeat thread see it


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_session_stops_it_at_the_next_batch(
    make_market: Callable[..., Market], settings: Any
) -> None:
    settings.TRAINING_HEARTBEAT_SECONDS = 0.05
    market = make_market("BTCUSD", 600)
    session = session_create(
        TrainConfig(**{**TINY, "epochs": 50, "batch_size": 8}), symbols=[market.symbol]
    )
    stopper = CancelAfterBatches(session.pk, after=3)
    session = session_run(session.pk, callbacks=[stopper])
    assert session.status == SessionStatus.CANCELLED
    assert session.epoch == 0  # stopped inside the first epoch
    assert stopper.batches < 3 + 10
    assert not session.manifest  # nothing saved for a cancelled run


# --- A real worker ------------------------------------------------------------------------------


def _needs_real_services() -> None:
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("a worker process needs PostgreSQL and Redis (a second process cannot see SQLite's in-memory test database)")  # fmt: skip


def _worker_env(settings: Any) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": django_settings.REDIS_URL,
        "MODEL_WEIGHTS_DIR": settings.STORAGES["model_weights"]["OPTIONS"]["location"],
        "SCALERS_DIR": settings.STORAGES["scalers"]["OPTIONS"]["location"],
        "TRAINING_HEARTBEAT_SECONDS": "0.5",
        "OMP_NUM_THREADS": "1",
    }


def worker_starter(
    settings: Any, queue: str, name: str, extra_env: dict[str, str] | None = None
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Yields ``start()``, which runs one ``celery worker -Q queue`` process (prefork, as
    deployed) on this test's database, broker and artifact folders; all are killed after."""
    _needs_real_services()
    from cryptooracle.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "celery", "-A", "cryptooracle", "worker", "-Q", queue]
        cmd += ["-c", "1", "--pool", "prefork", "--loglevel", "INFO", "-n", f"{name}{len(started)}@%h"]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=_worker_env(settings) | (extra_env or {}), start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def worker(settings: Any) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Training-queue workers."""
    yield from worker_starter(settings, "training", "test")


def _wait(
    session: TrainingSession, done: Callable[[TrainingSession], bool], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.refresh_from_db()
        if done(session):
            return
        time.sleep(0.25)
    raise AssertionError(
        f"session stayed {session.status} (epoch {session.epoch}): {session.error}"
    )


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_trains_a_queued_session(
    make_market: Callable[..., Market], worker: Callable[[], Any]
) -> None:
    market = make_market("BTCUSD", 400)
    session = run_enqueue(session_create(TrainConfig(**TINY), symbols=[market.symbol]))
    worker()
    _wait(session, lambda s: s.status not in TrainingSession.ACTIVE, 180)
    assert session.status == SessionStatus.SUCCEEDED, session.error
    assert session.celery_task_id
    assert session.worker.split(":")[0]
    assert session.manifest["id"] == str(session.id)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_leaves_its_session_failed_and_a_retry_starts_cleanly(
    make_market: Callable[..., Market], worker: Callable[[], Any]
) -> None:
    market = make_market("BTCUSD", 2000)
    config = TrainConfig(**{**TINY, "epochs": 500, "batch_size": 8})
    session = run_enqueue(session_create(config, symbols=[market.symbol]))
    first = worker()
    _wait(session, lambda s: s.status == SessionStatus.RUNNING and s.epoch >= 1, 180)

    os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, no chance to clean up
    first.wait(timeout=30)
    killed_at = time.monotonic()
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING  # nobody said otherwise yet
    while not sessions_reap(stale_after=3):
        assert time.monotonic() - killed_at < 30, "the dead session was never reaped"
        time.sleep(0.5)
    session.refresh_from_db()
    assert session.status == SessionStatus.FAILED
    assert "stopped: no heartbeat" in session.error

    TrainingSession.objects.filter(pk=session.pk).update(config={**session.config, "epochs": 1})
    session.refresh_from_db()
    run_retry(session)
    worker()
    _wait(session, lambda s: s.status not in TrainingSession.ACTIVE, 180)
    assert session.status == SessionStatus.SUCCEEDED, session.error
    assert session.attempts == 2
    assert len(session.history) == 1  # the killed run's epochs are gone
    assert session.error == ""
