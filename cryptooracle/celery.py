"""The Celery application. Tasks live in ``predictor.tasks``.

Queues: ``default`` for short jobs (market updates) and ``training`` for model
training, which a dedicated worker with concurrency 1 consumes.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")

app = Celery("cryptooracle")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("training")),  # type: ignore[no-untyped-call]
    task_routes={
        "predictor.tasks.train": {"queue": "training"},
        "predictor.tasks.walk_forward_fold": {"queue": "training"},
        "predictor.tasks.sweep_trial": {"queue": "training"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
