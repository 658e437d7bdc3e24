"""The Redis cache (django-redis) reuses one client per pool and behaves as Django's cache API."""

from __future__ import annotations

import os
import uuid

import pytest
from django.core.cache.backends.base import BaseCache
from django_redis.cache import RedisCache

from cryptooracle.cache import redis_cache

REDIS_URL = os.environ.get("REDIS_URL")


def _cache(url: str, client_kwargs: dict) -> BaseCache:
    entry = redis_cache(url, client_kwargs)
    params = {**entry, "KEY_PREFIX": f"test-{uuid.uuid4()}"}
    return RedisCache(entry["LOCATION"], params)


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a Redis server)")
def test_one_client_serves_every_operation_and_the_cache_api_works():
    cache = _cache(REDIS_URL, {})
    client = cache.client.get_client(write=False)
    assert cache.client.get_client(write=True) is client
    try:
        cache.set("a", {"x": [1.5, None]}, 30)
        assert cache.get("a") == {"x": [1.5, None]}
        assert cache.add("n", 1, 30) is True
        assert cache.add("n", 5, 30) is False
        assert cache.incr("n") == 2
        assert cache.get_many(["a", "n", "missing"]) == {"a": {"x": [1.5, None]}, "n": 2}
    finally:
        cache.delete_many(["a", "n"])
    assert cache.get("a") is None
    assert cache.client.get_client() is client


def test_a_rediss_cache_connects_over_tls_with_the_certificate_check_asked_for():
    cache = _cache("rediss://:pw@redis.example.com:6380/0", {"ssl_cert_reqs": "required"})
    pool = cache.client.get_client(write=True).connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
