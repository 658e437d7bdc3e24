"""Every request has an id, echoed to the client and on each of its log records; JSON in production."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from cryptooracle.logs import RequestIdFilter, logging_config, request_id
from tests.predictor.settings_probe import PRODUCTION, run_python

ROOT = Path(__file__).resolve().parents[2]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def security_records() -> Any:
    handler = _Records()
    logger = logging.getLogger("django.security")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_a_sane_request_id_is_kept_and_reaches_the_log_records(
    client: Client, security_records: list[logging.LogRecord]
) -> None:
    given = "5d3c7a1e-8f0b-4c2d-9e6a-1b2c3d4e5f60"
    response = client.get("/", HTTP_HOST="evil.example", HTTP_X_REQUEST_ID=given)
    assert response.status_code == 400
    assert response["X-Request-ID"] == given
    assert [r.request_id for r in security_records] == [given]  # type: ignore[attr-defined]
    assert request_id.get() == "-"  # reset once the request is served


@pytest.mark.parametrize("given", ["", "short", "a\nforged log line", "x" * 500, "é" * 10])
def test_an_odd_request_id_is_replaced_by_a_new_one(client: Client, given: str) -> None:
    response = client.get("/health/", HTTP_X_REQUEST_ID=given, HTTP_ACCEPT="text/plain")
    rid = response["X-Request-ID"]
    assert rid != given
    assert len(rid) == 32
    assert int(rid, 16) >= 0
    assert client.get("/health/")["X-Request-ID"] != rid


def test_json_records_carry_time_level_logger_request_id_and_message() -> None:
    spec = dict(logging_config(json=True, level="INFO")["formatters"]["json"])
    factory = spec.pop("()")
    assert factory == "pythonjsonlogger.json.JsonFormatter"
    from pythonjsonlogger.json import JsonFormatter

    record = logging.LogRecord("predictor.x", logging.WARNING, __file__, 1, "hi %s", ("you",), None)
    token = request_id.set("req-12345678")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter(**spec).format(record))
    assert {k: line[k] for k in ("level", "logger", "request_id", "message")} == {
        "level": "WARNING",
        "logger": "predictor.x",
        "request_id": "req-12345678",
        "message": "hi you",
    }
    assert "time" in line


def test_production_logs_json_lines_to_stdout() -> None:
    result = run_python(
        "import django, logging; django.setup(); "
        "logging.getLogger('predictor.test').warning('ready')",
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines() if "predictor.test" in x]
    assert (line["message"], line["request_id"], line["level"]) == ("ready", "-", "WARNING")
