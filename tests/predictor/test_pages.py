"""Every page with data and in its empty state, the training form, login, cancel and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from predictor.forms import TrainForm
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.kinds import ClassificationReport
from predictor.ml.evaluation.tables import SIGNIFICANCE_TESTS, STRATEGY_ROWS, break_even_sentence
from predictor.models import Market, TrainingSession
from predictor.staticfinders import PLOTLY_JS
from tests.predictor.pages_data import (
    HORIZON,
    figures,
    make_session,
    store_classification_report,
    store_predictions,
    store_report,
    store_spa_report,
    trace_length,
)

pytestmark = pytest.mark.django_db


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


@pytest.fixture
def user_client(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("trader", password="a-long-test-password")
    client.force_login(user)
    return client


# --- Markets (index) ---------------------------------------------------------------------------


def test_index_says_how_to_get_data_when_there_is_none(client: Client) -> None:
    response = client.get(reverse("predictor:index"))
    assert response.status_code == 200
    assert b"No candles yet" in response.content
    assert not figures(response.content.decode())


def test_index_charts_the_last_seven_days_as_candles_with_volume(
    client: Client, make_market: Callable[..., Market]
) -> None:
    make_market("BTCUSDT", 400)  # 400 hourly candles, about 16.7 days
    html = client.get(reverse("predictor:index")).content.decode()
    figure = figures(html)["price"]
    kinds = [t["type"] for t in figure["data"]]
    assert kinds == ["candlestick", "bar", "bar"]  # volume: rising and falling bars
    assert trace_length(figure["data"][0]) == 7 * 24
    assert trace_length(figure["data"][1]) == 7 * 24
    assert "BTCUSDT" in html
    assert "vendor/plotly/plotly.min.js" in html


def test_index_coarsens_long_ranges_to_at_most_the_point_limit(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("ETHUSDT", 6000, interval="1m")
    response = client.get(
        reverse("predictor:index"),
        {
            "market": market.pk,
            "interval": "1m",
            "start": "2024-01-01T00:00",
            "end": "2024-01-05T04:00",
        },
    )
    html = response.content.decode()
    assert "Showing 3m bars: 1m would be 6,000 bars" in html
    assert trace_length(figures(html)["price"]["data"][0]) == 2000


def test_index_draws_a_close_line_at_a_chosen_interval(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    response = client.get(
        reverse("predictor:index"), {"market": market.pk, "interval": "4h", "style": "line"}
    )
    figure = figures(response.content.decode())["price"]
    assert figure["data"][0]["type"] == "scatter"
    assert trace_length(figure["data"][0]) == 7 * 6  # 4h bars in a week


def test_index_reports_a_bad_date_and_falls_back_to_the_default(
    client: Client, make_market: Callable[..., Market]
) -> None:
    make_market("BTCUSDT", 400)
    response = client.get(reverse("predictor:index"), {"start": "yesterday-ish"})
    assert response.status_code == 200
    assert b"Enter a valid date/time" in response.content
    assert "price" in figures(response.content.decode())


# --- Forecast ----------------------------------------------------------------------------------


def test_forecast_page_explains_that_no_production_session_exists(client: Client) -> None:
    response = client.get(reverse("predictor:forecast"))
    assert response.status_code == 200
    assert b"No production session yet" in response.content


def test_forecast_page_of_a_session_without_predictions(
    client: Client, make_market: Callable[..., Market]
) -> None:
    session = make_session(make_market("BTCUSDT", 200), evaluation=False)
    response = client.get(reverse("predictor:forecast"))
    assert response.status_code == 200
    assert b"This session has no forecasts yet" in response.content
    assert f"forecast -T {session.pk}".encode() in response.content


def test_a_session_not_on_the_page_is_refused_and_the_default_shown(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 200)
    production = make_session(market, evaluation=False)
    store_predictions(production, market)
    evaluation = make_session(market, evaluation=True)  # not a forecast page session
    for asked in (evaluation.pk, "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        html = client.get(reverse("predictor:forecast"), {"session": asked}).content.decode()
        assert "Showing the defaults instead" in html
        assert f'value="{production.pk}" selected' in html


def test_forecast_page_marks_the_future_and_says_when_it_was_made(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    session = make_session(market, evaluation=False)
    store_predictions(session, market)
    html = client.get(reverse("predictor:forecast"), {"session": session.pk}).content.decode()
    figure = figures(html)["forecast-BTCUSDT"]
    names = [t["name"] for t in figure["data"]]
    assert names == ["actual", "predicted", "forecast past the last candle"]
    assert trace_length(figure["data"][2]) == HORIZON
    assert [s["type"] for s in figure["layout"]["shapes"]] == ["rect", "line"]
    last_candle = _utc(1_704_067_200 + 399 * 3600)
    assert f"the close of the {last_candle:%Y-%m-%d %H:%M} candle" in html
    made = last_candle + dt.timedelta(hours=1)
    assert f"Newest made at <strong>{made:%Y-%m-%d %H:%M} UTC" in html
    assert "3 bars of 1h (3:00:00)" in html
    assert "Download CSV" in html


def test_forecast_csv_has_every_row_in_the_range_with_empty_future_actuals(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 100)
    session = make_session(market, evaluation=False)
    stored = store_predictions(session, market)
    url = reverse("predictor:forecast_csv", args=[session.pk])
    response = client.get(url)
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == stored
    future = [r for r in rows if r["split"] == "future"]
    assert len(future) == HORIZON
    assert all(r["actual"] == "" and r["horizon"] == str(HORIZON) for r in future)
    assert rows[0]["target_time"] == "2024-01-01T10:00:00+00:00"  # anchor 07:00 + 3 h
    ranged = client.get(url, {"start": "2024-01-02T00:00", "end": "2024-01-02T06:00"})
    assert len(list(csv.reader(io.StringIO(b"".join(ranged.streaming_content).decode())))) == 7


# --- Evaluation --------------------------------------------------------------------------------


def test_evaluation_page_before_any_session(client: Client) -> None:
    response = client.get(reverse("predictor:evaluation"))
    assert response.status_code == 200
    assert b"No evaluation session has finished yet" in response.content


def test_evaluation_page_of_a_session_without_reports(
    client: Client, make_market: Callable[..., Market]
) -> None:
    make_session(make_market("BTCUSDT", 200), evaluation=True)
    response = client.get(reverse("predictor:evaluation"))
    assert response.status_code == 200
    assert b"This session has no evaluation report yet" in response.content


def test_evaluation_page_shows_charts_tests_costs_and_labels(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    session = make_session(market, evaluation=True)
    store_predictions(session, market)
    test = store_report(session, market, "test")
    store_report(session, market, "validation")
    html = client.get(reverse("predictor:evaluation"), {"session": session.pk}).content.decode()
    charts = figures(html)
    assert set(charts) == {
        "pred-test-BTCUSDT", "equity-test", "drawdown-test",
        "pred-validation-BTCUSDT", "equity-validation", "drawdown-validation",
    }  # fmt: skip
    assert html.index("Out-of-sample · test") < html.index("In-sample · validation")
    assert "θ was chosen here: strategy figures are optimistic" in html
    equity = [t["name"] for t in charts["equity-test"]["data"]]
    assert equity == ["model", "buy and hold", "zero return", "persistence"]
    tests = test.report["tests"]
    for key in ("t_test", "pesaran_timmermann", "dm_vs_persistence", "deflated_sharpe"):
        assert escape(tests[key]["sentence"]) in html
    assert "Gross hit rate vs break-even after costs" in html
    assert "needed to break even at the cost paid per holding" in html
    stats = test.report["strategy"]["stats"]
    expected = break_even_sentence(
        stats["gross_hit_rate"],
        stats["break_even_hit_rate"] if stats["break_even_hit_rate"] is not None else math.nan,
        stats["mean_cost"],
        stats["break_even_note"],
    )
    assert escape(expected) in html
    assert "RMSE ÷ zero forecast&#x27;s (1 = no better)" in html
    assert "Trades (positions opened)" in html
    assert "3</b> trials counted" in html
    assert "Leakage alarm" not in html


def test_evaluation_page_renders_a_report_stored_with_mape_on_returns(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    session = make_session(market, evaluation=True)
    record = store_report(session, market, "test")
    old = record.report
    returns = old["errors"]["returns"]
    returns["mape_pct"] = 254.0
    del returns["rmse_vs_zero"]
    for run in (old["strategy"], *old["baselines"].values()):
        for field in ("break_even_note", "mean_cost", "n_holdings"):
            del run["stats"][field]
    old["strategy"]["stats"].update(break_even_hit_rate=1.1666, n_trades=12)
    record.report = old
    record.save()
    response = client.get(reverse("predictor:evaluation"), {"session": session.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert "254" not in html  # MAPE on returns meant nothing: shown as n/a
    assert "116.6" not in html
    assert "no gross hit rate up to 100 % would have broken even" in html
    assert "<b>impossible</b> needed to break even" in html


def test_evaluation_page_shows_classification_and_reality_check_reports(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 200)
    session = make_session(
        market, evaluation=True, arch="mlp", target="updown", loss="sparse_categorical_crossentropy"
    )
    classification = store_classification_report(session, market)
    spa = store_spa_report(session)
    html = client.get(reverse("predictor:evaluation")).content.decode()
    assert html.index("Out-of-sample · test") < html.index("Across sessions · Reality Check / SPA")
    assert "Confusion matrix" in html
    confusion = classification.report["classification"]["confusion"]
    assert f'<td class="num">{confusion[0][0]}</td>' in html
    assert escape(spa.report["sentence"]) in html
    assert "Does any of the 3 sessions beat holding cash" in html
    assert not figures(html)  # no strategy curves and no stored predictions


def test_evaluation_page_shows_every_strategy_row_and_every_test_of_the_tables(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    session = make_session(market, evaluation=True)
    store_report(session, market, "test")
    html = client.get(reverse("predictor:evaluation"), {"session": session.pk}).content.decode()
    rows = [html.index(f"<tr><td>{escape(row.label)}</td>") for row in STRATEGY_ROWS]
    assert rows == sorted(rows)  # every row, in the table's order
    assert "<tr><td>Calmar</td>" in html
    assert "<tr><td>Turnover (× capital)</td>" in html
    tests = [html.index(f"<td>{escape(test.label)}</td>") for test in SIGNIFICANCE_TESTS]
    assert tests == sorted(tests)


def test_evaluation_page_renders_a_report_by_its_stored_kind(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 200)
    session = make_session(
        market, evaluation=True, arch="mlp", target="updown", loss="sparse_categorical_crossentropy"
    )
    record = store_classification_report(session, market)
    typed = ClassificationReport.from_dict(record.report)
    record.report = typed.to_dict()
    record.save()
    assert record.report["kind"] == "classification"
    html = client.get(reverse("predictor:evaluation")).content.decode()
    assert "Confusion matrix" in html
    assert f'<td class="num">{typed.classification.confusion[1][1]}</td>' in html
    # The kind, not the keys, picks the partial: a classification report without its
    # metrics is shown as unreadable, not guessed to be some other kind.
    del record.report["classification"]
    record.save()
    response = client.get(reverse("predictor:evaluation"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Confusion matrix" not in html
    assert "This stored report could not be read" in html


def test_evaluation_page_raises_the_leakage_alarm(
    client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    session = make_session(market, evaluation=True)
    record = store_report(session, market, "test", leak=True)
    assert record.leakage_alarm
    html = client.get(reverse("predictor:evaluation")).content.decode()
    assert "Leakage alarm:" in html
    assert "suspiciously good" in html
    assert "No stored predictions for the test split" in html


# --- Training ----------------------------------------------------------------------------------


def test_training_list_empty_and_with_sessions(
    client: Client, make_market: Callable[..., Market]
) -> None:
    assert b"No training sessions yet" in client.get(reverse("predictor:training_list")).content
    market = make_market("BTCUSDT", 200)
    queued = make_session(market, evaluation=True, status="queued")
    done = make_session(market, evaluation=False)
    html = client.get(reverse("predictor:training_list")).content.decode()
    assert reverse("predictor:training_progress", args=[queued.pk]) in html
    assert (
        reverse("predictor:training_progress", args=[done.pk]) not in html
    )  # finished: no polling
    assert "predictor/progress.js" in html


@pytest.mark.slow
def test_training_detail_of_a_really_trained_session(
    client: Client, trained_session: Callable[..., TrainingSession]
) -> None:
    session = trained_session()
    html = client.get(reverse("predictor:training_detail", args=[session.pk])).content.decode()
    assert session.manifest["model_sha256"] in html
    assert "Hyper-parameters" in html
    loss = figures(html)["loss"]
    assert [t["name"] for t in loss["data"]] == ["loss", "val loss"]
    assert "data-progress-url" not in html  # succeeded: nothing to poll
    assert "Cancel</button>" not in html


def test_progress_json_reports_epoch_losses_and_history(
    client: Client, make_market: Callable[..., Market]
) -> None:
    session = make_session(make_market("BTCUSDT", 200), evaluation=True, status="running")
    TrainingSession.objects.filter(pk=session.pk).update(epoch=1, eta_seconds=12.5)
    response = client.get(reverse("predictor:training_progress", args=[session.pk]))
    data = response.json()
    assert response["Cache-Control"].startswith("max-age=0")
    assert data["status"] == "running"
    assert data["active"] is True
    assert (data["epoch"], data["epochs"], data["percent"]) == (1, 3, 33)
    assert data["eta_seconds"] == 12.5
    assert len(data["history"]) == 3


def test_the_training_form_needs_a_login(client: Client) -> None:
    response = client.get(reverse("predictor:training_new"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("predictor:login"))


def _form(market: Market, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "markets": [market.pk], "interval": "1h", "evaluation": "on", "arch": "lstm",
        "target": "price", "features": ["close"], "window": 8, "output_size": 1, "units": 4,
        "activation": "tanh", "dropout": 0.0, "cnn_blocks": 2, "epochs": 1, "batch_size": 32,
        "optimizer": "adam", "loss": "mse", "scaler": "minmax", "early_stopping": 0,
        "train_split": 0.8, "val_split": 0.1, "shuffle_buffer": 100, "seed": 7, "up": 0.01,
        "down": 0.005, "xla": "off",
    }  # fmt: skip
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"arch": "mlp"}, "target", "arch mlp cannot learn target 'price'"),
        ({"features": ["ohlcv"], "scaler": "window"}, "scaler", "'window' divides by"),
        ({"features": ["close", "cross"]}, "features", "'cross' needs at least two markets"),
        ({"dropout": 1.5}, "dropout", "must be a fraction in [0, 1)"),
        ({"window": 0}, "window", "greater than or equal to 1"),
    ],
)
def test_the_training_form_shows_config_errors_on_their_field(
    user_client: Client,
    make_market: Callable[..., Market],
    overrides: dict[str, Any],
    field: str,
    message: str,
) -> None:
    market = make_market("BTCUSDT", 200)
    response = user_client.post(reverse("predictor:training_new"), _form(market, **overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert not TrainingSession.objects.exists()


def test_the_training_form_refuses_markets_of_two_exchanges(
    user_client: Client, make_market: Callable[..., Market]
) -> None:
    a = make_market("BTCUSDT", 50)
    b = make_market("BTCUSD", 50, exchange="gemini")
    response = user_client.post(reverse("predictor:training_new"), _form(a, markets=[a.pk, b.pk]))
    assert response.context["form"].errors == {"markets": ["pick markets of one exchange"]}


def test_a_valid_training_form_without_a_config_is_refused_not_asserted(
    user_client: Client, make_market: Callable[..., Market], monkeypatch: pytest.MonkeyPatch
) -> None:
    market = make_market("BTCUSDT", 200)
    monkeypatch.setattr(TrainForm, "clean", lambda form: form.cleaned_data)
    response = user_client.post(reverse("predictor:training_new"), _form(market))
    assert response.status_code == 400
    assert not TrainingSession.objects.exists()


def test_the_training_form_creates_and_queues_a_session(
    user_client: Client,
    make_market: Callable[..., Market],
    django_capture_on_commit_callbacks: Any,
) -> None:
    market = make_market("BTCUSDT", 200)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(
            reverse("predictor:training_new"), _form(market, evaluation=None, horizon=2)
        )
    session = TrainingSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("predictor:training_detail", args=[session.pk])
    assert len(callbacks) == 1  # session_queue sends the task once the row is committed
    assert session.status == "queued"
    assert session.mode == "production"  # "Evaluation" left unticked
    assert session.created_by is not None
    assert session.created_by.get_username() == "trader"
    assert session.config["horizon"] == 2
    assert session.config["xla"] is False
    assert session.symbols == ["BTCUSDT"]


def test_cancel_needs_a_login_and_a_post(
    client: Client, make_market: Callable[..., Market], django_user_model: Any
) -> None:
    owner = django_user_model.objects.create_user("trader", password="x-long-pass-1")
    session = make_session(make_market("BTCUSDT", 200), evaluation=True, status="queued")
    TrainingSession.objects.filter(pk=session.pk).update(created_by=owner)
    url = reverse("predictor:training_cancel", args=[session.pk])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("predictor:login"))
    session.refresh_from_db()
    assert session.status == "queued"
    client.force_login(owner)
    assert client.get(url).status_code == 405
    detail = client.get(reverse("predictor:training_detail", args=[session.pk])).content.decode()
    assert f'action="{url}"' in detail


def _owned_session(market: Market, username: str) -> TrainingSession:
    session = make_session(market, evaluation=True, status="queued")
    owner = User.objects.get(username=username)
    TrainingSession.objects.filter(pk=session.pk).update(created_by=owner)
    session.refresh_from_db()
    return session


def test_cancel_stops_a_queued_session(
    user_client: Client, make_market: Callable[..., Market]
) -> None:
    session = _owned_session(make_market("BTCUSDT", 200), "trader")
    response = user_client.post(
        reverse("predictor:training_cancel", args=[session.pk]), follow=True
    )
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert b"is cancelled" in response.content


def test_another_user_cannot_cancel_a_session_nor_sees_the_button(
    client: Client, make_market: Callable[..., Market], django_user_model: Any
) -> None:
    django_user_model.objects.create_user("owner", password="x-long-pass-1")
    session = _owned_session(make_market("BTCUSDT", 200), "owner")
    client.force_login(django_user_model.objects.create_user("other", password="x-long-pass-2"))
    url = reverse("predictor:training_cancel", args=[session.pk])
    assert client.post(url).status_code == 403
    session.refresh_from_db()
    assert session.status == "queued"
    assert not session.cancel_requested
    detail = client.get(reverse("predictor:training_detail", args=[session.pk])).content.decode()
    assert f'action="{url}"' not in detail


def test_staff_may_cancel_any_session_even_one_nobody_owns(
    client: Client, make_market: Callable[..., Market], django_user_model: Any
) -> None:
    session = make_session(make_market("BTCUSDT", 200), evaluation=True, status="queued")
    client.force_login(
        django_user_model.objects.create_user("admin", password="x-long-pass-3", is_staff=True)
    )
    assert client.post(reverse("predictor:training_cancel", args=[session.pk])).status_code == 302
    session.refresh_from_db()
    assert session.status == "cancelled"


def test_login_page_logs_in_and_goes_to_the_training_list(
    client: Client, django_user_model: Any
) -> None:
    django_user_model.objects.create_user("trader", password="a-long-test-password")
    assert client.get(reverse("predictor:login")).status_code == 200
    response = client.post(
        reverse("predictor:login"), {"username": "trader", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("predictor:training_list")
    bad = client.post(reverse("predictor:login"), {"username": "trader", "password": "nope"})
    assert bad.status_code == 200
    assert b"Please enter a correct username and password" in bad.content


# --- Plotly.js from the plotly package ---------------------------------------------------------


def test_plotly_js_is_found_in_the_plotly_package_and_collected(
    tmp_path: Path, settings: Any
) -> None:
    found = finders.find(PLOTLY_JS)
    assert isinstance(found, str)
    assert found.endswith("plotly/package_data/plotly.min.js")
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    collected = tmp_path / PLOTLY_JS
    assert collected.read_bytes() == Path(found).read_bytes()
    assert not (tmp_path / "vendor" / "plotly" / "widgetbundle.js").exists()


def test_the_training_form_takes_max_fill_within_the_config_bounds(
    user_client: Client, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 200)
    url = reverse("predictor:training_new")
    refused = user_client.post(url, _form(market, max_fill=-1))
    assert refused.status_code == 200
    assert "greater than or equal to 0" in refused.content.decode()
    user_client.post(url, _form(market, max_fill=4))
    assert TrainingSession.objects.latest("created").config["max_fill"] == 4


@pytest.mark.parametrize(
    ("given", "stored"), [({"gbm_trees": 40, "gbm_leaves": 7}, (40, 7)), ({}, None)]
)
def test_the_training_form_stores_the_lightgbm_fields_or_their_defaults(
    user_client: Client,
    make_market: Callable[..., Market],
    given: dict[str, Any],
    stored: tuple[int, int] | None,
) -> None:
    """Shown, the LightGBM fields train as given; left out (a page from before them), the defaults."""
    market = make_market("BTCUSDT", 200)
    form = _form(market, arch="lgbm", target="return", window=1, **given)
    response = user_client.post(reverse("predictor:training_new"), form)
    assert response.status_code == 302, response.context["form"].errors
    config = TrainingSession.objects.get().config
    defaults = TrainConfig()
    assert (config["gbm_trees"], config["gbm_leaves"]) == (
        stored or (defaults.gbm_trees, defaults.gbm_leaves)
    )
