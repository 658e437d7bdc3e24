"""The kinds of stored evaluation report, as typed values that read and write their JSON.

A stored report is one of: ``strategy`` (a :class:`~predictor.ml.evaluation.report.SplitReport`:
price, return and range forecasts traded against baselines), ``classification`` (updown
probabilities: no price, so no strategy) or ``spa`` (Hansen's SPA / White's Reality Check
across sessions). Each writes its ``kind`` into the JSON; :func:`report_kind` reads it, and
infers it for reports stored before they carried one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from predictor.ml.evaluation._common import from_json, json_safe
from predictor.ml.evaluation.leakage import LeakageAlarm
from predictor.ml.evaluation.metrics import (
    ClassificationMetrics,
    DirectionalAccuracy,
    InformationCoefficient,
)
from predictor.ml.evaluation.report import GapCounts, SplitName, split_name
from predictor.ml.evaluation.sharpe import RealityCheck

ReportKind = Literal["strategy", "classification", "spa", "other"]
REPORT_KINDS: tuple[ReportKind, ...] = get_args(ReportKind)


def report_kind(data: dict[str, Any]) -> ReportKind:
    """The stored report's kind: its ``kind`` field, or for older rows the keys only it has."""
    stored = data.get("kind")
    if stored in REPORT_KINDS:
        return stored  # type: ignore[no-any-return]
    if "strategy" in data and "tests" in data:
        return "strategy"
    if "classification" in data:
        return "classification"
    if "reality_check_p_value" in data:
        return "spa"
    return "other"


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that are not fields of ``cls``: kept so a round trip loses none."""
    names = {f.name for f in dataclasses.fields(cls)} | {"kind"}
    return {key: value for key, value in data.items() if key not in names}


@dataclass(frozen=True, slots=True)
class ClassificationReport:
    """An updown split: confusion matrix, and P(buy) − P(sell) scored as a direction."""

    KIND: ClassVar[ReportKind] = "classification"

    split: SplitName
    label: str
    in_sample: bool
    start: str
    end: str
    n_forecasts: int
    horizon: int
    bar_seconds: int
    classification: ClassificationMetrics
    direction: DirectionalAccuracy
    ic: InformationCoefficient
    leakage: LeakageAlarm
    notes: tuple[str, ...] = ()
    gaps: GapCounts | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # market, target, n_trials…

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "kind": self.KIND,
            **{
                f.name: json_safe(getattr(self, f.name))
                for f in dataclasses.fields(self)
                if f.name != "extra"
            },
        }
        return {**result, **json_safe(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassificationReport:
        report = from_json(cls, data)
        return dataclasses.replace(report, split=split_name(report.split), extra=_known(cls, data))


@dataclass(frozen=True, slots=True)
class RealityCheckReport:
    """Hansen's SPA / White's Reality Check over a market's sessions on their shared test bars."""

    KIND: ClassVar[ReportKind] = "spa"

    result: RealityCheck
    market: str = ""
    benchmark: str = ""
    sessions: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)  # session id -> why it was left out
    start: str = ""
    end: str = ""
    costs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The test's figures at the top level, beside what was compared."""
        result: dict[str, Any] = {"kind": self.KIND, **self.result.to_dict()}
        for f in dataclasses.fields(self):
            if f.name not in ("result", "extra"):
                result[f.name] = json_safe(getattr(self, f.name))
        return {**result, **json_safe(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealityCheckReport:
        own = {f.name for f in dataclasses.fields(RealityCheck)}
        report = from_json(cls, {**data, "result": {k: data[k] for k in own if k in data}})
        extra = {k: v for k, v in _known(cls, data).items() if k not in own}
        return dataclasses.replace(report, extra=extra)
