"""Labels aligned on anchors: ``values[t]`` is what follows the window ending at ``t``.

A label uses rows ``t + 1 .. t + reach`` only. Where those rows are past the end
of the data (or missing), the label is NaN: nothing is filled in, so the last
``reach`` anchors simply have no sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.ml.arrays import BoolArray, Float32Array, MarketArray
from predictor.ml.config import TARGET_KINDS, label_reach

F64 = npt.NDArray[np.float64]

REGRESSION_TARGETS: frozenset[str] = frozenset({"price", "return", "logreturn", "range"})
SELL, HOLD, BUY = 0, 1, 2
UPDOWN_CLASSES: tuple[str, ...] = ("sell", "hold", "buy")
RANGE_OUTPUTS: tuple[str, ...] = ("max_rise_pct", "max_decline_pct", "end_change_pct")


@dataclass(frozen=True)
class TargetArray:
    """``values[t, market, output]`` (float32, NaN where there is no label)."""

    values: Float32Array
    names: tuple[str, ...]
    kind: str
    reach: int
    markets: tuple[str, ...]

    @property
    def valid(self) -> BoolArray:
        """Anchors whose label is fully known."""
        flat = self.flat()
        return np.asarray(np.isfinite(flat).all(axis=1))

    def flat(self) -> Float32Array:
        """``[T, markets * outputs]``, market-major like the features."""
        return self.values.reshape(self.values.shape[0], -1)

    @property
    def width(self) -> int:
        return int(self.values.shape[1] * self.values.shape[2])


def _ahead(x: F64, k: int) -> F64:
    """``out[t] = x[t + k]``; NaN past the end."""
    out = np.full_like(x, np.nan)
    if k < x.shape[0]:
        out[: x.shape[0] - k] = x[k:]
    return out


def _stepped(close: F64, kind: str, horizon: int, output_size: int) -> tuple[list[F64], list[str]]:
    cols: list[F64] = []
    names: list[str] = []
    for j in range(1, output_size + 1):
        future = _ahead(close, j * horizon)
        if kind == "price":
            cols.append(future)
        elif kind == "return":
            cols.append(future / close - 1.0)
        else:
            cols.append(np.log(future / close))
        names.append(f"{kind}_t+{j * horizon}")
    return cols, names


def updown_labels(close: F64, horizon: int, up: float, down: float) -> F64:
    """Hysteresis classes: BUY if the price rises above ``+up`` before it falls below ``-down``
    within ``horizon`` rows, SELL for the mirror, else HOLD; NaN without a full horizon.

    The loop runs over the (small) horizon, each step vectorised over all anchors.
    """
    never = horizon + 1
    first_up = np.full(close.shape, never)
    first_down = np.full(close.shape, never)
    unknown = np.zeros(close.shape, dtype=bool)
    for k in range(1, horizon + 1):
        change = _ahead(close, k) / close - 1.0
        unknown |= ~np.isfinite(change)
        first_up = np.where((first_up == never) & (change > up), k, first_up)
        first_down = np.where((first_down == never) & (change < -down), k, first_down)
    labels = np.full(close.shape, float(HOLD))
    labels[first_up < first_down] = BUY
    labels[first_down < first_up] = SELL
    labels[unknown] = np.nan
    return labels


def range_targets(data: MarketArray, horizon: int) -> list[F64]:
    """Max rise %, max decline % (negative) and end change % over the next ``horizon`` candles,
    relative to the anchor's close, using the future candles' highs and lows."""
    close = data.field("close").astype(np.float64)
    high = data.field("high").astype(np.float64)
    low = data.field("low").astype(np.float64)
    top = np.full(close.shape, -np.inf)
    bottom = np.full(close.shape, np.inf)
    for k in range(1, horizon + 1):
        # fmax/fmin would skip NaN; max/min propagate it, so a missing row voids the label.
        top = np.maximum(top, _ahead(high, k))
        bottom = np.minimum(bottom, _ahead(low, k))
    end = _ahead(close, horizon)
    return [
        100.0 * (top / close - 1.0),
        100.0 * (bottom / close - 1.0),
        100.0 * (end / close - 1.0),
    ]


def make_targets(
    data: MarketArray,
    kind: str,
    horizon: int,
    output_size: int = 1,
    up: float = 0.01,
    down: float = 0.005,
) -> TargetArray:
    """Labels of ``kind`` for every anchor of every market."""
    if kind not in TARGET_KINDS:
        raise ValueError(f"target: unknown kind {kind!r}; choose from {list(TARGET_KINDS)}")
    if horizon < 1 or output_size < 1:
        raise ValueError("target: horizon and output_size must be at least 1")
    if kind in ("updown", "range") and output_size != 1:
        raise ValueError(f"target: {kind} has a fixed output; output_size must be 1")
    close = data.field("close").astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "updown":
            cols, names = [updown_labels(close, horizon, up, down)], ["updown"]
        elif kind == "range":
            cols, names = range_targets(data, horizon), list(RANGE_OUTPUTS)
        else:
            cols, names = _stepped(close, kind, horizon, output_size)
        values = np.stack(cols, axis=-1).astype(np.float32)
    values[~np.isfinite(values)] = np.nan
    reach = label_reach(kind, horizon, output_size)
    return TargetArray(values, tuple(names), kind, reach, data.markets)
