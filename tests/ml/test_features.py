from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import align_markets
from predictor.ml.features import FEATURE_SETS, build_features, linear_trend


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
        (long_frame, tuple(s for s in FEATURE_SETS if s != "cross")),
        (two_markets, ("cross", "returns")),
    ):
        market = align_markets(data)
        full = build_features(market, sets).values
        for cut in (len(market) // 2, len(market) - 7):
            part = build_features(market.truncate(cut), sets).values
            np.testing.assert_array_equal(part, full[:cut])
