"""``/api/``: the REST API, its OpenAPI schema and its documentation pages."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from predictor.api.auth import TokenView
from predictor.api.docs import RedocView
from predictor.api.markets import MarketViewSet
from predictor.api.paper import PaperViewSet
from predictor.api.predict import PredictView
from predictor.api.results import PredictionListView, ReportViewSet
from predictor.api.sessions import TrainingSessionViewSet
from predictor.api.sweeps import SweepViewSet

app_name = "api"

router = DefaultRouter()
router.register("markets", MarketViewSet, basename="market")
router.register("sessions", TrainingSessionViewSet, basename="session")
router.register("reports", ReportViewSet, basename="report")
router.register("paper", PaperViewSet, basename="paper")
router.register("sweeps", SweepViewSet, basename="sweep")

urlpatterns = [
    path("predict", PredictView.as_view(), name="predict"),
    path("predictions/", PredictionListView.as_view(), name="prediction-list"),
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/", include("rest_framework.urls", namespace="rest_framework")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
]
