# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# mypy: disallow-untyped-calls=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""API documentation pages that load nothing from another host.

Swagger UI and Redoc are drf-spectacular's, their JavaScript served by static
files from the ``drf-spectacular-sidecar`` wheel (``SWAGGER_UI_DIST`` and
``REDOC_DIST`` are ``SIDECAR``). drf-spectacular's Redoc page also links Google
Fonts; here its head is replaced so the page asks no other host for anything
(Redoc falls back to the system fonts).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.template import engines
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.request import Request

_REDOC_OFFLINE = """{% extends "drf_spectacular/redoc.html" %}
{% block head %}
<title>{{ title|default:"Redoc" }}</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 0; padding: 0; }</style>
{% endblock head %}
"""


class RedocView(SpectacularRedocView):
    """drf-spectacular's Redoc page without its web-font links."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        context = super().get(request, *args, **kwargs).data
        html = engines["django"].from_string(_REDOC_OFFLINE).render(context, request._request)
        return HttpResponse(html, content_type="text/html; charset=utf-8")
