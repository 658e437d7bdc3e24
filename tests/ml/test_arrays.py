from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.arrays import (
    WindowDataset,
    align_markets,
    finite_windows,
    gather_windows,
    shuffle_order,
    window_view,
)
from tests.ml.conftest import make_frame


def test_single_frame_aligns_to_float32_time_market_field(frame: pd.DataFrame) -> None:
    market = align_markets(frame)
    assert market.values.shape == (400, 1, 5)
    assert market.values.dtype == np.float32
    assert market.observed.all()
    np.testing.assert_allclose(market.field("close")[:, 0], frame["close"], rtol=1e-6)


def test_gap_becomes_flat_candle_at_last_close_with_zero_volume_and_is_marked(
    frame: pd.DataFrame,
) -> None:
    holed = frame.drop(frame.index[10:13])
    market = align_markets(holed, "1h")
    assert len(market) == 400
    assert not market.observed[10:13, 0].any()
    last_close = np.float32(frame["close"].iloc[9])
    for name in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(market.field(name)[10:13, 0], last_close)
    np.testing.assert_array_equal(market.field("volume")[10:13, 0], 0.0)


def test_markets_share_one_grid_and_rows_before_a_late_listing_are_nan() -> None:
    early = make_frame(50, seed=1)
    late = make_frame(30, seed=2, start="2024-01-01 20:00")
    market = align_markets({"A": early, "B": late})
    assert market.markets == ("A", "B")
    assert len(market) == 50
    assert np.isnan(market.values[:20, 1]).all()
    assert not market.observed[:20, 1].any()
    assert np.isfinite(market.values[20:, 1]).all()


def test_naive_index_is_rejected(frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        align_markets(frame.tz_localize(None))


def test_window_view_shares_memory_with_the_base_array() -> None:
    base = np.arange(100 * 3, dtype=np.float32).reshape(100, 3)
    view = window_view(base, 10)
    assert view.shape == (91, 10, 3)
    assert np.shares_memory(view, base)
    np.testing.assert_array_equal(view[5], base[5:15])


def test_gather_windows_returns_the_windows_ending_at_the_anchors() -> None:
    base = np.arange(50, dtype=np.float32)[:, None]
    view = window_view(base, 4)
    got = gather_windows(view, np.array([3, 20, 49]), 4)
    np.testing.assert_array_equal(got[:, :, 0], [[0, 1, 2, 3], [17, 18, 19, 20], [46, 47, 48, 49]])


def test_finite_windows_rejects_every_window_that_touches_a_nan_row() -> None:
    values = np.ones((20, 2), dtype=np.float32)
    values[7, 1] = np.nan
    ok = finite_windows(values, 3)
    assert not ok[:2].any()  # too short
    assert not ok[7:10].any()  # windows containing row 7
    assert ok[[2, 3, 4, 5, 6, 10, 19]].all()


def test_shuffle_order_is_a_seeded_local_permutation() -> None:
    a = shuffle_order(5000, 100, np.random.default_rng(1))
    b = shuffle_order(5000, 100, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.sort(a), np.arange(5000))
    assert not np.array_equal(a, np.arange(5000))
    # A buffer of 100 moves samples about 100 places, not across the whole epoch.
    assert np.abs(a - np.arange(5000)).max() <= 200
    np.testing.assert_array_equal(shuffle_order(10, 1, np.random.default_rng(0)), np.arange(10))


def test_dataset_yields_each_anchor_once_per_epoch_with_aligned_targets() -> None:
    t = 300
    features = np.arange(t, dtype=np.float32)[:, None].repeat(2, axis=1)
    targets = np.arange(t, dtype=np.float32)[:, None] + 0.5
    anchors = np.arange(9, 250, dtype=np.int64)
    ds = WindowDataset(features, targets, anchors, 10, 32, shuffle_buffer=1000, seed=3)
    assert len(ds) == 8
    seen = []
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape[1:] == (10, 2)
        # The window ends at the anchor and the target is that anchor's.
        np.testing.assert_array_equal(x[:, -1, 0] + 0.5, y[:, 0])
        seen.append(x[:, -1, 0])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), anchors)


def test_dataset_window_scaling_divides_by_the_first_value() -> None:
    features = np.linspace(100, 200, 50, dtype=np.float32)[:, None]
    targets = features * 2
    ds = WindowDataset(
        features, targets, np.array([9]), 10, 4, window_scale=True, scale_targets=True
    )
    x, y = ds[0]
    np.testing.assert_allclose(x[0, :, 0], features[:10, 0] / features[0, 0] - 1, rtol=1e-6)
    np.testing.assert_allclose(y[0, 0], targets[9, 0] / features[0, 0] - 1, rtol=1e-6)
