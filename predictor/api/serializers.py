# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False, warn-return-any=False
# (DRF and drf-spectacular ship no type hints: their classes and decorators are Any.)
"""Serializers for reads: markets with their coverage, candle pages, predictions, reports.

Query-string serializers validate filters before they reach the ORM, so a
malformed id or time is a 400 naming the parameter, never a 500 from the
database. Candle and prediction rows are written as plain dicts by the views
(thousands per page); their serializers here describe them in the schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from predictor.ml.intervals import Interval, IntervalError, parse_interval
from predictor.models import EvaluationReport, Exchange, Market

MAX_CANDLES_PER_PAGE = 5000
# A page of a coarse interval resampled from a fine one reads limit × ratio rows; cap those.
MAX_SOURCE_ROWS_PER_PAGE = 500_000
MAX_INTERVAL_SECONDS = 52 * 7 * 86400
ID_PATTERN = "[0-9]{1,18}"  # a path id that fits a bigint; longer is a 404, not a database error


class IntervalField(serializers.CharField):
    """A bar length in any spelling ``parse_interval`` knows (1m, 5min, 4h, D…), as an Interval."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 16)
        kwargs.setdefault("help_text", "Bar length: 1m, 5m, 15m, 1h, 4h, 1d, 1w (or 5min, H, D…).")
        super().__init__(**kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        text = super().run_validation(data)  # the text's own checks (length) first
        try:
            interval = parse_interval(text)
        except IntervalError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if interval.seconds > MAX_INTERVAL_SECONDS:
            raise serializers.ValidationError("at most 52 weeks")
        return interval

    def to_representation(self, value: Any) -> str:
        return value.code if isinstance(value, Interval) else str(value)


class TimeRangeMixin(serializers.Serializer):
    """``start`` (inclusive) and ``end`` (exclusive), ISO 8601; a time without zone is UTC."""

    start = serializers.DateTimeField(required=False, help_text="Inclusive, ISO 8601 (UTC).")
    end = serializers.DateTimeField(required=False, help_text="Exclusive, ISO 8601 (UTC).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"end": ["must be after start"]})
        return attrs


# --- Markets and candles ----------------------------------------------------------------


class CoverageSerializer(serializers.Serializer):
    interval = serializers.CharField()
    candles = serializers.IntegerField()
    first_open = serializers.DateTimeField()
    last_open = serializers.DateTimeField()


class MarketSerializer(serializers.ModelSerializer):
    coverage = serializers.SerializerMethodField(
        help_text="Stored intervals, finest first: candle count and first/last open time."
    )

    class Meta:
        model = Market
        fields = (
            "id",
            "exchange",
            "symbol",
            "base_asset",
            "quote_asset",
            "tracked",
            "coverage",
        )

    @extend_schema_field(CoverageSerializer(many=True))
    def get_coverage(self, market: Market) -> list[dict[str, Any]]:
        rows = self.context.get("coverage", {}).get(market.pk, [])
        return CoverageSerializer(rows, many=True).data


class MarketQuerySerializer(serializers.Serializer):
    exchange = serializers.ChoiceField(choices=Exchange.choices, required=False)
    symbol = serializers.CharField(max_length=32, required=False)


class CandleQuerySerializer(TimeRangeMixin):
    interval = IntervalField(
        required=False, help_text="Resample to this bar length; default: the finest stored."
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_CANDLES_PER_PAGE,
        default=1000,
        help_text=f"Candles per page, at most {MAX_CANDLES_PER_PAGE}.",
    )


class CandleSerializer(serializers.Serializer):
    open_time = serializers.DateTimeField(help_text="Start of the bar, UTC.")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.FloatField()
    bars = serializers.IntegerField(help_text="Stored candles aggregated into this one.")


class GapsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Gaps between the candles of this page.")
    missing_bars = serializers.IntegerField()


class CandlePageSerializer(serializers.Serializer):
    market = serializers.IntegerField()
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    interval = serializers.CharField(allow_null=True, help_text="null: no candles stored.")
    source_interval = serializers.CharField(
        allow_null=True, help_text="The stored series the page was read from."
    )
    start = serializers.DateTimeField(
        allow_null=True, help_text="This page covers [start, end); null when it is empty."
    )
    end = serializers.DateTimeField(allow_null=True)
    count = serializers.IntegerField()
    gaps = GapsSerializer()
    next = serializers.URLField(allow_null=True, help_text="The following page; null at the end.")
    results = CandleSerializer(many=True)


# --- Predictions and reports ------------------------------------------------------------


class PredictionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    session = serializers.UUIDField()
    market = serializers.IntegerField()
    symbol = serializers.CharField()
    anchor_time = serializers.DateTimeField(help_text="Open time of the window's last candle.")
    issued_at = serializers.DateTimeField(help_text="When the forecast is known.")
    target_time = serializers.DateTimeField(help_text="Open time of the forecast candle.")
    step = serializers.IntegerField()
    horizon = serializers.IntegerField()
    split = serializers.CharField()
    predicted = serializers.FloatField()
    values = serializers.JSONField(allow_null=True)
    actual = serializers.FloatField(allow_null=True)
    actual_values = serializers.JSONField(allow_null=True)


class PredictionQuerySerializer(TimeRangeMixin):
    """Filters of the prediction list; ``start``/``end`` bound the target time."""

    session = serializers.UUIDField(help_text="The training session (required).")
    market = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    symbol = serializers.CharField(required=False, max_length=32)
    split = serializers.CharField(required=False, max_length=12)


class ReportSerializer(serializers.ModelSerializer):
    gaps = serializers.SerializerMethodField(
        help_text="The split's real bars, filled (gap) bars, windows dropped for reading more "
        "than max_fill filled bars, and real forecasts scored; null for reports made before "
        "gaps were counted."
    )

    class Meta:
        model = EvaluationReport
        fields = (
            "id", "session", "split", "n_trials", "leakage_alarm", "gaps", "created", "report",
        )  # fmt: skip

    def get_gaps(self, obj: EvaluationReport) -> dict[str, int] | None:
        gaps = (obj.report or {}).get("gaps")
        return dict(gaps) if isinstance(gaps, dict) else None


class ReportQuerySerializer(serializers.Serializer):
    session = serializers.UUIDField(required=False)
    split = serializers.CharField(
        required=False,
        max_length=16,
        help_text="forward (after the training data), test, validation, train, spa or walk_forward.",
    )
