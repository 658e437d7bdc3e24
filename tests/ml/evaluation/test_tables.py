"""The one table of strategy rows and the one list of significance tests."""

from __future__ import annotations

import dataclasses

from predictor.ml.evaluation.backtest import BacktestStats
from predictor.ml.evaluation.report import SignificanceTests, evaluation_report
from predictor.ml.evaluation.tables import SIGNIFICANCE_TESTS, STRATEGY_ROWS, format_report_table
from tests.ml.evaluation.test_report import SPLIT, _future_and_random, _inputs, _threshold


def test_every_strategy_row_reads_a_backtest_statistic_once() -> None:
    fields = {f.name for f in dataclasses.fields(BacktestStats)}
    attributes = [row.attribute for row in STRATEGY_ROWS]
    assert set(attributes) <= fields
    assert len(set(attributes)) == len(attributes)
    assert {"calmar", "turnover"} <= set(attributes)
    assert {row.format for row in STRATEGY_ROWS} <= {"pct", "num", "int", "even"}


def test_the_list_of_tests_is_the_report_s_tests_in_their_order() -> None:
    assert [t.field for t in SIGNIFICANCE_TESTS] == [
        f.name for f in dataclasses.fields(SignificanceTests)
    ]
    assert len({t.label for t in SIGNIFICANCE_TESTS}) == len(SIGNIFICANCE_TESTS)


def test_the_text_report_shows_every_strategy_row_and_every_test() -> None:
    times, opens, close, _, random = _future_and_random(4)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    report = evaluation_report(
        validation, split="validation", threshold=_threshold(validation), n_trials=1
    )
    text = format_report_table(report)
    for row in STRATEGY_ROWS:
        assert f"  {row.label} " in text
    for test in SIGNIFICANCE_TESTS:
        assert getattr(report.tests, test.field).sentence in text
