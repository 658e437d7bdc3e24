from __future__ import annotations

import numpy as np
import pytest

from predictor.ml.intervals import (
    Interval,
    IntervalError,
    as_interval,
    infer_interval,
    parse_interval,
)


@pytest.mark.parametrize(
    ("text", "seconds", "code"),
    [
        ("M", 60, "1m"),  # the original tool's minute, not pandas' month end
        ("H", 3600, "1h"),
        ("D", 86400, "1d"),
        ("1m", 60, "1m"),
        ("5min", 300, "5m"),
        ("15T", 900, "15m"),
        ("4h", 14400, "4h"),
        ("1D", 86400, "1d"),
        ("1w", 604800, "1w"),
    ],
)
def test_every_known_spelling_parses_to_the_canonical_interval(
    text: str, seconds: int, code: str
) -> None:
    interval = parse_interval(text)
    assert interval.seconds == seconds
    assert interval.code == code


@pytest.mark.parametrize("text", ["", "abc", "0m", "1ME", "-5m", "1Q"])
def test_unknown_or_calendar_intervals_are_rejected(text: str) -> None:
    with pytest.raises(IntervalError):
        parse_interval(text)


def test_weekly_bars_are_anchored_on_monday() -> None:
    week = parse_interval("1w")
    monday_2024_01_01 = 1704067200
    assert week.on_grid(np.array([monday_2024_01_01]))[0]
    assert not week.on_grid(np.array([monday_2024_01_01 + 86400]))[0]


def test_interval_is_inferred_from_the_smallest_spacing_despite_gaps() -> None:
    times = np.array([0, 60, 120, 600, 660, 3600]) + 1_700_000_040
    assert infer_interval(times[::-1]).code == "1m"


def test_inference_takes_the_most_common_spacing_so_a_stray_row_cannot_mislead_it() -> None:
    times = np.array([0, 60, 120, 180, 210, 240]) + 1_700_000_040
    assert infer_interval(times).code == "1m"


def test_inference_needs_two_distinct_times() -> None:
    with pytest.raises(IntervalError, match="two distinct"):
        infer_interval(np.array([60, 60]))


def test_inference_ignores_repeated_times_and_breaks_ties_towards_the_smaller_spacing() -> None:
    # Spacings 60, 60, 120, 120 once the repeats are dropped: a tie, the smaller wins.
    times = np.array([0, 60, 60, 120, 240, 240, 360, 120]) + 1_700_000_040
    assert infer_interval(times).code == "1m"
    # Repeats do not count as spacings: 300 twice beats 60 once.
    assert infer_interval(np.array([0, 0, 0, 300, 600, 660]) + 1_700_000_100).code == "5m"


@pytest.mark.parametrize("seed", range(5))
def test_inference_matches_the_mode_of_the_distinct_times_spacings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    step = int(rng.choice([60, 300, 3600]))
    times = 1_700_000_000 + step * np.unique(rng.integers(0, 5000, 3000))
    times = rng.permutation(np.concatenate([times, times[:50]]))  # shuffled, some repeated
    distinct = np.unique(times)
    spacings, counts = np.unique(np.diff(distinct), return_counts=True)
    assert infer_interval(times).seconds == int(spacings[np.argmax(counts)])


def test_as_interval_takes_an_interval_a_code_or_seconds() -> None:
    four_hours = Interval(14_400)
    assert as_interval(four_hours) is four_hours
    assert as_interval("4h") == four_hours
    assert as_interval("240min") == four_hours
    assert as_interval(14_400) == four_hours
    with pytest.raises(IntervalError):
        as_interval(0)
    with pytest.raises(IntervalError):
        as_interval("soon")
