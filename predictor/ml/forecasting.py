"""Every window's forecast, its target time, split label and — where the candles exist — truth.

A *row* is one (anchor, market, step): the forecast made at the close of the
anchor bar for bar ``anchor + step · horizon`` (``range`` and ``updown`` have
one step whose target is the end of the horizon). Rows come out of
:func:`forecast_windows` as columns (numpy arrays), anchors in time order, so a
caller stores them in bulk without touching a row object.

Unlike the original tool, the last windows are kept: a window whose target lies
past the last candle is a *future* point, the forecast people actually want.

Split labels: ``train`` / ``validation`` / ``test`` inside that part's anchor
span in the bundle's split; ``production`` after the training data's last part
(a live forecast the model never saw the answer to); ``gap`` outside every part
otherwise (purge gaps between parts, anchors before the training data); and
``future`` for a row whose target is past its market's last candle.

Gaps: a window (with its features' look-back) that reads more than the
session's ``max_fill`` bars the grid filled in is not forecast at all, so no
stored row rests on invented inputs; a stored forecast whose target reads more
than ``max_fill`` filled bars of its market keeps ``actual`` empty (NaN), so it
is never scored. The evaluation applies the whole rule (window and target
together) again from the candles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.arrays import (
    DEFAULT_SYMBOL,
    IndexArray,
    MarketArray,
    align_markets,
    filled_by_market,
    filled_reads,
    filled_rows,
    finite_windows,
    unix_seconds,
)
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.report import EvaluationInputs
from predictor.ml.features import build_features, feature_lookback
from predictor.ml.intervals import parse_interval
from predictor.ml.targets import make_targets
from predictor.ml.training import TrainedBundle, predict_anchors, sample_reach

F64 = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
PARTS: tuple[str, ...] = ("train", "validation", "test")
PRODUCTION, GAP, FUTURE = "production", "gap", "future"
WIDE_TARGETS = frozenset({"range", "updown"})  # three values per market, one step
Frames = pd.DataFrame | Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class Forecasts:
    """Column arrays, one entry per row; times are unix seconds (UTC)."""

    markets: tuple[str, ...]
    interval_seconds: int
    market: IndexArray  # index into ``markets``
    anchor: IndexArray  # open time of the window's last candle
    target: IndexArray  # open time of the forecast candle (end of the horizon)
    step: IndexArray  # 1 … output_size
    horizon: IndexArray  # bars from anchor to target
    split: StrArray
    predicted: F64  # target units; updown: the likeliest class (0 sell, 1 hold, 2 buy)
    values: F64 | None  # [rows, 3] for range (rise, decline, end %) and updown (probabilities)
    actual: F64  # NaN until the target candle exists
    actual_values: F64 | None  # [rows, 3] for range; None otherwise
    last_candle: IndexArray  # per market: open time of its last candle

    def __len__(self) -> int:
        return int(self.anchor.shape[0])

    @property
    def issued(self) -> IndexArray:
        """When each forecast is known: the anchor bar's close."""
        return self.anchor + self.interval_seconds

    @property
    def n_windows(self) -> int:
        return int(np.unique(self.anchor).shape[0])

    @property
    def n_future(self) -> int:
        return int(np.count_nonzero(self.split == FUTURE))

    def select(self, keep: npt.NDArray[np.bool_]) -> Forecasts:
        """The rows where ``keep`` is True."""
        return replace(
            self,
            market=self.market[keep],
            anchor=self.anchor[keep],
            target=self.target[keep],
            step=self.step[keep],
            horizon=self.horizon[keep],
            split=self.split[keep],
            predicted=self.predicted[keep],
            values=None if self.values is None else self.values[keep],
            actual=self.actual[keep],
            actual_values=None if self.actual_values is None else self.actual_values[keep],
        )

    def split_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.split, return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


def _ordered(
    frames: Frames, config: TrainConfig, channels: tuple[str, ...] = ()
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """The frames in the model's market order, as the model was trained on them.

    Training passes a single market as a bare frame (channels ``market:<feature>``);
    a one-market mapping is unwrapped the same way so the channel names match.
    """
    if isinstance(frames, pd.DataFrame):
        return frames
    if len(frames) == 1 and channels and all(c.startswith(f"{DEFAULT_SYMBOL}:") for c in channels):
        return next(iter(frames.values()))
    if config.markets:
        missing = [m for m in config.markets if m not in frames]
        if missing:
            raise ValueError(
                f"markets: the model needs {list(config.markets)}, data lacks {missing}"
            )
        return {m: frames[m] for m in config.markets}
    return dict(frames)


def _last_rows(market: MarketArray) -> IndexArray:
    """Per market, the row of its last real (not gap-filled) candle; -1 if none."""
    seen = market.observed
    last = seen.shape[0] - 1 - np.argmax(seen[::-1], axis=0)
    return np.where(seen.any(axis=0), last, -1).astype(np.int64)


def _outputs(config: TrainConfig) -> tuple[int, int]:
    """(values per market, steps): (3, 1) for range/updown, else (1, output_size)."""
    return (3, 1) if config.target in WIDE_TARGETS else (1, config.output_size)


def _part_spans(split: Mapping[str, object]) -> list[tuple[str, int, int]]:
    spans = []
    for name in PARTS:
        part = split.get(name)
        if not isinstance(part, Mapping) or not part.get("samples"):
            continue
        first, last = part.get("first_time"), part.get("last_time")
        if isinstance(first, str) and isinstance(last, str):
            spans.append((name, _seconds(first), _seconds(last)))
    return spans


def _seconds(when: str | pd.Timestamp) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000_000)


def split_labels(anchors: IndexArray, split: Mapping[str, object]) -> StrArray:
    """Each anchor's part by the bundle's split (``Split.to_dict()``), vectorised."""
    labels = np.full(anchors.shape, GAP, dtype="<U10")
    spans = _part_spans(split)
    for name, first, last in spans:
        labels[(anchors >= first) & (anchors <= last)] = name
    if spans:
        labels[anchors > max(last for _, _, last in spans)] = PRODUCTION
    return labels


def _target_matrix(market: MarketArray, config: TrainConfig) -> F64:
    """Realised targets ``[T, markets, K]``, NaN where a market's own candles end too soon."""
    targets = make_targets(
        market, config.target, config.effective_horizon, config.output_size, config.up, config.down
    )
    values = targets.values.astype(np.float64)
    h = config.effective_horizon
    outputs = values.shape[2]
    # How far each output reads: step k of a stepped target reads k·h rows, range/updown h.
    reach = np.full(outputs, h) if config.target in WIDE_TARGETS else h * np.arange(1, outputs + 1)
    rows = np.arange(len(market))[:, None, None]
    # Gap filling extends a market past its last candle with flat bars: no truth there.
    beyond = rows + reach[None, None, :] > _last_rows(market)[None, :, None]
    values[beyond] = np.nan
    values[_target_reads_filled(market, reach, config.max_fill)] = np.nan
    return values


def _target_reads_filled(
    market: MarketArray, reach: npt.NDArray[np.int64], max_fill: int
) -> npt.NDArray[np.bool_]:
    """``[T, markets, K]``: output ``k`` at ``t`` reads more than ``max_fill`` of its market's
    filled bars in rows ``t .. t + reach[k]`` (the anchor close and the horizon)."""
    filled = filled_by_market(market)
    out = np.zeros((len(market), filled.shape[1], len(reach)), dtype=bool)
    for m in range(filled.shape[1]):
        for k, ahead in enumerate(reach.tolist()):
            out[:, m, k] = filled_reads(filled[:, m], 0, int(ahead)) > max_fill
    return out


def _predict(bundle: TrainedBundle, flat: npt.NDArray[np.float32], anchors: IndexArray) -> F64:
    out = predict_anchors(bundle, flat, anchors)
    if not np.isfinite(out).all():
        raise ValueError("the model produced non-finite forecasts (did its training diverge?)")
    return np.asarray(out, dtype=np.float64)


def forecast_windows(
    bundle: TrainedBundle,
    frames: Frames,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Forecasts:
    """Forecast every complete window whose anchor lies in ``[start, end]`` (inclusive).

    ``frames`` must reach back far enough for the first window's features
    (``window - 1`` plus the feature sets' look-back rows before ``start``).
    Prediction runs in large batches over zero-copy window views, one model call
    per chunk; realised values come from the same candles, so a forecast whose
    target candle is already stored has its truth beside it.
    """
    config = bundle.config
    market = align_markets(_ordered(frames, config, bundle.channel_names), config.interval)
    features = build_features(market, config.features)
    if features.channel_names != bundle.channel_names:
        raise ValueError("the data gives other feature channels than the model was trained on")
    flat = features.flat()
    times = unix_seconds(market.index)
    last_rows = _last_rows(market)
    ok = finite_windows(flat, config.window)
    before, _ = sample_reach(config, features.lookback)
    ok &= filled_reads(filled_rows(market), before, 0) <= config.max_fill
    # A window may not read rows filled in after any market's last candle.
    ok[int(last_rows.min()) + 1 :] = False
    if start is not None:
        ok &= times >= _seconds(start)
    if end is not None:
        ok &= times <= _seconds(end)
    anchors = np.flatnonzero(ok).astype(np.int64)
    n_markets = len(market.markets)
    per, steps = _outputs(config)
    predicted = _predict(bundle, flat, anchors).reshape(len(anchors), n_markets, per * steps)
    realised = _target_matrix(market, config)[anchors]
    return _rows(bundle, market, times, anchors, predicted, realised)


def _rows(
    bundle: TrainedBundle,
    market: MarketArray,
    times: IndexArray,
    anchors: IndexArray,
    predicted: F64,
    realised: F64,
) -> Forecasts:
    """Flatten ``[anchors, markets, outputs]`` into (anchor, market, step) rows."""
    config = bundle.config
    n_anchors, n_markets = len(anchors), len(market.markets)
    _, steps = _outputs(config)
    seconds = parse_interval(config.interval).seconds
    h = config.effective_horizon
    step = np.tile(np.arange(1, steps + 1, dtype=np.int64), n_anchors * n_markets)
    market_ix = np.tile(np.repeat(np.arange(n_markets, dtype=np.int64), steps), n_anchors)
    anchor = np.repeat(times[anchors], n_markets * steps)
    horizon = step * h
    target = anchor + horizon * seconds
    last_candle = times[_last_rows(market)]
    split = np.repeat(split_labels(times[anchors], bundle.split), n_markets * steps)
    split[target > last_candle[market_ix]] = FUTURE
    values = actual_values = None
    if config.target == "updown":
        values = predicted.reshape(-1, 3)
        point = np.argmax(values, axis=1).astype(np.float64)
        actual = realised.reshape(-1)
    elif config.target == "range":
        values, actual_values = predicted.reshape(-1, 3), realised.reshape(-1, 3)
        point, actual = values[:, 2].copy(), actual_values[:, 2].copy()
    else:
        point, actual = predicted.reshape(-1), realised.reshape(-1)
    return Forecasts(
        markets=market.markets,
        interval_seconds=seconds,
        market=market_ix,
        anchor=anchor,
        target=target,
        step=step,
        horizon=horizon,
        split=split,
        predicted=point,
        values=values,
        actual=actual,
        actual_values=actual_values,
        last_candle=last_candle,
    )


def history_rows(config: TrainConfig) -> int:
    """Candles a forecast needs before its first anchor: the window and the features' look-back."""
    return config.window - 1 + feature_lookback(config.features)


def realised_values(
    config: TrainConfig,
    frames: Frames,
    anchor: IndexArray,
    market: IndexArray,
    step: IndexArray,
) -> tuple[F64, F64 | None]:
    """Truth for stored rows (``actual``, and ``actual_values`` for range); NaN where unknown.

    ``frames`` must start at or before the earliest anchor (the target reads the
    anchor's close) and reach the target candles.
    """
    data = align_markets(_ordered(frames, config), config.interval)
    times = unix_seconds(data.index)
    seconds = parse_interval(config.interval).seconds
    offset = np.asarray(anchor, dtype=np.int64) - int(times[0])
    row = offset // seconds
    on_grid = (offset >= 0) & (offset % seconds == 0) & (row < len(times))
    row = np.where(on_grid, row, 0)
    matrix = _target_matrix(data, config)
    m = np.asarray(market, dtype=np.int64)
    if config.target in WIDE_TARGETS:
        picked = matrix[row, m, :]
        picked[~on_grid] = np.nan
        if config.target == "range":
            return picked[:, 2].copy(), picked
        return picked[:, 0].copy(), None
    actual = matrix[row, m, np.asarray(step, dtype=np.int64) - 1]
    actual[~on_grid] = np.nan
    return actual, None


# --- From stored forecasts to evaluation inputs --------------------------------------------


def forecast_return(kind: str, predicted: F64, base_close: F64, values: F64 | None = None) -> F64:
    """A stored forecast as a return over its horizon (``updown`` has none: refused)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "price":
            return predicted / base_close - 1.0
        if kind == "return":
            return predicted.copy()
        if kind == "logreturn":
            return np.expm1(predicted)
        if kind == "range":
            end = values[:, 2] if values is not None else predicted
            return end / 100.0
    raise ValueError(f"target {kind!r} forecasts no return")


def evaluation_inputs(
    market: MarketArray,
    column: int,
    anchors: IndexArray,
    forecast: F64,
    *,
    horizon: int,
    stop: int | None = None,
) -> EvaluationInputs:
    """Consecutive bars from the first anchor to ``horizon + 1`` bars past the last.

    ``anchors`` (unix seconds) and their ``forecast`` returns go onto the bar grid
    (NaN on bars without one); the bars after the last anchor let the report score
    the last forecasts and close their trades. ``stop`` (unix seconds) cuts the bars
    before it, so a validation span never reaches the test span it must precede.
    """
    times = unix_seconds(market.index)
    seconds = int(times[1] - times[0]) if len(times) > 1 else 1
    rows = (np.asarray(anchors, dtype=np.int64) - int(times[0])) // seconds
    if not len(rows) or rows.min() < 0 or rows.max() >= len(times):
        raise ValueError("the forecasts lie outside the candles given")
    first, last = int(rows.min()), min(int(rows.max()) + horizon + 1, len(times) - 1)
    if stop is not None:
        last = min(last, int(np.searchsorted(times, stop)) - 1)
    keep = rows <= last
    rows, forecast = rows[keep], np.asarray(forecast, dtype=np.float64)[keep]
    close = market.field("close")[first : last + 1, column].astype(np.float64)
    predicted = np.full(last + 1 - first, np.nan)
    predicted[rows - first] = close[rows - first] * (1.0 + forecast)
    return EvaluationInputs(
        times=times[first : last + 1],
        open=market.field("open")[first : last + 1, column].astype(np.float64),
        close=close,
        predicted_price=predicted,
        horizon=horizon,
        bar_seconds=seconds,
        real=np.asarray(market.observed[first : last + 1, column], dtype=bool),
    )
