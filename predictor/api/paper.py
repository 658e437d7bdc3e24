# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""``/api/paper/``: live paper sessions, one's state and trades; start and stop.

Reads are public; start and stop are for the user who started the session, or
staff, as cancel and retry are. The rules go through ``predictor.services.paper``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from predictor.api.pagination import Pages
from predictor.api.sessions import UUID_PATTERN, Conflict, IsOwnerOrStaff
from predictor.ml.evaluation.engine import MODES
from predictor.models import PaperAccount, PaperTrade, TrainingSession
from predictor.selectors.paper import (
    paper_account_get,
    paper_account_list,
    paper_summary,
    paper_trade_list,
)


class PaperAccountSerializer(serializers.ModelSerializer[PaperAccount]):
    session = serializers.UUIDField(source="session_id", read_only=True)

    class Meta:
        model = PaperAccount
        fields = (
            "session", "live", "theta", "theta_source", "horizon", "mode", "fee", "slippage",
            "started_at", "stopped_at", "first_bar", "updated",
        )  # fmt: skip


class OpenHoldingSerializer(serializers.Serializer[Any]):
    symbol = serializers.CharField()
    sleeve = serializers.IntegerField()
    side = serializers.IntegerField(help_text="+1 long, -1 short")
    weight = serializers.FloatField()
    entry_time = serializers.DateTimeField()
    entry_price = serializers.FloatField()
    exit_due = serializers.DateTimeField()
    last_price = serializers.FloatField(allow_null=True)
    gross_return = serializers.FloatField(allow_null=True, help_text="marked at the last close")


class PaperStateSerializer(serializers.Serializer[Any]):
    account = PaperAccountSerializer()
    open = OpenHoldingSerializer(many=True)
    n_trades = serializers.IntegerField()
    total_return = serializers.FloatField(help_text="realised, after costs")
    significance = serializers.JSONField(help_text="forward, paper: over the closed holdings")


class PaperTradeSerializer(serializers.ModelSerializer[PaperTrade]):
    symbol = serializers.CharField(source="market.symbol", read_only=True)

    class Meta:
        model = PaperTrade
        fields = (
            "symbol", "sleeve", "side", "weight", "signal_time", "entry_time", "exit_time",
            "entry_price", "exit_price", "entry_traded", "exit_traded", "gross_return",
            "net_return", "cost",
        )  # fmt: skip


class PaperStartSerializer(serializers.Serializer[Any]):
    theta = serializers.FloatField(required=False, min_value=0.0, help_text="default: validation θ")
    theta_from = serializers.UUIDField(required=False, help_text="an evaluation session's id")
    fee = serializers.FloatField(required=False, min_value=0.0, max_value=0.999)
    slippage = serializers.FloatField(required=False, min_value=0.0, max_value=0.999)
    mode = serializers.ChoiceField(choices=MODES, required=False)


class PaperViewSet(viewsets.GenericViewSet[PaperAccount]):
    """Paper trading accounts by session id; the list holds the live ones."""

    pagination_class = Pages
    lookup_value_regex = UUID_PATTERN
    serializer_class = PaperAccountSerializer

    def get_queryset(self) -> QuerySet[PaperAccount]:
        return paper_account_list(live=True)

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in ("start", "stop"):
            return [permissions.IsAuthenticated(), IsOwnerOrStaff()]
        return super().get_permissions()

    def _session(self, pk: str | None) -> TrainingSession:
        session = get_object_or_404(TrainingSession, pk=pk)
        self.check_object_permissions(self.request, session)
        return session

    def _account(self, pk: str | None) -> PaperAccount:
        account = paper_account_get(self._session(pk))
        if account is None:
            raise serializers.ValidationError({"session": ["this session is not paper trading"]})
        return account

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(PaperAccountSerializer(page, many=True).data)

    @extend_schema(responses={200: PaperStateSerializer, 404: OpenApiResponse(description="None.")})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        account = paper_account_get(get_object_or_404(TrainingSession, pk=pk))
        if account is None:
            return Response({"detail": "this session is not paper trading"}, status=404)
        summary = paper_summary(account)
        body = {
            "account": account,
            "open": summary.open,
            "n_trades": len(summary.trades),
            "total_return": summary.total_return,
            "significance": summary.significance.to_dict(),
        }
        return Response(PaperStateSerializer(body).data)

    @extend_schema(responses={200: PaperTradeSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def trades(self, request: Request, pk: str | None = None) -> Response:
        session = get_object_or_404(TrainingSession, pk=pk)
        page = self.paginate_queryset(paper_trade_list(session))
        return self.get_paginated_response(PaperTradeSerializer(page, many=True).data)

    @extend_schema(
        request=PaperStartSerializer,
        responses={200: PaperAccountSerializer, 409: OpenApiResponse(description="Refused.")},
        description="Mark the session live with θ frozen (its validation θ unless given).",
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str | None = None) -> Response:
        from predictor.services.paper import PaperError, paper_start  # Keras: only where it runs

        session = self._session(pk)
        form = PaperStartSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        origin = data.pop("theta_from", None)
        try:
            source = get_object_or_404(TrainingSession, pk=origin) if origin else None
            account = paper_start(session, theta_from=source, **data)
        except PaperError as exc:
            raise Conflict(str(exc)) from None
        return Response(PaperAccountSerializer(account).data)

    @extend_schema(
        request=None,
        responses={200: PaperAccountSerializer, 409: OpenApiResponse(description="Not trading.")},
        description="Stop stepping the session; open holdings stay open.",
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        from predictor.services.paper import PaperError, paper_stop

        session = self._session(pk)
        try:
            account = paper_stop(session)
        except PaperError as exc:
            raise Conflict(str(exc)) from None
        return Response(PaperAccountSerializer(account).data)
