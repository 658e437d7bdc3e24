"""Feature sets, chosen by name, computed for all markets at once.

Every feature at row ``t`` uses rows ``<= t`` only (shifts look back, rolling
sums are trailing), so a sample's inputs never see its own future. Rows without
enough history are NaN; :func:`predictor.ml.arrays.finite_windows` drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.arrays import Float32Array, MarketArray, unix_seconds
from predictor.ml.config import FEATURE_SETS

F64 = npt.NDArray[np.float64]

TREND_WINDOWS: tuple[int, ...] = (5, 30, 240, 720)
DELTA_SCALES: tuple[int, ...] = (1, 5, 15, 60, 240, 720)
DELTA_LAGS = 3
VOLUME_WINDOW = 60
VOLUME_RATIOS: tuple[tuple[int, int], ...] = ((5, 60), (5, 720))
# FollowUpward's "distance to high and low" of past windows (docs/recipes.md).
CHANCE_WINDOWS: tuple[int, ...] = (15, 60, 240, 720)
# Coarser candles ending now, their predecessors (lags) and their share of recent volume.
MULTI_SCALES: tuple[int, ...] = (5, 15, 60, 240)
MULTI_LAGS = 3
MULTI_VOLUME_CONTEXT = 4  # volume share: this bar's volume over the last 4 such bars'
VOLUME_Z_WINDOWS: tuple[int, ...] = (60, 1440)
FLOW_WINDOWS: tuple[int, ...] = (15, 60, 240)
VOLUME_TREND_WINDOW = 60
MARKET_WINDOWS: tuple[int, ...] = (15, 60, 240)
BETA_WINDOW = 240


@dataclass(frozen=True)
class FeatureMatrix:
    """``values[t, market, feature]`` (float32) with one name per feature."""

    values: Float32Array
    names: tuple[str, ...]
    markets: tuple[str, ...]
    index: pd.DatetimeIndex
    lookback: int

    def __post_init__(self) -> None:
        if self.values.shape[1:] != (len(self.markets), len(self.names)):
            raise ValueError("feature values do not match markets × names")

    def flat(self) -> Float32Array:
        """``[T, markets * features]``, market-major: the network's channels."""
        return self.values.reshape(self.values.shape[0], -1)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(f"{m}:{n}" for m in self.markets for n in self.names)


def _shift(x: F64, k: int) -> F64:
    """``out[t] = x[t - k]``; NaN where that is before the data."""
    out = np.full_like(x, np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def rolling_sum(x: F64, n: int) -> F64:
    """Trailing sum over ``n`` rows per column, NaN until ``n`` rows exist.

    pandas' rolling sum is a compensated running sum: O(T) like a cumulative sum,
    but without the cancellation a raw ``cumsum[t] - cumsum[t-n]`` suffers after a
    year of minutes, and still a pure function of rows ``<= t``.
    """
    return np.asarray(pd.DataFrame(x).rolling(n, min_periods=n).sum().to_numpy(), dtype=np.float64)


def _rolling(x: F64, n: int, how: str) -> F64:
    """Trailing max or min over ``n`` rows per column, NaN until ``n`` rows exist."""
    roll = pd.DataFrame(x).rolling(n, min_periods=n)
    return np.asarray((roll.max() if how == "max" else roll.min()).to_numpy(), dtype=np.float64)


def _divide(num: F64, den: F64, neutral: float) -> F64:
    """``num / den``; ``neutral`` where ``den`` is 0, NaN where either is."""
    out = np.full_like(num, neutral)
    np.divide(num, den, out=out, where=den != 0)
    return np.where(np.isnan(num) | np.isnan(den), np.nan, out)


def _safe_ratio(num: F64, den: F64) -> F64:
    # A market with no volume at all in the window has no "relative" volume: neutral 1.
    out = np.ones_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return np.where(np.isnan(num) | np.isnan(den), np.nan, out)


def _log_close(data: MarketArray) -> F64:
    """Log close relative to each market's first close: small numbers for stable sums."""
    log_c = np.log(data.field("close").astype(np.float64))
    first = np.argmax(np.isfinite(log_c), axis=0)
    ref = log_c[first, np.arange(log_c.shape[1])]
    return np.asarray(log_c - ref, dtype=np.float64)


def linear_trend(y: F64, n: int) -> tuple[F64, F64, F64]:
    """Rolling least-squares line over the last ``n`` rows: slope, deviation, residual std.

    Slope is per row. Deviation is the last value minus the line's value there.
    With local x = 0..n-1 all three follow from trailing sums of y, i·y and y²,
    so the whole series costs O(T) instead of one regression per row.
    """
    if n < 2:
        raise ValueError("a trend window needs at least 2 rows")
    i = np.arange(y.shape[0], dtype=np.float64)[:, None]
    s_y = rolling_sum(y, n)
    s_iy = rolling_sum(i * y, n)
    s_yy = rolling_sum(y * y, n)
    start = i - (n - 1)
    s_ky = s_iy - start * s_y
    k_mean = (n - 1) / 2.0
    s_kk = n * (n * n - 1) / 12.0
    slope = (s_ky - k_mean * s_y) / s_kk
    mean = s_y / n
    deviation = y - (mean + slope * k_mean)
    spread = np.maximum(s_yy - s_y * mean - slope * slope * s_kk, 0.0)
    return slope, deviation, np.sqrt(spread / n)


def _close(data: MarketArray) -> tuple[list[F64], list[str]]:
    return [data.field("close").astype(np.float64)], ["close"]


def _ohlcv(data: MarketArray) -> tuple[list[F64], list[str]]:
    return [data.field(f).astype(np.float64) for f in data.fields], list(data.fields)


def _returns(data: MarketArray) -> tuple[list[F64], list[str]]:
    o, h, low, c, v = (data.field(f).astype(np.float64) for f in data.fields)
    log_c = np.log(c)
    mean_v = rolling_sum(v, VOLUME_WINDOW) / VOLUME_WINDOW
    cols = [log_c - _shift(log_c, 1), (h - low) / c, (c - o) / o, _safe_ratio(v, mean_v)]
    return cols, ["logret", "range_hl", "body", "rel_volume"]


def _trend(data: MarketArray) -> tuple[list[F64], list[str]]:
    y = _log_close(data)
    cols: list[F64] = []
    names: list[str] = []
    for n in TREND_WINDOWS:
        slope, deviation, spread = linear_trend(y, n)
        cols += [slope, deviation, spread]
        names += [f"slope_{n}", f"dev_{n}", f"resid_{n}"]
    v = data.field("volume").astype(np.float64)
    for short, long in VOLUME_RATIOS:
        short_mean = rolling_sum(v, short) / short
        cols.append(_safe_ratio(short_mean, rolling_sum(v, long) / long))
        names.append(f"vol_ratio_{short}_{long}")
    for scale in DELTA_SCALES:
        step = y - _shift(y, scale)
        for lag in range(DELTA_LAGS):
            cols.append(_shift(step, lag * scale))
            names.append(f"delta_{scale}_lag{lag}")
    return cols, names


def _time(data: MarketArray) -> tuple[list[F64], list[str]]:
    seconds = unix_seconds(data.index)
    day = 2 * np.pi * (seconds % 86400) / 86400.0
    # 1970-01-01 was a Thursday: shift so Monday is 0.
    week = 2 * np.pi * (((seconds // 86400) + 3) % 7) / 7.0
    shape = (len(data), len(data.markets))
    cols = [
        np.broadcast_to(f(a)[:, None], shape).astype(np.float64)
        for a in (day, week)
        for f in (np.sin, np.cos)
    ]
    return cols, ["tod_sin", "tod_cos", "dow_sin", "dow_cos"]


def _cross(data: MarketArray) -> tuple[list[F64], list[str]]:
    if len(data.markets) < 2:
        raise ValueError("feature set 'cross' needs at least two markets")
    log_c = np.log(data.field("close").astype(np.float64))
    ret = log_c - _shift(log_c, 1)
    return [ret - _market_mean(ret)], ["cross_ret"]


def _chance(data: MarketArray) -> tuple[list[F64], list[str]]:
    """Room above (chance) and below (risk) the close within each past window, and its position."""
    h, low, c = (data.field(f).astype(np.float64) for f in ("high", "low", "close"))
    cols: list[F64] = []
    names: list[str] = []
    for n in CHANCE_WINDOWS:
        top, bottom = _rolling(h, n, "max"), _rolling(low, n, "min")
        cols += [np.log(top / c), np.log(c / bottom), _divide(c - bottom, top - bottom, 0.5)]
        names += [f"chance_{n}", f"risk_{n}", f"position_{n}"]
    return cols, names


def _multiscale(data: MarketArray) -> tuple[list[F64], list[str]]:
    """FollowUpward's aggregation: the candle of the last ``s`` bars and the ones before it."""
    o, h, low, c, v = (data.field(f).astype(np.float64) for f in data.fields)
    log_c = np.log(c)
    cols: list[F64] = []
    names: list[str] = []
    for s in MULTI_SCALES:
        top, bottom = _rolling(h, s, "max"), _rolling(low, s, "min")
        first_open = _shift(o, s - 1)
        bar = {
            "ret": log_c - _shift(log_c, s),
            "range": np.log(top / bottom),
            "body": _divide(c - first_open, top - bottom, 0.0),
        }
        for lag in range(MULTI_LAGS):
            for kind, values in bar.items():
                cols.append(_shift(values, lag * s))
                names.append(f"ms{s}_{kind}_lag{lag}")
        volume = rolling_sum(v, s)
        context = rolling_sum(v, s * MULTI_VOLUME_CONTEXT)
        cols.append(_divide(volume, context, 1.0 / MULTI_VOLUME_CONTEXT))
        names.append(f"ms{s}_vshare")
    return cols, names


def _volume(data: MarketArray) -> tuple[list[F64], list[str]]:
    """Log-volume z-scores, volume-weighted and signed-volume returns, the log-volume trend."""
    c, v = data.field("close").astype(np.float64), data.field("volume").astype(np.float64)
    log_v = np.log1p(v)
    cols: list[F64] = []
    names: list[str] = []
    for n in VOLUME_Z_WINDOWS:
        mean = rolling_sum(log_v, n) / n
        var = np.maximum(rolling_sum(log_v * log_v, n) / n - mean * mean, 0.0)
        cols.append(_divide(log_v - mean, np.sqrt(var), 0.0))
        names.append(f"logvol_z_{n}")
    ret = np.log(c) - _shift(np.log(c), 1)
    for n in FLOW_WINDOWS:
        total = rolling_sum(v, n)
        cols.append(_divide(rolling_sum(ret * v, n), total, 0.0))
        cols.append(_divide(rolling_sum(np.sign(ret) * v, n), total, 0.0))
        names += [f"vwret_{n}", f"flow_{n}"]
    cols.append(linear_trend(log_v, VOLUME_TREND_WINDOW)[0])
    names.append(f"logvol_slope_{VOLUME_TREND_WINDOW}")
    return cols, names


def _market_mean(ret: F64) -> F64:
    """Mean one-bar return over the markets that have one, per row, as a column."""
    counts = np.isfinite(ret).sum(axis=1, keepdims=True)
    total = np.nansum(ret, axis=1, keepdims=True)
    mean = np.divide(total, counts, out=np.full_like(total, np.nan), where=counts > 0)
    return np.asarray(mean, dtype=np.float64)


def _market(data: MarketArray) -> tuple[list[F64], list[str]]:
    """The market mean's return over several windows, each coin against it, beta and correlation."""
    if len(data.markets) < 2:
        raise ValueError("feature set 'market' needs at least two markets")
    log_c = np.log(data.field("close").astype(np.float64))
    ret = log_c - _shift(log_c, 1)
    mean = np.broadcast_to(_market_mean(ret), ret.shape).copy()
    cols: list[F64] = []
    names: list[str] = []
    for n in MARKET_WINDOWS:
        market_n = rolling_sum(mean, n)
        cols += [market_n, rolling_sum(ret, n) - market_n]
        names += [f"mkt_ret_{n}", f"rel_ret_{n}"]
    n = BETA_WINDOW
    s_r, s_m = rolling_sum(ret, n), rolling_sum(mean, n)
    cov = rolling_sum(ret * mean, n) / n - s_r * s_m / (n * n)
    var_m = np.maximum(rolling_sum(mean * mean, n) / n - (s_m / n) ** 2, 0.0)
    var_r = np.maximum(rolling_sum(ret * ret, n) / n - (s_r / n) ** 2, 0.0)
    cols += [_divide(cov, var_m, 0.0), _divide(cov, np.sqrt(var_r * var_m), 0.0)]
    names += [f"beta_{n}", f"corr_{n}"]
    return cols, names


_BUILDERS: dict[str, tuple[Callable[[MarketArray], tuple[list[F64], list[str]]], int]] = {
    "close": (_close, 0),
    "ohlcv": (_ohlcv, 0),
    "returns": (_returns, VOLUME_WINDOW),
    "trend": (_trend, max(max(TREND_WINDOWS), max(DELTA_SCALES) * DELTA_LAGS)),
    "time": (_time, 0),
    "cross": (_cross, 1),
    # These four declare their exact first finite row (a test holds them to it).
    "chance": (_chance, max(CHANCE_WINDOWS) - 1),
    "multiscale": (
        _multiscale,
        max(max(MULTI_SCALES) * MULTI_LAGS, max(MULTI_SCALES) * MULTI_VOLUME_CONTEXT - 1),
    ),
    "volume": (_volume, max(max(VOLUME_Z_WINDOWS) - 1, max(FLOW_WINDOWS), VOLUME_TREND_WINDOW - 1)),
    "market": (_market, max(max(MARKET_WINDOWS), BETA_WINDOW)),
}
if tuple(_BUILDERS) != FEATURE_SETS:  # the config's list of names must match the builders
    raise ImportError("predictor.ml.features and predictor.ml.config disagree on feature sets")


def build_features(data: MarketArray, sets: Sequence[str]) -> FeatureMatrix:
    """Compute the named feature sets for every market, in the order given."""
    if not sets:
        raise ValueError("features: give at least one feature set")
    unknown = [s for s in sets if s not in _BUILDERS]
    if unknown:
        raise ValueError(f"features: unknown set(s) {unknown}; choose from {list(FEATURE_SETS)}")
    if len(set(sets)) != len(sets):
        raise ValueError(f"features: duplicate set in {list(sets)}")
    cols: list[F64] = []
    names: list[str] = []
    # log(0) or 0/0 on a bad candle gives NaN (never inf), which drops that sample.
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in sets:
            c, n = _BUILDERS[name][0](data)
            cols += c
            names += n
        values = np.stack(cols, axis=-1).astype(np.float32)
    values[~np.isfinite(values)] = np.nan
    lookback = max(_BUILDERS[s][1] for s in sets)
    return FeatureMatrix(values, tuple(names), data.markets, data.index, lookback)


def feature_lookback(sets: Sequence[str]) -> int:
    """Rows of history the sets need before their first finite value."""
    return max(_BUILDERS[s][1] for s in sets)
