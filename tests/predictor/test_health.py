"""``/health/`` answers a load balancer's checker: any Host, plain HTTP, each service named."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

INSTANCE_IP = "172.31.5.6"  # what an ALB puts in Host when it calls an instance


@pytest.fixture
def production_like(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["oracle.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^health/$"]


def test_health_reports_every_service_ok_as_json(client: Client) -> None:
    response = client.get("/health/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {
        "Database(alias='default')": "OK",
        "Cache(alias='default')": "OK",
        "Broker()": "OK",
        "ArtifactStorage(alias='model_weights')": "OK",
        "ArtifactStorage(alias='scalers')": "OK",
    }
    assert "no-cache" in response["Cache-Control"]


def test_health_answers_the_instance_ip_over_http_while_other_pages_refuse_it(
    client: Client, production_like: None
) -> None:
    health = client.get("/health/", HTTP_HOST=INSTANCE_IP)
    assert health.status_code == 200
    assert b"Database" in health.content
    assert client.head("/health/", HTTP_HOST=INSTANCE_IP).status_code == 200
    assert client.get("/", HTTP_HOST=INSTANCE_IP).status_code == 400
    redirect = client.get("/", HTTP_HOST="oracle.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"].startswith("https://")


def test_a_service_down_makes_health_fail_and_names_it(client: Client, settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    response = client.get("/health/?format=json")
    assert response.status_code == 500
    body = response.json()
    assert body["Cache(alias='default')"] != "OK"
    assert body["Database(alias='default')"] == "OK"


def test_an_unreachable_broker_fails_health(client: Client, monkeypatch: Any) -> None:
    from cryptooracle.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    body = client.get("/health/?format=json").json()
    assert body["Broker()"].endswith("broker unreachable (OperationalError)")
