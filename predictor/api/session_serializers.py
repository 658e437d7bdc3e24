# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Training sessions in and out: a request to train, and the session row as JSON.

The hyper-parameters are :class:`TrainConfig`'s own fields, typed and bounded
here by the table every entry uses (``REQUEST_MAXIMA``: an epoch count of 10^12
or a seed past the database column is refused before anything is stored). The
request then goes through :func:`predictor.services.runs.run_config`, the rules
the command and the form use too (defaults by target, what a continuation keeps);
an error names its field, which becomes ``config.<field>``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from rest_framework import serializers

from predictor.ml.config import (
    ARCHS,
    FEATURE_SETS,
    NAME_CHOICES,
    REQUEST_MAXIMA,
    TARGET_KINDS,
    TrainConfig,
)
from predictor.ml.intervals import CANONICAL_INTERVALS
from predictor.models import Exchange, Market, SessionStatus, TrainingSession
from predictor.selectors.candles import market_get
from predictor.services.runs import RunRequest, run_config
from predictor.services.sessions import TrainingError

_HELP: dict[str, str] = {
    "window": "-W: candles per input window.",
    "output_size": "-O: output steps (price/return targets).",
    "train_split": "-T: fraction of the data for training and validation.",
    "evaluation": "-V: true splits by time and evaluates; false trains on all data.",
    "horizon": "Bars ahead; null: 1 for price, 15 otherwise.",
    "gap": "Purge gap in bars between splits; null: the label reach.",
    "features": f"Feature sets, in order: {', '.join(FEATURE_SETS)}.",
    "interval": "Bar length the model trains on (1m, 5m, 1h, 1d…).",
    "xla": "XLA compilation; null: on for recurrent nets on CPU.",
    "max_fill": "Gap-filled bars one sample may read; 0: none.",
}


def _config_field(field: dataclasses.Field[Any], hint: Any) -> serializers.Field:
    args = typing.get_args(hint)
    nullable = isinstance(hint, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if nullable else hint
    default = field.default
    shown = list(default) if isinstance(default, tuple) else default
    kwargs: dict[str, Any] = {
        "required": False,
        "allow_null": nullable,
        "help_text": f"{_HELP.get(field.name, '')} Default: {shown!r}.".strip(),
    }
    if field.name in NAME_CHOICES:
        return serializers.ChoiceField(choices=NAME_CHOICES[field.name], **kwargs)
    if field.name == "features":
        kwargs.pop("allow_null")
        return serializers.ListField(
            child=serializers.ChoiceField(choices=FEATURE_SETS),
            min_length=1,
            max_length=len(FEATURE_SETS),
            **kwargs,
        )
    if base is bool:
        return serializers.BooleanField(**kwargs)
    if base is int:
        return serializers.IntegerField(
            min_value=0, max_value=REQUEST_MAXIMA.get(field.name, 2**31 - 1), **kwargs
        )
    if base is float:
        return serializers.FloatField(**kwargs)
    return serializers.CharField(max_length=32, **kwargs)


def _config_fields() -> dict[str, serializers.Field]:
    hints = typing.get_type_hints(TrainConfig)
    return {
        f.name: _config_field(f, hints[f.name])
        for f in dataclasses.fields(TrainConfig)
        if f.name != "markets"  # the request's ``symbols``
    }


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know: a misspelt ``epoch`` must not silently train 4 epochs."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({k: ["unknown field"] for k in unknown[:10]})
        return super().to_internal_value(data)


TrainConfigSerializer = type(
    "TrainConfigSerializer",
    (StrictSerializer,),
    {
        **_config_fields(),
        "__doc__": "Hyper-parameters; every field is optional and defaults as shown.",
    },
)


class SessionCreateSerializer(StrictSerializer):
    """Train on ``symbols`` (model order) with ``config``; the session is queued at once."""

    symbols = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=20
    )
    exchange = serializers.ChoiceField(choices=Exchange.choices, required=False, allow_null=True)
    start = serializers.DateTimeField(
        required=False, allow_null=True, help_text="First candle; empty: the first stored."
    )
    end = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Last candle (inclusive); empty: the last."
    )
    parent = serializers.PrimaryKeyRelatedField(
        queryset=TrainingSession.objects.all(),
        required=False,
        allow_null=True,
        help_text="-X: continue this succeeded session's model on newer candles.",
    )
    config = TrainConfigSerializer(required=False)

    def validate_symbols(self, symbols: list[str]) -> list[str]:
        names = [s.strip().upper() for s in symbols]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("contains a duplicate")
        return names

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        exchange = attrs.get("exchange") or None
        markets = markets_and_period(attrs)
        start, end = attrs.get("start"), attrs.get("end")
        try:
            request = RunRequest(
                given=attrs.get("config", {}),
                symbols=[m.symbol for m in markets],
                exchange=exchange,
                start=start,
                end=end,
                parent=attrs.get("parent"),
            ).resolved()
            config = run_config(request)
        except TrainingError as exc:
            raise serializers.ValidationError(error_body(exc)) from None
        if config.interval not in CANONICAL_INTERVALS:
            raise serializers.ValidationError(
                {"config": {"interval": [f"use one of {', '.join(CANONICAL_INTERVALS)}"]}}
            )
        attrs["run_request"] = request
        return attrs


def markets_and_period(attrs: dict[str, Any]) -> list[Market]:
    """The request's markets (a field error names each one not found) and a start before
    the end: what every request to train checks first, a session's or a sweep's."""
    exchange = attrs.get("exchange") or None
    errors: list[str] = []
    markets: list[Market] = []
    for symbol in attrs["symbols"]:
        try:
            markets.append(market_get(symbol, exchange))
        except (Market.DoesNotExist, Market.MultipleObjectsReturned) as exc:
            errors.append(str(exc))
    if errors:
        raise serializers.ValidationError({"symbols": errors})
    start, end = attrs.get("start"), attrs.get("end")
    if start is not None and end is not None and start >= end:
        raise serializers.ValidationError({"end": ["must be after start"]})
    return markets


def error_body(exc: TrainingError) -> dict[str, Any]:
    """A request error as DRF's field errors: config fields under ``config``."""
    if exc.field in ("symbols", "markets"):
        return {"symbols": [str(exc)]}
    if exc.field == "period":
        return {"end": [str(exc)]}
    if exc.field in ("parent", "start", "end", "exchange"):
        return {exc.field: [str(exc)]}
    if exc.field is not None:
        return {"config": {exc.field: [f"{exc.field}: {exc}"]}}
    return {"non_field_errors": [str(exc)]}


class SessionListSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", default=None, read_only=True, allow_null=True
    )
    has_artifact = serializers.BooleanField(read_only=True, help_text="A trained model is stored.")

    class Meta:
        model = TrainingSession
        fields: tuple[str, ...] = (
            "id",
            "status",
            "mode",
            "arch",
            "target",
            "interval",
            "exchange",
            "symbols",
            "config",
            "requested_start",
            "requested_end",
            "parent",
            "created_by",
            "epoch",
            "epochs",
            "loss",
            "val_loss",
            "eta_seconds",
            "cancel_requested",
            "error",
            "has_artifact",
            "created",
            "started",
            "finished",
        )
        read_only_fields = fields


class SessionSerializer(SessionListSerializer):
    """The whole row: progress, history, where it ran, what data it saw."""

    class Meta(SessionListSerializer.Meta):
        fields = (
            *SessionListSerializer.Meta.fields,
            "markets",
            "seed",
            "data_start",
            "data_end",
            "data_hash",
            "split",
            "samples",
            "history",
            "folds",
            "samples_per_second",
            "backend",
            "versions",
            "device",
            "celery_task_id",
            "worker",
            "heartbeat",
            "attempts",
        )
        read_only_fields = fields


class SessionQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SessionStatus.choices, required=False)
    arch = serializers.ChoiceField(choices=ARCHS, required=False)
    target = serializers.ChoiceField(choices=TARGET_KINDS, required=False)
    symbol = serializers.CharField(max_length=32, required=False)
    exchange = serializers.ChoiceField(choices=Exchange.choices, required=False)
