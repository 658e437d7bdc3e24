# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Hyper-parameter sweeps: list, read, start (create = queue), cancel and resume.

Everything a sweep does goes through ``predictor.services.sweeps``; the view only
checks who may do it, as the sessions' does: cancel and resume are for the user who
started the sweep or staff (a sweep started from the command line: staff only).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from kombu.exceptions import OperationalError
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from predictor.api.pagination import Pages
from predictor.api.sessions import UUID_PATTERN, Conflict, QueueUnavailable
from predictor.api.sweep_serializers import (
    SweepCreateSerializer,
    SweepListSerializer,
    SweepQuerySerializer,
    SweepSerializer,
    sweep_error_body,
)
from predictor.models import Sweep
from predictor.selectors.sweeps import sweep_list
from predictor.services.permissions import sweep_may_change
from predictor.services.sessions import TrainingError
from predictor.services.sweeps import sweep_cancel, sweep_create, sweep_queue, sweep_resume


class IsSweepOwnerOrStaff(permissions.BasePermission):
    message = "Only the user who started this sweep, or staff, may change it."

    def has_object_permission(self, request: Request, view: Any, obj: Sweep) -> bool:
        return sweep_may_change(request.user, obj)


def _queue_unavailable(exc: OperationalError) -> QueueUnavailable:
    return QueueUnavailable(
        f"the sweep is stored but the task queue is unreachable ({exc}); "
        "resume it once the queue is back"
    )


class SweepViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[Sweep]):
    """Hyper-parameter sweeps, newest first: every trial is an evaluation session judged on
    its validation split; the winner's test split alone is evaluated, once."""

    pagination_class = Pages
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet[Sweep]:
        if self.action != "list":
            return sweep_list()
        query = SweepQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return sweep_list(**query.validated_data)

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "list":
            return SweepListSerializer
        if self.action == "create":
            return SweepCreateSerializer
        return SweepSerializer

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("cancel", "resume"):
            return [permissions.IsAuthenticated(), IsSweepOwnerOrStaff()]
        return super().get_permissions()

    def _detail(self, sweep: Sweep) -> dict[str, Any]:
        sweep = sweep_list().get(pk=sweep.pk)  # with the list's counts, after the change
        return SweepSerializer(sweep, context=self.get_serializer_context()).data

    @extend_schema(parameters=[SweepQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=SweepCreateSerializer,
        responses={201: SweepSerializer, 503: OpenApiResponse(description="Queue down.")},
        description="Check the whole sweep (every trial through the training rules), store it "
        "with its first trials and queue them on the training workers.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = SweepCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            sweep = sweep_create(data["sweep_request"], user=request.user)
        except TrainingError as exc:
            raise serializers.ValidationError(sweep_error_body(exc, data["space"])) from None
        try:
            sweep_queue(sweep)
        except OperationalError as exc:  # the broker is down: say so rather than 500
            raise _queue_unavailable(exc) from exc
        headers = {"Location": request.build_absolute_uri(f"{sweep.pk}/")}
        return Response(self._detail(sweep), status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        request=None,
        responses={200: SweepSerializer, 409: OpenApiResponse(description="Already ended.")},
        description="Queued trials are cancelled at once, running ones after their current batch.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        sweep = self.get_object()
        try:
            sweep = sweep_cancel(sweep)
        except TrainingError as exc:
            raise Conflict(str(exc)) from None
        return Response(self._detail(sweep))

    @extend_schema(
        request=None,
        responses={
            200: SweepSerializer,
            409: OpenApiResponse(description="Succeeded: nothing to resume."),
            503: OpenApiResponse(description="Queue down."),
        },
        description="Carry on a sweep that has not succeeded: failed and cancelled trials start "
        "again, queued ones are sent again (a trial never trains twice), TPE asks on.",
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        sweep = self.get_object()
        try:
            sweep = sweep_resume(sweep)
        except TrainingError as exc:
            raise Conflict(str(exc)) from None
        except OperationalError as exc:
            raise _queue_unavailable(exc) from exc
        return Response(self._detail(sweep))
