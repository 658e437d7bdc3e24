"""The Redis cache backend reuses one client per pool and behaves as Django's own."""

from __future__ import annotations

import os
import uuid

import pytest

from cryptooracle.cache import SharedClientRedisCache

REDIS_URL = os.environ.get("REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a Redis server)")
def test_one_client_serves_every_operation_and_the_cache_api_works():
    cache = SharedClientRedisCache(REDIS_URL, {"KEY_PREFIX": f"test-{uuid.uuid4()}"})
    client = cache._cache.get_client()
    assert cache._cache.get_client(write=True) is client
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
