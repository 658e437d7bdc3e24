"""Schemathesis against the live OpenAPI schema: nothing it can send gets a 5xx.

The schema is fetched from ``/api/schema/`` of the WSGI application in this
process (so requests see the test database), and every operation gets a few
dozen requests generated from it: valid ones (positive) and ones that break it
on purpose (negative), all with a user's token so writes are exercised too.
Every 200 must also match the schema's response body.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import response_schema_conformance

from cryptooracle.wsgi import application
from predictor.ml.config import TrainConfig
from predictor.models import EvaluationReport, Market, Prediction
from predictor.services.runs import RunRequest
from predictor.services.sessions import session_create
from predictor.services.sweeps import SweepRequest, sweep_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES = 12  # per operation and mode: 23 operations x 2 modes x 12 requests


@pytest.fixture
def api_data(make_market: Callable[..., Market], settings: Any) -> dict[str, str]:
    """A market with candles, a queued session with a prediction and a report, a queued
    sweep of the user's, a user's token.

    No trained model: importing Keras for one costs more than the whole run; the
    forecast itself is covered by test_api.py.
    """
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-schema-{uuid.uuid4()}",
        }
    }
    # The token endpoint hashes every generated password: a fast hasher keeps the run short.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    market = make_market("BTCUSDT", 120)
    user = User.objects.create_user("fuzzer", password="a long enough password")
    session = session_create(TrainConfig(window=8), symbols=["BTCUSDT"], user=user)
    moment = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    Prediction.objects.create(
        session=session,
        market=market,
        anchor_time=moment,
        issued_at=moment,
        target_time=moment,
        horizon=1,
        split="test",
        predicted=101.5,
        values=[101.5],
    )
    report = EvaluationReport.objects.create(session=session, split="test", report={"mae": 0.1})
    sweep = sweep_create(
        SweepRequest(
            base=RunRequest(given={"arch": "ridge", "val_split": 0.15}, symbols=["BTCUSDT"]),
            space={"window": [8, 12]},
            objective="val_ic",
        ),
        user=user,
    )
    return {
        "token": Token.objects.create(user=user).key,
        "/api/markets/": str(market.pk),
        "/api/sessions/": str(session.pk),
        "/api/paper/": str(session.pk),
        "/api/reports/": str(report.pk),
        "/api/sweeps/": str(sweep.pk),
    }


def _check_operation(
    operation: Any,
    mode: schemathesis.GenerationMode,
    data: dict[str, str],
    statuses: Counter[int],
) -> list[str]:
    """Send generated requests for one operation; returns the failures found."""
    failures: list[str] = []
    token = data["token"]
    fixed = {}
    if mode == schemathesis.GenerationMode.POSITIVE and "{id}" in operation.path:
        # Valid requests go to an object that exists, so its query parameters get exercised.
        fixed["path_parameters"] = {
            "id": next(v for k, v in data.items() if operation.path.startswith(k))
        }

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Token {token}"})
        statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} {case.query or ''}"
        if response.status_code >= 500:
            failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
        elif response.status_code == 200 and case.method != "HEAD":
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # schemathesis raises a group of check failures
                failures.append(f"{where} -> body does not match the schema: {str(exc)[:300]}")

    run()
    return failures


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Requests through the bare WSGI app keep the test's database connection open.

    At the end of a request Django closes a connection that is not in autocommit
    mode, which is the test's transaction (on PostgreSQL; SQLite's in-memory test
    database is never closed). Django's own test client unhooks this; so does this.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("wsgi_in_test_transaction")
def test_no_request_the_schema_allows_or_breaks_gets_a_server_error(api_data: dict[str, str]):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            failures += _check_operation(operation, mode, api_data, statuses)
    assert not failures, "\n".join(failures[:20])
    # The run reached the views, not only the front door: answers and refusals both came back.
    assert statuses[200] > 0, statuses
    assert statuses[400] > 0, statuses
