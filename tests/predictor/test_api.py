"""The REST API through APIClient: markets, candles, sessions, predictions, reports, predict.

Sessions for ``/api/predict`` are trained for real (tiny networks, a second or
two each); expected forecasts are recomputed beside the API from a bundle
loaded separately, so the test fails if the API builds another window.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pickle
import re
import uuid
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.storage import storages
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictor.api.predict import sessions
from predictor.ml.config import TrainConfig
from predictor.models import (
    Candle,
    EvaluationReport,
    Market,
    Prediction,
    SessionStatus,
    TrainingSession,
)
from predictor.selectors.candles import candles_frame
from predictor.services.artifacts import artifact_names, forecasters
from predictor.services.sessions import session_create
from tests.predictor.conftest import T0

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
START = dt.datetime.fromtimestamp(T0, tz=dt.UTC)


@pytest.fixture(autouse=True)
def _own_cache_and_models(settings: Any) -> Any:
    """Throttle counts in a fresh in-memory cache; loaded models dropped after each test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-tests-{uuid.uuid4()}",
        }
    }
    yield
    forecasters.clear()
    sessions.clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def _client_for(user: User) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
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


def _queued_session(market: Market, user: User | None = None, **config: Any) -> TrainingSession:
    return session_create(
        TrainConfig(window=8, **config),
        symbols=[market.symbol],
        exchange=market.exchange,
        user=user,
    )


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- markets ---------------------------------------------------------------------------------


def test_market_list_shows_every_market_with_its_stored_coverage(api, make_market):
    make_market("BTCUSDT", 48)
    make_market("ETHUSDT", 0)
    response = api.get("/api/markets/")
    assert response.status_code == 200
    by_symbol = {m["symbol"]: m for m in response.json()["results"]}
    assert by_symbol["BTCUSDT"]["coverage"] == [
        {
            "interval": "1h",
            "candles": 48,
            "first_open": _iso(START),
            "last_open": _iso(START + 47 * HOUR),
        }
    ]
    assert by_symbol["ETHUSDT"]["coverage"] == []


def test_market_list_filters_by_exchange_and_symbol_and_refuses_unknown_exchanges(api, make_market):
    make_market("BTCUSDT", 2)
    make_market("BTCUSD", 2, exchange="gemini")
    found = api.get("/api/markets/", {"exchange": "gemini"}).json()["results"]
    assert [m["symbol"] for m in found] == ["BTCUSD"]
    found = api.get("/api/markets/", {"symbol": "btcusdt"}).json()["results"]
    assert [m["exchange"] for m in found] == ["binance"]
    response = api.get("/api/markets/", {"exchange": "nasdaq"})
    assert response.status_code == 400
    assert "exchange" in response.json()


def test_market_detail_and_unknown_market_is_404(api, make_market):
    market = make_market("BTCUSDT", 3)
    body = api.get(f"/api/markets/{market.pk}/").json()
    assert body["symbol"] == "BTCUSDT"
    assert body["coverage"][0]["candles"] == 3
    assert api.get(f"/api/markets/{market.pk + 999}/").status_code == 404


# --- candles ---------------------------------------------------------------------------------


def test_candle_pages_follow_next_links_through_every_stored_bar(
    api, make_market, django_assert_max_num_queries
):
    market = make_market("BTCUSDT", 48)
    url: str | None = f"/api/markets/{market.pk}/candles/?limit=10"
    rows: list[dict[str, Any]] = []
    pages = 0
    while url:
        with django_assert_max_num_queries(8):  # a page costs the same few queries, not one per bar
            body = api.get(url).json()
        assert body["count"] == len(body["results"]) <= 10
        rows += body["results"]
        url = body["next"]
        pages += 1
    assert pages == 5
    stored = list(
        Candle.objects.filter(market=market).order_by("open_time").values_list("open_time", "close")
    )
    assert [r["open_time"] for r in rows] == [_iso(t) for t, _ in stored]
    assert [r["close"] for r in rows] == [c for _, c in stored]
    assert {r["bars"] for r in rows} == {1}


def test_candles_resample_to_a_coarser_interval(api, make_market):
    market = make_market("BTCUSDT", 48)
    body = api.get(f"/api/markets/{market.pk}/candles/", {"interval": "1d"}).json()
    assert (body["interval"], body["source_interval"], body["count"]) == ("1d", "1h", 2)
    first_day = Candle.objects.filter(market=market, open_time__lt=START + 24 * HOUR)
    day = body["results"][0]
    assert day["open_time"] == _iso(START)
    assert day["bars"] == 24
    assert day["high"] == max(first_day.values_list("high", flat=True))
    assert day["low"] == min(first_day.values_list("low", flat=True))
    assert day["volume"] == pytest.approx(sum(first_day.values_list("volume", flat=True)))
    assert day["close"] == first_day.order_by("-open_time").first().close


def test_candles_between_start_and_end(api, make_market):
    market = make_market("BTCUSDT", 48)
    body = api.get(
        f"/api/markets/{market.pk}/candles/",
        {"start": _iso(START + 5 * HOUR), "end": _iso(START + 8 * HOUR)},
    ).json()
    assert [r["open_time"] for r in body["results"]] == [_iso(START + k * HOUR) for k in (5, 6, 7)]
    assert body["next"] is None


def test_a_gap_in_the_data_is_skipped_by_the_next_link(api, make_market):
    from tests.predictor.conftest import store_candles

    market = make_market("BTCUSDT", 5)
    later = T0 + 30 * 86400
    store_candles(market, 5, start=later, seed=1)
    body = api.get(f"/api/markets/{market.pk}/candles/", {"limit": 10}).json()
    assert body["count"] == 5
    assert "start=" in body["next"]
    following = api.get(body["next"]).json()
    assert following["results"][0]["open_time"] == _iso(dt.datetime.fromtimestamp(later, tz=dt.UTC))
    assert following["count"] == 5
    assert following["next"] is None


def test_a_market_imported_after_the_coverage_was_cached_still_has_candles(
    api, make_market, settings
):
    settings.COVERAGE_CACHE_SECONDS = 30
    make_market("BTCUSDT", 5)
    assert len(api.get("/api/markets/").json()["results"]) == 1  # coverage now cached
    later = make_market("ETHUSDT", 7)
    body = api.get(f"/api/markets/{later.pk}/candles/").json()
    assert (body["interval"], body["count"]) == ("1h", 7)


def test_a_market_without_candles_has_an_empty_page(api, make_market):
    market = make_market("ETHUSDT", 0)
    body = api.get(f"/api/markets/{market.pk}/candles/").json()
    assert (body["count"], body["results"], body["next"]) == (0, [], None)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"interval": "fortnight"}, "interval"),
        ({"interval": "1m"}, "interval"),  # finer than the stored hours
        ({"interval": "90m"}, "interval"),  # not a multiple of an hour
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z"}, "end"),
    ],
)
def test_bad_candle_queries_are_400_naming_the_parameter(api, make_market, query, field):
    market = make_market("BTCUSDT", 10)
    response = api.get(f"/api/markets/{market.pk}/candles/", query)
    assert response.status_code == 400
    assert field in response.json()


def test_candles_of_an_unknown_market_are_404(api, db):
    assert api.get("/api/markets/12345/candles/").status_code == 404


# --- training sessions -------------------------------------------------------------------------


def test_sessions_are_listed_filtered_and_shown_to_anyone(api, make_market):
    market = make_market("BTCUSDT", 50)
    session = _queued_session(market)
    listed = api.get("/api/sessions/").json()
    assert [s["id"] for s in listed["results"]] == [str(session.pk)]
    assert "history" not in listed["results"][0]
    assert api.get("/api/sessions/", {"status": "running"}).json()["results"] == []
    assert len(api.get("/api/sessions/", {"symbol": "btcusdt"}).json()["results"]) == 1
    assert api.get("/api/sessions/", {"status": "sleeping"}).status_code == 400
    detail = api.get(f"/api/sessions/{session.pk}/").json()
    assert detail["status"] == "queued"
    assert detail["config"]["window"] == 8
    assert detail["markets"] == [market.pk]
    assert api.get("/api/sessions/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.get("/api/sessions/not-a-uuid/").status_code == 404


def test_starting_a_session_needs_a_user(api, make_market):
    make_market("BTCUSDT", 50)
    response = api.post("/api/sessions/", {"symbols": ["BTCUSDT"]}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not TrainingSession.objects.exists()


def test_starting_a_session_stores_it_queued_and_sends_it_on_commit(
    as_alice, alice, make_market, django_capture_on_commit_callbacks
):
    make_market("BTCUSDT", 50)
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_alice.post(
            "/api/sessions/",
            {"symbols": ["btcusdt"], "config": {"window": 6, "epochs": 2, "features": ["ohlcv"]}},
            format="json",
        )
    assert response.status_code == 201, response.json()
    session = TrainingSession.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/sessions/{session.pk}/")
    assert session.status == SessionStatus.QUEUED
    assert session.created_by == alice
    assert (session.config["window"], session.config["epochs"]) == (6, 2)
    assert session.config["features"] == ["ohlcv"]
    assert session.symbols == ["BTCUSDT"]
    assert len(callbacks) == 1  # the Celery message goes out once the row is committed
    assert session.celery_task_id == ""


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (a Redis broker)")
def test_on_commit_the_session_is_sent_to_the_training_queue(
    as_alice, make_market, django_capture_on_commit_callbacks
):
    import redis

    make_market("BTCUSDT", 50)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post("/api/sessions/", {"symbols": ["BTCUSDT"]}, format="json")
    assert response.status_code == 201
    session = TrainingSession.objects.get(pk=response.json()["id"])
    assert session.status == SessionStatus.QUEUED
    assert session.celery_task_id
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    ours = [
        raw
        for raw in broker.lrange("training", 0, -1)
        if json.loads(raw)["headers"]["id"] == session.celery_task_id
    ]
    try:
        assert len(ours) == 1
        headers = json.loads(ours[0])["headers"]
        assert headers["task"] == "predictor.tasks.train"
        assert str(session.pk) in headers["argsrepr"]
    finally:
        for raw in ours:  # no worker of another test run should train a row that never committed
            broker.lrem("training", 1, raw)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"symbols": ["DOGEUSDT"]}, {"symbols"}),
        ({"symbols": []}, {"symbols"}),
        ({"symbols": ["BTCUSDT", "btcusdt"]}, {"symbols"}),
        ({"symbols": ["BTCUSDT"], "config": {"arch": "mlp", "target": "price"}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"epochs": 10**9}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"seed": 2**40}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"epoch": 3}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"features": ["cross"]}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"train_split": 1.5}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"max_fill": -1}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "config": {"max_fill": 100_001}}, {"config"}),
        ({"symbols": ["BTCUSDT"], "start": "2024-02-01", "end": "2024-01-01"}, {"end"}),
        ({"symbols": ["BTCUSDT"], "parent": "00000000-0000-0000-0000-000000000000"}, {"parent"}),
        ({"symbols": ["BTCUSDT"], "colour": "blue"}, {"colour"}),
    ],
)
def test_bad_session_requests_are_400_with_field_messages(as_alice, make_market, body, errors):
    make_market("BTCUSDT", 50)
    response = as_alice.post("/api/sessions/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == errors
    assert not TrainingSession.objects.exists()


def test_a_config_error_names_the_bad_hyper_parameter(as_alice, make_market):
    make_market("BTCUSDT", 50)
    response = as_alice.post(
        "/api/sessions/",
        {"symbols": ["BTCUSDT"], "config": {"arch": "mlp", "target": "price"}},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["config"]) == ["target"]


def test_the_owner_cancels_a_queued_session_others_may_not(
    api, as_alice, as_bob, alice, make_market
):
    session = _queued_session(make_market("BTCUSDT", 50), user=alice)
    url = f"/api/sessions/{session.pk}/cancel/"
    assert api.post(url).status_code == 401
    assert as_bob.post(url).status_code == 403
    response = as_alice.post(url)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED
    again = as_alice.post(url)
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


def test_staff_cancel_sessions_started_from_the_command_line(as_staff, as_alice, make_market):
    session = _queued_session(make_market("BTCUSDT", 50))  # no owner
    assert as_alice.post(f"/api/sessions/{session.pk}/cancel/").status_code == 403
    assert as_staff.post(f"/api/sessions/{session.pk}/cancel/").status_code == 200


def test_a_cancelled_session_is_retried_and_queued_again(
    as_alice, alice, make_market, django_capture_on_commit_callbacks
):
    session = _queued_session(make_market("BTCUSDT", 50), user=alice)
    url = f"/api/sessions/{session.pk}/retry/"
    assert as_alice.post(url).status_code == 409  # still queued: nothing to retry
    as_alice.post(f"/api/sessions/{session.pk}/cancel/")
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_alice.post(url)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1
    assert (
        as_alice.post("/api/sessions/00000000-0000-0000-0000-000000000000/retry/").status_code
        == 404
    )


# --- predictions and reports ---------------------------------------------------------------------


@pytest.fixture
def predictions(make_market) -> tuple[TrainingSession, Market, Market]:
    btc, eth = make_market("BTCUSDT", 50), make_market("ETHUSDT", 50, seed=1)
    session = _queued_session(btc)
    rows = [
        Prediction(
            session=session,
            market=market,
            anchor_time=START + k * HOUR,
            issued_at=START + (k + 1) * HOUR,
            target_time=START + (k + 1) * HOUR,
            horizon=1,
            split="test",
            predicted=100.0 + k,
            actual=101.0 + k if k < 20 else None,
        )
        for market in (btc, eth)
        for k in range(30)
    ]
    Prediction.objects.bulk_create(rows)
    return session, btc, eth


def test_predictions_are_paged_by_cursor_in_target_time_order(api, predictions):
    session, btc, _ = predictions
    url: str | None = f"/api/predictions/?session={session.pk}&market={btc.pk}&page_size=7"
    rows: list[dict[str, Any]] = []
    while url:
        body = api.get(url).json()
        rows += body["results"]
        url = body["next"]
    assert len(rows) == 30
    assert [r["predicted"] for r in rows] == [100.0 + k for k in range(30)]
    assert rows[0]["target_time"] == _iso(START + HOUR)
    assert rows[0]["session"] == str(session.pk)
    assert {r["symbol"] for r in rows} == {"BTCUSDT"}
    assert rows[25]["actual"] is None


def test_predictions_filter_by_symbol_and_target_time(api, predictions):
    session, _, _ = predictions
    body = api.get(
        "/api/predictions/",
        {
            "session": str(session.pk),
            "symbol": "ethusdt",
            "start": _iso(START + 5 * HOUR),
            "end": _iso(START + 8 * HOUR),
        },
    ).json()
    assert [r["target_time"] for r in body["results"]] == [
        _iso(START + k * HOUR) for k in (5, 6, 7)
    ]
    assert {r["symbol"] for r in body["results"]} == {"ETHUSDT"}


@pytest.mark.parametrize(
    ("query", "field"),
    [({}, "session"), ({"session": "nope"}, "session"), ({"market": "x"}, "market")],
)
def test_bad_prediction_filters_are_400(api, predictions, query, field):
    session, _, _ = predictions
    params = {"session": str(session.pk), **query} if field != "session" else query
    response = api.get("/api/predictions/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_reports_by_session_and_split(api, make_market):
    session = _queued_session(make_market("BTCUSDT", 50))
    test = EvaluationReport.objects.create(session=session, split="test", report={"mae": 1.5})
    EvaluationReport.objects.create(session=session, split="validation", report={"mae": 1.2})
    found = api.get("/api/reports/", {"session": str(session.pk), "split": "test"}).json()
    assert [r["id"] for r in found["results"]] == [test.pk]
    assert found["results"][0]["report"] == {"mae": 1.5}
    assert len(api.get("/api/reports/", {"session": str(session.pk)}).json()["results"]) == 2
    assert api.get(f"/api/reports/{test.pk}/").json()["split"] == "test"
    assert api.get(f"/api/reports/{test.pk + 99}/").status_code == 404
    assert api.get("/api/reports/", {"session": "x"}).status_code == 400


# --- POST /api/predict ----------------------------------------------------------------------------


def _window(market: Market, n: int, *, times: bool = True) -> list[dict[str, Any]]:
    frame = candles_frame(market).iloc[-n:]
    rows = [
        {k: float(row[k]) for k in ("open", "high", "low", "close", "volume")}
        for _, row in frame.iterrows()
    ]
    if times:
        for row, stamp in zip(rows, frame.index, strict=True):
            row["open_time"] = _iso(stamp.to_pydatetime())
    return rows


def _expected(session: TrainingSession, n: int) -> np.ndarray:
    """The session's forecast for the last ``n`` stored candles, from a separately loaded bundle."""
    from predictor.ml.artifacts import latest_window
    from predictor.services.artifacts import session_bundle

    bundle = session_bundle(session)
    frame = candles_frame(session.markets.get()).iloc[-n:][
        ["open", "high", "low", "close", "volume"]
    ]
    _, window = latest_window(bundle, frame)
    return np.asarray(bundle.predict(window[None])[0])


def test_predict_with_an_lstm_price_session_answers_each_step(api, trained_session):
    # "returns" needs 60 candles of history before the window of 8: 68 in all.
    session = trained_session(
        arch="lstm", target="price", output_size=2, features=("close", "returns")
    )
    market = session.markets.get()
    url, sid = "/api/predict", str(session.pk)
    short = api.post(url, {"session": sid, "candles": _window(market, 8)}, format="json")
    assert short.status_code == 400
    assert "needs at least 68 candles" in short.json()["candles"][0]

    response = api.post(url, {"session": sid, "candles": _window(market, 68)}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    expected = _expected(session, 68).tolist()
    assert body["values"] == pytest.approx(expected, rel=1e-5)
    last = START + 399 * HOUR
    assert body["anchor_time"] == _iso(last)
    assert body["issued_at"] == _iso(last + HOUR)
    assert body["horizons"] == [1, 2]
    assert body["target_times"] == [_iso(last + HOUR), _iso(last + 2 * HOUR)]
    assert body["forecasts"][0]["market"] == "BTCUSDT"
    assert session in forecasters  # the loaded model stays for the next request

    # Without open times: the same window gives the same values, and no times are invented.
    untimed = api.post(
        url, {"session": sid, "candles": _window(market, 68, times=False)}, format="json"
    ).json()
    assert untimed["values"] == pytest.approx(expected, rel=1e-5)
    assert (untimed["anchor_time"], untimed["target_times"]) == (None, [None, None])
    # More history than needed is fine: the newest window counts.
    longer = api.post(url, {"session": sid, "candles": _window(market, 90)}, format="json")
    assert longer.json()["values"] == pytest.approx(expected, rel=1e-5)


def test_predict_with_a_range_session_answers_rise_decline_and_end(api, trained_session):
    session = trained_session(arch="range", target="range", horizon=5)
    market = session.markets.get()
    body = api.post(
        "/api/predict", {"session": str(session.pk), "candles": _window(market, 8)}, format="json"
    ).json()
    expected = _expected(session, 8)
    assert [body["maxRisePct"], body["maxDeclinePct"], body["endChangePct"]] == pytest.approx(
        expected.tolist(), rel=1e-5
    )
    assert body["target_time"] == _iso(START + 399 * HOUR + 5 * HOUR)


def test_predict_with_an_updown_classifier_answers_probabilities_and_label(api, trained_session):
    session = trained_session(
        arch="mlp", target="updown", loss="sparse_categorical_crossentropy", horizon=3
    )
    market = session.markets.get()
    body = api.post(
        "/api/predict", {"session": str(session.pk), "candles": _window(market, 8)}, format="json"
    ).json()
    probabilities = body["probabilities"]
    assert list(probabilities) == ["sell", "hold", "buy"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert list(probabilities.values()) == pytest.approx(_expected(session, 8).tolist(), rel=1e-5)
    assert body["label"] == max(probabilities, key=probabilities.get)


@pytest.fixture
def zero_session(trained_session) -> TrainingSession:
    """A trained baseline: the predict path without Keras weights, in milliseconds."""
    return trained_session(arch="zero", target="return")


def _candles(n: int = 8, **changes: Any) -> list[dict[str, Any]]:
    rows = [
        {
            "open_time": _iso(START + k * HOUR),
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 3.0,
        }
        for k in range(n)
    ]
    for index, values in changes.items():
        rows[int(index.removeprefix("row"))].update(values)
    return rows


@pytest.mark.parametrize(
    ("candles", "field", "message"),
    [
        (_candles(7), "candles", "needs at least 8 candles"),
        ("not a list", "candles", "list"),
        ([], "candles", "list"),
        (_candles(8, row3={"high": "lots"}), "candles", "number"),
        (_candles(8, row2={"high": 90.0}), "candles", "high is below low"),
        (_candles(8, row0={"open": -1.0}), "candles", "positive"),
        (_candles(8, row5={"volume": -2.0}), "candles", "negative"),
        (_candles(8, row1={"open_time": None}), "candles", "every candle or on none"),
        (_candles(8, row1={"open_time": "2024-01-01T00:00:00Z"}), "candles", "increase"),
        (_candles(8, row7={"open_time": "2024-01-01T07:30:00Z"}), "candles", "grid"),
        (_candles(8, row7={"open_time": "soon"}), "candles", "ISO 8601"),
        ([*_candles(7), [1, 2, 3, 4, 5]], "candles", "object"),
    ],
)
def test_invalid_candles_are_400_with_a_message_naming_the_problem(
    api, zero_session, candles, field, message
):
    response = api.post(
        "/api/predict", {"session": str(zero_session.pk), "candles": candles}, format="json"
    )
    assert response.status_code == 400
    assert message in json.dumps(response.json()[field])


def test_a_missing_value_names_the_candle_and_the_field(api, zero_session):
    candles = _candles(8)
    del candles[4]["close"]
    response = api.post(
        "/api/predict", {"session": str(zero_session.pk), "candles": candles}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["candles"]["4"]["close"] == ["this field is required"]


def test_predict_with_a_baseline_session_works_too(api, zero_session):
    response = api.post(
        "/api/predict", {"session": str(zero_session.pk), "candles": _candles(8)}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["values"] == [0.0]  # the zero-return baseline


def test_predict_sees_a_session_retried_after_its_row_was_kept(api, zero_session):
    body = {"session": str(zero_session.pk), "candles": _candles(8)}
    assert api.post("/api/predict", body, format="json").status_code == 200  # row now kept
    TrainingSession.objects.filter(pk=zero_session.pk).update(
        status="queued", attempts=zero_session.attempts + 1, finished=None
    )
    response = api.post("/api/predict", body, format="json")
    assert response.status_code == 400
    assert "queued" in response.json()["session"][0]
    TrainingSession.objects.filter(pk=zero_session.pk).delete()
    gone = api.post("/api/predict", body, format="json")
    assert "no such training session" in gone.json()["session"][0]


def test_predict_refuses_unknown_and_untrained_sessions(api, zero_session, make_market):
    queued = _queued_session(make_market("ETHUSDT", 20))
    for session_id, message in (
        ("00000000-0000-0000-0000-000000000000", "no such training session"),
        (str(queued.pk), "queued"),
        ("12", "UUID"),
    ):
        response = api.post(
            "/api/predict", {"session": session_id, "candles": _candles(8)}, format="json"
        )
        assert response.status_code == 400
        assert message in response.json()["session"][0]
    both = api.post(
        "/api/predict",
        {"session": str(zero_session.pk), "candles": _candles(8), "markets": {}},
        format="json",
    )
    assert both.status_code == 400
    wrong = api.post(
        "/api/predict",
        {"session": str(zero_session.pk), "markets": {"ETHUSDT": _candles(8)}},
        format="json",
    )
    assert wrong.status_code == 400
    assert "BTCUSDT" in wrong.json()["markets"][0]


def test_predict_with_damaged_model_files_is_409_not_500(api, zero_session):
    model_name, _, _ = artifact_names(zero_session)
    storages["model_weights"].delete(model_name)
    response = api.post(
        "/api/predict", {"session": str(zero_session.pk), "candles": _candles(8)}, format="json"
    )
    assert response.status_code == 409
    assert "missing" in response.json()["detail"]


def test_a_several_market_session_takes_candles_per_market(api, make_market):
    from predictor.ml.artifacts import latest_window
    from predictor.services.artifacts import session_bundle
    from predictor.services.training import session_run

    btc, eth = make_market("BTCUSDT", 200), make_market("ETHUSDT", 200, seed=1)
    config = TrainConfig(window=8, arch="ridge", target="return", horizon=2, features=("close",))
    session = session_run(session_create(config, symbols=["BTCUSDT", "ETHUSDT"]).pk)
    assert session.status == SessionStatus.SUCCEEDED, session.error
    windows = {"BTCUSDT": _window(btc, 8), "ethusdt": _window(eth, 8)}
    response = api.post(
        "/api/predict", {"session": str(session.pk), "markets": windows}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    bundle = session_bundle(session)
    frames = {m.symbol: candles_frame(m).iloc[-8:] for m in (btc, eth)}
    expected = bundle.predict(latest_window(bundle, frames)[1][None])[0]
    assert [f["market"] for f in body["forecasts"]] == ["BTCUSDT", "ETHUSDT"]
    assert [f["values"][0] for f in body["forecasts"]] == pytest.approx(expected.tolist())
    assert "values" not in body  # no single answer at the top level for several markets
    untimed = {"BTCUSDT": _window(btc, 8, times=False), "ETHUSDT": _window(eth, 12, times=False)}
    body = api.post(
        "/api/predict", {"session": str(session.pk), "markets": untimed}, format="json"
    ).json()  # without times the markets' last candles are taken to be the same bar
    assert [f["values"][0] for f in body["forecasts"]] == pytest.approx(expected.tolist())
    one = api.post(
        "/api/predict", {"session": str(session.pk), "candles": _window(btc, 8)}, format="json"
    )
    assert one.status_code == 400
    assert "ETHUSDT" in one.json()["markets"][0]


def test_loaded_models_are_kept_least_recently_used_first_out(trained_session, make_market):
    from predictor.services.artifacts import ForecasterCache

    market = make_market("ETHUSDT", 100)
    first, second, third = (
        trained_session(arch="zero", target="return", market=market) for _ in range(3)
    )
    cache = ForecasterCache(size=2)
    loaded = cache.get(first)
    cache.get(second)
    assert cache.get(first) is loaded  # a hit: the same object, not loaded again
    cache.get(third)  # evicts the least recently used: second
    assert (first in cache, second in cache, third in cache) == (True, False, True)
    assert len(cache) == 2


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/python-pickle", pickle.dumps({"session": "x", "candles": []})),
        ("application/octet-stream", b"\x93NUMPY\x01\x00"),
        ("application/x-www-form-urlencoded", b"session=x&candles=1"),
        ("text/plain", b'{"session": "x"}'),
    ],
)
def test_predict_reads_json_only(api, db, content_type, payload):
    response = api.post("/api/predict", payload, content_type=content_type)
    assert response.status_code == 415


def test_multipart_uploads_are_refused(as_alice, db):
    upload = io.BytesIO(np.zeros(4).tobytes())
    upload.name = "window.npy"
    for url in ("/api/predict", "/api/sessions/"):
        response = as_alice.post(url, {"file": upload}, format="multipart")
        assert response.status_code == 415


def test_an_oversized_body_is_refused_before_it_is_read(api, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    body = json.dumps({"session": "x", "candles": _candles(40)})
    assert len(body) > 2_000
    response = api.post("/api/predict", body, content_type="application/json")
    assert response.status_code == 413


def test_non_standard_or_deeply_nested_json_is_400(api, db):
    for body in (
        '{"session": NaN}',
        "[" * 100_000 + "]" * 100_000,
        "{not json",
        '{"username": "\\ud800", "password": "x"}',  # a lone surrogate: valid JSON, not text
    ):
        for url in ("/api/predict", "/api/auth/token/"):
            response = api.post(url, body, content_type="application/json")
            assert response.status_code == 400, (url, body[:20])
    pair = api.post(
        "/api/predict", '{"session": "\\ud83d\\ude00"}', content_type="application/json"
    )
    assert "session" in pair.json()  # a proper surrogate pair (an emoji) is text, read as usual


def test_predict_is_throttled_per_client(api, db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"predict": "3/minute"},
    }
    codes = [api.post("/api/predict", {}, format="json").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    assert int(api.post("/api/predict", {}, format="json")["Retry-After"]) > 0
    other = APIClient(REMOTE_ADDR="10.0.0.2")
    assert other.post("/api/predict", {}, format="json").status_code == 400


def test_a_forged_forwarded_for_header_does_not_reset_the_throttle(api, db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"predict": "3/minute"},
    }
    codes = [
        api.post(
            "/api/predict", {}, format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(100)
    ]
    assert codes[:3] == [400, 400, 400]
    assert set(codes[3:]) == {429}


def test_behind_one_proxy_the_address_it_appended_is_the_client(api, db, settings):
    settings.NUM_PROXIES = 1
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"predict": "2/minute"},
    }

    def post(forwarded: str) -> int:
        return api.post(
            "/api/predict", {}, format="json", HTTP_X_FORWARDED_FOR=forwarded
        ).status_code

    assert [post(f"10.9.9.{n}, 198.51.100.7") for n in range(3)] == [400, 400, 429]
    assert post("198.51.100.8") == 400  # another client behind the same router


# --- tokens and documentation ----------------------------------------------------------------------


def test_a_token_from_the_token_endpoint_authorises_writes(api, alice, make_market):
    make_market("BTCUSDT", 50)
    response = api.post(
        "/api/auth/token/",
        {"username": "alice", "password": "correct horse battery"},
        format="json",
    )
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    created = client.post("/api/sessions/", {"symbols": ["BTCUSDT"]}, format="json")
    assert created.status_code == 201
    wrong = api.post("/api/auth/token/", {"username": "alice", "password": "x"}, format="json")
    assert wrong.status_code == 400


def test_the_openapi_schema_describes_every_endpoint(api, db):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/markets/",
        "/api/markets/{id}/candles/",
        "/api/sessions/",
        "/api/sessions/{id}/cancel/",
        "/api/sessions/{id}/retry/",
        "/api/predictions/",
        "/api/reports/",
        "/api/predict",
    ):
        assert path in schema["paths"]
    config = schema["components"]["schemas"]["TrainConfigRequest"]["properties"]
    assert {"window", "epochs", "arch", "features"} <= set(config)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_documentation_pages_load_their_assets_from_this_site_only(api, db, url):
    from django.contrib.staticfiles import finders

    response = api.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assert "://" not in html  # no CDN, no web fonts, no validator badge
    scripts = re.findall(r'src="([^"]+)"', html)
    assert scripts
    for src in scripts:  # every script is a static file this site serves
        assert src.startswith("/static/"), src
        assert finders.find(src.removeprefix("/static/")), src


def test_the_browsable_api_renders_html(api, make_market, alice):
    make_market("BTCUSDT", 3)
    response = api.get("/api/markets/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "BTCUSDT" in response.content.decode()
    api.force_login(alice)  # a signed-in user gets the JSON form to start a session
    form = api.get("/api/sessions/", HTTP_ACCEPT="text/html").content.decode()
    assert "application/json" in form
    assert 'name="_content"' in form


@pytest.mark.parametrize(
    ("change", "value"), [("interval", "1d"), ("horizon", 3), ("cnn_blocks", 4), ("units", 9)]
)
def test_an_api_continuation_cannot_change_what_the_model_was_built_with(
    as_alice, trained_session, change, value
):
    parent = trained_session()
    body = {"symbols": parent.symbols, "parent": str(parent.pk), "config": {change: value}}
    response = as_alice.post("/api/sessions/", body, format="json")
    assert response.status_code == 400, response.content
    assert "a continuation cannot change it" in response.json()["config"][change][0]
    assert TrainingSession.objects.count() == 1


def test_an_api_continuation_inherits_the_parents_config(
    as_alice, trained_session, django_capture_on_commit_callbacks
):
    parent = trained_session(window=6)
    body = {"symbols": parent.symbols, "parent": str(parent.pk), "config": {"epochs": 2}}
    with django_capture_on_commit_callbacks():
        response = as_alice.post("/api/sessions/", body, format="json")
    assert response.status_code == 201, response.content
    child = TrainingSession.objects.get(pk=response.json()["id"])
    assert child.config == {**parent.config, "epochs": 2}
    assert child.requested_start > parent.data_end
