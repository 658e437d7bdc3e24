"""The assembled report: labels, guards, the leakage alarm and JSON storage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.ml.evaluation.backtest import backtest
from predictor.ml.evaluation.report import EvaluationInputs, evaluation_report, split_name
from predictor.ml.evaluation.tables import break_even_sentence, format_report_table
from predictor.ml.evaluation.threshold import ChosenThreshold, choose_threshold, given_threshold

HORIZON = 5
BAR = 60
N = 4000
SPLIT = 2000


def _bars(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
    opens = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.0002, N))
    times = 1_704_067_200 + BAR * np.arange(N)  # 2024-01-01
    return times, opens, close


def _inputs(
    times: np.ndarray, opens: np.ndarray, close: np.ndarray, predicted: np.ndarray, part: slice
) -> EvaluationInputs:
    return EvaluationInputs(
        times=times[part],
        open=opens[part],
        close=close[part],
        predicted_price=predicted[part],
        horizon=HORIZON,
        bar_seconds=BAR,
    )


def _threshold(inputs: EvaluationInputs) -> ChosenThreshold:
    return choose_threshold(
        validation_open=inputs.open,
        validation_forecast=inputs.predicted_return,
        validation_times=inputs.times,
        horizon=HORIZON,
        bars_per_year=inputs.bars_per_year,
    )


def _future_and_random(seed: int) -> tuple[np.ndarray, ...]:
    times, opens, close = _bars(seed)
    future = np.r_[close[HORIZON:], np.full(HORIZON, np.nan)]  # the model is handed close[t+h]
    rng = np.random.default_rng(seed + 100)
    random = close * (1 + rng.normal(0, 0.002, N))
    return times, opens, close, future, random


def test_a_model_given_the_future_is_flagged_and_highly_significant() -> None:
    times, opens, close, future, _ = _future_and_random(0)
    validation = _inputs(times, opens, close, future, slice(0, SPLIT))
    test = _inputs(times, opens, close, future, slice(SPLIT, N))
    report = evaluation_report(test, split="test", threshold=_threshold(validation), n_trials=1)
    assert report.leakage.flagged
    assert report.direction.accuracy == pytest.approx(1.0)
    assert report.tests.t_test.p_value < 1e-10
    assert report.tests.binomial.p_value < 1e-10
    assert report.tests.pesaran_timmermann.p_value < 1e-10
    assert report.tests.dm_vs_zero_return.significant
    assert "LEAKAGE ALARM" in format_report_table(report)


def test_random_predictions_are_not_flagged_or_significant() -> None:
    times, opens, close, _, random = _future_and_random(1)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    report = evaluation_report(test, split="test", threshold=_threshold(validation), n_trials=4)
    assert not report.leakage.flagged
    assert not report.tests.t_test.significant
    assert not report.tests.pesaran_timmermann.significant
    assert not report.tests.dm_vs_zero_return.significant
    assert not report.tests.deflated_sharpe.significant


def test_the_test_split_refuses_a_threshold_chosen_on_overlapping_data() -> None:
    times, opens, close, _, random = _future_and_random(2)
    everything = _inputs(times, opens, close, random, slice(0, N))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    with pytest.raises(ValueError, match="overlaps"):
        evaluation_report(test, split="test", threshold=_threshold(everything), n_trials=1)


def test_splits_are_labelled_and_training_is_in_sample() -> None:
    times, opens, close, _, random = _future_and_random(3)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    threshold = _threshold(validation)
    training = evaluation_report(validation, split="train", threshold=threshold, n_trials=1)
    on_validation = evaluation_report(
        validation, split="validation", threshold=threshold, n_trials=1
    )
    assert training.in_sample
    assert training.split == "train"
    assert training.to_dict()["split"] == "train"
    assert "IN-SAMPLE" in training.label
    assert on_validation.in_sample
    assert any("θ was chosen on this split" in n for n in on_validation.notes)
    test = evaluation_report(
        _inputs(times, opens, close, random, slice(SPLIT, N)),
        split="test",
        threshold=threshold,
        n_trials=7,
    )
    assert not test.in_sample
    assert test.label.startswith("out-of-sample")
    assert any("7 trained evaluation configuration(s)" in note for note in test.notes)


def test_report_strategy_is_the_engine_run_with_the_frozen_threshold() -> None:
    times, opens, close, _, random = _future_and_random(4)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    threshold = _threshold(validation)
    report = evaluation_report(test, split="test", threshold=threshold, n_trials=1)
    direct = backtest(
        test.open,
        test.predicted_return,
        horizon=HORIZON,
        theta=threshold.theta,
        bars_per_year=test.bars_per_year,
    )
    assert report.strategy.stats == direct.stats
    assert set(report.baselines) == {"buy_and_hold", "zero_return", "persistence"}


def test_report_to_dict_is_json_and_the_table_reads_well() -> None:
    times, opens, close, _, random = _future_and_random(5)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    report = evaluation_report(test, split="test", threshold=_threshold(validation), n_trials=2)
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["split"] == "test"
    assert payload["tests"]["t_test"]["sentence"].endswith(").")
    assert len(payload["strategy"]["equity"]) <= 500
    assert "trades" not in payload["strategy"]
    table = format_report_table(report)
    for heading in ("Forecast errors", "Strategy", "buy_and_hold", "Significance", "Notes"):
        assert heading in table


def test_horizon_mismatch_and_unknown_split_are_refused() -> None:
    times, opens, close, _, random = _future_and_random(6)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    threshold = _threshold(validation)
    other = EvaluationInputs(
        times=times,
        open=opens,
        close=close,
        predicted_price=random,
        horizon=HORIZON + 1,
        bar_seconds=BAR,
    )
    with pytest.raises(ValueError, match="horizon"):
        evaluation_report(other, split="validation", threshold=threshold, n_trials=1)
    with pytest.raises(ValueError, match="split"):
        evaluation_report(validation, split="holdout", threshold=threshold, n_trials=1)  # type: ignore[arg-type]


def test_returns_are_scored_against_the_zero_forecast_not_by_mape() -> None:
    times, opens, close, _, random = _future_and_random(7)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    report = evaluation_report(test, split="test", threshold=_threshold(validation), n_trials=1)
    payload = report.to_dict()["errors"]
    assert "mape_pct" in payload["price"]
    assert "mape_pct" not in payload["returns"]
    realised = test.realised_return
    scored = np.isfinite(realised) & np.isfinite(test.predicted_return)
    zero_rmse = np.sqrt(np.mean(realised[scored] ** 2))
    assert payload["returns"]["rmse_vs_zero"] == pytest.approx(
        report.errors.returns.rmse / zero_rmse
    )
    assert payload["returns"]["rmse_vs_zero"] > 1.0  # random noise is worse than no forecast
    table = format_report_table(report)
    assert "RMSE / zero" in table
    assert "1 = no better" in table


def test_the_table_puts_the_gross_hit_rate_beside_the_break_even_one_or_says_why_not() -> None:
    times, opens, close, _, random = _future_and_random(8)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    test = _inputs(times, opens, close, random, slice(SPLIT, N))
    report = evaluation_report(test, split="test", threshold=_threshold(validation), n_trials=1)
    stats = report.strategy.stats
    expected = break_even_sentence(
        stats.gross_hit_rate, stats.break_even_hit_rate, stats.mean_cost, stats.break_even_note
    )
    table = format_report_table(report)
    assert f"Model: {expected}" in table
    assert "Trades (positions opened)" in table
    assert "Holdings" in table


def test_break_even_sentence_gives_a_rate_or_the_reason_in_words() -> None:
    possible = break_even_sentence(0.52, 0.55, 0.001, "")
    assert possible == (
        "Gross hit rate 52.00 % vs 55.00 % needed to break even at the cost paid per holding "
        "(0.10 % on average)."
    )
    impossible = break_even_sentence(
        0.48, float("nan"), 0.002, "impossible: the mean cost is at least the mean win"
    )
    assert impossible == (
        "No gross hit rate up to 100 % breaks even: the mean cost is at least the mean win."
    )
    assert break_even_sentence(float("nan"), float("nan"), float("nan"), "no trades") == (
        "No break-even gross hit rate: no trades."
    )


def test_the_split_is_named_as_stored_and_the_old_training_name_reads_as_train() -> None:
    assert split_name("train") == "train"
    assert split_name("training") == "train"
    assert split_name("test") == "test"
    with pytest.raises(ValueError, match="split"):
        split_name("spa")
    times, opens, close, _, random = _future_and_random(3)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    threshold = _threshold(validation)
    old_name = evaluation_report(validation, split="training", threshold=threshold, n_trials=1)  # type: ignore[arg-type]
    assert old_name.split == "train"


def test_the_stored_report_says_its_kind() -> None:
    times, opens, close, _, random = _future_and_random(5)
    validation = _inputs(times, opens, close, random, slice(0, SPLIT))
    report = evaluation_report(
        validation, split="validation", threshold=_threshold(validation), n_trials=1
    )
    assert report.to_dict()["kind"] == "strategy"


def test_the_forward_split_is_out_of_sample_and_names_where_theta_came_from() -> None:
    times, opens, close, _, random = _future_and_random(5)
    threshold = _threshold(_inputs(times, opens, close, random, slice(0, SPLIT)))
    forward = _inputs(times, opens, close, random, slice(SPLIT, N))
    report = evaluation_report(
        forward,
        split="forward",
        threshold=threshold,
        n_trials=2,
        theta_source="validation of session abc",
    )
    assert not report.in_sample
    assert report.label == "forward (never seen in training)"
    assert any("validation of session abc" in note for note in report.notes)
    data = report.to_dict()
    assert data["split"] == "forward"
    assert data["theta_source"] == "validation of session abc"
    assert "θ source: validation of session abc" in format_report_table(report)
    assert (
        "theta_source"
        not in evaluation_report(forward, split="test", threshold=threshold, n_trials=1).to_dict()
    )
    with pytest.raises(ValueError, match="overlaps"):
        evaluation_report(
            forward,
            split="forward",
            threshold=_threshold(_inputs(times, opens, close, random, slice(0, N))),
            n_trials=1,
        )


def test_a_given_theta_is_frozen_at_a_time_and_refused_on_bars_before_it() -> None:
    times, opens, close, _, random = _future_and_random(6)
    forward = _inputs(times, opens, close, random, slice(SPLIT, N))
    given = given_threshold(0.0005, frozen_at=int(times[SPLIT - 1]), horizon=HORIZON)
    report = evaluation_report(
        forward, split="forward", threshold=given, n_trials=1, theta_source="given by the user"
    )
    assert report.strategy.config.theta == 0.0005
    assert given.candidates == ()
    assert not any("θ candidate" in note for note in report.notes)  # no search, no weak choice
    late = given_threshold(0.0005, frozen_at=int(times[SPLIT]), horizon=HORIZON)
    with pytest.raises(ValueError, match="overlaps"):
        evaluation_report(forward, split="forward", threshold=late, n_trials=1)
    with pytest.raises(ValueError, match="θ must be"):
        given_threshold(-1.0, frozen_at=0, horizon=HORIZON)
