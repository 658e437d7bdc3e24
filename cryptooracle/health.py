# mypy: disallow-subclassing-any=False
# (django-health-check ships no type hints: its HealthCheck base class is Any.)
"""``/health/``: is this process able to serve? Database, cache, broker, artifact storage.

Each check is cheap enough for a load balancer calling every few seconds: ``SELECT 1``,
a cache round trip, a broker connection and an existence query on each artifact store
(read-only: nothing is written to S3 per probe). A Celery worker being down does not
fail the web's health (that would take the web out of service for a worker's fault).
"""

from __future__ import annotations

import dataclasses
import datetime

from django.core.files.storage import storages
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection."""

    timeout = datetime.timedelta(seconds=3)

    def run(self) -> None:
        from cryptooracle.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, timeout=self.timeout.total_seconds()
                )
        except Exception as exc:  # kombu raises its own, redis-py's and OSError alike
            raise ServiceUnavailable(f"broker unreachable ({type(exc).__name__})") from exc


@dataclasses.dataclass
class ArtifactStorage(HealthCheck):
    """The storage of trained models (local folder or bucket) answers a read."""

    alias: str = "model_weights"

    def run(self) -> None:
        try:
            storages[self.alias].exists("health-probe")
        except Exception as exc:  # OSError on a disk, botocore's errors on S3
            raise ServiceUnavailable(
                f"storage {self.alias} unreadable ({type(exc).__name__})"
            ) from exc


CHECKS = (
    Database,
    Cache,
    Broker,
    (ArtifactStorage, {"alias": "model_weights"}),
    (ArtifactStorage, {"alias": "scalers"}),
)

health_view = HealthCheckView.as_view(checks=CHECKS)
