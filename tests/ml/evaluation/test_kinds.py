"""Typed classification and SPA reports: JSON round trips, old stored dicts, the kind."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from predictor.ml.evaluation.kinds import ClassificationReport, RealityCheckReport, report_kind
from predictor.ml.evaluation.leakage import leakage_alarm
from predictor.ml.evaluation.metrics import (
    classification_metrics,
    directional_accuracy,
    information_coefficient,
)
from predictor.ml.evaluation.report import GapCounts
from predictor.ml.evaluation.sharpe import reality_check
from predictor.ml.evaluation.tables import format_report_table


def _classification(**overrides: Any) -> ClassificationReport:
    rng = np.random.default_rng(0)
    truth, guess = rng.integers(0, 3, 90), rng.integers(0, 3, 90)
    truth[truth == 2] = 1  # no true "buy": its recall is NaN, stored as null
    score, realised = rng.normal(0, 1, 90), rng.normal(0, 0.01, 90)
    ic = information_coefficient(score, realised)
    direction = directional_accuracy(score, realised)
    values: dict[str, Any] = {
        "split": "test",
        "label": "out-of-sample (test split)",
        "in_sample": False,
        "start": "2024-01-01T00:00:00",
        "end": "2024-01-04T17:00:00",
        "n_forecasts": 90,
        "horizon": 4,
        "bar_seconds": 3600,
        "classification": classification_metrics(truth, guess),
        "direction": direction,
        "ic": ic,
        "leakage": leakage_alarm(
            ic=ic.ic, rank_ic=ic.rank_ic, directional_accuracy=direction.accuracy,
            horizon_seconds=4 * 3600,
        ),
        "notes": ("updown forecasts no price",),
        "gaps": GapCounts(0, 94, 0, 0, 90),
        "extra": {"market": "BTCUSDT", "n_trials": 2},
    }  # fmt: skip
    return ClassificationReport(**{**values, **overrides})


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (a reloaded report's NaN is a new float)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_classification_report_writes_its_kind_and_reads_back_whole() -> None:
    report = _classification()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["kind"] == "classification"
    assert data["market"] == "BTCUSDT"  # extras sit at the top level, as stored before
    assert data["classification"]["recall"][2] is None
    back = ClassificationReport.from_dict(data)
    assert math.isnan(back.classification.recall[2])
    assert back.classification.confusion == report.classification.confusion
    assert back.gaps == report.gaps
    assert back.extra == {"market": "BTCUSDT", "n_trials": 2}
    assert _same(back.to_dict(), report.to_dict())


def test_an_old_classification_dict_without_kind_loads_and_says_train() -> None:
    data = _classification().to_dict()
    del data["kind"], data["gaps"]
    data["split"] = "training"
    del data["direction"]["share_up_predicted"]  # a figure stored before it was computed
    assert report_kind(data) == "classification"
    report = ClassificationReport.from_dict(data)
    assert report.split == "train"
    assert report.gaps is None
    assert math.isnan(report.direction.share_up_predicted)


def test_a_classification_dict_missing_its_metrics_is_refused_by_name() -> None:
    data = _classification().to_dict()
    del data["classification"]
    with pytest.raises(ValueError, match="classification"):
        ClassificationReport.from_dict(data)


def test_the_text_of_a_classification_report_shows_its_confusion_matrix() -> None:
    report = _classification()
    text = format_report_table(report)
    assert "sell/hold/buy" in text
    assert json.dumps([list(row) for row in report.classification.confusion]) in text


def _spa() -> RealityCheckReport:
    returns = np.random.default_rng(3).normal(0, 0.01, (200, 3))
    return RealityCheckReport(
        result=reality_check(np.zeros(200), -returns, reps=50, seed=0),
        market="BTCUSDT (binance)",
        benchmark="cash",
        sessions=("a", "b", "c"),
        skipped={"d": "no test forecasts"},
        start="2024-01-01T00:00:00",
        end="2024-01-09T07:00:00",
        costs={"fee": 0.001, "slippage": 0.0, "mode": "non_overlapping"},
    )


def test_an_spa_report_keeps_the_test_figures_at_the_top_level_and_reads_back() -> None:
    report = _spa()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["kind"] == "spa"
    assert data["p_value"] == pytest.approx(report.result.p_value)
    assert "result" not in data
    assert RealityCheckReport.from_dict(data) == report


def test_an_old_spa_dict_without_kind_or_costs_loads() -> None:
    data = _spa().to_dict()
    for key in ("kind", "costs", "skipped", "market"):
        del data[key]
    assert report_kind(data) == "spa"
    report = RealityCheckReport.from_dict(data)
    assert report.sessions == ("a", "b", "c")
    assert report.costs == {}
    assert report.result.sentence == _spa().result.sentence


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"kind": "spa", "strategy": {}, "tests": {}}, "spa"),  # the stored kind wins
        ({"strategy": {}, "tests": {}}, "strategy"),
        ({"classification": {}}, "classification"),
        ({"reality_check_p_value": 0.5}, "spa"),
        ({"mae": 1.5}, "other"),
        ({"kind": "unheard of", "mae": 1.5}, "other"),
    ],
)
def test_report_kind_reads_the_kind_or_infers_it_for_old_rows(
    data: dict[str, Any], kind: str
) -> None:
    assert report_kind(data) == kind
