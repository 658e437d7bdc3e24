"""Settings come from the environment and fail loudly; production refuses to start insecure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from cryptooracle.env import Env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("0", False), ("Off", False), ("YES", True)]
)
def test_booleans_are_read_in_every_usual_spelling(raw: str, value: bool) -> None:
    assert Env({"X": raw}).bool("X", default=not value) is value


def test_a_misspelt_boolean_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="DJANGO_DEBUG='ture'"):
        Env({"DJANGO_DEBUG": "ture"}).bool("DJANGO_DEBUG", default=False)


def test_integers_are_checked() -> None:
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        Env({"N": "ten"}).int("N", 1)
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        Env({"N": "0"}).int("N", 5, minimum=1)
    assert Env({}).int("N", 5) == 5


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    clean.update(env)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','cryptooracle.settings'); "
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_nothing_set_gives_sqlite_and_a_serverless_broker() -> None:
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def test_database_and_redis_urls_switch_the_services() -> None:
    result = load_settings(
        DATABASE_URL="postgres://u@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/3"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis://127.0.0.1:6379/3"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "a.b"},
            "refuses DJANGO_DEBUG",
        ),
        ({"DJANGO_ALLOWED_HOSTS": "a.b"}, "needs DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "x" * 50}, "needs DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_insecure(env: dict[str, str], message: str) -> None:
    result = load_settings(DJANGO_RUNTIME_ENVIRONMENT="production", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_when_configured() -> None:
    result = load_settings(
        DJANGO_RUNTIME_ENVIRONMENT="production",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="oracle.example.com",
        ARTIFACTS_BUCKET="oracle-artifacts",
    )
    assert result.returncode == 0, result.stderr


def test_an_unknown_database_scheme_is_refused() -> None:
    result = load_settings(DATABASE_URL="mysql://root@127.0.0.1/x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
