from __future__ import annotations

import json

import numpy as np
import pytest

from predictor.ml.baselines import (
    BaselineSpec,
    BoostingParams,
    LightGBMBaseline,
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


def _lgbm_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, 2, 3)).astype(np.float32)
    # A non-linear signal in one feature of the last row, plus noise.
    targets = (np.tanh(2 * windows[:, -1, 0]) * 0.01 + rng.normal(0, 0.002, n))[:, None]
    return windows, targets


def test_lgbm_learns_a_non_linear_signal_and_round_trips_through_json() -> None:
    spec = BaselineSpec("return", 5, 1, 1, ())
    windows, targets = _lgbm_data(4000, 0)
    model = LightGBMBaseline(spec, BoostingParams(trees=80, leaves=7, seed=3)).fit(windows, targets)
    test_x, test_y = _lgbm_data(1000, 1)
    predicted = model.predict(test_x)
    assert predicted.shape == (1000, 1)
    assert np.corrcoef(predicted[:, 0], test_y[:, 0])[0, 1] > 0.8
    saved = json.loads(json.dumps(model.to_dict()))
    loaded = baseline_from_dict(saved)
    assert isinstance(loaded, LightGBMBaseline)
    assert loaded.params == model.params
    np.testing.assert_array_equal(loaded.predict(test_x), predicted)


def test_lgbm_fits_are_deterministic_and_early_stopping_follows_the_validation_part() -> None:
    spec = BaselineSpec("return", 5, 1, 1, ())
    windows, targets = _lgbm_data(3000, 0)
    val_x, val_y = _lgbm_data(600, 2)
    params = BoostingParams(trees=400, leaves=31, learning_rate=0.3, patience=5, seed=1)
    a = LightGBMBaseline(spec, params).fit(windows, targets, (val_x, val_y))
    b = LightGBMBaseline(spec, params).fit(windows, targets, (val_x, val_y))
    assert a.to_dict() == b.to_dict()
    assert 0 < a.boosters[0].best_iteration < 400  # stopped on the validation loss
    # Without patience the fixed tree count is grown, whatever validation is given.
    fixed = LightGBMBaseline(spec, BoostingParams(trees=40)).fit(windows, targets, (val_x, val_y))
    assert fixed.boosters[0].num_trees() == 40


def test_lgbm_fits_one_booster_per_output_and_refuses_a_price_target() -> None:
    spec = BaselineSpec("range", 5, 1, 2, ())
    windows, _ = _lgbm_data(500, 0)
    targets = np.random.default_rng(0).normal(size=(500, 6))
    model = LightGBMBaseline(spec, BoostingParams(trees=5)).fit(windows, targets)
    assert model.predict(windows).shape == (500, 6)
    with pytest.raises(ValueError, match="lgbm has no forecast for target 'price'"):
        LightGBMBaseline(BaselineSpec("price", 1, 1, 1, (0,)))
    broken = model.to_dict()
    broken["boosters"] = broken["boosters"][:2]
    with pytest.raises(ValueError, match="2 boosters for 6 outputs"):
        baseline_from_dict(broken)
