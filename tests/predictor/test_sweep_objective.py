"""A sweep trial's objective reads its validation split only: no test window is forecast."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from predictor.models import Prediction, TrainingSession
from predictor.services.split_inputs import EvaluationError
from predictor.services.sweep_objective import trial_objective

pytestmark = pytest.mark.django_db


@pytest.mark.slow
def test_validation_ic_forecasts_no_test_window(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="lstm", target="return", val_split=0.15)
    value = trial_objective(session, "val_ic")
    assert -1.0 <= value <= 1.0
    splits = set(Prediction.objects.filter(session=session).values_list("split", flat=True))
    assert "validation" in splits
    assert "test" not in splits
    assert trial_objective(session, "val_loss") == min(h["val_loss"] for h in session.history)


def test_val_loss_is_refused_for_a_baseline(
    trained_session: Callable[..., TrainingSession],
) -> None:
    session = trained_session(arch="ridge", target="return", val_split=0.15)
    with pytest.raises(EvaluationError, match="records no validation loss"):
        trial_objective(session, "val_loss")
