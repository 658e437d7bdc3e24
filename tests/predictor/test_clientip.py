"""The client address trusts X-Forwarded-For only as far as the configured proxies wrote it."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from cryptooracle.clientip import client_ip


def _request(forwarded: str | None, remote: str = "10.0.0.1"):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "client"),
    [
        (0, "1.2.3.4", "10.0.0.1"),  # no proxy: the header is the client's own words
        (0, None, "10.0.0.1"),
        (1, "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # Heroku: the router appended the peer
        (1, None, "10.0.0.1"),
        (2, "6.6.6.6, 1.2.3.4, 172.31.0.9", "1.2.3.4"),  # EB: load balancer, then nginx
        (2, "1.2.3.4", "1.2.3.4"),  # fewer entries than proxies: the left-most
        (1, " , ", "10.0.0.1"),
    ],
)
def test_client_ip_counts_proxies_from_the_right(settings, proxies, forwarded, client):
    settings.NUM_PROXIES = proxies
    assert client_ip(_request(forwarded)) == client
