from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import align_markets
from predictor.ml.config import MULTI_MARKET_SETS
from predictor.ml.features import FEATURE_SETS, build_features, feature_lookback, linear_trend
from tests.ml.conftest import make_frame


@pytest.mark.parametrize(
    ("sets", "per_market"),
    [(("close",), 1), (("ohlcv",), 5), (("returns",), 4), (("time",), 4), (("close", "time"), 5)],
)
def test_feature_sets_have_one_column_per_name(
    frame: pd.DataFrame, sets: tuple[str, ...], per_market: int
) -> None:
    feats = build_features(align_markets(frame), sets)
    assert feats.values.shape == (400, 1, per_market)
    assert len(feats.names) == per_market
    assert feats.values.dtype == np.float32


def test_trend_set_is_finite_after_its_lookback(long_frame: pd.DataFrame) -> None:
    feats = build_features(align_markets(long_frame), ("trend",))
    assert feats.lookback == 2160
    assert np.isfinite(feats.values[feats.lookback :]).all()
    assert np.isnan(feats.values[:719, 0, feats.names.index("slope_720")]).all()


def test_rolling_trend_matches_a_least_squares_fit_per_window() -> None:
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(0, 0.01, 800))[:, None]
    slope, deviation, spread = linear_trend(y, 30)
    for t in (29, 100, 799):
        window = y[t - 29 : t + 1, 0]
        b, a = np.polyfit(np.arange(30), window, 1)
        assert slope[t, 0] == pytest.approx(b, rel=1e-7, abs=1e-12)
        assert deviation[t, 0] == pytest.approx(window[-1] - (a + b * 29), abs=1e-9)
        resid = window - (a + b * np.arange(30))
        assert spread[t, 0] == pytest.approx(np.sqrt(np.mean(resid**2)), rel=1e-6)
    assert np.isnan(slope[:29]).all()


def test_cross_feature_sums_to_zero_across_markets(two_markets: dict[str, pd.DataFrame]) -> None:
    feats = build_features(align_markets(two_markets), ("cross",))
    assert feats.values.shape == (400, 2, 1)
    np.testing.assert_allclose(feats.values[1:, :, 0].sum(axis=1), 0.0, atol=1e-6)


def test_cross_feature_refuses_a_single_market(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="two markets"):
        build_features(align_markets(frame), ("cross",))


def test_time_features_encode_hour_and_weekday_on_the_unit_circle(frame: pd.DataFrame) -> None:
    feats = build_features(align_markets(frame), ("time",))
    names = feats.names
    midnight_monday = 0  # 2024-01-01 00:00 UTC was a Monday
    assert feats.values[midnight_monday, 0, names.index("tod_cos")] == pytest.approx(1.0)
    assert feats.values[midnight_monday, 0, names.index("dow_cos")] == pytest.approx(1.0)
    six_am = 6
    assert feats.values[six_am, 0, names.index("tod_sin")] == pytest.approx(1.0)


def test_unknown_feature_set_is_rejected_by_name(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="features: unknown set"):
        build_features(align_markets(frame), ("close", "magic"))


def test_every_feature_set_is_causal_under_truncation(
    long_frame: pd.DataFrame, two_markets: dict[str, pd.DataFrame]
) -> None:
    """Features at row t computed on data cut after t equal those on the full data."""
    for data, sets in (
        (long_frame, tuple(s for s in FEATURE_SETS if s not in MULTI_MARKET_SETS)),
        (two_markets, ("cross", "market", "returns")),
    ):
        market = align_markets(data)
        full = build_features(market, sets).values
        for cut in (len(market) // 2, len(market) - 7):
            part = build_features(market.truncate(cut), sets).values
            np.testing.assert_array_equal(part, full[:cut])


NEW_SETS = ("chance", "multiscale", "volume", "market")


def _markets(n: int) -> dict[str, pd.DataFrame]:
    return {
        "BTCUSDT": make_frame(n, seed=11, freq="1min"),
        "ETHUSDT": make_frame(n, seed=12, freq="1min", price=10.0),
        "SOLUSDT": make_frame(n, seed=13, freq="1min", price=1.0, vol=0.02),
    }


@pytest.mark.parametrize("name", NEW_SETS)
def test_new_set_at_t_does_not_change_when_any_later_bar_changes(name: str) -> None:
    frames = _markets(2200)
    market = align_markets(frames)
    before = build_features(market, (name,)).values
    rng = np.random.default_rng(5)
    for t in (1500, 1800, 2198):
        changed = {}
        for symbol, frame in frames.items():
            later = frame.copy()
            tail = later.iloc[t + 1 :]
            scale = rng.lognormal(0.0, 1.0, (len(tail), 1))
            later.iloc[t + 1 :, :4] = tail.iloc[:, :4].to_numpy() * scale
            later.iloc[t + 1 :, 4] = rng.lognormal(8.0, 2.0, len(tail))
            changed[symbol] = later
        after = build_features(align_markets(changed), (name,)).values
        np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
        if t + 1 < len(after):
            assert not np.array_equal(after[t + 1 :], before[t + 1 :], equal_nan=True)


@pytest.mark.parametrize(
    ("name", "lookback"),
    [("chance", 719), ("multiscale", 959), ("volume", 1439), ("market", 240)],
)
def test_new_set_is_first_finite_exactly_at_its_lookback(name: str, lookback: int) -> None:
    feats = build_features(align_markets(_markets(2000)), (name,))
    assert feats.lookback == feature_lookback((name,)) == lookback
    finite_rows = np.isfinite(feats.values).all(axis=(1, 2))
    assert int(np.argmax(finite_rows)) == lookback
    assert finite_rows[lookback:].all()
    assert len(set(feats.names)) == len(feats.names) == feats.values.shape[2]


def test_chance_and_risk_are_the_distance_to_the_window_high_and_low() -> None:
    frame = make_frame(800, seed=4, freq="1min")
    feats = build_features(align_markets(frame), ("chance",))
    t, n = 700, 60
    past = frame.iloc[t - n + 1 : t + 1]
    close = frame["close"].iloc[t]
    row = dict(zip(feats.names, feats.values[t, 0], strict=True))
    assert row["chance_60"] == pytest.approx(np.log(past["high"].max() / close), rel=1e-5)
    assert row["risk_60"] == pytest.approx(np.log(close / past["low"].min()), rel=1e-5)
    low, high = past["low"].min(), past["high"].max()
    assert row["position_60"] == pytest.approx((close - low) / (high - low), rel=1e-5)


def test_multiscale_bar_matches_a_pandas_resample_of_the_last_bars() -> None:
    frame = make_frame(1200, seed=6, freq="1min")
    feats = build_features(align_markets(frame), ("multiscale",))
    row = dict(zip(feats.names, feats.values[1199, 0], strict=True))
    # The 15-bar candle ending at the last bar, and the one before it (lag 1).
    for lag in (0, 1):
        end = 1200 - 15 * lag
        bar = frame.iloc[end - 15 : end]
        top, bottom = bar["high"].max(), bar["low"].min()
        body = (bar["close"].iloc[-1] - bar["open"].iloc[0]) / (top - bottom)
        assert row[f"ms15_range_lag{lag}"] == pytest.approx(np.log(top / bottom), rel=1e-5)
        assert row[f"ms15_body_lag{lag}"] == pytest.approx(body, rel=1e-4, abs=1e-6)
    share = frame["volume"].iloc[-15:].sum() / frame["volume"].iloc[-60:].sum()
    assert row["ms15_vshare"] == pytest.approx(share, rel=1e-5)


def test_market_set_relative_returns_sum_to_zero_and_beta_of_a_copy_is_one() -> None:
    frames = _markets(600)
    frames["ETHUSDT"] = frames["BTCUSDT"].copy()
    frames["SOLUSDT"] = frames["BTCUSDT"].copy()
    feats = build_features(align_markets(frames), ("market",))
    names = list(feats.names)
    rel = feats.values[300:, :, names.index("rel_ret_60")]
    np.testing.assert_allclose(rel, 0.0, atol=1e-6)
    np.testing.assert_allclose(feats.values[300:, :, names.index("beta_240")], 1.0, rtol=1e-3)
    np.testing.assert_allclose(feats.values[300:, :, names.index("corr_240")], 1.0, rtol=1e-3)


def test_market_set_refuses_a_single_market(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'market' needs at least two markets"):
        build_features(align_markets(frame), ("market",))
