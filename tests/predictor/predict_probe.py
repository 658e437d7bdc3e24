"""A web process of its own for ``POST /api/predict``: ``python -m tests.predictor.predict_probe SPEC``.

Settings load from this process's environment (so a test chooses the database, the broker
and ``PREDICT_IN_WORKER``), the request goes through Django's full stack (middleware, DRF,
the view), and the probe prints one JSON line: the status, the answer, and which heavy
modules this process imported. SPEC is JSON:

* ``session``: the id to forecast with; or ``"make"``: migrate this process's own SQLite
  file and store a market and a session that looks trained (the worker is never reached in
  the cases that use it, so no model exists or is needed);
* ``candles``: the request's candles (default: eight flat hourly bars);
* ``locmem_cache``: throttle counts in memory, for a broker (and cache) that is down.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

HEAVY = ("tensorflow", "keras", "predictor.ml.artifacts", "predictor.services.live_forecast")


def _candles(n: int = 8) -> list[dict[str, Any]]:
    return [
        {
            "open_time": f"2024-01-01T{k:02d}:00:00Z",
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 3.0,
        }
        for k in range(n)
    ]


def _make_session() -> str:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from predictor.ml.config import TrainConfig
    from predictor.models import Market, SessionStatus, TrainingSession
    from predictor.services.sessions import session_create
    from tests.predictor.conftest import store_candles

    store_candles(Market.objects.create(exchange="binance", symbol="BTCUSDT"), 20)
    config = TrainConfig(window=8, arch="zero", target="return", interval="1h")
    session = session_create(config, symbols=["BTCUSDT"], exchange="binance")
    TrainingSession.objects.filter(pk=session.pk).update(
        status=SessionStatus.SUCCEEDED, manifest={"id": str(session.pk)}
    )
    return str(session.pk)


def main(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptooracle.settings")
    import django

    django.setup()
    from django.test import Client, override_settings

    session = _make_session() if spec["session"] == "make" else spec["session"]
    body = {"session": session, "candles": spec.get("candles") or _candles()}
    overrides: dict[str, Any] = {}
    if spec.get("locmem_cache"):
        overrides["CACHES"] = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
    with override_settings(**overrides):
        response = Client(HTTP_HOST="localhost").post(
            "/api/predict", json.dumps(body), content_type="application/json"
        )
    return {
        "status": response.status_code,
        "body": response.json(),
        "heavy": [name for name in HEAVY if name in sys.modules],
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
