from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.intervals import parse_interval
from predictor.ml.resample import find_gaps, frame_from_arrays, mark_gaps, resample_ohlcv

START = 1_704_067_200  # 2024-01-01 00:00 UTC


def minute_frame(minutes: list[int]) -> pd.DataFrame:
    times = np.array([START + 60 * m for m in minutes], dtype=np.int64)
    n = len(minutes)
    base = np.arange(1, n + 1, dtype=np.float64)
    return frame_from_arrays(
        times,
        {
            "open": base,
            "high": base + 10,
            "low": base - 0.5,
            "close": base + 0.25,
            "volume": np.full(n, 2.0),
        },
    )


def test_resampling_aggregates_first_max_min_last_sum_by_open_time() -> None:
    frame = minute_frame(list(range(10)))
    out = resample_ohlcv(frame, parse_interval("1m"), parse_interval("5min"))
    assert list(out.index) == [
        pd.Timestamp(START, unit="s", tz="UTC"),
        pd.Timestamp(START + 300, unit="s", tz="UTC"),
    ]
    first = out.iloc[0]
    assert first["open"] == 1.0
    assert first["high"] == 15.0
    assert first["low"] == 0.5
    assert first["close"] == 5.25
    assert first["volume"] == 10.0
    assert first["bars"] == 5


def test_incomplete_coarse_bars_are_marked_not_hidden() -> None:
    frame = minute_frame([0, 1, 2, 5, 6, 7, 8, 9])
    out = resample_ohlcv(frame, parse_interval("1m"), parse_interval("5m"))
    assert out["bars"].tolist() == [3, 5]
    assert (out["expected_bars"] == 5).all()


def test_resampling_to_a_non_multiple_is_refused() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        resample_ohlcv(minute_frame([0, 1]), parse_interval("2m"), parse_interval("5m"))


def test_gaps_are_counted_with_their_size() -> None:
    times = np.array([0, 60, 120, 420, 480, 1080], dtype=np.int64) + START
    report = find_gaps(times, parse_interval("1m"))
    assert report.count == 2
    assert report.missing_bars == 4 + 9
    assert report.largest_seconds == 600


def test_marking_gaps_adds_nan_rows_and_never_fills_volume() -> None:
    out = mark_gaps(minute_frame([0, 1, 4]), parse_interval("1m"))
    assert len(out) == 5
    assert out["missing"].tolist() == [False, False, True, True, False]
    assert out["volume"].isna().sum() == 2
