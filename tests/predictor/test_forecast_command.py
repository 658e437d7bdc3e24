"""``manage.py forecast`` and the forecasting service: incremental rows, future points, actuals."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from predictor.models import Candle, Market, Prediction, TrainingSession
from tests.predictor.conftest import T0, store_candles

pytestmark = pytest.mark.django_db

HOUR = 3600


def forecast(session: TrainingSession, *args: str) -> str:
    out = io.StringIO()
    call_command("forecast", "-T", str(session.pk), *args, stdout=out)
    return out.getvalue()


def anchors(session: TrainingSession) -> np.ndarray:
    times = Prediction.objects.filter(session=session).values_list("anchor_time", flat=True)
    return np.array(sorted({int(t.timestamp()) for t in times}), dtype=np.int64)


def close_at(market: Market, when: dt.datetime) -> float:
    return Candle.objects.get(market=market, interval="1h", open_time=when).close


def test_every_window_is_stored_with_the_future_point_past_the_last_candle(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session()
    out = forecast(session)
    rows = Prediction.objects.filter(session=session)
    last_candle = dt.datetime.fromtimestamp(T0 + 399 * HOUR, tz=dt.UTC)
    # Windows of 8 candles: anchors from the 8th candle to the last one, one row each.
    assert rows.count() == 400 - 7
    future = rows.get(split="future")
    assert future.anchor_time == last_candle
    assert future.issued_at == last_candle + dt.timedelta(hours=1)
    assert future.target_time == last_candle + dt.timedelta(hours=1)
    assert future.actual is None
    assert rows.filter(actual__isnull=True).count() == 1
    for part in ("train", "validation", "test"):
        assert rows.filter(split=part).count() == session.samples[part]
    sample = rows.filter(split="test").order_by("anchor_time").first()
    assert sample is not None
    assert sample.actual == pytest.approx(close_at(session.markets.get(), sample.target_time))
    assert "stored: 393" in out
    assert "future points (target past the last candle): 1" in out


def test_second_run_stores_only_new_windows_with_no_gap_at_the_seam(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="ridge")
    market = session.markets.get()
    forecast(session)
    store_candles(market, 24, seed=5, start=T0 + 400 * HOUR)
    out = forecast(session)
    assert "stored: 24" in out
    assert "actuals filled: 1" in out
    times = anchors(session)
    assert np.all(np.diff(times) == HOUR), "anchors must be consecutive across the seam"
    assert times[-1] == T0 + 423 * HOUR
    seam = Prediction.objects.get(session=session, anchor_time=dt.datetime.fromtimestamp(
        T0 + 399 * HOUR, tz=dt.UTC
    ))  # fmt: skip
    # The old future point now has its truth and is a live (post-training) forecast.
    assert seam.split == "production"
    assert seam.actual == pytest.approx(close_at(market, seam.target_time))
    assert Prediction.objects.filter(session=session, split="future").count() == 1
    assert "stored: 0" in forecast(session)


def test_actuals_are_filled_when_the_target_candles_arrive(
    trained_session: Callable[..., TrainingSession],
) -> None:
    from predictor.services.forecasting import predictions_fill_actuals

    session = trained_session(arch="ridge", output_size=2, horizon=2)
    market = session.markets.get()
    forecast(session)
    # Steps 2 and 4 bars ahead: the last 4 anchors have a step past the last candle.
    pending = Prediction.objects.filter(session=session, actual__isnull=True)
    assert pending.count() == 6
    assert set(pending.values_list("split", flat=True)) == {"future"}
    store_candles(market, 3, seed=7, start=T0 + 400 * HOUR)
    assert predictions_fill_actuals() == 5  # targets up to the new last candle, 402
    left = Prediction.objects.get(session=session, actual__isnull=True)
    assert left.target_time == dt.datetime.fromtimestamp(T0 + 403 * HOUR, tz=dt.UTC)
    for row in Prediction.objects.filter(session=session, anchor_time__gte=left.anchor_time):
        if row.actual is not None:
            assert row.actual == pytest.approx(close_at(market, row.target_time))
    assert predictions_fill_actuals(session) == 0


def test_a_range_run_skips_stored_windows(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="zero", target="range", horizon=3)
    start, end = "2024-01-05T00:00", "2024-01-05T09:00"
    assert "stored: 10" in forecast(session, "--start", start, "--end", end)
    assert "stored: 0" in forecast(session, "--start", start, "--end", end)
    row = Prediction.objects.filter(session=session).order_by("anchor_time").first()
    assert row is not None
    assert row.values == [0.0, 0.0, 0.0]
    assert row.actual_values is not None
    assert len(row.actual_values) == 3
    rise, decline, end_change = row.actual_values
    assert rise >= end_change >= decline
    assert row.actual == pytest.approx(end_change)
    assert row.horizon == 3


def test_unknown_or_malformed_session_ids_are_rejected(
    trained_session: Callable[..., TrainingSession],
) -> None:
    with pytest.raises(CommandError, match="-T/--training-session-id: 'nope' is not"):
        call_command("forecast", "-T", "nope")
    with pytest.raises(CommandError, match="no training session"):
        call_command("forecast", "-T", "00000000-0000-0000-0000-000000000000")


def test_a_session_without_a_model_is_rejected(make_market: Callable[..., Market]) -> None:
    from predictor.ml.config import TrainConfig
    from predictor.services.sessions import session_create

    market = make_market("BTCUSDT", 50)
    session = session_create(TrainConfig(window=8), symbols=[market.symbol])
    with pytest.raises(CommandError, match="no trained model"):
        forecast(session)


def test_bad_dates_are_rejected(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSDT", 10)
    session_id = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(CommandError, match="--start"):
        call_command("forecast", "-T", session_id, "--start", "yesterday")
    with pytest.raises(CommandError, match="--end"):
        call_command("forecast", "-T", session_id, "--end", "2024-13-01")


def test_start_after_end_is_rejected(trained_session: Callable[..., TrainingSession]) -> None:
    session = trained_session(arch="zero")
    with pytest.raises(CommandError, match=r"--start .* is after --end"):
        forecast(session, "--start", "2024-01-05", "--end", "2024-01-04")
