"""Candles on one time grid as float32 arrays, and windows over them as views.

A sample is identified by its *anchor*: the index ``t`` of the last step of its
input window, so the window covers rows ``t - W + 1 .. t`` and every label
starts after ``t``. Windows are never materialised: :func:`window_view` is a
zero-copy view and :class:`WindowDataset` gathers one batch at a time, so a year
of minute data (≈525k windows of 60×5) costs the base array plus one batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.candles import OHLCV_FIELDS
from predictor.ml.candles import unix_seconds as unix_seconds  # moved: Keras-free there
from predictor.ml.intervals import Interval, infer_interval, parse_interval

Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.int64]

DEFAULT_SYMBOL = "market"


@dataclass(frozen=True)
class MarketArray:
    """Several markets' OHLCV on one grid: ``values[t, market, field]``.

    ``observed[t, m]`` is False where market ``m`` had no candle at ``t``. Gaps
    inside a market's history hold a flat candle at the previous close with zero
    volume; rows before a market's first candle are NaN so that no sample can use them.
    """

    values: Float32Array
    observed: BoolArray
    index: pd.DatetimeIndex
    markets: tuple[str, ...]
    fields: tuple[str, ...] = OHLCV_FIELDS

    def __post_init__(self) -> None:
        t, m, f = self.values.shape
        if self.observed.shape != (t, m):
            raise ValueError(f"observed has shape {self.observed.shape}, expected {(t, m)}")
        if len(self.index) != t or len(self.markets) != m or len(self.fields) != f:
            raise ValueError("index, markets and fields must match the values' shape")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def field(self, name: str) -> Float32Array:
        """One field for all markets, ``[T, M]`` (a view)."""
        return self.values[:, :, self.fields.index(name)]

    def truncate(self, stop: int) -> MarketArray:
        """The first ``stop`` rows: what the world looked like at row ``stop - 1``."""
        return MarketArray(
            self.values[:stop], self.observed[:stop], self.index[:stop], self.markets, self.fields
        )


def _as_mapping(frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if isinstance(frames, pd.DataFrame):
        return {DEFAULT_SYMBOL: frames}
    if not frames:
        raise ValueError("no markets given")
    return dict(frames)


def _check_frame(symbol: str, frame: pd.DataFrame) -> None:
    missing = [c for c in OHLCV_FIELDS if c not in frame.columns]
    if missing:
        raise ValueError(f"market {symbol}: missing columns {missing}")
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError(f"market {symbol}: index must be a tz-aware (UTC) DatetimeIndex")
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise ValueError(f"market {symbol}: index must be strictly increasing")


def align_markets(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame],
    interval: Interval | str | None = None,
) -> MarketArray:
    """Put one frame or ``{symbol: frame}`` on one regular UTC grid as float32.

    The grid runs from the earliest to the latest candle of any market. A missing
    candle becomes a flat bar at the last close with zero volume (not a repeat of
    the previous full candle, which would invent volume); ``observed`` records it.
    """
    markets = _as_mapping(frames)
    for symbol, frame in markets.items():
        _check_frame(symbol, frame)
    if isinstance(interval, str):
        interval = parse_interval(interval)
    stamps = [pd.DatetimeIndex(f.index).tz_convert("UTC") for f in markets.values()]
    if interval is None:
        seconds = np.concatenate([unix_seconds(s) for s in stamps if len(s)])
        interval = infer_interval(seconds)
    start = min(s[0] for s in stamps if len(s))
    end = max(s[-1] for s in stamps if len(s))
    grid = pd.date_range(start, end, freq=pd.Timedelta(seconds=interval.seconds), tz="UTC")
    values = np.empty((len(grid), len(markets), len(OHLCV_FIELDS)), dtype=np.float32)
    observed = np.empty((len(grid), len(markets)), dtype=bool)
    for m, (frame, utc) in enumerate(zip(markets.values(), stamps, strict=True)):
        values[:, m, :], observed[:, m] = _fill_gaps(frame, utc, grid)
    return MarketArray(values, observed, grid, tuple(markets))


def _fill_gaps(
    frame: pd.DataFrame, utc: pd.DatetimeIndex, grid: pd.DatetimeIndex
) -> tuple[Float32Array, BoolArray]:
    if utc.equals(grid):  # every bar there (a single forecast's window, usually): no reindex
        values = frame.loc[:, list(OHLCV_FIELDS)].to_numpy(dtype=np.float32)
        if np.isfinite(values).all():  # NaN rows are gaps too: the general path fills them
            return values, np.ones(len(grid), dtype=bool)
    data = frame.loc[:, list(OHLCV_FIELDS)].astype("float64").set_axis(utc)
    if not utc.isin(grid).all():
        raise ValueError("candle times are off the interval's grid")
    data = data.reindex(grid)
    observed = data["close"].notna().to_numpy()
    close = data["close"].ffill()
    for col in ("open", "high", "low"):
        data[col] = data[col].fillna(close)
    data["close"] = close
    # Zero volume in gaps, NaN before the first candle so windows there stay invalid.
    data["volume"] = data["volume"].fillna(0.0).where(close.notna())
    return data.to_numpy(dtype=np.float32), observed


def window_view(array: npt.NDArray[Any], window: int) -> npt.NDArray[Any]:
    """All windows of ``window`` rows as a zero-copy view ``[T - W + 1, W, ...]``.

    View row ``i`` is the window whose anchor is ``i + W - 1``.
    """
    if window < 1 or window > array.shape[0]:
        raise ValueError(f"window {window} does not fit {array.shape[0]} rows")
    view = np.lib.stride_tricks.sliding_window_view(array, window, axis=0)
    return np.moveaxis(view, -1, 1)


def gather_windows(view: npt.NDArray[Any], anchors: IndexArray, window: int) -> npt.NDArray[Any]:
    """Copy out the windows ending at ``anchors`` (one batch, never all of them)."""
    return np.asarray(view[anchors - (window - 1)])


def finite_windows(values: npt.NDArray[Any], window: int) -> BoolArray:
    """``ok[t]``: every value in the window ending at ``t`` is finite (False for t < W-1).

    A cumulative count of bad rows answers each window in O(1), so no per-window loop.
    """
    bad_row = ~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
    bad_before = np.concatenate([[0], np.cumsum(bad_row, dtype=np.int64)])
    ok = np.zeros(values.shape[0], dtype=bool)
    if values.shape[0] >= window:
        ends = np.arange(window - 1, values.shape[0])
        ok[ends] = (bad_before[ends + 1] - bad_before[ends + 1 - window]) == 0
    return ok


def filled_by_market(market: MarketArray) -> BoolArray:
    """``[T, markets]``: the bar of that market at that row was invented by the grid.

    A market's gap (and the flat bars after its last candle, up to the grid's end)
    is filled; rows before a market's first candle are not: they are NaN, and
    :func:`finite_windows` already keeps every sample off them.
    """
    began = np.isfinite(market.field("close"))
    return np.asarray(began & ~market.observed)


def filled_rows(market: MarketArray) -> BoolArray:
    """``filled[t]``: row ``t`` holds a bar the grid invented in at least one market."""
    return np.asarray(filled_by_market(market).any(axis=1))


def filled_reads(filled: BoolArray, before: int, after: int) -> IndexArray:
    """``n[t]``: filled rows among ``t - before .. t + after`` (rows off the ends count as none).

    A sample anchored at ``t`` reads ``before = W - 1 + look-back`` rows back (its
    window and the features' history) and ``after = reach`` rows ahead (its label).
    One cumulative sum answers every anchor, so no loop per window.
    """
    if before < 0 or after < 0:
        raise ValueError("before and after must be >= 0")
    n = filled.shape[0]
    count = np.concatenate([[0], np.cumsum(filled, dtype=np.int64)])
    rows = np.arange(n)
    low = np.clip(rows - before, 0, n)
    high = np.clip(rows + after + 1, 0, n)
    return np.asarray(count[high] - count[low], dtype=np.int64)


def shuffle_order(n: int, buffer: int, rng: np.random.Generator) -> IndexArray:
    """A permutation of ``range(n)`` that mimics a ``tf.data`` shuffle buffer of ``buffer``.

    Sorting positions jittered by ``uniform(0, buffer)`` moves each sample at most
    about ``buffer`` places, like a streaming buffer of that size; ``buffer >= n``
    is a full shuffle and ``buffer <= 1`` keeps time order (as the original tool's
    ``-F``). One vectorised argsort, no per-sample loop.
    """
    if buffer <= 1:
        return np.arange(n, dtype=np.int64)
    if buffer >= n:
        return rng.permutation(n).astype(np.int64)
    keys = np.arange(n, dtype=np.float64) + rng.uniform(0.0, float(buffer), size=n)
    return np.argsort(keys, kind="stable").astype(np.int64)


class WindowDataset(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of windows gathered from views, for ``model.fit`` on any Keras backend.

    ``features`` is ``[T, C]`` (already scaled, or raw when ``window_scale``);
    ``targets`` is ``[T, K]`` aligned on anchors, or None for prediction.
    With ``window_scale`` each window is divided by its first row, minus 1 (the
    original tool's per-window scaling); with ``scale_targets`` too, the targets
    (prices) are divided by the first value of channel ``price_reference``.
    """

    def __init__(
        self,
        features: Float32Array,
        targets: npt.NDArray[Any] | None,
        anchors: IndexArray,
        window: int,
        batch_size: int,
        *,
        shuffle_buffer: int = 0,
        seed: int = 0,
        window_scale: bool = False,
        scale_targets: bool = False,
        price_reference: int = 0,
        fill_last: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(anchors) == 0:
            raise ValueError("no samples")
        if anchors.min() < window - 1 or anchors.max() >= features.shape[0]:
            raise ValueError("anchors outside the data")
        self.features = features
        self.targets = targets
        self.anchors = np.asarray(anchors, dtype=np.int64)
        self.window = window
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.window_scale = window_scale
        self.scale_targets = scale_targets
        self.price_reference = price_reference
        self.fill_last = fill_last
        self._view = window_view(features, window)
        self._rng = np.random.default_rng(seed)
        self._order = self._new_order()

    def _new_order(self) -> IndexArray:
        order = shuffle_order(len(self.anchors), self.shuffle_buffer, self._rng)
        short = -len(order) % self.batch_size
        if self.fill_last and short and len(order) > self.batch_size:
            # Top the last batch up with the epoch's first samples: every batch then has
            # one shape, so a compiled (XLA) train step is traced once, not twice.
            order = np.concatenate([order, order[:short]])
        return order

    def __len__(self) -> int:
        return math.ceil(len(self._order) / self.batch_size)

    def batch_anchors(self, index: int) -> IndexArray:
        picks = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.anchors[picks]

    def __getitem__(self, index: int) -> Any:
        anchors = self.batch_anchors(index)
        x = gather_windows(self._view, anchors, self.window)
        y = None if self.targets is None else np.asarray(self.targets[anchors])
        if self.window_scale:
            first = x[:, :1, :]
            if y is not None and self.scale_targets:
                y = y / first[:, 0, self.price_reference : self.price_reference + 1] - 1.0
            x = x / first - 1.0
        if y is None:
            return (x,)
        return x, y

    def on_epoch_end(self) -> None:
        self._order = self._new_order()
