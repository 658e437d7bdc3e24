"""``evaluate --forward``: forecasts after the training data, θ frozen before them."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import Client
from django.urls import reverse

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import choose_threshold
from predictor.models import EvaluationReport, Market, Prediction, TrainingSession
from tests.predictor.conftest import T0, TINY, store_candles

pytestmark = pytest.mark.django_db

HOUR = 3600
TRAINED = 400  # the sessions train on the first 400 hourly candles of 600


def evaluate(session: TrainingSession, *args: str) -> str:
    out = io.StringIO()
    call_command("evaluate", "-T", str(session.pk), *args, stdout=out)
    return out.getvalue()


def forward_report(session: TrainingSession) -> dict[str, Any]:
    return EvaluationReport.objects.get(session=session, split="forward").report


@pytest.fixture
def market(make_market: Callable[..., Market]) -> Market:
    return make_market("BTCUSDT", 600)


@pytest.fixture
def train(market: Market) -> Callable[..., TrainingSession]:
    """A session trained on the candles up to hour ``TRAINED - 1`` only."""
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    def make(*, on: Market | None = None, **overrides: Any) -> TrainingSession:
        config = TrainConfig(**{**TINY, "arch": "ridge", **overrides})
        end = dt.datetime.fromtimestamp(T0 + (TRAINED - 1) * HOUR, tz=dt.UTC)
        session = session_create(config, symbols=[(on or market).symbol], end=end)
        session = session_run(session.pk)
        assert session.status == "succeeded", session.error
        return session

    return make


def forward_anchors(session: TrainingSession) -> list[int]:
    """Hours of the stored step-1 forecasts after the data end whose outcome is known."""
    rows = Prediction.objects.filter(
        session=session, step=1, anchor_time__gt=session.data_end, actual__isnull=False
    )
    return sorted(int((p.anchor_time.timestamp() - T0) // HOUR) for p in rows)


def test_a_production_session_is_judged_forward_with_theta_from_its_evaluation_session(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    evaluation = train()
    assert production.data_end == dt.datetime.fromtimestamp(T0 + 399 * HOUR, tz=dt.UTC)
    out = evaluate(production, "--forward", "--theta-from", str(evaluation.pk))
    assert "Forecasts were missing: made" in out
    assert "Evaluation report — forward (never seen in training)" in out
    assert f"θ source: validation of session {evaluation.pk}" in out
    report = forward_report(production)
    # Every anchor after the data end whose target (h = 1) is on the candles: hours 400..598.
    assert forward_anchors(production) == list(range(TRAINED, 599))
    assert report["n_forecasts"] == 599 - TRAINED
    assert report["start"].startswith("2024-01-17T16:00")  # hour 400
    assert report["split"] == "forward"
    assert report["kind"] == "strategy"
    assert report["in_sample"] is False
    assert report["theta_source"] == f"validation of session {evaluation.pk}"
    assert set(report["tests"]) >= {"t_test", "binomial", "deflated_sharpe", "dm_vs_persistence"}
    assert report["n_trials"] == 1  # the one evaluation session on the market
    assert "production session not among them" in report["n_trials_counts"]
    evaluate(evaluation)
    validation = EvaluationReport.objects.get(session=evaluation, split="validation").report
    assert report["threshold"] == validation["threshold"]


def test_an_evaluation_session_keeps_its_validation_theta_whatever_the_forward_data(
    train: Callable[..., TrainingSession], market: Market
) -> None:
    from predictor.services.split_inputs import (
        forecast_rows,
        market_array,
        part_inputs,
        usable_anchors,
    )

    session = train()
    evaluate(session)
    chosen = EvaluationReport.objects.get(session=session, split="validation").report["threshold"]
    out = evaluate(session, "--forward")
    assert "θ source: validation of this session" in out
    assert forward_report(session)["threshold"] == chosen
    # Forward errors three times as large: a θ chosen on these forecasts would move.
    Prediction.objects.filter(
        session=session, anchor_time__gt=session.data_end, actual__isnull=False
    ).update(predicted=F("actual") + (F("predicted") - F("actual")) * 3)
    evaluate(session, "--forward")
    assert forward_report(session)["threshold"] == chosen
    config = TrainConfig.from_dict(session.config)
    array = market_array(market, config.interval, session.data_start)
    part = part_inputs(
        config,
        array,
        usable_anchors(config, array),
        forecast_rows(session, market, after=session.data_end),
    )
    assert part is not None
    on_forward = choose_threshold(
        validation_open=part.inputs.open,
        validation_forecast=part.inputs.predicted_return,
        validation_times=part.inputs.times,
        horizon=part.inputs.horizon,
        bars_per_year=part.inputs.bars_per_year,
    )
    assert on_forward.theta != chosen["theta"]
    assert EvaluationReport.objects.filter(session=session, split="forward").count() == 1
    with pytest.raises(CommandError, match="own validation split"):
        evaluate(session, "--forward", "--theta", "0.001")


def test_a_theta_given_by_the_user_is_used_and_recorded(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    out = evaluate(production, "--forward", "--theta", "0.002", "--fee", "0.0005")
    report = forward_report(production)
    assert report["threshold"]["theta"] == 0.002
    assert report["strategy"]["config"]["theta"] == 0.002
    assert report["strategy"]["config"]["fee"] == 0.0005
    assert report["theta_source"] == "given by the user"
    assert "θ source: given by the user" in out


def test_without_a_theta_source_the_error_names_the_flags_to_add(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    with pytest.raises(CommandError, match=r"add --theta-from ID .* or --theta X"):
        evaluate(production, "--forward")
    assert not EvaluationReport.objects.filter(session=production).exists()
    with pytest.raises(CommandError, match="not both"):
        evaluate(production, "--forward", "--theta", "0.1", "--theta-from", str(production.pk))


def test_theta_from_must_be_an_evaluation_session_forecasting_the_same_thing(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    other_horizon = train(horizon=2)
    with pytest.raises(CommandError, match=r"--theta-from .*effective_horizon is 2, not 1"):
        evaluate(production, "--forward", "--theta-from", str(other_horizon.pk))
    another_production = train(evaluation=False, seed=1)
    with pytest.raises(CommandError, match="succeeded evaluation session"):
        evaluate(production, "--forward", "--theta-from", str(another_production.pk))
    with pytest.raises(CommandError, match="--theta-from: 'nope' is not a session id"):
        evaluate(production, "--forward", "--theta-from", "nope")


def test_anchors_at_or_before_the_data_end_are_never_scored(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    evaluate(production, "--forward", "--theta", "0.001")
    before = forward_report(production)
    assert before["n_forecasts"] == 599 - TRAINED
    # The same stored forecasts, with a data end 10 bars later: those 10 anchors drop out.
    TrainingSession.objects.filter(pk=production.pk).update(
        data_end=F("data_end") + dt.timedelta(hours=10)
    )
    production.refresh_from_db()
    evaluate(production, "--forward", "--theta", "0.001")
    after = forward_report(production)
    assert after["n_forecasts"] == before["n_forecasts"] - 10
    assert after["start"].startswith("2024-01-18T02:00")  # hour 410
    assert EvaluationReport.objects.filter(session=production, split="forward").count() == 1


def test_start_and_end_bound_the_forward_period(train: Callable[..., TrainingSession]) -> None:
    production = train(evaluation=False)
    evaluate(production, "--forward", "--theta", "0.001")  # forecasts made here
    out = evaluate(
        production,
        "--forward",
        "--theta",
        "0.001",
        "--start",
        "2024-01-18T00:00",  # hour 408
        "--end",
        "2024-01-20T23:00",  # hour 479
    )
    assert "Forecasts were missing" not in out
    report = forward_report(production)
    assert report["n_forecasts"] == 479 - 408 + 1
    assert report["start"].startswith("2024-01-18T00:00")


def test_forward_rows_obey_the_gap_rule(
    make_market: Callable[..., Market], train: Callable[..., TrainingSession]
) -> None:
    gappy = make_market("ETHUSDT", 0)
    store_candles(gappy, 500)
    store_candles(gappy, 95, start=T0 + 505 * HOUR, seed=1)  # bars 500..504 are missing
    production = train(on=gappy, evaluation=False)  # window 8, price, horizon 1
    evaluate(production, "--forward", "--theta", "0.001")
    report = forward_report(production)
    # Anchors 400..598 on the bar grid, less those whose window (8 bars) or target reads the gap.
    assert report["gaps"]["windows_dropped"] == 5 + 7 + 1
    assert report["gaps"]["filled_bars"] == 5
    assert report["n_forecasts"] == 199 - 13
    hours = set(forward_anchors(production))
    assert not hours & set(range(499, 512))


def test_a_forward_period_with_too_few_forecasts_is_refused(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    TrainingSession.objects.filter(pk=production.pk).update(
        data_end=dt.datetime.fromtimestamp(T0 + 598 * HOUR, tz=dt.UTC)
    )
    production.refresh_from_db()
    with pytest.raises(CommandError, match=r"too few forecasts on .* after its training data"):
        evaluate(production, "--forward", "--theta", "0.001")


def test_production_sessions_without_forward_are_pointed_to_it(
    train: Callable[..., TrainingSession],
) -> None:
    production = train(evaluation=False)
    with pytest.raises(CommandError, match=r"production session.*evaluate --forward"):
        evaluate(production)
    with pytest.raises(CommandError, match="--theta is for forward evaluation: add --forward"):
        evaluate(production, "--theta", "0.1")


def test_the_page_and_the_api_show_the_forward_report_first(
    train: Callable[..., TrainingSession], client: Client
) -> None:
    production = train(evaluation=False)
    evaluation = train()
    evaluate(evaluation)
    evaluate(evaluation, "--forward")
    evaluate(production, "--forward", "--theta-from", str(evaluation.pk))
    html = client.get(reverse("predictor:evaluation"), {"session": evaluation.pk}).content.decode()
    assert "forward (never seen in training)" in html
    assert "θ source: validation of this session" in html
    assert html.index('id="report-forward"') < html.index('id="report-test"')
    page = client.get(reverse("predictor:evaluation"), {"session": production.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"θ source: validation of session {evaluation.pk}" in html
    assert "No stored predictions for the forward split" not in html
    found = client.get("/api/reports/", {"session": str(production.pk)}).json()
    assert [r["split"] for r in found["results"]] == ["forward"]
    detail = client.get(f"/api/reports/{found['results'][0]['id']}/").json()
    assert detail["report"]["theta_source"] == f"validation of session {evaluation.pk}"
    assert detail["report"]["label"] == "forward (never seen in training)"
    assert np.isfinite(detail["report"]["threshold"]["theta"])


def test_a_session_without_a_model_is_refused(train: Callable[..., TrainingSession]) -> None:
    production = train(evaluation=False)
    TrainingSession.objects.filter(pk=production.pk).update(status="failed")
    production.refresh_from_db()
    with pytest.raises(CommandError, match="is failed: it has no trained model"):
        evaluate(production, "--forward", "--theta", "0.001")


def test_updown_sessions_are_judged_forward_without_a_theta(
    train: Callable[..., TrainingSession],
) -> None:
    session = train(
        arch="zero",
        target="updown",
        loss="sparse_categorical_crossentropy",
        horizon=4,
        evaluation=False,
    )
    out = evaluate(session, "--forward")
    report = forward_report(session)
    assert report["kind"] == "classification"
    assert report["split"] == "forward"
    assert report["in_sample"] is False
    assert report["n_forecasts"] == 600 - TRAINED - 4
    assert "forward (never seen in training)" in out
    with pytest.raises(CommandError, match="no θ is used"):
        evaluate(session, "--forward", "--theta", "0.1")


def test_the_celery_task_runs_the_forward_evaluation(
    train: Callable[..., TrainingSession],
) -> None:
    from predictor.tasks import evaluate_session

    production = train(evaluation=False)
    evaluation = train()
    outcome = evaluate_session.apply(
        args=[str(production.pk)], kwargs={"forward": True, "theta_from": str(evaluation.pk)}
    ).get()
    assert outcome["splits"] == ["forward"]
    assert outcome["theta_source"] == f"validation of session {evaluation.pk}"
    assert forward_report(production)["theta_source"] == outcome["theta_source"]


def test_each_market_of_a_session_is_judged_forward_in_one_report(
    make_market: Callable[..., Market], market: Market
) -> None:
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    other = make_market("ETHUSDT", 600, seed=3)
    config = TrainConfig(**{**TINY, "arch": "ridge", "evaluation": False})
    end = dt.datetime.fromtimestamp(T0 + (TRAINED - 1) * HOUR, tz=dt.UTC)
    session = session_create(config, symbols=[market.symbol, other.symbol], end=end)
    session = session_run(session.pk)
    assert session.status == "succeeded", session.error
    evaluate(session, "--forward", "--theta", "0.001")
    report = forward_report(session)
    assert report["market"] == "BTCUSDT"
    assert report["n_forecasts"] == 599 - TRAINED
    assert report["other_markets"]["ETHUSDT"]["n_forecasts"] == 599 - TRAINED
    assert report["other_markets"]["ETHUSDT"]["split"] == "forward"
