"""Forecast-error metrics: pure functions over arrays, frozen results.

Conventions used throughout the evaluation package:

* a forecast is made at the close of bar ``t`` for the close of bar ``t + h``;
* ``base_price`` is the close at ``t`` (the last price the model saw), so the
  predicted return is ``predicted_price / base_price - 1`` and the realised
  return ``actual_price / base_price - 1``;
* rows with a NaN anywhere are left out of a metric (a forecast whose target is
  still in the future has no error yet);
* a direction is *hit* when the predicted and realised returns have the same
  sign; realised moves of exactly zero are left out, and a predicted return of
  exactly zero makes no call, so it counts as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.ml.evaluation._common import (
    BoolArray,
    FloatArray,
    IntArray,
    ToDict,
    as_float_array,
    same_length,
)

CLASS_LABELS: tuple[str, str, str] = ("sell", "hold", "buy")
RANGE_OUTPUTS: tuple[str, str, str] = ("max_rise_pct", "max_decline_pct", "end_change_pct")


@dataclass(frozen=True, slots=True)
class ErrorMetrics(ToDict):
    """MAE, RMSE and MAPE (in percent of |actual|; rows with actual == 0 left out).

    For prices: a percentage of a price that never nears zero means something.
    """

    n: int
    mae: float
    rmse: float
    mape_pct: float
    mean_error: float  # predicted - actual: the forecast's bias


@dataclass(frozen=True, slots=True)
class ChangeErrors(ToDict):
    """MAE, RMSE and ``rmse_vs_zero`` of forecasts of a change (a return, a move in %).

    MAPE is meaningless here: realised changes cross zero, and a zero forecast
    scores exactly 100 %. ``rmse_vs_zero`` is the RMSE divided by the RMSE of the
    zero-change forecast, ``sqrt(mean(actual ** 2))``: 1.0 = as good as forecasting
    no change, below 1 better, above 1 worse.
    """

    n: int
    mae: float
    rmse: float
    rmse_vs_zero: float
    mean_error: float  # predicted - actual: the forecast's bias


@dataclass(frozen=True, slots=True)
class ForecastErrors(ToDict):
    """The errors in price units and in returns."""

    price: ErrorMetrics
    returns: ChangeErrors


@dataclass(frozen=True, slots=True)
class DirectionalAccuracy(ToDict):
    n: int  # rows with a non-zero realised move
    hits: int
    accuracy: float
    zero_moves_excluded: int
    share_up_realised: float
    share_up_predicted: float


@dataclass(frozen=True, slots=True)
class MonthlyIC(ToDict):
    month: str  # "YYYY-MM", UTC
    n: int
    ic: float
    rank_ic: float


@dataclass(frozen=True, slots=True)
class InformationCoefficient(ToDict):
    """Pearson (IC) and Spearman (rank IC) correlation of forecast and realised returns."""

    n: int
    ic: float
    rank_ic: float
    monthly: tuple[MonthlyIC, ...]


@dataclass(frozen=True, slots=True)
class DecileAccuracy(ToDict):
    decile: int  # 1 = least confident (smallest |forecast|), 10 = most
    n: int
    mean_abs_forecast: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class ClassificationMetrics(ToDict):
    """Rows of ``confusion`` are true classes, columns predicted (sell=0, hold=1, buy=2)."""

    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    support: tuple[int, ...]
    accuracy: float


@dataclass(frozen=True, slots=True)
class RangeErrors(ToDict):
    """Errors of the three range outputs, each in percentage points."""

    max_rise_pct: ChangeErrors
    max_decline_pct: ChangeErrors
    end_change_pct: ChangeErrors


def _finite_rows(*arrays: FloatArray) -> BoolArray:
    mask = np.ones(len(arrays[0]), dtype=bool)
    for array in arrays:
        mask &= np.isfinite(array)
    return mask


def _paired(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both series, checked to have one length, on the rows where both are finite."""
    y = as_float_array(actual, "actual")
    f = as_float_array(predicted, "predicted")
    same_length(actual=y, predicted=f)
    keep = _finite_rows(y, f)
    return y[keep], f[keep]


def error_metrics(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> ErrorMetrics:
    """MAE, RMSE, MAPE and mean error of ``predicted`` against ``actual``."""
    y, f = _paired(actual, predicted)
    if len(y) == 0:
        return ErrorMetrics(0, np.nan, np.nan, np.nan, np.nan)
    error = f - y
    nonzero = y != 0
    mape = np.nan
    if nonzero.any():
        mape = float(np.mean(np.abs(error[nonzero]) / np.abs(y[nonzero]))) * 100
    return ErrorMetrics(
        n=len(y),
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error * error))),
        mape_pct=mape,
        mean_error=float(np.mean(error)),
    )


def change_errors(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> ChangeErrors:
    """MAE, RMSE, RMSE relative to the zero-change forecast, and mean error."""
    y, f = _paired(actual, predicted)
    if len(y) == 0:
        return ChangeErrors(0, np.nan, np.nan, np.nan, np.nan)
    error = f - y
    rmse = float(np.sqrt(np.mean(error * error)))
    zero_rmse = float(np.sqrt(np.mean(y * y)))
    return ChangeErrors(
        n=len(y),
        mae=float(np.mean(np.abs(error))),
        rmse=rmse,
        rmse_vs_zero=rmse / zero_rmse if zero_rmse > 0 else np.nan,
        mean_error=float(np.mean(error)),
    )


def returns_from_prices(base_price: npt.ArrayLike, target_price: npt.ArrayLike) -> FloatArray:
    """``target / base - 1`` elementwise (NaN where either is missing)."""
    base = as_float_array(base_price, "base_price")
    target = as_float_array(target_price, "target_price")
    same_length(base_price=base, target_price=target)
    with np.errstate(divide="ignore", invalid="ignore"):
        return target / base - 1.0


def forecast_errors(
    actual_price: npt.ArrayLike, predicted_price: npt.ArrayLike, base_price: npt.ArrayLike
) -> ForecastErrors:
    """Errors in price units and in returns relative to ``base_price`` (the close at t).

    Prices get MAPE; returns get the RMSE ratio to the zero-return forecast instead.
    """
    actual = as_float_array(actual_price, "actual_price")
    predicted = as_float_array(predicted_price, "predicted_price")
    return ForecastErrors(
        price=error_metrics(actual, predicted),
        returns=change_errors(
            returns_from_prices(base_price, actual), returns_from_prices(base_price, predicted)
        ),
    )


def hit_series(predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike) -> FloatArray:
    """1.0 where the predicted sign equals the realised sign, else 0.0.

    Rows with a NaN or with a realised move of exactly zero are dropped.
    """
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    keep = _finite_rows(f, y) & (y != 0)
    hits: FloatArray = (np.sign(f[keep]) == np.sign(y[keep])).astype(np.float64)
    return hits


def directional_accuracy(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike
) -> DirectionalAccuracy:
    """Share of non-zero realised moves whose sign the forecast got right."""
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    finite = _finite_rows(f, y)
    keep = finite & (y != 0)
    n = int(keep.sum())
    hits = int(np.count_nonzero(np.sign(f[keep]) == np.sign(y[keep])))
    return DirectionalAccuracy(
        n=n,
        hits=hits,
        accuracy=hits / n if n else np.nan,
        zero_moves_excluded=int((finite & (y == 0)).sum()),
        share_up_realised=float(np.mean(y[keep] > 0)) if n else np.nan,
        share_up_predicted=float(np.mean(f[keep] > 0)) if n else np.nan,
    )


def _pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson correlation; NaN (not a warning) when either side is constant."""
    if len(x) < 2:
        return np.nan
    dx = x - x.mean()
    dy = y - y.mean()
    # einsum rather than np.dot: BLAS threads stall on a busy two-core machine.
    denominator = float(np.sqrt(np.einsum("i,i->", dx, dx) * np.einsum("i,i->", dy, dy)))
    return float(np.einsum("i,i->", dx, dy)) / denominator if denominator > 0 else np.nan


def average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing their mean rank: ``scipy.stats.rankdata``'s default.

    Written out because rankdata sorts with a stable mergesort, several times
    slower than the default sort; for average ranks the order inside a tie
    does not matter.
    """
    order = np.argsort(values)
    ordered = values[order]
    new_value = np.r_[True, ordered[1:] != ordered[:-1]]
    tie = np.cumsum(new_value) - 1
    bounds = np.r_[np.flatnonzero(new_value), len(values)]
    mean_position = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of positions start+1 .. end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = mean_position[tie]
    return ranks


def _spearman(x: FloatArray, y: FloatArray) -> float:
    # Spearman's rho is Pearson's r of average ranks (ties share their mean rank).
    return _pearson(average_ranks(x), average_ranks(y)) if len(x) >= 2 else np.nan


def to_datetime64(times: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    """Unix seconds (int) or datetime64 values as ``datetime64[s]`` (UTC)."""
    array = np.asarray(times)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]")
    if array.dtype.kind in "iu":
        return array.astype(np.int64).astype("datetime64[s]")
    raise TypeError(f"times must be int64 unix seconds or datetime64, got {array.dtype}")


def _monthly_ic(f: FloatArray, y: FloatArray, times: npt.ArrayLike) -> tuple[MonthlyIC, ...]:
    months = to_datetime64(times).astype("datetime64[M]")
    codes = months.astype(np.int64)
    if np.any(codes[1:] < codes[:-1]):  # unsorted input: group the months together once
        order = np.argsort(codes, kind="stable")
        f, y, codes, months = f[order], y[order], codes[order], months[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    # One iteration per calendar month (slices are views), not per bar.
    return tuple(
        MonthlyIC(
            month=str(months[start]),
            n=end - start,
            ic=_pearson(f[start:end], y[start:end]),
            rank_ic=_spearman(f[start:end], y[start:end]),
        )
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
    )


def information_coefficient(
    predicted_return: npt.ArrayLike,
    realised_return: npt.ArrayLike,
    times: npt.ArrayLike | None = None,
) -> InformationCoefficient:
    """IC and rank IC overall, and per calendar month when ``times`` are given."""
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    keep = _finite_rows(f, y)
    monthly: tuple[MonthlyIC, ...] = ()
    if times is not None:
        stamps = np.asarray(times)
        same_length(predicted_return=f, times=stamps)
        monthly = _monthly_ic(f[keep], y[keep], stamps[keep])
    f, y = f[keep], y[keep]
    return InformationCoefficient(
        n=len(f), ic=_pearson(f, y), rank_ic=_spearman(f, y), monthly=monthly
    )


def accuracy_by_confidence_decile(
    predicted_return: npt.ArrayLike, realised_return: npt.ArrayLike, n_bins: int = 10
) -> tuple[DecileAccuracy, ...]:
    """Directional accuracy in equal-count bins of |predicted return|.

    A model whose confidence means something is more accurate in the top bins.
    """
    f = as_float_array(predicted_return, "predicted_return")
    y = as_float_array(realised_return, "realised_return")
    same_length(predicted_return=f, realised_return=y)
    keep = _finite_rows(f, y) & (y != 0)
    f, y = f[keep], y[keep]
    n = len(f)
    if n < n_bins:
        return ()
    magnitude = np.abs(f)
    bins: IntArray = np.empty(n, dtype=np.int64)
    bins[np.argsort(magnitude)] = np.arange(n, dtype=np.int64) * n_bins // n
    hits = (np.sign(f) == np.sign(y)).astype(np.float64)
    counts = np.bincount(bins, minlength=n_bins)
    hit_sums = np.bincount(bins, weights=hits, minlength=n_bins)
    magnitude_sums = np.bincount(bins, weights=magnitude, minlength=n_bins)
    return tuple(
        DecileAccuracy(
            decile=i + 1,
            n=int(counts[i]),
            mean_abs_forecast=float(magnitude_sums[i] / counts[i]),
            accuracy=float(hit_sums[i] / counts[i]),
        )
        for i in range(n_bins)
    )


def classification_metrics(
    true_class: npt.ArrayLike, predicted_class: npt.ArrayLike, n_classes: int = 3
) -> ClassificationMetrics:
    """Confusion matrix and per-class precision/recall (NaN for an empty class)."""
    truth = np.asarray(true_class, dtype=np.int64)
    guess = np.asarray(predicted_class, dtype=np.int64)
    same_length(true_class=truth, predicted_class=guess)
    for name, values in (("true_class", truth), ("predicted_class", guess)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}")
    confusion = np.bincount(truth * n_classes + guess, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes)
    diagonal = np.diag(confusion).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = diagonal / confusion.sum(axis=0)
        recall = diagonal / confusion.sum(axis=1)
    labels = CLASS_LABELS if n_classes == 3 else tuple(str(i) for i in range(n_classes))
    return ClassificationMetrics(
        labels=labels,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        support=tuple(int(v) for v in confusion.sum(axis=1)),
        accuracy=float(diagonal.sum() / len(truth)) if len(truth) else np.nan,
    )


def range_errors(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> RangeErrors:
    """Errors of (max rise %, max decline %, end change %) forecasts, shape (n, 3) each."""
    y = np.asarray(actual, dtype=np.float64)
    f = np.asarray(predicted, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != 3 or y.shape != f.shape:
        raise ValueError(f"range targets must both be (n, 3), got {y.shape} and {f.shape}")
    rise, decline, end = (change_errors(y[:, i], f[:, i]) for i in range(3))
    return RangeErrors(max_rise_pct=rise, max_decline_pct=decline, end_change_pct=end)
