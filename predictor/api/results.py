# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""What sessions produced: their stored predictions and evaluation reports.

Predictions are read as ``values()`` dicts, a cursor page at a time, and go to
JSON without a serializer per row: a page holds up to 5,000 of them.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from predictor.api.pagination import Pages, PredictionPages
from predictor.api.serializers import (
    ID_PATTERN,
    PredictionQuerySerializer,
    PredictionSerializer,
    ReportQuerySerializer,
    ReportSerializer,
)
from predictor.models import EvaluationReport, Prediction
from predictor.prediction_columns import API_COLUMNS, prediction_lookups
from predictor.selectors.predictions import prediction_list
from predictor.selectors.sessions import report_list


class PredictionListView(generics.ListAPIView[Prediction]):
    """A session's predictions, by target time; ``start``/``end`` bound the target time."""

    serializer_class = PredictionSerializer
    pagination_class = PredictionPages

    def get_queryset(self) -> QuerySet[Prediction]:
        query = PredictionQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        session = params.pop("session")
        if "market" in params:
            params["market_id"] = params.pop("market")
        return prediction_list(session, **params).values(*prediction_lookups(API_COLUMNS))

    @extend_schema(parameters=[PredictionQuerySerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        lookups = prediction_lookups(API_COLUMNS)
        rows = [
            {name: row[lookup] for name, lookup in zip(API_COLUMNS, lookups, strict=True)}
            for row in page or ()
        ]
        return self.get_paginated_response(rows)


class ReportViewSet(viewsets.ReadOnlyModelViewSet[EvaluationReport]):
    """Evaluation reports, one per session and split (forward, test, validation, train, spa,
    walk_forward); ``forward`` scores the forecasts after the training data."""

    serializer_class = ReportSerializer
    pagination_class = Pages
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[EvaluationReport]:
        if self.action != "list":
            return report_list()
        query = ReportQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return report_list(**query.validated_data)

    @extend_schema(parameters=[ReportQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
