"""Guessing passwords locks the guesser out, on the login page and on the token endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _small_limit(settings: Any, django_user_model: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 5
    django_user_model.objects.create_user("alice", password=PASSWORD)


def _token(client: APIClient, password: str) -> int:
    body = {"username": "alice", "password": password}
    return client.post("/api/auth/token/", body, format="json").status_code


def test_the_token_endpoint_locks_out_after_the_failure_limit_even_the_right_password() -> None:
    api = APIClient(REMOTE_ADDR="198.51.100.9")
    codes = [_token(api, f"guess-{n}") for n in range(100)]
    assert codes[:4] == [400] * 4
    assert set(codes[4:]) == {429}
    assert _token(api, PASSWORD) == 429
    response = api.post("/api/auth/token/", {"username": "alice", "password": PASSWORD})
    assert "try again in" in response.json()["detail"]
    assert _token(APIClient(REMOTE_ADDR="198.51.100.10"), PASSWORD) == 200  # another client


def test_the_login_page_locks_out_after_the_failure_limit(client: Client) -> None:
    url = reverse("predictor:login")
    codes = [
        client.post(url, {"username": "alice", "password": f"guess-{n}"}).status_code
        for n in range(100)
    ]
    assert codes[:4] == [200] * 4  # the form again, with its error
    assert set(codes[4:]) == {429}
    assert client.post(url, {"username": "alice", "password": PASSWORD}).status_code == 429


def test_a_forged_forwarded_for_header_does_not_escape_the_lockout(client: Client) -> None:
    url = reverse("predictor:login")
    codes = [
        client.post(
            url,
            {"username": "alice", "password": f"guess-{n}"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        ).status_code
        for n in range(10)
    ]
    assert codes[5:] == [429] * 5


def test_a_login_before_the_limit_resets_the_count(client: Client) -> None:
    url = reverse("predictor:login")

    def attempt(password: str) -> int:
        return client.post(url, {"username": "alice", "password": password}).status_code

    assert [attempt("wrong") for _ in range(4)] == [200] * 4
    assert attempt(PASSWORD) == 302
    client.logout()
    assert [attempt("wrong") for _ in range(4)] == [200] * 4
    assert attempt("wrong") == 429
