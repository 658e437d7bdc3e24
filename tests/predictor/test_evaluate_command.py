"""``manage.py evaluate`` and the evaluation service: stored reports, θ on validation, alarms."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import Client
from django.urls import reverse

from predictor.models import EvaluationReport, Market, Prediction, TrainingSession
from tests.predictor.conftest import T0, store_candles

pytestmark = pytest.mark.django_db


def evaluate(session: TrainingSession, *args: str) -> str:
    out = io.StringIO()
    call_command("evaluate", "-T", str(session.pk), *args, stdout=out)
    return out.getvalue()


def report(session: TrainingSession, split: str) -> EvaluationReport:
    return EvaluationReport.objects.get(session=session, split=split)


def test_reports_are_stored_per_split_with_theta_frozen_from_validation(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session()
    out = evaluate(session)
    assert set(
        EvaluationReport.objects.filter(session=session).values_list("split", flat=True)
    ) == {
        "train",
        "validation",
        "test",
    }
    assert "No forecasts were stored" in out  # evaluate forecast first
    assert "Evaluation report — out-of-sample (test split)" in out
    assert "IN-SAMPLE (training split)" in out
    validation, test = report(session, "validation").report, report(session, "test").report
    assert test["threshold"] == validation["threshold"]
    test_start = int(dt.datetime.fromisoformat(test["start"] + "+00:00").timestamp())
    assert test["threshold"]["validation_end"] < test_start
    assert test["in_sample"] is False
    assert validation["in_sample"] is True
    assert test["strategy"]["config"]["fee"] == 0.001
    assert test["market"] == "BTCUSDT"
    train = report(session, "train")
    assert train.report["split"] == "train"  # the stored split's name, in the report too
    assert {r.kind for r in EvaluationReport.objects.filter(session=session)} == {"strategy"}
    assert test["kind"] == "strategy"


def test_theta_depends_on_validation_forecasts_only(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="ridge")
    evaluate(session)
    theta = report(session, "test").report["threshold"]["theta"]
    Prediction.objects.filter(session=session, split="test").update(predicted=F("predicted") * 3)
    evaluate(session, "--mode", "non-overlapping")
    assert report(session, "test").report["threshold"]["theta"] == theta
    Prediction.objects.filter(session=session, split="validation").update(
        predicted=F("predicted") * 1.05
    )
    evaluate(session)
    assert report(session, "test").report["threshold"]["theta"] != theta


def test_n_trials_counts_the_evaluation_sessions_on_the_market(
    trained_session: Callable[..., TrainingSession],
) -> None:
    first = trained_session(arch="ridge")
    market = first.markets.get()
    trained_session(arch="ridge", market=market, seed=1)
    trained_session(arch="ridge", market=market, evaluation=False)  # production: not a trial
    out = evaluate(first, "--fee", "0.0005", "--slippage", "0.0002", "--mode", "overlapping")
    test = report(first, "test")
    assert test.n_trials == 2
    assert test.report["n_trials"] == 2
    assert (
        "Allowing for 2 configuration(s) tried on this market and target"
        in test.report["tests"]["deflated_sharpe"]["sentence"]
    )
    assert test.report["strategy"]["config"]["mode"] == "overlapping"
    assert test.report["strategy"]["config"]["slippage"] == 0.0002
    assert "n_trials = 2" in out


def test_a_model_given_the_future_raises_the_leakage_alarm(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="ridge")
    evaluate(session)
    assert not report(session, "test").leakage_alarm
    # Forecasts that are the realised prices: what a model reading its own target would do.
    Prediction.objects.filter(session=session, actual__isnull=False).update(predicted=F("actual"))
    out = evaluate(session)
    test = report(session, "test")
    assert test.leakage_alarm
    assert test.report["leakage"]["flagged"]
    assert "LEAKAGE ALARM" in out


def test_updown_sessions_get_classification_metrics(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(
        arch="zero", target="updown", loss="sparse_categorical_crossentropy", horizon=4
    )
    out = evaluate(session)
    test = report(session, "test").report
    confusion = test["classification"]["confusion"]
    assert sum(map(sum, confusion)) == test["n_forecasts"]
    # The zero baseline always says hold: every forecast sits in the hold column.
    assert all(row[0] == row[2] == 0 for row in confusion)
    assert "sell/hold/buy" in out
    assert test["kind"] == "classification"
    assert report(session, "train").report["in_sample"] is True
    assert report(session, "validation").report["in_sample"] is False  # no θ chosen on it
    assert test["market"] == "BTCUSDT"
    assert test["gaps"]["real_forecasts"] == test["n_forecasts"]


def test_spa_runs_across_the_market_sessions(
    trained_session: Callable[..., TrainingSession],
) -> None:
    first = trained_session(arch="ridge")
    second = trained_session(arch="ridge", market=first.markets.get(), window=12)
    unforecast = trained_session(arch="ridge", market=first.markets.get(), window=10)
    call_command("forecast", "-T", str(second.pk), stdout=io.StringIO())
    out = evaluate(first, "--spa", "--reps", "50")
    spa = report(first, "spa").report
    assert spa["sessions"] == [str(first.pk), str(second.pk)]
    assert list(spa["skipped"]) == [str(unforecast.pk)]
    assert 0.0 <= spa["p_value"] <= 1.0
    assert spa["n_models"] == 2
    assert spa["reps"] == 50
    assert spa["kind"] == "spa"
    assert report(first, "spa").kind == "spa"
    assert "Hansen SPA" in out


def test_bad_options_are_rejected_naming_the_flag(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="zero")
    with pytest.raises(CommandError, match="-T/--training-session-id"):
        call_command("evaluate", "-T", "12")
    with pytest.raises(CommandError, match="--fee"):
        evaluate(session, "--fee", "-0.1")
    with pytest.raises(CommandError, match="--slippage"):
        evaluate(session, "--slippage", "lots")
    with pytest.raises(CommandError, match="--mode"):
        evaluate(session, "--mode", "sideways")


def test_production_sessions_are_refused(make_market: Callable[..., Market]) -> None:
    from predictor.ml.config import TrainConfig
    from predictor.services.sessions import session_create
    from predictor.services.training import session_run

    market = make_market("BTCUSDT", 200)
    config = TrainConfig(arch="zero", window=8, evaluation=False)
    session = session_run(session_create(config, symbols=[market.symbol]).pk)
    with pytest.raises(CommandError, match="production session"):
        evaluate(session)


def test_theta_is_refused_on_a_validation_split_with_too_few_real_forecasts(
    trained_session: Callable[..., TrainingSession], settings: Any
) -> None:
    settings.EVALUATION_MIN_VALIDATION_FORECASTS = 100  # the production default
    session = trained_session(arch="zero")  # 400 bars: about 30 validation forecasts
    with pytest.raises(CommandError, match=r"validation split: only \d+ real forecasts .* 100"):
        evaluate(session)
    assert not EvaluationReport.objects.filter(session=session).exists()


def test_reports_count_the_gap_and_never_score_or_trade_across_it(
    make_market: Callable[..., Market],
    trained_session: Callable[..., TrainingSession],
    client: Client,
) -> None:
    market = make_market("BTCUSDT", 0)
    store_candles(market, 640)
    store_candles(market, 60, start=T0 + 650 * 3600, seed=1)  # bars 640..649 are missing
    session = trained_session(arch="ridge", market=market)  # window 8, price, horizon 1
    assert session.split["gaps"]["filled_bars"] == 10
    out = evaluate(session)
    test = report(session, "test").report
    assert test["gaps"] == {
        "max_fill": 0,
        "real_bars": test["gaps"]["real_bars"],
        "filled_bars": 10,
        "windows_dropped": 10 + 7 + 1,  # anchors whose window (8 bars) or target reads the gap
        "real_forecasts": test["n_forecasts"],
    }
    anchors = Prediction.objects.filter(session=session, split="test", step=1)
    hours = {int((p.anchor_time.timestamp() - T0) // 3600) for p in anchors}
    assert not hours & set(range(640, 650 + 7))  # no stored forecast's window reads the gap
    assert "Bars: " in out
    assert "10 filled (gaps)" in out
    found = client.get("/api/reports/", {"session": str(session.pk), "split": "test"}).json()
    assert found["results"][0]["gaps"]["filled_bars"] == 10
    html = client.get(reverse("predictor:evaluation"), {"session": session.pk}).content.decode()
    assert "10 filled (gaps)" in html
