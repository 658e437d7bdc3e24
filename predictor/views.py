"""Pages. Views are thin: they call selectors and render templates."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from predictor.selectors import market_coverage_list


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "predictor/index.html", {"markets": market_coverage_list()})
