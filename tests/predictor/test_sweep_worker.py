"""A sweep on real Celery workers (PostgreSQL + Redis): trials spread over two worker
processes, each trained once, the winner judged once; cancel reaches running trials."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from predictor.models import Market, Prediction, SessionStatus, Sweep
from predictor.services.runs import RunRequest
from predictor.services.sweeps import SweepRequest, sweep_cancel, sweep_create, sweep_queue
from tests.predictor.test_training_worker import worker_starter

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE = {"arch": "ridge", "target": "return", "interval": "1h", "val_split": 0.15, "horizon": 4}


@pytest.fixture
def workers(settings: Any) -> Iterator[Callable[[], Any]]:
    yield from worker_starter(settings, "training", "sweep")


def _ready(count: int, seconds: float = 90) -> None:
    """Wait until ``count`` workers answer a ping: queued work then finds them all idle."""
    from cryptooracle.celery import app

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or []) >= count:
            return
    raise AssertionError(f"fewer than {count} workers answered")


def _wait(sweep: Sweep, done: Callable[[Sweep], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sweep.refresh_from_db()
        if done(sweep):
            return
        time.sleep(0.25)
    statuses = list(sweep.trials.values_list("trial_number", "status", "error"))
    raise AssertionError(f"sweep stayed {sweep.status}: {statuses}")


def test_two_workers_run_a_sweeps_trials_and_judge_the_winner_once(
    make_market: Callable[..., Market], workers: Callable[[], Any]
) -> None:
    make_market("BTCUSDT", 1500)  # the worker chooses θ on ≥ 100 validation forecasts
    request = SweepRequest(
        base=RunRequest(given=BASE, symbols=["BTCUSDT"]),
        space={"window": [6, 8, 10, 12, 14, 16]},
        objective="val_ic",
    )
    workers()
    workers()
    _ready(2)
    sweep = sweep_queue(sweep_create(request))
    _wait(sweep, lambda s: s.status not in Sweep.ACTIVE, 240)

    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    trials = list(sweep.trials.all())
    assert len(trials) == 6
    assert all(t.status == SessionStatus.SUCCEEDED and t.attempts == 1 for t in trials)
    assert all(t.objective_value is not None for t in trials)
    assert len({t.worker for t in trials}) == 2  # both processes took trials
    assert sweep.winner is not None
    tested = set(
        Prediction.objects.filter(session__sweep=sweep, split="test").values_list(
            "session", flat=True
        )
    )
    assert tested == {sweep.winner.pk}
    assert sweep.winner.reports.filter(split="test").count() == 1


def test_cancel_reaches_the_trials_a_worker_is_running(
    make_market: Callable[..., Market], workers: Callable[[], Any], settings: Any
) -> None:
    make_market("BTCUSDT", 2000)
    lstm = {**BASE, "arch": "lstm", "units": 4, "epochs": 500, "batch_size": 8, "xla": False}
    request = SweepRequest(
        base=RunRequest(given=lstm, symbols=["BTCUSDT"]),
        space={"window": [8, 12, 16]},
        objective="val_loss",
    )
    sweep = sweep_queue(sweep_create(request))
    workers()
    _wait(sweep, lambda s: s.trials.filter(status=SessionStatus.RUNNING, epoch__gte=1).exists(), 180)  # fmt: skip
    sweep = sweep_cancel(sweep)
    assert sweep.status == SessionStatus.CANCELLED
    _wait(sweep, lambda s: not s.trials.filter(status__in=Sweep.ACTIVE).exists(), 120)
    statuses = sorted(sweep.trials.values_list("status", flat=True))
    assert statuses == [SessionStatus.CANCELLED] * 3
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.CANCELLED  # a trial that ended did not revive it
    assert sweep.winner is None
