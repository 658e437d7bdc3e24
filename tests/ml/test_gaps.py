"""Gaps are never data: no sample, forecast, score or trade reads a bar the grid filled in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import align_markets, filled_reads, filled_rows
from predictor.ml.config import ConfigError, TrainConfig
from predictor.ml.evaluation.backtest import backtest
from predictor.ml.evaluation.report import (
    MIN_REAL_VALIDATION_FORECASTS,
    GapCounts,
    check_validation_forecasts,
)
from predictor.ml.features import feature_lookback
from predictor.ml.forecasting import forecast_windows
from predictor.ml.scaling import fit_affine
from predictor.ml.training import prepare_data, sample_reach, train_pipeline
from tests.ml.conftest import make_frame

HOLE = slice(250, 290)  # 40 hourly bars missing, inside what becomes the training part


def holed(n: int = 600, hole: slice = HOLE, seed: int = 0) -> pd.DataFrame:
    frame = make_frame(n, seed=seed)
    return frame.drop(frame.index[hole])


def hole_rows(hole: slice = HOLE) -> np.ndarray:
    return np.arange(hole.start, hole.stop)


def test_filled_reads_counts_the_filled_rows_each_anchor_reads() -> None:
    rng = np.random.default_rng(3)
    filled = rng.random(200) < 0.1
    got = filled_reads(filled, 7, 3)
    brute = [filled[max(t - 7, 0) : t + 4].sum() for t in range(200)]
    assert got.tolist() == brute


def test_filled_rows_marks_gaps_but_not_rows_before_a_market_starts() -> None:
    early = holed(100, slice(40, 45))
    late = make_frame(100, seed=1).iloc[20:]
    market = align_markets({"A": early, "B": late})
    filled = filled_rows(market)
    assert np.flatnonzero(filled).tolist() == list(range(40, 45))


@pytest.mark.parametrize(
    "overrides",
    [
        {"arch": "ridge", "target": "return", "horizon": 4},
        {"arch": "ridge", "target": "range", "horizon": 6, "features": ("ohlcv", "returns")},
    ],
)
def test_no_sample_reads_a_filled_bar(overrides: dict[str, object]) -> None:
    config = TrainConfig(window=12, interval="1h", **overrides)  # type: ignore[arg-type]
    prep = prepare_data(holed(), config)
    before, after = sample_reach(config, feature_lookback(config.features))
    hole = hole_rows()
    assert prep.filled is not None
    assert np.flatnonzero(prep.filled).tolist() == hole.tolist()
    for part in (prep.split.train, prep.split.validation, prep.split.test):
        reads_low, reads_high = part.anchors - before, part.anchors + after
        touches = (reads_low[:, None] <= hole[None, :]) & (hole[None, :] <= reads_high[:, None])
        assert not touches.any()
    assert len(prep.split.validation)
    assert len(prep.split.test)
    # The windows around the hole were complete (gap bars are finite) but are not samples.
    gaps = prep.split.gaps
    assert gaps is not None
    assert gaps.max_fill == 0
    assert gaps.filled_bars == len(hole)
    assert gaps.windows_dropped == len(hole) + before + after
    train = gaps.parts["train"]
    # The hole lies inside the training span: its bars are counted, its windows dropped.
    assert train.filled_bars == len(hole)
    assert train.windows_dropped == gaps.windows_dropped
    assert gaps.parts["test"].filled_bars == gaps.parts["test"].windows_dropped == 0
    assert train.windows_kept == len(prep.split.train)
    stored = prep.split.to_dict()
    assert stored["train"]["windows_dropped"] == gaps.windows_dropped  # type: ignore[index]
    assert stored["gaps"]["max_fill"] == 0  # type: ignore[index]


def test_max_fill_lets_samples_read_that_many_filled_bars() -> None:
    strict = prepare_data(holed(), TrainConfig(window=12, arch="ridge", target="return"))
    loose = prepare_data(holed(), TrainConfig(window=12, arch="ridge", target="return", max_fill=5))
    assert len(loose.anchors) - len(strict.anchors) == 10  # five on each side of the hole
    config = loose.split.gaps
    assert config is not None
    assert config.max_fill == 5
    reads = filled_reads(loose.filled, 11, 15)  # type: ignore[arg-type]
    assert reads[loose.anchors].max() == 5


def test_a_filled_bar_in_one_market_drops_the_joint_sample() -> None:
    frames = {"BTC": holed(400, slice(100, 110)), "ETH": make_frame(400, seed=5, price=10.0)}
    config = TrainConfig(window=8, arch="ridge", target="return", horizon=2, markets=("BTC", "ETH"))
    prep = prepare_data(frames, config)
    # ETH is complete, but a joint sample reading BTC rows 100..109 is no sample.
    assert not np.isin(np.arange(100 - 2, 110 + 7), prep.anchors).any()
    assert np.isin([100 - 3, 110 + 7], prep.anchors).all()


def test_the_scaler_never_sees_a_filled_row() -> None:
    config = TrainConfig(window=12, arch="ridge", target="return", scaler="standard")
    frame = holed()
    bundle = train_pipeline(frame, config)
    prep = bundle.prepared
    assert prep is not None
    assert prep.filled is not None
    rows = prep.split.train_feature_rows()
    flat = prep.features.flat()
    expected = fit_affine("standard", flat[rows][~prep.filled[rows]])
    assert bundle.scaling.features == expected
    with_gaps = fit_affine("standard", flat[rows])
    assert with_gaps != expected  # the flat bars would have moved the scaler


def test_a_split_left_without_real_samples_is_refused_with_the_counts() -> None:
    frame = make_frame(60)
    frame = frame.drop(frame.index[20:50])  # no 28 real bars in a row anywhere
    config = TrainConfig(window=24, arch="zero", target="return", horizon=4)
    with pytest.raises(
        ValueError, match=r"0 of 33 complete windows are samples; 33 read more than max_fill=0"
    ):
        prepare_data(frame, config)


def test_windows_that_read_a_gap_are_not_forecast_and_targets_in_it_are_not_scored() -> None:
    frame = holed()
    bundle = train_pipeline(frame, TrainConfig(window=8, arch="persistence", horizon=3))
    fc = forecast_windows(bundle, frame)
    grid = align_markets(frame).index
    row = ((fc.anchor - int(grid[0].timestamp())) // 3600).astype(np.int64)
    hole = hole_rows()
    assert not np.isin(row, np.arange(hole[0], hole[-1] + 8)).any()  # windows reading the hole
    reads_hole = (row + 3 >= hole[0]) & (row < hole[0])
    assert reads_hole.sum() == 3
    assert np.isnan(fc.actual[reads_hole]).all()
    assert np.isfinite(fc.actual[~reads_hole & (fc.split != "future")]).all()


def test_the_backtest_opens_no_position_on_a_bar_that_is_not_real() -> None:
    n = 60
    open_ = np.linspace(100, 130, n)
    forecast = np.full(n, 0.05)  # always long
    real = np.ones(n, dtype=bool)
    real[20:30] = False
    run = backtest(
        open_, forecast, horizon=1, theta=0.0, bars_per_year=8760, mode="overlapping", tradable=real
    )
    assert len(run.trades)
    assert real[run.trades.signal_index].all()
    assert real[run.trades.entry_index].all()
    free = backtest(open_, forecast, horizon=1, theta=0.0, bars_per_year=8760, mode="overlapping")
    assert (~real[free.trades.entry_index]).any()  # without the mask it would have traded there
    with pytest.raises(ValueError, match="tradable"):
        backtest(open_, forecast, horizon=1, theta=0.0, bars_per_year=1, tradable=real[:-1])


def test_theta_is_refused_on_too_few_real_validation_forecasts() -> None:
    counts = GapCounts(max_fill=0, real_bars=80, filled_bars=900, windows_dropped=910,
                       real_forecasts=42)  # fmt: skip
    with pytest.raises(ValueError, match=r"validation split: only 42 real forecasts .*900 filled"):
        check_validation_forecasts(counts)
    check_validation_forecasts(
        GapCounts(0, 200, 0, 0, MIN_REAL_VALIDATION_FORECASTS)
    )  # enough: no error


def test_max_fill_is_a_bounded_config_field() -> None:
    assert TrainConfig().max_fill == 0
    assert TrainConfig.from_dict({**TrainConfig().to_dict(), "max_fill": 3}).max_fill == 3
    with pytest.raises(ConfigError, match="max_fill"):
        TrainConfig(max_fill=-1)
    with pytest.raises(ConfigError, match="max_fill"):
        TrainConfig(max_fill=10**9)
