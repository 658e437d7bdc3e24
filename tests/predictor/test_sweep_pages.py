"""Sweep pages: the list, a sweep with its trials and winner, the polled JSON, the form,
cancel and resume for the owner or staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from predictor.models import EvaluationReport, Market, SessionStatus, Sweep, TrainingSession
from predictor.selectors.sweeps import report_headline
from predictor.services.runs import RunRequest
from predictor.services.sweeps import SweepRequest, sweep_create, sweep_run_here
from predictor.sweep_forms import SpaceError, space_parse
from predictor.views.sweeps import headline_rows
from tests.predictor.pages_data import figures, trace_length

pytestmark = pytest.mark.django_db

BIG_GRID = " ".join(f"{key}={','.join(map(str, range(1, 30)))}" for key in ("window", "units"))
BASE = {"arch": "ridge", "target": "return", "interval": "1h", "val_split": 0.15, "horizon": 4}


@pytest.fixture
def market(make_market: Callable[..., Market]) -> Market:
    return make_market("BTCUSDT", 500)


@pytest.fixture
def trader(django_user_model: Any) -> User:
    return django_user_model.objects.create_user("trader", password="a-long-test-password")


@pytest.fixture
def user_client(client: Client, trader: User) -> Client:
    client.force_login(trader)
    return client


def _sweep(user: User | None = None, **kwargs: Any) -> Sweep:
    request = SweepRequest(
        base=RunRequest(given=BASE, symbols=["BTCUSDT"]),
        **{"space": {"window": [8, 16]}, "objective": "val_ic", **kwargs},
    )
    return sweep_create(request, user=user)


def _form(market: Market, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "markets": [market.pk], "interval": "1h", "arch": "ridge", "target": "return",
        "features": ["close"], "window": 8, "horizon": 4, "epochs": 1, "val_split": 0.15,
        "space": "window=8,16\nlearning_rate=0.5", "method": "grid", "parallel": 1,
        "objective": "val_ic", "sweep_seed": 0, "name": "windows",
    }  # fmt: skip
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- the space text ---------------------------------------------------------------------------


def test_space_text_reads_values_ranges_and_lists_by_the_training_fields() -> None:
    text = "units=16,32,64  # three sizes\nlearning_rate=0.0001:0.01:log\nwindow=8:64\n\nfeatures=returns+time,returns xla=off"  # fmt: skip
    assert space_parse(text) == {
        "units": [16, 32, 64],
        "learning_rate": {"low": 0.0001, "high": 0.01, "log": True},
        "window": {"low": 8, "high": 64, "log": False},
        "features": [["returns", "time"], ["returns"]],
        "xla": [False],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("units", "write key=v1,v2"),
        ("colour=red", "colour is not a training option"),
        ("units=16,sixteen", "units=sixteen: Enter a whole number."),
        ("window=0,8", "window=0: Ensure this value is greater than or equal to 1."),
        ("arch=lstm:mlp", "arch=lstm:mlp: only a number takes a range"),
        ("window=8:64:lin", "a range is low:high or low:high:log"),
        ("units=8 units=16", "units is given twice"),
        ("# nothing", "at least one option"),
    ],
)
def test_space_text_errors_say_which_item_and_why(text: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message.replace("(", r"\(")):
        space_parse(text)


# --- list and detail ----------------------------------------------------------------------------


def test_sweep_list_empty_then_listing_a_sweep_linked_from_the_navigation(
    client: Client, market: Market
) -> None:
    response = client.get(reverse("predictor:sweep_list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No sweeps yet." in html
    assert f'href="{reverse("predictor:sweep_list")}" aria-current="page"' in html
    sweep = _sweep(name="windows")
    html = client.get(reverse("predictor:sweep_list")).content.decode()
    assert reverse("predictor:sweep_detail", args=[sweep.pk]) in html
    assert "windows" in html
    assert "grid over window" in html
    assert "0 / 2" in html
    index = client.get(reverse("predictor:index")).content.decode()
    assert f'href="{reverse("predictor:sweep_list")}"' in index


def test_a_finished_sweep_page_shows_its_trials_winner_and_test_figures_once(
    client: Client, market: Market
) -> None:
    sweep = sweep_run_here(_sweep(space={"window": [8, 12, 16]}))
    assert sweep.status == SessionStatus.SUCCEEDED, sweep.error
    winner = sweep.winner
    assert winner is not None
    response = client.get(reverse("predictor:sweep_detail", args=[sweep.pk]))
    assert response.status_code == 200
    html = response.content.decode()

    trials = list(sweep.trials.order_by("trial_number"))
    for trial in trials:
        assert f'data-trial="{trial.pk}"' in html
        assert f"window={trial.config['window']}" in html
    assert html.count('class="status succeeded" data-field="trial-status"') == 3
    assert f'<tr data-trial="{winner.pk}" class="winner">' in html
    assert f"Winner on validation: trial {winner.trial_number}" in html
    report_link = f"{reverse('predictor:evaluation')}?session={winner.pk}#report-test"
    assert html.count(report_link) == 1
    report = EvaluationReport.objects.get(session=winner, split="test")
    rows = dict(headline_rows(report_headline(report)))
    assert rows["IC"] == f"{report.report['ic']['ic']:.4f}"
    assert f'<th>IC</th><td class="num">{rows["IC"]}</td>' in html
    assert "data-sweep-url" not in html  # finished: nothing to poll
    assert 'data-field="cancel-form"' not in html
    assert 'data-field="resume-form"' not in html

    chart = figures(html)["trials"]
    points, best = chart["data"]
    assert trace_length(points) == 3
    assert best["name"] == "best so far"


def test_progress_json_of_a_queued_sweep_lists_every_trial(client: Client, market: Market) -> None:
    sweep = _sweep()
    response = client.get(reverse("predictor:sweep_progress", args=[sweep.pk]))
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    state = response.json()
    assert (state["status"], state["active"], state["percent"]) == ("queued", True, 0)
    assert state["progress"]["counts"]["queued"] == 2
    assert [(t["trial_number"], t["params"]) for t in state["trials"]] == [
        (0, {"window": 8}),
        (1, {"window": 16}),
    ]
    html = client.get(reverse("predictor:sweep_detail", args=[sweep.pk])).content.decode()
    assert f'data-sweep-url="{reverse("predictor:sweep_progress", args=[sweep.pk])}"' in html
    assert "Log in to cancel or resume" in html


# --- the form -------------------------------------------------------------------------------------


def test_the_sweep_form_needs_a_login_and_is_linked_from_the_training_pages(
    client: Client, user_client: Client
) -> None:
    response = Client().get(reverse("predictor:sweep_new"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("predictor:login"))
    assert user_client.get(reverse("predictor:sweep_new")).status_code == 200
    for page in ("predictor:training_list", "predictor:training_new"):
        html = user_client.get(reverse(page)).content.decode()
        assert f'href="{reverse("predictor:sweep_new")}"' in html


def test_the_sweep_form_stores_and_queues_the_sweep(
    user_client: Client,
    trader: User,
    market: Market,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = user_client.post(reverse("predictor:sweep_new"), _form(market))
    sweep = Sweep.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("predictor:sweep_detail", args=[sweep.pk])
    assert len(callbacks) == 1  # one Celery group once the rows are committed
    assert (sweep.name, sweep.method, sweep.objective, sweep.n_trials) == ("windows", "grid", "val_ic", 2)  # fmt: skip
    assert sweep.created_by == trader
    assert sweep.space == {"window": {"values": [8, 16]}, "learning_rate": {"values": [0.5]}}
    trials = list(sweep.trials.order_by("trial_number"))
    assert [(t.config["window"], t.config["learning_rate"]) for t in trials] == [(8, 0.5), (16, 0.5)]  # fmt: skip
    assert all(t.config["horizon"] == 4 and t.mode == "evaluation" for t in trials)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"space": "window=8,0"}, "space", "window=0"),
        ({"space": "units"}, "space", "write key=v1,v2"),
        ({"space": "target=return,logreturn"}, "space", "cannot vary"),
        ({"space": "window=8,16 learning_rate=20"}, "space", "learning_rate"),
        ({"space": "window=8:32"}, "space", "a grid takes a list of values"),
        ({"space": BIG_GRID}, "space", "841 combinations"),
        ({"objective": "val_loss"}, "objective", "records no validation loss"),
        ({"method": "random"}, "n_trials", "trials: give 1"),
        ({"val_split": 0.0}, "val_split", "needs a validation split"),
        ({"arch": "mlp", "target": "price"}, "target", "cannot learn target"),
    ],
)
def test_sweep_form_errors_land_on_their_field_and_store_nothing(
    user_client: Client, market: Market, overrides: dict[str, Any], field: str, message: str
) -> None:
    response = user_client.post(reverse("predictor:sweep_new"), _form(market, **overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in errors[field][0]
    assert not Sweep.objects.exists()
    assert not TrainingSession.objects.exists()


# --- cancel and resume ----------------------------------------------------------------------------


def test_cancel_and_resume_need_a_login_a_post_and_the_owner(
    client: Client, market: Market, trader: User, django_user_model: Any
) -> None:
    sweep = _sweep(trader)
    cancel = reverse("predictor:sweep_cancel", args=[sweep.pk])
    resume = reverse("predictor:sweep_resume", args=[sweep.pk])
    response = client.post(cancel)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("predictor:login"))
    client.force_login(django_user_model.objects.create_user("other", password="x-long-pass-2"))
    assert client.post(cancel).status_code == 403
    assert client.post(resume).status_code == 403
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.QUEUED
    html = client.get(reverse("predictor:sweep_detail", args=[sweep.pk])).content.decode()
    assert f'action="{cancel}"' not in html

    client.force_login(trader)
    assert client.get(cancel).status_code == 405
    html = client.get(reverse("predictor:sweep_detail", args=[sweep.pk])).content.decode()
    assert f'action="{cancel}"' in html
    assert f'action="{resume}"' not in html  # a queued sweep has nothing to resume


def test_the_owner_cancels_then_resumes_a_sweep(
    user_client: Client,
    trader: User,
    market: Market,
    django_capture_on_commit_callbacks: Any,
) -> None:
    sweep = _sweep(trader)
    detail = reverse("predictor:sweep_detail", args=[sweep.pk])
    response = user_client.post(reverse("predictor:sweep_cancel", args=[sweep.pk]), follow=True)
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.CANCELLED
    assert set(sweep.trials.values_list("status", flat=True)) == {SessionStatus.CANCELLED}
    assert b"is cancelled" in response.content
    resume = reverse("predictor:sweep_resume", args=[sweep.pk])
    assert f'action="{resume}"' in user_client.get(detail).content.decode()

    with django_capture_on_commit_callbacks() as callbacks:
        response = user_client.post(resume, follow=True)
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.RUNNING
    assert set(sweep.trials.values_list("status", flat=True)) == {SessionStatus.QUEUED}
    assert len(callbacks) == 1
    assert b"carries on" in response.content


def test_staff_may_cancel_a_sweep_nobody_owns(
    client: Client, market: Market, django_user_model: Any
) -> None:
    sweep = _sweep()
    client.force_login(
        django_user_model.objects.create_user("admin", password="x-long-pass-3", is_staff=True)
    )
    assert client.post(reverse("predictor:sweep_cancel", args=[sweep.pk])).status_code == 302
    sweep.refresh_from_db()
    assert sweep.status == SessionStatus.CANCELLED


def test_a_trials_training_page_links_back_to_its_sweep(client: Client, market: Market) -> None:
    sweep = _sweep()
    trial = sweep.trials.get(trial_number=1)
    html = client.get(reverse("predictor:training_detail", args=[trial.pk])).content.decode()
    assert "Trial 1 of" in html
    assert reverse("predictor:sweep_detail", args=[sweep.pk]) in html
