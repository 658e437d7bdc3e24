"""The one table of prediction columns: every reader's lookups are real Prediction fields."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldError

from predictor.models import Prediction
from predictor.prediction_columns import (
    API_COLUMNS,
    CSV_COLUMNS,
    FRAME_COLUMNS,
    PREDICTION_COLUMNS,
    prediction_lookups,
)


@pytest.mark.django_db
def test_every_column_reads_a_prediction_field() -> None:
    for lookup in PREDICTION_COLUMNS.values():
        try:
            list(Prediction.objects.values_list(lookup)[:1])
        except FieldError as exc:
            pytest.fail(f"{lookup}: {exc}")


def test_readers_pick_columns_of_the_one_table_in_its_order() -> None:
    order = list(PREDICTION_COLUMNS)
    for columns in (FRAME_COLUMNS, CSV_COLUMNS, API_COLUMNS):
        assert set(columns) <= set(order)
        assert sorted(columns, key=order.index) == list(columns)


def test_lookups_follow_the_columns_asked_for() -> None:
    assert prediction_lookups(("symbol", "session", "step")) == (
        "market__symbol",
        "session_id",
        "step",
    )
    with pytest.raises(KeyError):
        prediction_lookups(("no_such_column",))
