# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Sweeps in and out: a request to search, and the sweep with its trials as JSON.

The base request is a session's (``symbols``, ``exchange``, ``start``, ``end``,
``config``); ``space`` maps config fields to a list of values, ``{"values": [...]}``
or a range ``{"low": a, "high": b, "log": false}``. Every value is read by the
config field's own serializer field (types and bounds as ``POST /api/sessions/``),
then :func:`predictor.services.sweeps.sweep_create` judges the whole request — every
trial through the training rules — before anything is stored; its errors name a
field, which becomes ``space.<field>`` when the space holds it.
"""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from predictor.api.session_serializers import (
    SessionCreateSerializer,
    TrainConfigSerializer,
    error_body,
    markets_and_period,
)
from predictor.ml.intervals import CANONICAL_INTERVALS, IntervalError, parse_interval
from predictor.models import SessionStatus, Sweep, SweepMethod, SweepObjective, TrainingSession
from predictor.selectors.sweeps import report_headline, sweep_trial_list, sweep_winner_report
from predictor.services.runs import RunRequest
from predictor.services.sessions import TrainingError
from predictor.services.sweep_space import MAX_TRIALS
from predictor.services.sweeps import MAX_PARALLEL, SweepRequest, sweep_progress, trial_params

SWEEP_FIELDS = ("space", "method", "n_trials", "parallel", "objective", "seed", "name")
RANGE_KEYS = frozenset({"low", "high", "log"})


def _value(field: serializers.Field, value: Any) -> Any:
    if value is None:
        raise serializers.ValidationError("give a value, not null")
    return field.run_validation(value)


def _axis(key: str, axis: Any, field: serializers.Field) -> dict[str, Any]:
    """One axis in its stored shape, every value typed and bounded by the config field."""
    if isinstance(axis, list):
        axis = {"values": axis}
    if not isinstance(axis, dict):
        raise serializers.ValidationError(
            f"{key}: a list of values, {{'values': [...]}} or {{'low', 'high', 'log'}}"
        )
    if "values" in axis:
        values = axis["values"]
        if set(axis) != {"values"} or not isinstance(values, list) or not values:
            raise serializers.ValidationError(f"{key}: 'values' takes a non-empty list, alone")
        if len(values) > MAX_TRIALS:
            raise serializers.ValidationError(f"{key}: at most {MAX_TRIALS} values")
        return {"values": [_value(field, v) for v in values]}
    if not isinstance(field, serializers.IntegerField | serializers.FloatField):
        raise serializers.ValidationError(f"{key}: only a number takes a range; list its values")
    unknown = sorted(set(axis) - RANGE_KEYS)
    if unknown or "low" not in axis or "high" not in axis:
        raise serializers.ValidationError(f"{key}: a range is {{'low', 'high', 'log'}}")
    log = serializers.BooleanField().run_validation(axis.get("log", False))
    return {"low": _value(field, axis["low"]), "high": _value(field, axis["high"]), "log": log}


class SweepCreateSerializer(SessionCreateSerializer):
    """Search ``space`` on ``symbols``; every trial is an evaluation session judged on
    its validation split by ``objective``, and only the winner's test split is read."""

    parent = None  # a sweep trains fresh evaluation sessions
    space = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Per config field: a list of values, {'values': [...]}, or a range "
        "{'low': a, 'high': b, 'log': false} (random and tpe). markets, evaluation, interval "
        "and target cannot vary.",
    )
    method = serializers.ChoiceField(choices=SweepMethod.choices, default="grid")
    n_trials = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TRIALS,
        required=False,
        help_text="random and tpe: how many trials (a grid runs every combination).",
    )
    parallel = serializers.IntegerField(
        min_value=1, max_value=MAX_PARALLEL, default=1, help_text="tpe: trials in flight at once."
    )
    objective = serializers.ChoiceField(
        choices=SweepObjective.choices,
        default="val_loss",
        help_text="On the validation split: val_loss (lower is better), val_ic, val_sharpe.",
    )
    seed = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=0, help_text="Seed of the draws."
    )
    name = serializers.CharField(max_length=120, allow_blank=True, default="")

    def validate_space(self, space: dict[str, Any]) -> dict[str, Any]:
        if not space:
            raise serializers.ValidationError("give at least one parameter to search over")
        fields = TrainConfigSerializer().fields
        out, errors = {}, {}
        for key, axis in space.items():
            if key not in fields:
                errors[key] = ["is not a training parameter"]
                continue
            try:
                out[key] = _axis(key, axis, fields[key])
            except serializers.ValidationError as exc:
                errors[key] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return out

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        markets = markets_and_period(attrs)
        config = attrs.get("config", {})
        try:
            interval = parse_interval(config["interval"]).code if config.get("interval") else None
        except IntervalError:
            interval = None  # the training rules name it
        if interval is not None and interval not in CANONICAL_INTERVALS:
            raise serializers.ValidationError(
                {"config": {"interval": [f"use one of {', '.join(CANONICAL_INTERVALS)}"]}}
            )
        space = attrs["space"]
        if attrs["method"] == "grid":
            size = math.prod(len(a["values"]) for a in space.values() if "values" in a)
            if size > MAX_TRIALS:
                raise serializers.ValidationError(
                    {"space": [f"the grid has {size} combinations; at most {MAX_TRIALS}"]}
                )
        attrs["sweep_request"] = SweepRequest(
            base=RunRequest(
                given=config,
                symbols=[m.symbol for m in markets],
                exchange=attrs.get("exchange") or None,
                start=attrs.get("start"),
                end=attrs.get("end"),
            ),
            space=space,
            method=attrs["method"],
            n_trials=attrs.get("n_trials") or 0,
            parallel=attrs["parallel"],
            objective=attrs["objective"],
            seed=attrs["seed"],
            name=attrs["name"],
        )
        return attrs


def sweep_error_body(exc: TrainingError, space: dict[str, Any]) -> dict[str, Any]:
    """A refusal of :func:`sweep_create` as DRF's field errors: a searched field under
    ``space``, the sweep's own fields by name, the base request's as a session's."""
    if exc.field is not None and exc.field in space:
        return {"space": {exc.field: [str(exc)]}}
    if exc.field in SWEEP_FIELDS:
        return {exc.field: [str(exc)]}
    return error_body(exc)


# --- Out -----------------------------------------------------------------------------------------


class SweepProgressSerializer(serializers.Serializer):
    planned = serializers.IntegerField(help_text="Trials the sweep will run.")
    created = serializers.IntegerField(help_text="Trials stored so far (tpe asks as trials end).")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Trials by status.")
    done = serializers.IntegerField(help_text="Trials that ended.")
    best_trial = serializers.IntegerField(allow_null=True)
    best_session = serializers.UUIDField(allow_null=True)
    best_value = serializers.FloatField(allow_null=True, help_text="Best objective so far.")


class SweepTrialSerializer(serializers.ModelSerializer):
    """A trial: an evaluation session, the values it tried and its validation objective."""

    params = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingSession
        fields = ("id", "trial_number", "status", "params", "objective_value", "error", "url")
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.JSONField()))
    def get_params(self, trial: TrainingSession) -> dict[str, Any]:
        return trial_params(self.context["sweep"], trial)

    @extend_schema_field(serializers.URLField())
    def get_url(self, trial: TrainingSession) -> str:
        return reverse("api:session-detail", args=[trial.pk], request=self.context.get("request"))


class ReportHeadlineSerializer(serializers.Serializer):
    market = serializers.CharField(allow_null=True)
    n_forecasts = serializers.IntegerField(allow_null=True)
    ic = serializers.FloatField(allow_null=True)
    rank_ic = serializers.FloatField(allow_null=True)
    direction_accuracy = serializers.FloatField(allow_null=True)
    theta = serializers.FloatField(allow_null=True, help_text="Chosen on validation, frozen.")
    total_return = serializers.FloatField(allow_null=True, help_text="The strategy, after costs.")
    sharpe = serializers.FloatField(allow_null=True)
    n_trades = serializers.IntegerField(allow_null=True)
    n_trials = serializers.IntegerField(allow_null=True, help_text="Deflated Sharpe's count.")


class WinnerTestReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField(help_text="The report in the API.")
    page = serializers.CharField(help_text="The report on the evaluation page.")
    headline = ReportHeadlineSerializer()


class SweepWinnerSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The winning trial's session.")
    trial_number = serializers.IntegerField()
    objective_value = serializers.FloatField()
    params = serializers.DictField(child=serializers.JSONField())
    test_report = WinnerTestReportSerializer(
        allow_null=True, help_text="Its test split, evaluated once; null until it is stored."
    )


class SweepListSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", default=None, read_only=True, allow_null=True
    )
    n_created = serializers.IntegerField(read_only=True, help_text="Trials stored so far.")
    n_done = serializers.IntegerField(read_only=True, help_text="Trials that ended.")
    winner = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The winning trial's session."
    )

    class Meta:
        model = Sweep
        fields: tuple[str, ...] = (
            "id",
            "name",
            "status",
            "method",
            "objective",
            "n_trials",
            "parallel",
            "seed",
            "n_created",
            "n_done",
            "winner",
            "created_by",
            "error",
            "created",
            "finished",
        )
        read_only_fields = fields


class SweepSerializer(SweepListSerializer):
    """The sweep, its progress, every trial and the winner with its test report."""

    progress = serializers.SerializerMethodField()
    trials = serializers.SerializerMethodField()
    winner_detail = serializers.SerializerMethodField()

    class Meta(SweepListSerializer.Meta):
        fields = (*SweepListSerializer.Meta.fields, "space", "base", "progress", "trials", "winner_detail")  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(SweepProgressSerializer)
    def get_progress(self, sweep: Sweep) -> dict[str, Any]:
        return sweep_progress(sweep)

    @extend_schema_field(SweepTrialSerializer(many=True))
    def get_trials(self, sweep: Sweep) -> list[dict[str, Any]]:
        context = {**self.context, "sweep": sweep}
        return SweepTrialSerializer(sweep_trial_list(sweep), many=True, context=context).data

    @extend_schema_field(SweepWinnerSerializer(allow_null=True))
    def get_winner_detail(self, sweep: Sweep) -> dict[str, Any] | None:
        winner = sweep.winner
        if winner is None or winner.status != SessionStatus.SUCCEEDED:
            return None
        report = sweep_winner_report(sweep)
        test_report = None
        if report is not None:
            request = self.context.get("request")
            test_report = {
                "id": report.pk,
                "url": reverse("api:report-detail", args=[report.pk], request=request),
                "page": f"{reverse('predictor:evaluation')}?session={winner.pk}#report-test",
                "headline": ReportHeadlineSerializer(report_headline(report)).data,
            }
        return {
            "id": str(winner.pk),
            "trial_number": winner.trial_number,
            "objective_value": winner.objective_value,
            "params": trial_params(sweep, winner),
            "test_report": test_report,
        }


class SweepQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SessionStatus.choices, required=False)
