from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.ml.baselines import (
    BaselineSpec,
    PersistenceBaseline,
    RidgeBaseline,
    ZeroBaseline,
    baseline_from_dict,
)


def _windows() -> np.ndarray:
    # Two markets, one raw close channel each, closes rising by 1 per row.
    base = np.arange(100, 130, dtype=np.float32)
    return np.stack([np.stack([base[i : i + 10], 2 * base[i : i + 10]], axis=-1) for i in range(5)])


def test_zero_baseline_predicts_no_change() -> None:
    w = _windows()
    ret = ZeroBaseline(BaselineSpec("return", 3, 2, 2, (0, 1))).predict(w)
    np.testing.assert_array_equal(ret, np.zeros((5, 4)))
    price = ZeroBaseline(BaselineSpec("price", 1, 1, 2, (0, 1))).predict(w)
    np.testing.assert_array_equal(price, w[:, -1, :])
    hold = ZeroBaseline(BaselineSpec("updown", 5, 1, 1, ())).predict(w)
    np.testing.assert_array_equal(hold, np.tile([0.0, 1.0, 0.0], (5, 1)))


def test_persistence_repeats_the_last_h_step_return() -> None:
    w = _windows()
    model = PersistenceBaseline(BaselineSpec("return", 3, 2, 2, (0, 1))).fit(w, np.zeros((5, 4)))
    out = model.predict(w)
    last, back3, back6 = (float(w[0, i, 0]) for i in (-1, -4, -7))
    # Market-major: (market 0: h, 2h), (market 1: h, 2h); market 1 is 2x market 0, same returns.
    np.testing.assert_allclose(out[0], [last / back3 - 1, last / back6 - 1] * 2, rtol=1e-6)


def test_persistence_needs_a_window_longer_than_its_horizon() -> None:
    with pytest.raises(ValueError, match="window"):
        PersistenceBaseline(BaselineSpec("return", 15, 1, 1, (0,))).fit(
            np.ones((2, 10, 1)), np.ones((2, 1))
        )


def test_ridge_recovers_a_linear_relation_and_round_trips_through_json() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4, 2))
    y = (x[:, -1, 0] * 3.0 - x[:, 0, 1])[:, None] + 0.5
    model = RidgeBaseline(BaselineSpec("return", 1, 1, 1, ()), alpha=1e-6).fit(x, y)
    np.testing.assert_allclose(model.predict(x), y, atol=1e-3)
    again = baseline_from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-12)
