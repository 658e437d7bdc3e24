# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Rate limits: forecasts run a model, so ``POST /api/predict`` is throttled per client."""

from __future__ import annotations

import re
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from cryptooracle.clientip import client_ip

_RATE = re.compile(r"^\d+/[smhd][a-z]*$")  # what DRF's parse_rate reads: 60/minute, 5/s


class ScopeThrottle(ScopedRateThrottle):
    """``ScopedRateThrottle`` that reads its rate and cache when asked, not at import.

    DRF binds ``THROTTLE_RATES`` and ``cache`` when the module is imported, so a
    changed setting (``API_PREDICT_RATE``, a test's ``CACHES``) would not apply.

    Clients are told apart by :func:`cryptooracle.clientip.client_ip` (``NUM_PROXIES``),
    never by a client-written ``X-Forwarded-For``.
    """

    @property
    def cache(self) -> Any:
        return caches["default"]

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        if self.scope not in rates:
            raise ImproperlyConfigured(f"no throttle rate for scope {self.scope!r}")
        rate = rates[self.scope]
        if rate is not None and not _RATE.match(str(rate)):
            raise ImproperlyConfigured(
                f"throttle rate {rate!r} for {self.scope!r} is not like 60/minute"
            )
        return rate

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or ""
