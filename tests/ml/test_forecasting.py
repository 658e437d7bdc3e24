"""Forecasting every window: future points, split labels, realised values, seam consistency."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import align_markets, unix_seconds, window_view
from predictor.ml.config import TrainConfig
from predictor.ml.forecasting import (
    evaluation_inputs,
    forecast_return,
    forecast_windows,
    history_rows,
    realised_values,
    split_labels,
)
from predictor.ml.training import TrainedBundle, train_pipeline
from tests.ml.conftest import make_frame

HOUR = 3600


def train(frame: Any, **overrides: Any) -> TrainedBundle:
    config = {"window": 8, "interval": "1h", "arch": "persistence", **overrides}
    return train_pipeline(frame, TrainConfig(**config))


def seconds(frame: pd.DataFrame, row: int) -> int:
    return int(frame.index[row].timestamp())


def test_windows_whose_target_is_past_the_last_candle_are_future_points(
    frame: pd.DataFrame,
) -> None:
    bundle = train(frame, horizon=3)
    fc = forecast_windows(bundle, frame)
    last = seconds(frame, len(frame) - 1)
    # Every complete window is forecast, up to the one ending on the last candle.
    assert fc.anchor[0] == seconds(frame, 7)
    assert fc.anchor[-1] == last
    assert len(fc) == len(frame) - 7
    future = fc.split == "future"
    assert future.sum() == 3
    assert np.all(fc.target[future] > last)
    assert np.all(np.isnan(fc.actual[future]))
    assert np.all(np.isfinite(fc.actual[~future]))
    assert np.all(fc.target == fc.anchor + 3 * HOUR)
    assert np.all(fc.issued == fc.anchor + HOUR)
    assert fc.last_candle.tolist() == [last]


def test_each_step_of_a_multi_step_forecast_has_its_own_target_and_truth(
    frame: pd.DataFrame,
) -> None:
    bundle = train(frame, horizon=2, output_size=3)
    fc = forecast_windows(bundle, frame)
    close = frame["close"].to_numpy()
    assert fc.step[:3].tolist() == [1, 2, 3]
    assert np.all(fc.target == fc.anchor + fc.horizon * HOUR)
    assert np.all(fc.horizon == 2 * fc.step)
    known = np.isfinite(fc.actual)
    rows = (fc.target[known] - seconds(frame, 0)) // HOUR
    np.testing.assert_allclose(fc.actual[known], close[rows], rtol=1e-6)
    # The anchor two bars before the end: step 1 is known, steps 2 and 3 are not yet.
    second_last = fc.anchor == seconds(frame, len(frame) - 3)
    assert fc.split[second_last].tolist() == ["production", "future", "future"]


def test_anchors_carry_the_split_part_they_were_trained_or_tested_in(
    frame: pd.DataFrame,
) -> None:
    bundle = train(frame, horizon=2)
    fc = forecast_windows(bundle, frame)
    counts = fc.split_counts()
    for part in ("train", "validation", "test"):
        assert counts[part] == bundle.split[part]["samples"]  # type: ignore[index]
    # Two purge gaps of two anchors each; the last two anchors' targets are past the data.
    assert counts["gap"] == 4
    assert counts["future"] == 2
    order = [label for i, label in enumerate(fc.split) if i == 0 or fc.split[i - 1] != label]
    assert order == ["train", "gap", "validation", "gap", "test", "future"]


def test_labels_after_the_training_data_are_production() -> None:
    split = {
        "train": {"samples": 3, "first_time": "2024-01-01T00:00:00+00:00",
                  "last_time": "2024-01-01T02:00:00+00:00"},
        "validation": {"samples": 0},
        "test": {"samples": 0},
    }  # fmt: skip
    start = int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
    anchors = start + HOUR * np.arange(-1, 5, dtype=np.int64)
    labels = split_labels(anchors, split).tolist()
    assert labels == ["gap", "train", "train", "train", "production", "production"]


def test_a_forecast_from_just_enough_history_equals_the_full_history_one(
    frame: pd.DataFrame,
) -> None:
    bundle = train(frame, arch="lstm", units=4, epochs=1, batch_size=64, xla=False)
    full = forecast_windows(bundle, frame)
    row = 300
    start = frame.index[row]
    short = forecast_windows(bundle, frame.iloc[row - history_rows(bundle.config) :], start=start)
    tail = full.anchor >= seconds(frame, row)
    assert short.anchor[0] == seconds(frame, row)
    np.testing.assert_array_equal(short.anchor, full.anchor[tail])
    np.testing.assert_allclose(short.predicted, full.predicted[tail], rtol=1e-5)
    np.testing.assert_array_equal(short.split, full.split[tail])
    # The batched path gives what the model gives window by window.
    flat = frame[["close"]].to_numpy(dtype=np.float32)
    windows = window_view(flat, 8)[np.array([0, 100, len(frame) - 8])]
    expected = bundle.predict(windows)[:, 0]
    picked = np.isin(full.anchor, [seconds(frame, r) for r in (7, 107, len(frame) - 1)])
    np.testing.assert_allclose(full.predicted[picked], expected, rtol=1e-5)


def test_an_anchor_range_is_respected(frame: pd.DataFrame) -> None:
    bundle = train(frame)
    fc = forecast_windows(bundle, frame, start=frame.index[50], end=frame.index[59])
    assert fc.n_windows == 10
    assert fc.anchor.tolist() == [seconds(frame, r) for r in range(50, 60)]


def test_range_and_updown_rows_carry_three_values(frame: pd.DataFrame) -> None:
    ranged = forecast_windows(train(frame, arch="zero", target="range", horizon=4), frame)
    assert ranged.values is not None
    assert ranged.actual_values is not None
    assert ranged.values.shape == (len(ranged), 3)
    known = np.isfinite(ranged.actual)
    rise, decline, end = ranged.actual_values[known].T
    assert np.all(rise >= end)
    assert np.all(end >= decline)
    np.testing.assert_array_equal(ranged.actual, ranged.actual_values[:, 2])
    updown = train(
        frame, arch="zero", target="updown", loss="sparse_categorical_crossentropy", horizon=4
    )
    classes = forecast_windows(updown, frame)
    assert classes.values is not None
    np.testing.assert_allclose(classes.values.sum(axis=1), 1.0)
    assert set(classes.predicted.tolist()) == {1.0}  # the zero baseline always says hold
    assert set(np.unique(classes.actual[np.isfinite(classes.actual)])) <= {0.0, 1.0, 2.0}


def test_a_lagging_market_stops_the_forecasts_at_its_last_candle() -> None:
    frames = {"BTCUSDT": make_frame(200, seed=2), "ETHUSDT": make_frame(190, seed=3, price=10)}
    bundle = train(frames, arch="ridge", features=("close",), markets=("BTCUSDT", "ETHUSDT"))
    fc = forecast_windows(bundle, frames)
    eth_last = seconds(frames["ETHUSDT"], 189)
    assert fc.anchor.max() == eth_last
    assert fc.last_candle.tolist() == [seconds(frames["BTCUSDT"], 199), eth_last]
    assert fc.markets == ("BTCUSDT", "ETHUSDT")
    assert fc.market[:2].tolist() == [0, 1]
    last_eth = (fc.market == 1) & (fc.anchor == eth_last)
    assert fc.split[last_eth].tolist() == ["future"]
    last_btc = (fc.market == 0) & (fc.anchor == eth_last)
    assert fc.split[last_btc].tolist() != ["future"]  # BTC's next candle exists


def test_realised_values_of_stored_rows_match_the_forecast_run(frame: pd.DataFrame) -> None:
    bundle = train(frame, horizon=2, output_size=2)
    fc = forecast_windows(bundle, frame)
    tail = fc.anchor >= seconds(frame, 350)
    actual, values = realised_values(
        bundle.config, frame.iloc[350:], fc.anchor[tail], fc.market[tail], fc.step[tail]
    )
    assert values is None
    np.testing.assert_array_equal(actual, fc.actual[tail])
    off_grid, _ = realised_values(
        bundle.config,
        frame,
        np.array([seconds(frame, 10) + 60]),
        np.zeros(1, np.int64),
        np.ones(1, np.int64),
    )
    assert np.isnan(off_grid).all()


def test_non_finite_model_output_is_refused(frame: pd.DataFrame) -> None:
    bundle = train(frame)
    bundle_model = bundle.model

    class Exploding:
        def predict(self, windows: Any) -> Any:
            return np.full((len(windows), 1), np.nan)

    object.__setattr__(bundle, "model", Exploding())
    try:
        with pytest.raises(ValueError, match="non-finite"):
            forecast_windows(bundle, frame)
    finally:
        object.__setattr__(bundle, "model", bundle_model)


def test_evaluation_inputs_put_forecasts_on_the_bar_grid(frame: pd.DataFrame) -> None:
    market = align_markets(frame, "1h")
    times = unix_seconds(market.index)
    anchors = times[[100, 101, 103]]
    close = frame["close"].to_numpy()
    predicted = np.array([110.0, 90.0, 100.0])
    forecast = forecast_return("price", predicted, close[[100, 101, 103]])
    inputs = evaluation_inputs(market, 0, anchors, forecast, horizon=2, stop=int(times[105]))
    assert inputs.times[0] == times[100]
    assert inputs.times[-1] == times[104]  # three bars past the last anchor, cut before the stop
    np.testing.assert_allclose(inputs.predicted_price[[0, 1, 3]], predicted)
    assert np.isnan(inputs.predicted_price[[2, 4]]).all()
    np.testing.assert_allclose(forecast_return("logreturn", np.log([1.1]), close[:1]), [0.1])
