"""The leakage alarm flags results no honest short-horizon model reaches."""

from __future__ import annotations

import math

from predictor.ml.evaluation.leakage import leakage_alarm

HOUR, DAY = 3600, 86_400


def test_high_ic_at_an_hourly_horizon_is_flagged() -> None:
    alarm = leakage_alarm(ic=0.35, rank_ic=0.1, directional_accuracy=0.55, horizon_seconds=HOUR)
    assert alarm.flagged
    assert "suspiciously good — check for look-ahead" in alarm.message
    assert alarm.reasons == ("IC 0.35 > 0.3",)


def test_high_rank_ic_or_accuracy_is_flagged_too() -> None:
    assert leakage_alarm(ic=0.1, rank_ic=0.31, directional_accuracy=0.5, horizon_seconds=60).flagged
    assert leakage_alarm(ic=0.1, rank_ic=0.1, directional_accuracy=0.66, horizon_seconds=60).flagged


def test_ordinary_results_are_not_flagged() -> None:
    alarm = leakage_alarm(ic=0.05, rank_ic=0.04, directional_accuracy=0.53, horizon_seconds=HOUR)
    assert not alarm.flagged
    assert alarm.reasons == ()


def test_horizons_of_a_day_or_more_are_not_flagged() -> None:
    alarm = leakage_alarm(ic=0.5, rank_ic=0.5, directional_accuracy=0.8, horizon_seconds=DAY)
    assert not alarm.flagged


def test_undefined_metrics_do_not_raise_the_alarm() -> None:
    nan = math.nan
    assert not leakage_alarm(
        ic=nan, rank_ic=nan, directional_accuracy=nan, horizon_seconds=60
    ).flagged
