"""Settings come from the environment and fail loudly; production refuses to start insecure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from cryptooracle.env import Env
from tests.predictor.settings_probe import PRODUCTION, ROOT, environment, run_python


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
    return run_python(
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)",
        **env,
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
    result = load_settings(**PRODUCTION)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("unset", "message"),
    [("DATABASE_URL", "refuses SQLite"), ("REDIS_URL", "refuses the filesystem broker")],
)
def test_production_refuses_the_embedded_services(unset: str, message: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != unset}
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "CRYPTOORACLE_ALLOW_EMBEDDED" in result.stderr


def test_production_runs_embedded_when_explicitly_allowed() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = load_settings(CRYPTOORACLE_ALLOW_EMBEDDED="1", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


@pytest.mark.parametrize("key", [None, "development-only-insecure-key-never-use-in-production"])
def test_debug_off_refuses_the_public_development_key_outside_production(key: str | None) -> None:
    env = {"DJANGO_DEBUG": "false"} | ({"DJANGO_SECRET_KEY": key} if key else {})
    result = load_settings(**env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is unset or the public development key" in result.stderr
    assert load_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="s" * 50).returncode == 0


def test_the_deploy_check_flags_the_development_key(settings: Any) -> None:
    from cryptooracle.checks import DEVELOPMENT_SECRET_KEY, development_secret_key_check

    settings.SECRET_KEY = DEVELOPMENT_SECRET_KEY
    assert [e.id for e in development_secret_key_check()] == ["cryptooracle.E001"]
    settings.SECRET_KEY = "another-" + "k" * 50
    assert development_secret_key_check() == []


# What README "Deploying" tells a platform to set, HTTPS included.
DOCUMENTED_PRODUCTION = PRODUCTION | {
    "DJANGO_SECRET_KEY": "Zq3v-8sLx1_Pw0Rt6Yb9Nc2Md5Kf7Hj4Gs1Ae8Wu3Ti6Oy0Lp-Vd2Xe7Qa9",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_NUM_PROXIES": "1",
}


def test_check_deploy_is_clean_under_the_documented_production_settings(tmp_path: Path) -> None:
    env = environment(**DOCUMENTED_PRODUCTION, DJANGO_STATIC_ROOT=str(tmp_path / "static"))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_rediss_urls_get_tls_options_for_the_cache_broker_and_locks() -> None:
    code = (
        "import ssl; from django.conf import settings as s; "
        "print(s.CACHES['default']['BACKEND'], s.CACHES['default']['OPTIONS']"
        "['CONNECTION_POOL_KWARGS']['ssl_cert_reqs'], s.REDIS_CLIENT_KWARGS['ssl_cert_reqs'], "
        "s.CELERY_BROKER_USE_SSL['ssl_cert_reqs'] == ssl.CERT_NONE, "
        "s.CELERY_REDIS_BACKEND_USE_SSL['ssl_cert_reqs'] == ssl.CERT_NONE)"
    )
    result = run_python(
        code, REDIS_URL="rediss://:pw@redis.example.com:6380/0", REDIS_SSL_CERT_REQS="none"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django_redis.cache.RedisCache",
        "none",
        "none",
        "True",
        "True",
    ]


def test_tls_is_required_by_default_and_plain_redis_gets_no_tls_options() -> None:
    import ssl

    from cryptooracle.cache import redis_ssl_options

    assert redis_ssl_options("rediss://h:6380/0", "required", None) == {"ssl_cert_reqs": "required"}
    assert redis_ssl_options("rediss://h/0", "required", "/ca.pem", for_kombu=True) == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/ca.pem",
    }
    assert redis_ssl_options("redis://h/0", "required", None) == {}
    assert redis_ssl_options(None, "required", None) == {}


def test_an_unknown_database_scheme_is_refused() -> None:
    result = load_settings(DATABASE_URL="mysql://root@127.0.0.1/x")
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_celery_children_are_bounded_by_tasks_and_memory_from_the_environment() -> None:
    code = (
        "import django; django.setup(); from cryptooracle.celery import app; "
        "print(app.conf.worker_max_tasks_per_child, app.conf.worker_max_memory_per_child)"
    )
    runs = [
        run_python(code, **extra)
        for extra in (
            PRODUCTION,
            {},
            {"CELERY_WORKER_MAX_TASKS_PER_CHILD": "5", "CELERY_WORKER_MAX_MEMORY_PER_CHILD": "0"},
        )
    ]
    # Production bounds a child for a 1 GB dyno; a laptop's `make run` does not replace it.
    assert [r.stdout.split() for r in runs] == [
        ["100", "900000"],
        ["None", "None"],
        ["5", "None"],
    ], runs


def test_gunicorn_reads_workers_and_recycling_from_the_environment() -> None:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = os.environ | {"WEB_CONCURRENCY": "3", "GUNICORN_MAX_REQUESTS": "700", "PORT": "5123"}
    result = subprocess.run(
        [gunicorn, "--check-config", "--print-config", "cryptooracle.wsgi"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config = dict(
        (k.strip(), v.strip()) for k, _, v in (x.partition("=") for x in result.stdout.splitlines())
    )
    assert config["workers"] == "3"
    assert config["max_requests"] == "700"
    assert config["max_requests_jitter"] == "100"
    assert config["bind"] == "['0.0.0.0:5123']"
