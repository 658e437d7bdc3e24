"""Redis for the cache (django-redis), the broker and the locks, with TLS on ``rediss://``.

django-redis keeps one ``redis.Redis`` per connection pool, which Django's own Redis
backend does not (it builds one per operation, ~0.4 ms of Python each time: more
than a round trip on loopback). The pool notices a fork and reconnects.
"""

from __future__ import annotations

import ssl
from typing import Any

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def redis_ssl_options(
    url: str | None, cert_reqs: str, ca_certs: str | None, *, for_kombu: bool = False
) -> dict[str, Any]:
    """TLS keyword arguments for a ``rediss://`` URL; nothing for ``redis://`` or no URL.

    redis-py takes ``ssl_cert_reqs`` as a name; kombu's ``broker_use_ssl`` wants the
    ``ssl`` module's constant.
    """
    if not url or not url.startswith("rediss://"):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[cert_reqs] if for_kombu else cert_reqs}
    if ca_certs:
        options["ssl_ca_certs"] = ca_certs
    return options


def redis_cache(url: str, client_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``CACHES`` entry for Redis at ``url``."""
    options: dict[str, Any] = {"CLIENT_CLASS": "django_redis.client.DefaultClient"}
    if client_kwargs:
        options["CONNECTION_POOL_KWARGS"] = dict(client_kwargs)
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": options}
