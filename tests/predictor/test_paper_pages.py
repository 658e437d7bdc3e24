"""The paper trading page, its buttons, the /api/paper/ endpoints and the admin actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from predictor.models import PaperAccount, PaperTrade, TrainingSession
from predictor.services.paper import paper_start, paper_step
from tests.predictor.conftest import store_candles
from tests.predictor.pages_data import figures

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def trading(trained_session: Callable[..., TrainingSession], alice: User) -> TrainingSession:
    """Alice's session, live on paper over 30 new hourly bars."""
    session = trained_session(arch="ridge", target="return", horizon=2)
    TrainingSession.objects.filter(pk=session.pk).update(created_by=alice)
    session.refresh_from_db()
    paper_start(session, theta=0.0)
    store_candles(session.markets.get(), 430, seed=0)  # the same walk, 30 bars longer
    assert paper_step(session).bars == 31
    return session


def _api(user: User | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_page_shows_trades_curves_and_the_forward_panel(client: Client, trading: Any) -> None:
    response = client.get(reverse("predictor:paper_detail", args=[trading.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    trades = PaperTrade.objects.filter(session=trading).count()
    assert trades > 5
    assert html.count("<tr><td>BTCUSDT</td>") == trades + len(response.context["summary"].open)
    assert "forward, paper" in html
    assert f"{trades} closed holding(s)" in html
    curves = figures(html)["paper-equity"]["data"]
    assert [c["name"] for c in curves] == ["paper (closed holdings)", "buy and hold"]
    assert "Log in to start or stop" in html


def test_only_the_owner_or_staff_may_stop_and_resume(
    client: Client, trading: Any, alice: User
) -> None:
    stop = reverse("predictor:paper_stop", args=[trading.pk])
    client.force_login(User.objects.create_user("bob", password="another long password"))
    assert client.post(stop).status_code == 403
    client.force_login(alice)
    page = client.get(reverse("predictor:paper_detail", args=[trading.pk])).content.decode()
    assert 'data-field="stop-form"' in page
    assert client.post(stop).status_code == 302
    assert PaperAccount.objects.get(pk=trading.pk).live is False
    client.post(reverse("predictor:paper_start", args=[trading.pk]))
    assert PaperAccount.objects.get(pk=trading.pk).live is True


def test_the_training_page_links_a_succeeded_session_to_paper_trading(
    client: Client, trained_session: Callable[..., TrainingSession]
) -> None:
    session = trained_session(arch="ridge", target="return")
    html = client.get(reverse("predictor:training_detail", args=[session.pk])).content.decode()
    assert reverse("predictor:paper_detail", args=[session.pk]) in html
    page = client.get(reverse("predictor:paper_detail", args=[session.pk])).content.decode()
    assert "This session is not paper trading" in page


def test_api_reads_are_public(trading: Any) -> None:
    api = _api()
    listed = api.get("/api/paper/").json()
    assert [a["session"] for a in listed["results"]] == [str(trading.pk)]
    state = api.get(f"/api/paper/{trading.pk}/").json()
    assert state["n_trades"] == PaperTrade.objects.filter(session=trading).count()
    assert state["account"]["theta"] == 0.0
    assert state["significance"]["label"] == "forward, paper"
    trades = api.get(f"/api/paper/{trading.pk}/trades/").json()
    assert trades["count"] == state["n_trades"]
    first = PaperTrade.objects.filter(session=trading).order_by("entry_time", "sleeve").first()
    assert trades["results"][0]["net_return"] == first.net_return


def test_api_writes_need_the_owner_or_staff(trading: Any, alice: User) -> None:
    url = f"/api/paper/{trading.pk}/"
    assert _api().post(url + "stop/").status_code == 401
    bob = User.objects.create_user("bob", password="another long password")
    assert _api(bob).post(url + "stop/").status_code == 403
    owner = _api(alice)
    assert owner.post(url + "stop/").json()["live"] is False
    refused = owner.post(url + "start/", {"theta": 0.5}, format="json")
    assert refused.status_code == 409
    assert "frozen" in refused.json()["detail"]
    assert owner.post(url + "start/", {}, format="json").json()["live"] is True
    assert _api().get("/api/paper/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_admin_actions_stop_and_report_a_refused_start(
    admin_client: Client,
    trading: Any,
    trained_session: Callable[..., TrainingSession],
    make_market: Callable[..., Any],
) -> None:
    response = admin_client.post(
        reverse("admin:predictor_paperaccount_changelist"),
        {"action": "stop", "_selected_action": [str(trading.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert PaperAccount.objects.get(pk=trading.pk).live is False
    response = admin_client.post(
        reverse("admin:predictor_trainingsession_changelist"),
        {"action": "mark_live", "_selected_action": [str(trading.pk)]},
        follow=True,
    )
    assert PaperAccount.objects.get(pk=trading.pk).live is True  # resumed with its frozen rules
    fresh = trained_session(market=make_market("ETHUSDT"), arch="ridge", target="return")
    response = admin_client.post(
        reverse("admin:predictor_trainingsession_changelist"),
        {"action": "mark_live", "_selected_action": [str(fresh.pk)]},
        follow=True,
    )
    assert "no stored validation report" in response.content.decode()
    assert not PaperAccount.objects.filter(pk=fresh.pk).exists()
