from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from predictor.models import TrainingSession

pytestmark = pytest.mark.django_db


def test_session_trains_inline_and_its_artifact_loads_back(
    trained_session: Callable[..., TrainingSession],
) -> None:
    from predictor.services.artifacts import session_bundle

    session = trained_session()
    assert session.epoch == 1
    assert len(session.history) == 1
    assert np.isfinite(session.history[0]["loss"])
    assert session.data_hash
    assert session.manifest["id"] == str(session.id)
    assert session.samples["train"] > 0
    assert session.samples["test"] > 0
    bundle = session_bundle(session)
    assert bundle.config.window == 8
