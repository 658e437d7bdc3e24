"""Middleware of the project: the health answer for load balancers, and request ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse

from cryptooracle.logs import request_id

# What a proxy's id looks like (Heroku's router sends a UUID); anything else, such as a
# header stuffed with newlines or kilobytes to forge log lines, is replaced by our own.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
HEALTH_PATH = "/health/"


class HealthCheckMiddleware:
    """Answers ``/health/`` before anything reads the Host header, the HTTPS redirect included.

    A load balancer's checker (Elastic Beanstalk's ALB) calls each instance by its private
    IP, over plain HTTP: ALLOWED_HOSTS would answer 400 and SecurityMiddleware 301.
    Adding the instance's IP to ALLOWED_HOSTS would need the IP at start-up (from the
    instance metadata) and would let any Host through that path as well; answering here,
    first in MIDDLEWARE, keeps host validation for every other URL. The answer says only
    which services are up.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH and request.method in ("GET", "HEAD"):
            from cryptooracle.health import health_view

            response: HttpResponse = async_to_sync(health_view)(request)
            if hasattr(response, "render"):
                response = response.render()
            return response
        return self.get_response(request)


class RequestIdMiddleware:
    """Gives each request an id: the proxy's ``X-Request-ID`` if sane, else a new UUID.

    The id is echoed in the response's ``X-Request-ID`` and set for the logs
    (cryptooracle.logs.RequestIdFilter) while the request is served.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        rid = given if _SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = rid
        return response
