# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Training sessions: list, read, start (create = queue), cancel and retry.

Starting, cancelling and retrying go through ``predictor.services.runs``;
the view only checks who may do it. Cancel and retry are for the user who
started the session or staff; a session started from the command line has no
owner, so only staff touch it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from kombu.exceptions import OperationalError
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from predictor.api.pagination import Pages
from predictor.api.session_serializers import (
    SessionCreateSerializer,
    SessionListSerializer,
    SessionQuerySerializer,
    SessionSerializer,
)
from predictor.models import TrainingSession
from predictor.selectors.sessions import session_detail_list, session_list
from predictor.services.permissions import session_may_change
from predictor.services.runs import run_cancel, run_retry, run_start
from predictor.services.sessions import TrainingError

UUID_PATTERN = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The session is not in a state that allows this."
    default_code = "conflict"


class QueueUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The task queue is unreachable."
    default_code = "queue_unavailable"


class IsOwnerOrStaff(permissions.BasePermission):
    message = "Only the user who started this session, or staff, may change it."

    def has_object_permission(self, request: Request, view: Any, obj: TrainingSession) -> bool:
        return session_may_change(request.user, obj)


def _queue_unavailable(exc: OperationalError) -> QueueUnavailable:
    return QueueUnavailable(
        f"the session is stored as queued but the task queue is unreachable ({exc}); "
        "cancel it and retry it later"
    )


class TrainingSessionViewSet(
    mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet[TrainingSession]
):
    """Training sessions, newest first."""

    pagination_class = Pages
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self) -> QuerySet[TrainingSession]:
        if self.action != "list":
            return session_detail_list()
        query = SessionQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return session_list(**query.validated_data)

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "list":
            return SessionListSerializer
        if self.action == "create":
            return SessionCreateSerializer
        return SessionSerializer

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("cancel", "retry"):
            return [permissions.IsAuthenticated(), IsOwnerOrStaff()]
        return super().get_permissions()

    @extend_schema(parameters=[SessionQuerySerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=SessionCreateSerializer,
        responses={201: SessionSerializer, 503: OpenApiResponse(description="Queue down.")},
        description="Store a training session and queue it for a worker (status `queued`).",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = SessionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            session = run_start(data["run_request"], user=request.user)
        except TrainingError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from None
        except OperationalError as exc:  # the broker is down: say so rather than 500
            raise _queue_unavailable(exc) from exc
        session.refresh_from_db()
        body = SessionSerializer(session, context=self.get_serializer_context()).data
        headers = {"Location": request.build_absolute_uri(f"{session.pk}/")}
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)

    @extend_schema(
        request=None,
        responses={200: SessionSerializer, 409: OpenApiResponse(description="Already finished.")},
        description="A queued session is cancelled at once; a running one after its current batch.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        if not session.is_active:
            raise Conflict(f"session {session.pk} is {session.status}; it cannot be cancelled")
        session = run_cancel(session)
        return Response(SessionSerializer(session, context=self.get_serializer_context()).data)

    @extend_schema(
        request=None,
        responses={200: SessionSerializer, 409: OpenApiResponse(description="Not retryable.")},
        description="Queue a failed or cancelled session again, from scratch.",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        try:
            session = run_retry(session)
        except TrainingError as exc:
            raise Conflict(str(exc)) from None
        except OperationalError as exc:
            raise _queue_unavailable(exc) from exc
        session.refresh_from_db()
        return Response(SessionSerializer(session, context=self.get_serializer_context()).data)
