"""Resampling candles to coarser bars and handling gaps, explicitly.

Bars are labelled by their open time, anchored on the Unix epoch (weeks on
Mondays), like the exchanges label them: the 4h bar of 04:00 holds the candles
opened at 04:00 … 07:59. A coarse bar built from fewer candles than it should
hold is kept but marked (``bars`` < ``expected_bars``), never silently passed
off as complete; missing bars are reported or marked with NaN, and volume is
never forward-filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from predictor.ml.candles import OHLCV_FIELDS, IntArray
from predictor.ml.intervals import Interval

OHLCV = list(OHLCV_FIELDS)


@dataclass(frozen=True, slots=True)
class GapReport:
    """Missing bars in a series: how many gaps, how long, and the first few."""

    count: int
    missing_bars: int
    largest_seconds: int
    first: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]  # (last bar before, next bar after)


def find_gaps(open_times: IntArray, interval: Interval, *, keep: int = 20) -> GapReport:
    """Gaps between consecutive open times (Unix seconds, sorted)."""
    if open_times.size < 2:
        return GapReport(0, 0, 0, ())
    steps = np.diff(open_times)
    where = np.flatnonzero(steps > interval.seconds)
    if where.size == 0:
        return GapReport(0, 0, 0, ())
    sizes = steps[where]
    first = tuple(
        (
            pd.Timestamp(int(open_times[i]), unit="s", tz="UTC"),
            pd.Timestamp(int(open_times[i + 1]), unit="s", tz="UTC"),
        )
        for i in where[:keep]
    )
    return GapReport(
        count=int(where.size),
        missing_bars=int((sizes // interval.seconds - 1).sum()),
        largest_seconds=int(sizes.max()),
        first=first,
    )


def frame_from_arrays(open_time: IntArray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A candle frame indexed by open time (UTC) from Unix seconds and OHLCV columns."""
    index = pd.DatetimeIndex(pd.to_datetime(open_time, unit="s", utc=True), name="open_time")
    return pd.DataFrame({name: columns[name] for name in OHLCV}, index=index)


def _seconds(index: pd.DatetimeIndex) -> IntArray:
    values: IntArray = index.as_unit("s").asi8.astype(np.int64)
    return values


def resample_ohlcv(frame: pd.DataFrame, source: Interval, target: Interval) -> pd.DataFrame:
    """Aggregate sorted candles to a coarser interval: first, max, min, last, sum.

    Adds ``bars`` (candles aggregated) and ``expected_bars`` so that incomplete
    bars stay visible. Bins with no candle at all are absent (see :func:`mark_gaps`).
    """
    if target.seconds % source.seconds:
        raise ValueError(f"cannot resample {source} candles to {target}: not a multiple")
    if target.seconds == source.seconds or frame.empty:
        out = frame[OHLCV].copy()
        out["bars"] = 1
        out["expected_bars"] = 1
        return out
    times = _seconds(frame.index)  # type: ignore[arg-type]
    bins = (
        times - target.anchor_seconds
    ) // target.seconds * target.seconds + target.anchor_seconds
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    ends = np.r_[starts[1:], times.size] - 1
    values = {name: frame[name].to_numpy(dtype=np.float64) for name in OHLCV}
    columns = {
        "open": values["open"][starts],
        "high": np.maximum.reduceat(values["high"], starts),
        "low": np.minimum.reduceat(values["low"], starts),
        "close": values["close"][ends],
        "volume": np.add.reduceat(values["volume"], starts),
    }
    out = frame_from_arrays(bins[starts], columns)
    out["bars"] = (ends - starts + 1).astype(np.int64)
    out["expected_bars"] = target.seconds // source.seconds
    return out


def mark_gaps(frame: pd.DataFrame, interval: Interval) -> pd.DataFrame:
    """Reindex onto the full grid; missing bars become NaN rows with ``missing=True``."""
    if frame.empty:
        out = frame.copy()
        out["missing"] = pd.Series(dtype=bool)
        return out
    grid = pd.date_range(
        frame.index[0], frame.index[-1], freq=f"{interval.seconds}s", name="open_time"
    )
    out = frame.reindex(grid)
    out["missing"] = out["close"].isna()
    return out
