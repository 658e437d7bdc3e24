"""``POST /api/predict`` with the model in a Celery worker (``PREDICT_IN_WORKER``).

The web checks the request and sends the ``live_forecast`` task; the answer, and the
service's refusals as data, come back through the result backend. Run eagerly here, in a
web process of its own with no worker (504) or no broker (503), and answered by a real
worker process on PostgreSQL and Redis; the web process never imports Keras.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.signals import task_prerun
from django.conf import settings as django_settings
from django.core.files.storage import storages
from django.db import connection

from predictor.models import Market, SessionStatus, TrainingSession
from predictor.services.artifacts import artifact_names
from predictor.tasks import live_forecast_task
from tests.predictor.settings_probe import environment
from tests.predictor.test_api import (  # noqa: F401  (fixtures)
    _candles,
    _expected,
    _own_cache_and_models,
    _window,
    api,
    zero_session,
)
from tests.predictor.test_training_worker import worker_starter

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_worker(settings: Any) -> Iterator[list[str]]:
    """The worker path, run eagerly; yields the names of the tasks that ran."""
    from cryptooracle.celery import app

    settings.PREDICT_IN_WORKER = True
    ran: list[str] = []

    def record(sender: Any = None, **_: Any) -> None:
        ran.append(sender.name)

    task_prerun.connect(record, weak=False)
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield ran
    app.conf.task_always_eager = before
    task_prerun.disconnect(record)


def test_the_worker_path_answers_what_the_web_would(
    api,  # noqa: F811 (the imported fixture)
    trained_session,
    in_worker,
    settings,
):
    session = trained_session(
        arch="lstm", target="price", output_size=2, features=("close", "returns")
    )
    body = {"session": str(session.pk), "candles": _window(session.markets.get(), 68)}
    response = api.post("/api/predict", body, format="json")
    assert response.status_code == 200, response.json()
    assert in_worker == ["predictor.tasks.live_forecast"]
    answer = response.json()
    assert answer["values"] == pytest.approx(_expected(session, 68).tolist(), rel=1e-5)
    assert answer["horizons"] == [1, 2]
    settings.PREDICT_IN_WORKER = False
    assert api.post("/api/predict", body, format="json").json() == answer
    assert in_worker == ["predictor.tasks.live_forecast"]  # in-process: no task


def test_the_worker_path_answers_refused_candles_400_and_a_broken_model_409(
    api,  # noqa: F811
    zero_session,  # noqa: F811
    in_worker,
):
    url, sid = "/api/predict", str(zero_session.pk)
    short = api.post(url, {"session": sid, "candles": _candles(7)}, format="json")
    assert short.status_code == 400
    assert "needs at least 8 candles" in short.json()["candles"][0]
    off_grid = _candles(8, row7={"open_time": "2024-01-01T07:30:00Z"})
    refused = api.post(url, {"session": sid, "candles": off_grid}, format="json")
    assert refused.status_code == 400
    assert "grid" in refused.json()["candles"][0]
    assert in_worker == ["predictor.tasks.live_forecast"] * 2  # the worker refused them

    storages["model_weights"].delete(artifact_names(zero_session)[0])
    broken = api.post(url, {"session": sid, "candles": _candles(8)}, format="json")
    assert broken.status_code == 409
    assert "missing" in broken.json()["detail"]


def test_the_task_refuses_a_session_that_changed_after_the_web_checked_it(
    zero_session,  # noqa: F811
):
    plain = {"BTCUSDT": {"values": [[100.0, 101.0, 99.0, 100.5, 3.0]] * 8, "times": None}}
    assert live_forecast_task(str(zero_session.pk), plain, "candles")["forecast"]["values"] == [0.0]
    TrainingSession.objects.filter(pk=zero_session.pk).update(status=SessionStatus.QUEUED)
    assert live_forecast_task(str(zero_session.pk), plain, "candles") == {
        "refused": {"field": "session", "detail": "session is queued; it has no trained model"}
    }
    TrainingSession.objects.filter(pk=zero_session.pk).delete()
    assert live_forecast_task(str(zero_session.pk), plain, "candles") == {
        "refused": {"field": "session", "detail": "no such training session"}
    }


# --- A web process of its own -------------------------------------------------------------------


def _probe(spec: dict[str, Any], **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.predictor.predict_probe", json.dumps(spec)],
        env=environment(PREDICT_IN_WORKER="true", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_with_no_worker_the_web_answers_504_and_never_loads_keras(tmp_path: Path) -> None:
    # Its own SQLite file and filesystem broker: the message waits where no worker looks.
    answer = _probe(
        {"session": "make"}, CRYPTOORACLE_VAR_DIR=str(tmp_path), PREDICT_TIMEOUT_SECONDS="1"
    )
    assert answer["status"] == 504
    assert answer["body"]["detail"] == "No forecast worker answered within 1 s; try again later."
    assert answer["heavy"] == []
    queued = list((tmp_path / "celery-broker").glob("*.msg"))
    assert len(queued) == 1  # sent, with an expiry, so a worker that comes later drops it
    headers = json.loads(queued[0].read_text())["headers"]
    assert headers["task"] == "predictor.tasks.live_forecast"
    assert headers["expires"]


@pytest.mark.slow
def test_with_the_broker_down_the_web_answers_503(tmp_path: Path) -> None:
    answer = _probe(
        {"session": "make", "locmem_cache": True},
        CRYPTOORACLE_VAR_DIR=str(tmp_path),
        REDIS_URL="redis://127.0.0.1:1/0",  # nothing listens on port 1
    )
    assert answer["status"] == 503
    assert answer["body"]["detail"] == "The forecast queue cannot be reached; try again later."
    assert answer["heavy"] == []


# --- A real worker ------------------------------------------------------------------------------


@pytest.fixture
def default_worker(settings: Any) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    yield from worker_starter(settings, "default", "predict")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_answers_predict_for_a_web_that_never_loads_keras(
    trained_session: Callable[..., TrainingSession],
    make_market: Callable[..., Market],
    default_worker: Callable[[], Any],
    tmp_path: Path,
) -> None:
    session = trained_session(
        arch="lstm", target="price", output_size=2, features=("close", "returns")
    )
    candles = _window(session.markets.get(), 68)
    default_worker()
    db = connection.settings_dict
    answer = _probe(
        {"session": str(session.pk), "candles": candles},
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=django_settings.REDIS_URL,
        CRYPTOORACLE_VAR_DIR=str(tmp_path),
        PREDICT_TIMEOUT_SECONDS="240",  # a fresh worker loads TensorFlow and the model first
    )
    assert answer["status"] == 200, answer["body"]
    assert answer["body"]["values"] == pytest.approx(_expected(session, 68).tolist(), rel=1e-5)
    assert answer["body"]["anchor_time"] == candles[-1]["open_time"]
    assert answer["heavy"] == []  # the web process: no TensorFlow, no Keras, no ML core
