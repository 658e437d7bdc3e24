"""``/api/sweeps/`` through APIClient: reads for anyone, writes for a user, changes for the
owner or staff, refusals as 400s naming the field with nothing stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictor.models import EvaluationReport, Market, SessionStatus, Sweep, TrainingSession
from predictor.services.runs import RunRequest
from predictor.services.sweeps import SweepRequest, sweep_create, sweep_run_here

pytestmark = pytest.mark.django_db

BASE = {"arch": "ridge", "target": "return", "interval": "1h", "val_split": 0.15, "horizon": 4}


@pytest.fixture(autouse=True)
def _fast_users(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def market(make_market: Callable[..., Market]) -> Market:
    return make_market("BTCUSDT", 500)


def _client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def as_alice(alice: User) -> APIClient:
    return _client_for(alice)


@pytest.fixture
def as_bob() -> APIClient:
    return _client_for(User.objects.create_user("bob", password="another long password"))


@pytest.fixture
def as_staff() -> APIClient:
    return _client_for(User.objects.create_user("root", password="pw-staff-1234", is_staff=True))


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbols": ["BTCUSDT"],
        "config": dict(BASE),
        "space": {"window": [8, 16]},
        "objective": "val_ic",
    }
    body.update(overrides)
    return body


def _sweep(user: User | None = None, **kwargs: Any) -> Sweep:
    request = SweepRequest(
        base=RunRequest(given=BASE, symbols=["BTCUSDT"]),
        **{"space": {"window": [8, 16]}, "objective": "val_ic", **kwargs},
    )
    return sweep_create(request, user=user)


def test_sweeps_are_listed_and_shown_to_anyone_with_progress_and_trials(
    market: Market, alice: User
) -> None:
    api = APIClient()
    sweep = _sweep(alice, space={"window": [8, 16], "learning_rate": [0.5]}, name="windows")
    listed = api.get("/api/sweeps/").json()
    assert [s["id"] for s in listed["results"]] == [str(sweep.pk)]
    row = listed["results"][0]
    assert (row["name"], row["status"], row["n_created"], row["n_done"]) == ("windows", "queued", 2, 0)  # fmt: skip
    assert row["created_by"] == "alice"
    assert "trials" not in row
    assert api.get("/api/sweeps/", {"status": "running"}).json()["results"] == []
    assert api.get("/api/sweeps/", {"status": "sleeping"}).status_code == 400

    detail = api.get(f"/api/sweeps/{sweep.pk}/").json()
    assert detail["progress"]["planned"] == 2
    assert detail["progress"]["counts"]["queued"] == 2
    assert detail["progress"]["best_trial"] is None
    assert [t["trial_number"] for t in detail["trials"]] == [0, 1]
    assert [t["params"] for t in detail["trials"]] == [
        {"window": 8, "learning_rate": 0.5},
        {"window": 16, "learning_rate": 0.5},
    ]
    assert all(t["status"] == "queued" and t["objective_value"] is None for t in detail["trials"])
    assert detail["trials"][0]["url"].endswith(f"/api/sessions/{detail['trials'][0]['id']}/")
    assert detail["winner"] is None
    assert detail["winner_detail"] is None
    assert api.get(f"/api/sweeps/{uuid.UUID(int=0)}/").status_code == 404
    assert api.get("/api/sweeps/not-a-uuid/").status_code == 404


def test_starting_a_sweep_needs_a_user_and_stores_nothing_without_one(market: Market) -> None:
    response = APIClient().post("/api/sweeps/", _body(), format="json")
    assert response.status_code == 401
    assert not Sweep.objects.exists()
    assert not TrainingSession.objects.exists()


def test_starting_a_sweep_stores_its_trials_and_sends_them_on_commit(
    as_alice: APIClient, alice: User, market: Market, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_alice.post(
            "/api/sweeps/",
            _body(space={"window": [8, 12, 16]}, name="w", seed=3, parallel=2),
            format="json",
        )
    assert response.status_code == 201, response.json()
    sweep = Sweep.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/sweeps/{sweep.pk}/")
    assert (sweep.method, sweep.objective, sweep.n_trials, sweep.seed) == ("grid", "val_ic", 3, 3)
    assert sweep.created_by == alice
    assert sweep.space == {"window": {"values": [8, 12, 16]}}
    assert sweep.base["given"] == BASE
    trials = list(sweep.trials.order_by("trial_number"))
    assert [t.config["window"] for t in trials] == [8, 12, 16]
    assert all(t.status == SessionStatus.QUEUED and t.created_by == alice for t in trials)
    assert len(callbacks) == 1  # one Celery group, sent once the rows are committed
    assert len(response.json()["trials"]) == 3


def test_a_range_is_typed_by_its_config_field(
    as_alice: APIClient, market: Market, django_capture_on_commit_callbacks: Any
) -> None:
    space = {"window": {"low": 6, "high": 20}, "learning_rate": {"low": "0.1", "high": 1, "log": True}}  # fmt: skip
    with django_capture_on_commit_callbacks():
        response = as_alice.post(
            "/api/sweeps/", _body(space=space, method="random", n_trials=3), format="json"
        )
    assert response.status_code == 201, response.json()
    sweep = Sweep.objects.get()
    assert sweep.space == {
        "window": {"low": 6, "high": 20, "log": False},
        "learning_rate": {"low": 0.1, "high": 1.0, "log": True},
    }
    params = [t["params"] for t in response.json()["trials"]]
    assert len(params) == 3
    assert all(isinstance(p["window"], int) and 6 <= p["window"] <= 20 for p in params)


@pytest.mark.parametrize(
    ("overrides", "errors"),
    [
        ({"space": {"window": [8, 0]}}, {"space": {"window": "window=0"}}),
        ({"space": {"window": ["eight"]}}, {"space": {"window": "valid integer"}}),
        ({"space": {"target": ["return", "logreturn"]}}, {"space": {"target": "cannot vary"}}),
        ({"space": {"colour": [1, 2]}}, {"space": {"colour": "not a training parameter"}}),
        ({"space": {"features": {"low": 1, "high": 2}}}, {"space": {"features": "range"}}),
        ({"space": {"window": {"low": 8}}}, {"space": {"window": "a range is"}}),
        ({"space": {"window": [8, None]}}, {"space": {"window": "not null"}}),
        ({"space": {}}, {"space": "at least one"}),
        ({"space": {"window": list(range(1, 30)), "units": list(range(1, 30))}}, {"space": "841"}),
        ({"objective": "val_loss"}, {"objective": "records no validation loss"}),
        ({"method": "random"}, {"n_trials": "trials: give 1"}),
        ({"method": "annealing"}, {"method": "valid choice"}),
        ({"parallel": 0}, {"parallel": "greater than or equal to 1"}),
        ({"symbols": ["DOGEUSDT"]}, {"symbols": "DOGEUSDT"}),
        ({"config": {**BASE, "evaluation": False}}, {"config": {"evaluation": "evaluation"}}),
        ({"config": {**BASE, "val_split": 0.0}}, {"config": {"val_split": "validation split"}}),
        ({"config": {**BASE, "interval": "7m"}}, {"config": {"interval": "use one of"}}),
        ({"parent": str(uuid.UUID(int=0))}, {"parent": "unknown field"}),
    ],
)
def test_bad_sweep_requests_are_400_naming_the_field_and_store_nothing(
    as_alice: APIClient, market: Market, overrides: dict[str, Any], errors: dict[str, Any]
) -> None:
    response = as_alice.post("/api/sweeps/", _body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    for field, expected in errors.items():
        assert set(body) == {field}, body
        found = body[field]
        if isinstance(expected, dict):
            ((key, text),) = expected.items()
            assert set(found) == {key}, found
            found = found[key]
        else:
            text = expected
        assert text in json.dumps(found), found
    assert not Sweep.objects.exists()
    assert not TrainingSession.objects.exists()


def test_the_owner_cancels_and_resumes_a_sweep_others_may_not(
    as_alice: APIClient,
    as_bob: APIClient,
    alice: User,
    market: Market,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sweep = _sweep(alice)
    cancel, resume = f"/api/sweeps/{sweep.pk}/cancel/", f"/api/sweeps/{sweep.pk}/resume/"
    assert APIClient().post(cancel).status_code == 401
    assert as_bob.post(cancel).status_code == 403
    assert as_bob.post(resume).status_code == 403
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.QUEUED

    response = as_alice.post(cancel)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert {t["status"] for t in response.json()["trials"]} == {"cancelled"}
    again = as_alice.post(cancel)
    assert again.status_code == 409
    assert "only a running one cancels" in again.json()["detail"]

    with django_capture_on_commit_callbacks() as callbacks:
        response = as_alice.post(resume)
    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert {t["status"] for t in response.json()["trials"]} == {"queued"}
    assert len(callbacks) == 1  # the trials go out again as one group


def test_staff_change_sweeps_started_from_the_command_line(
    as_staff: APIClient, as_alice: APIClient, market: Market
) -> None:
    sweep = _sweep()  # no owner
    assert as_alice.post(f"/api/sweeps/{sweep.pk}/cancel/").status_code == 403
    assert as_staff.post(f"/api/sweeps/{sweep.pk}/cancel/").status_code == 200
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.CANCELLED


def test_a_finished_sweep_names_its_winner_and_links_its_test_report(
    as_alice: APIClient, alice: User, market: Market
) -> None:
    sweep = sweep_run_here(_sweep(alice))
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    detail = APIClient().get(f"/api/sweeps/{sweep.pk}/").json()
    winner = detail["winner_detail"]
    assert detail["winner"] == winner["id"] == str(sweep.winner_id)
    values = {t["trial_number"]: t["objective_value"] for t in detail["trials"]}
    assert winner["objective_value"] == max(values.values())  # IC: higher wins
    assert winner["params"] == {"window": [8, 16][winner["trial_number"]]}
    assert detail["progress"]["done"] == 2
    assert detail["progress"]["best_trial"] == winner["trial_number"]

    report = EvaluationReport.objects.get(session_id=sweep.winner_id, split="test")
    test = winner["test_report"]
    assert test["id"] == report.pk
    assert test["page"] == f"/evaluation/?session={sweep.winner_id}#report-test"
    assert APIClient().get(test["url"]).json()["split"] == "test"
    assert test["headline"]["ic"] == pytest.approx(report.report["ic"]["ic"])
    assert test["headline"]["n_forecasts"] == report.report["n_forecasts"]
    assert test["headline"]["market"] == "BTCUSDT"

    response = as_alice.post(f"/api/sweeps/{sweep.pk}/resume/")
    assert response.status_code == 409
    assert "nothing to resume" in response.json()["detail"]


def test_the_schema_describes_the_sweep_endpoints(db: None) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/sweeps/", "/api/sweeps/{id}/", "/api/sweeps/{id}/cancel/", "/api/sweeps/{id}/resume/"):  # fmt: skip
        assert path in schema["paths"]
    create = schema["components"]["schemas"]["SweepCreateRequest"]["properties"]
    assert {"symbols", "config", "space", "method", "n_trials", "parallel", "objective"} <= set(create)  # fmt: skip
    assert "parent" not in create
