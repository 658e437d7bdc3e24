# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Bounded pages: a client may ask for smaller or larger pages, never unbounded ones."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


class Pages(PageNumberPagination):
    """Lists of sessions, reports and markets: ``?page=2&page_size=100`` (at most 200)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class PredictionPages(CursorPagination):
    """Predictions, oldest target first, by cursor: constant cost however deep the page.

    An offset over millions of rows makes the database count and skip them all;
    a cursor on ``(target_time, id)`` continues from where the last page ended,
    on the ``(session, target_time)`` index.
    """

    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    ordering = ("target_time", "id")
