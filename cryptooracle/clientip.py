"""The client's address, for throttles and login lockouts, behind a known number of proxies.

``X-Forwarded-For`` is written by the client first and appended to by each proxy,
so only the entries the platform's proxies added can be trusted: with
``NUM_PROXIES = n`` the client is the n-th address from the right (Heroku's router
adds one; an Elastic Beanstalk load balancer and the instance's nginx add two).
With 0 the header is ignored and the socket's peer (``REMOTE_ADDR``) is the client.
This is how DRF reads its own ``NUM_PROXIES``; axes uses the same function, so a
forged header never gives an attacker a fresh throttle or lockout bucket.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_ip(request: Any) -> str | None:
    """The address the request came from, as the trusted proxies saw it."""
    meta = request.META
    remote: str | None = meta.get("REMOTE_ADDR")
    proxies = int(getattr(settings, "NUM_PROXIES", 0) or 0)
    forwarded: str | None = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]
