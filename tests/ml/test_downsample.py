"""LTTB against hand-worked examples, and the interval chooser for candles."""

from __future__ import annotations

import numpy as np
import pytest

from predictor.ml.downsample import MAX_POINTS, interval_for_points, lttb, lttb_indices


def test_lttb_keeps_the_largest_triangle_of_each_bucket_in_a_hand_worked_example() -> None:
    # n = 8, n_out = 4: two buckets of (8 - 2) / 2 = 3 points, [1, 2, 3] and [4, 5, 6].
    # Bucket 1, A = (0, 0), C = mean of bucket 2 = (5, 7/3); twice the area is
    # |(Ax - Cx)(y - Ay) - (Ax - x)(Cy - Ay)| = |-5y + 7x/3|:
    #   (1, 2): 23/3, (2, 1): 1/3, (3, 5): 18  -> keep 3.
    # Bucket 2, A = (3, 5), C = the last point (7, 1): |-4(y - 5) + 4(3 - x)| = 4|8 - x - y|:
    #   (4, 3): 4, (5, 0): 12, (6, 4): 8  -> keep 5.
    y = [0, 2, 1, 5, 3, 0, 4, 1]
    assert lttb_indices(np.arange(8), y, 4).tolist() == [0, 3, 5, 7]


def test_lttb_handles_uneven_buckets_by_hand() -> None:
    # n = 7, n_out = 4: bucket width 5 / 2 = 2.5, so buckets are [1, 2] and [3, 4, 5].
    # Bucket 1, A = (0, 0), C = mean of (3, 1), (4, -2), (5, 4) = (4, 1): |-4y + x|:
    #   (1, 3): 11, (2, 1): 2  -> keep 1.
    # Bucket 2, A = (1, 3), C = (6, 0): |-5(y - 3) + 3(1 - x)| = |18 - 5y - 3x|:
    #   (3, 1): 4, (4, -2): 16, (5, 4): 17  -> keep 5 (only just beats 4).
    y = [0, 3, 1, 1, -2, 4, 0]
    xs, ys = lttb(np.arange(7), y, 4)
    assert xs.tolist() == [0, 1, 5, 6]
    assert ys.tolist() == [0, 3, 4, 0]


def test_lttb_measures_triangles_in_x_units_not_positions() -> None:
    # n = 5, n_out = 3: one bucket [1, 2, 3]; A = (0, 0), C = the last point.
    # Twice the area with A at the origin is |x * Cy - y * Cx|.
    y = [0, 5, 0, 4, 10]
    # Evenly spaced, C = (4, 10): (1, 5): 10, (2, 0): 20, (3, 4): 14 -> keep 2.
    assert lttb_indices([0, 1, 2, 3, 4], y, 3).tolist() == [0, 2, 4]
    # Point 3 far to the right, C = (10, 10): (1, 5): 40, (2, 0): 20, (9, 4): 50 -> keep 3.
    assert lttb_indices([0, 1, 2, 9, 10], y, 3).tolist() == [0, 3, 4]


def test_short_series_are_returned_whole() -> None:
    assert lttb_indices(np.arange(5), np.ones(5), 5).tolist() == [0, 1, 2, 3, 4]
    assert lttb_indices(np.arange(2), np.ones(2), 100).tolist() == [0, 1]


def test_a_long_series_keeps_its_ends_its_spike_and_the_requested_count() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    x = 1_700_000_000 + 60.0 * np.arange(n)
    y = np.cumsum(rng.normal(0, 1, n))
    y[123_457] += 1_000  # a one-bar spike that every-n-th sampling would miss
    kept = lttb_indices(x, y, MAX_POINTS)
    assert len(kept) == MAX_POINTS
    assert kept[0] == 0
    assert kept[-1] == n - 1
    assert np.all(np.diff(kept) > 0)
    assert 123_457 in kept


@pytest.mark.parametrize(
    ("x", "y", "n_out"),
    [
        ([0, 1, 2, 3], [0, np.nan, 1, 2], 3),
        ([0, 1, 2, 3], [0, 1, 2], 3),
        ([0, 1, 2, 3], [0, 1, 2, 3], 2),
    ],
)
def test_bad_input_is_refused(x: list[float], y: list[float], n_out: int) -> None:
    with pytest.raises(ValueError, match=r"finite|length|n_out"):
        lttb_indices(x, y, n_out)


def test_candles_move_to_the_first_coarser_interval_that_fits() -> None:
    week = 7 * 86_400
    assert interval_for_points(week, "1m", 5000).code == "3m"  # 10,080 1m bars -> 3,360
    assert interval_for_points(week, "1h", 5000).code == "1h"  # 168 bars fit
    assert interval_for_points(365 * 86_400, "1m", 5000).code == "2h"  # 4,380 bars
    # Only multiples of the stored interval: 2m candles make neither 3m, 5m nor 15m bars.
    assert interval_for_points(week, "2m", 5000).seconds == 1800  # 5,040 2m bars -> 30m
    # Nothing fits: the coarsest candidate.
    assert interval_for_points(1e12, "1m", 10).code == "1w"
