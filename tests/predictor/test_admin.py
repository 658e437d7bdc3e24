"""The admin: markets, and the read-only candle pages reached from a market."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from predictor.models import Market
from tests.predictor.conftest import T0, store_candles

START = datetime.fromtimestamp(T0, tz=UTC)
HOURS = 250  # two full pages of 100 and one of 50


@pytest.fixture
def market(db: None) -> Market:
    market = Market.objects.create(exchange="binance", symbol="BTCUSDT")
    store_candles(market, HOURS, interval="1h")
    store_candles(market, 5, interval="1d", seed=1)
    Market.objects.create(exchange="binance", symbol="ETHUSDT")  # candles of another market
    store_candles(Market.objects.get(symbol="ETHUSDT"), 30, interval="1h", seed=2)
    return market


def _url(market: Market) -> str:
    return reverse("admin:predictor_market_candles", args=[market.pk])


def _times(response: Any) -> list[datetime]:
    assert response.status_code == 200
    return [row["open_time"] for row in response.context["rows"]]


def _hours(first: int, last: int) -> list[datetime]:
    """Open times of hourly candles ``first`` down to ``last`` (indexes from START)."""
    return [START + timedelta(hours=i) for i in range(first, last - 1, -1)]


def test_candles_page_shows_the_newest_candles_of_the_finest_interval(
    admin_client: Client, market: Market
) -> None:
    response = admin_client.get(_url(market))
    assert _times(response) == _hours(HOURS - 1, HOURS - 100)
    html = response.content.decode()
    newest = START + timedelta(hours=HOURS - 1)
    assert f"{newest:%Y-%m-%d %H:%M:%S}" in html
    assert [code for code, _ in response.context["interval_links"]] == ["1h", "1d"]
    assert response.context["newer_url"] is None
    assert response.context["older_url"] is not None


def test_candles_pages_walk_back_by_time_and_forward_again(
    admin_client: Client, market: Market
) -> None:
    first = admin_client.get(_url(market))
    second = admin_client.get(_url(market) + first.context["older_url"])
    assert _times(second) == _hours(HOURS - 101, HOURS - 200)
    third = admin_client.get(_url(market) + second.context["older_url"])
    assert _times(third) == _hours(HOURS - 201, 0)
    assert third.context["older_url"] is None
    back = admin_client.get(_url(market) + third.context["newer_url"])
    assert _times(back) == _times(second)
    top = admin_client.get(_url(market) + second.context["newer_url"])
    assert _times(top) == _times(first)
    assert top.context["newer_url"] is None


def test_candles_page_filters_by_interval_and_jumps_to_a_day(
    admin_client: Client, market: Market
) -> None:
    daily = admin_client.get(_url(market), {"interval": "1d"})
    assert _times(daily) == [START + timedelta(days=i) for i in range(4, -1, -1)]
    assert daily.context["older_url"] is None
    # Up to the end of the first day: its 24 hours, newest first.
    day = admin_client.get(_url(market), {"interval": "1h", "before": f"{START:%Y-%m-%d}"})
    assert _times(day) == _hours(23, 0)
    assert day.context["newer_url"] is not None


def test_candles_page_refuses_bad_parameters(admin_client: Client, market: Market) -> None:
    assert admin_client.get(_url(market), {"before": "yesterday"}).status_code == 400
    assert admin_client.get(_url(market), {"interval": "7x"}).status_code == 400
    missing = reverse("admin:predictor_market_candles", args=[market.pk + 1000])
    assert admin_client.get(missing).status_code == 404


def test_candles_page_of_a_market_without_candles_says_so(admin_client: Client, db: None) -> None:
    empty = Market.objects.create(exchange="kraken", symbol="XBTUSD")
    response = admin_client.get(_url(empty))
    assert response.status_code == 200
    assert response.context["rows"] == []
    assert "No candles stored for kraken:XBTUSD" in response.content.decode()


def test_market_pages_link_to_their_candles(admin_client: Client, market: Market) -> None:
    changelist = admin_client.get(reverse("admin:predictor_market_changelist"))
    change = admin_client.get(reverse("admin:predictor_market_change", args=[market.pk]))
    for response in (changelist, change):
        assert response.status_code == 200
        assert f'href="{_url(market)}"' in response.content.decode()


def test_candles_page_is_for_staff_with_view_permission(
    client: Client, django_user_model: Any, market: Market
) -> None:
    login = reverse("admin:login")
    assert client.get(_url(market)).url.startswith(login)
    client.force_login(django_user_model.objects.create_user("trader"))
    response = client.get(_url(market))
    assert response.status_code == 302
    assert response.url.startswith(login)
    staff = django_user_model.objects.create_user("clerk", is_staff=True)
    client.force_login(staff)
    assert client.get(_url(market)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_market"))
    assert _times(client.get(_url(market)))[0] == START + timedelta(hours=HOURS - 1)
