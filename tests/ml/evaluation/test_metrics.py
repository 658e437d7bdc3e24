"""Hand-computed tiny cases for every forecast-error metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from predictor.ml.evaluation.metrics import (
    accuracy_by_confidence_decile,
    average_ranks,
    change_errors,
    classification_metrics,
    directional_accuracy,
    error_metrics,
    forecast_errors,
    hit_series,
    information_coefficient,
    range_errors,
)


def test_error_metrics_match_hand_computation() -> None:
    # errors (predicted - actual): +1, -2, +3 on actuals 10, 20, 30
    result = error_metrics([10.0, 20.0, 30.0], [11.0, 18.0, 33.0])
    assert result.n == 3
    assert result.mae == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    assert result.rmse == pytest.approx(math.sqrt(14 / 3))  # (1 + 4 + 9) / 3
    assert result.mape_pct == pytest.approx(100 * (0.1 + 0.1 + 0.1) / 3)
    assert result.mean_error == pytest.approx(2 / 3)


def test_error_metrics_skip_nan_rows_and_zero_actuals_in_mape() -> None:
    result = error_metrics([0.0, 2.0, np.nan], [1.0, 3.0, 5.0])
    assert result.n == 2
    assert result.mae == pytest.approx(1.0)
    assert result.mape_pct == pytest.approx(50.0)  # only the row with actual 2


def test_forecast_errors_in_price_and_return_units() -> None:
    base = np.array([100.0, 200.0])
    actual = np.array([110.0, 190.0])  # returns +10 %, -5 %
    predicted = np.array([105.0, 200.0])  # returns +5 %, 0 %
    result = forecast_errors(actual, predicted, base)
    assert result.price.mae == pytest.approx((5 + 10) / 2)
    assert result.returns.mae == pytest.approx((0.05 + 0.05) / 2)
    assert result.returns.rmse == pytest.approx(0.05)
    assert result.price.mape_pct == pytest.approx(100 * (5 / 110 + 10 / 190) / 2)
    # the zero-return forecast's RMSE is sqrt((0.10 ** 2 + 0.05 ** 2) / 2)
    assert result.returns.rmse_vs_zero == pytest.approx(0.05 / math.sqrt(0.0125 / 2))
    assert not hasattr(result.returns, "mape_pct")


def test_rmse_vs_zero_is_one_for_the_zero_forecast_and_zero_for_a_perfect_one() -> None:
    realised = np.array([0.01, -0.02, 0.005, 0.0])
    assert change_errors(realised, np.zeros(4)).rmse_vs_zero == pytest.approx(1.0)
    assert change_errors(realised, realised).rmse_vs_zero == pytest.approx(0.0)
    doubled = change_errors(realised, 2 * realised)  # error = realised: as bad as zero
    assert doubled.rmse_vs_zero == pytest.approx(1.0)
    assert change_errors(realised, -realised).rmse_vs_zero == pytest.approx(2.0)


def test_rmse_vs_zero_is_undefined_when_nothing_moved() -> None:
    assert math.isnan(change_errors([0.0, 0.0], [0.01, 0.0]).rmse_vs_zero)
    assert change_errors([np.nan], [0.1]).n == 0


def test_directional_accuracy_excludes_zero_moves_and_counts_zero_forecasts_as_misses() -> None:
    predicted = [0.1, -0.2, 0.3, 0.0, 0.5]
    realised = [0.2, 0.1, 0.0, -0.1, 0.4]
    result = directional_accuracy(predicted, realised)
    # row 3 (zero move) is left out; hits: row 1 yes, row 2 no, row 4 no (no call), row 5 yes
    assert (result.n, result.hits, result.zero_moves_excluded) == (4, 2, 1)
    assert result.accuracy == pytest.approx(0.5)
    assert result.share_up_realised == pytest.approx(0.75)
    assert hit_series(predicted, realised).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_information_coefficient_matches_scipy_and_hand_value() -> None:
    predicted = np.array([1.0, 2.0, 3.0, 4.0])
    realised = np.array([1.0, 3.0, 2.0, 5.0])
    result = information_coefficient(predicted, realised)
    # Spearman by hand: ranks 1,2,3,4 vs 1,3,2,4 -> d^2 = 0+1+1+0, rho = 1 - 6*2/(4*15) = 0.8
    assert result.rank_ic == pytest.approx(0.8)
    assert result.ic == pytest.approx(sps.pearsonr(predicted, realised).statistic)


def test_information_coefficient_per_calendar_month() -> None:
    january = np.datetime64("2024-01-10T00:00", "s").astype(np.int64)
    february = np.datetime64("2024-02-10T00:00", "s").astype(np.int64)
    times = np.array(
        [january, january + 60, january + 120, february, february + 60, february + 120]
    )
    predicted = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    realised = np.array([1.0, 2.0, 3.0, 3.0, 2.0, 1.0])
    result = information_coefficient(predicted, realised, times)
    assert [m.month for m in result.monthly] == ["2024-01", "2024-02"]
    assert [m.ic for m in result.monthly] == pytest.approx([1.0, -1.0])
    assert [m.rank_ic for m in result.monthly] == pytest.approx([1.0, -1.0])
    as_datetime = information_coefficient(predicted, realised, times.astype("datetime64[s]"))
    assert as_datetime.monthly == result.monthly
    shuffled = np.array([3, 0, 5, 1, 4, 2])  # rows out of time order give the same months
    unsorted = information_coefficient(predicted[shuffled], realised[shuffled], times[shuffled])
    assert unsorted.monthly == result.monthly


def test_constant_forecast_has_undefined_ic_not_a_crash() -> None:
    result = information_coefficient(np.zeros(5), np.arange(5.0))
    assert math.isnan(result.ic)
    assert math.isnan(result.rank_ic)
    assert result.to_dict()["ic"] is None


def test_average_ranks_equal_scipy_rankdata_with_ties() -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 7, 200).astype(float)
    np.testing.assert_allclose(average_ranks(values), sps.rankdata(values))


def test_accuracy_by_confidence_decile_bins_by_absolute_forecast() -> None:
    # 20 rows: the 10 smallest |forecast| are all wrong, the 10 largest all right
    predicted = np.r_[np.full(10, 0.01), np.full(10, -0.5)]
    realised = np.r_[np.full(10, -1.0), np.full(10, -1.0)]
    deciles = accuracy_by_confidence_decile(predicted, realised, n_bins=2)
    assert [d.n for d in deciles] == [10, 10]
    assert [d.accuracy for d in deciles] == [0.0, 1.0]
    assert [d.mean_abs_forecast for d in deciles] == pytest.approx([0.01, 0.5])


def test_classification_metrics_by_hand_and_against_sklearn() -> None:
    truth = [0, 0, 1, 1, 2, 2, 2]
    guess = [0, 1, 1, 1, 2, 0, 2]
    result = classification_metrics(truth, guess)
    assert result.confusion == ((1, 1, 0), (0, 2, 0), (1, 0, 2))
    assert result.precision == pytest.approx((1 / 2, 2 / 3, 2 / 2))
    assert result.recall == pytest.approx((1 / 2, 2 / 2, 2 / 3))
    assert result.accuracy == pytest.approx(5 / 7)
    assert np.array_equal(confusion_matrix(truth, guess, labels=[0, 1, 2]), result.confusion)
    assert precision_score(truth, guess, average=None) == pytest.approx(result.precision)
    assert recall_score(truth, guess, average=None) == pytest.approx(result.recall)
    assert result.labels == ("sell", "hold", "buy")


def test_classification_precision_of_a_never_predicted_class_is_undefined() -> None:
    result = classification_metrics([0, 1, 2], [1, 1, 1])
    assert math.isnan(result.precision[0])
    assert result.recall[0] == 0.0
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_classification_rejects_labels_outside_the_three_classes() -> None:
    with pytest.raises(ValueError, match=r"0\.\.2"):
        classification_metrics([0, 3], [0, 1])


def test_range_errors_score_each_output_separately() -> None:
    actual = np.array([[2.0, -1.0, 0.5], [4.0, -3.0, -1.0]])
    predicted = np.array([[3.0, -1.0, 0.0], [4.0, -1.0, -1.0]])
    result = range_errors(actual, predicted)
    assert result.max_rise_pct.mae == pytest.approx(0.5)
    assert result.max_decline_pct.mae == pytest.approx(1.0)
    assert result.max_decline_pct.mean_error == pytest.approx(1.0)  # predicts too shallow a drop
    assert result.end_change_pct.rmse == pytest.approx(math.sqrt(0.25 / 2))
    assert result.end_change_pct.rmse_vs_zero == pytest.approx(math.sqrt(0.25 / 2 / (1.25 / 2)))


def test_range_errors_refuse_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        range_errors(np.zeros((2, 2)), np.zeros((2, 2)))


def test_to_dict_is_json_safe() -> None:
    result = error_metrics([1.0], [np.nan])
    payload = result.to_dict()
    assert payload["mae"] is None
    json.dumps(payload, allow_nan=False)
