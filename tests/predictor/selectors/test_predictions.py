"""Prediction reads: the API's filtered list, the pages' frame, span and CSV rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from predictor.models import Market, Prediction, TrainingSession
from predictor.selectors.predictions import (
    prediction_list,
    prediction_rows,
    prediction_span,
    predictions_fingerprint,
    predictions_frame,
)
from tests.predictor.conftest import T0
from tests.predictor.pages_data import make_session, store_predictions

pytestmark = pytest.mark.django_db
START = dt.datetime.fromtimestamp(T0, tz=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def session(make_market: Callable[..., Market]) -> TrainingSession:
    """An evaluation session with predictions on two markets, and a second session's rows."""
    btc, eth = make_market("BTCUSDT", 60), make_market("ETHUSDT", 60, seed=1)
    session = make_session(btc, evaluation=True)
    store_predictions(session, btc)
    store_predictions(session, eth, seed=1)
    store_predictions(make_session(btc, evaluation=True), btc)
    return session


def test_prediction_list_is_one_sessions_rows_narrowed_by_each_filter(
    session: TrainingSession,
) -> None:
    mine = Prediction.objects.filter(session=session)
    assert prediction_list(session.pk).count() == mine.count() < Prediction.objects.count()
    eth = Market.objects.get(symbol="ETHUSDT")
    assert set(prediction_list(session.pk, market_id=eth.pk).values_list("market", flat=True)) == {
        eth.pk
    }
    by_symbol = prediction_list(session.pk, symbol="ethusdt")
    assert by_symbol.count() == mine.filter(market=eth).count() > 0
    start, end = START + 20 * HOUR, START + 30 * HOUR
    times = set(
        prediction_list(session.pk, start=start, end=end).values_list("target_time", flat=True)
    )
    assert min(times) == start
    assert max(times) == end - HOUR  # end is exclusive
    future = prediction_list(session.pk, split="future", symbol="BTCUSDT")
    assert future.count() == 3
    assert list(prediction_list(session.pk, split="holdout")) == []


def test_frame_holds_the_asked_rows_with_utc_times_and_nan_until_known(
    session: TrainingSession,
) -> None:
    btc = Market.objects.get(symbol="BTCUSDT")
    frame = predictions_frame(session, splits=["test", "future"], market=btc)
    assert set(frame["split"]) == {"test", "future"}
    assert set(frame["symbol"]) == {"BTCUSDT"}
    assert str(frame["target_time"].dt.tz) == "UTC"
    assert frame["target_time"].is_monotonic_increasing
    assert frame.loc[frame["split"] == "future", "actual"].isna().all()
    assert frame.loc[frame["split"] == "test", "actual"].notna().all()


def test_span_counts_and_fingerprint_change_when_an_actual_arrives(
    session: TrainingSession,
) -> None:
    span = prediction_span(session)
    assert span["n"] == Prediction.objects.filter(session=session).count()
    assert span["n_future"] == 6  # three per market
    assert span["n_actual"] == span["n"] - 6
    before = predictions_fingerprint(session, span)
    row = Prediction.objects.filter(session=session, split="future").first()
    assert row is not None
    Prediction.objects.filter(pk=row.pk).update(actual=1.0)
    assert predictions_fingerprint(session, prediction_span(session)) != before


def test_csv_rows_stream_every_prediction_in_the_range_with_its_exchange(
    session: TrainingSession,
) -> None:
    start = START + 20 * HOUR
    rows = list(prediction_rows(session, start=start))
    assert len(rows) == Prediction.objects.filter(session=session, target_time__gte=start).count()
    assert {r[0] for r in rows} == {"binance"}
    assert min(r[4] for r in rows) == start  # target_time
