"""A webhook receiver for tests: pytest-httpserver behind ``NOTIFY_WEBHOOK_URL``, eager Celery.

``notify`` sends on commit, so a test runs the on-commit callbacks it expects
(``django_capture_on_commit_callbacks(execute=True)``); the delivery task then runs
in-process and POSTs to the local server. A test module imports ``eager_fixture`` and
``webhook_fixture`` to use the fixtures ``eager`` and ``webhook``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

HOOK = "/hooks/T000/B000/secret-token"


@pytest.fixture(name="eager")
def eager_fixture(settings: Any) -> Iterator[None]:
    from cryptooracle.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


@pytest.fixture(name="webhook")
def webhook_fixture(httpserver: Any, settings: Any, eager: None) -> Any:
    """The webhook URL points at the local server; each test says how it answers (``ok``: 200)."""
    settings.NOTIFY_WEBHOOK_URL = httpserver.url_for(HOOK)
    settings.NOTIFY_TIMEOUT_SECONDS = 2.0
    return httpserver


def bodies(httpserver: Any) -> list[dict[str, Any]]:
    return [json.loads(request.get_data()) for request, _response in httpserver.log]


def events(httpserver: Any) -> list[str]:
    return [body["event"] for body in bodies(httpserver)]


def ok(httpserver: Any) -> None:
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
