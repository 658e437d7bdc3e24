from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from predictor.ml.scaling import AffineScaler, Scaling, fit_affine, fit_scaling
from predictor.ml.splits import split_samples

T = 600
INDEX = pd.date_range("2024-01-01", periods=T, freq="1h", tz="UTC")


def _split(reach: int = 5):
    anchors = np.arange(9, T - reach, dtype=np.int64)
    return split_samples(
        anchors, INDEX, window=10, reach=reach, train_fraction=0.7, val_fraction=0.1
    )


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust"])
def test_scaler_is_fitted_on_training_split_only(kind: str) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(T, 3)).astype(np.float32)
    targets = rng.normal(size=(T, 1)).astype(np.float32)
    split = _split()
    before = fit_scaling(kind, features, targets, split)
    # Blow up every row after the last training anchor: all validation and test
    # anchors and labels (their windows also reach back into older rows, which is fine).
    poisoned_f, poisoned_t = features.copy(), targets.copy()
    poisoned_f[split.train.last + 1 :] = 1e6
    poisoned_t[split.train.last + 1 :] = 1e6
    after = fit_scaling(kind, poisoned_f, poisoned_t, split)
    assert after == before
    # And the check can fail: poisoning a training row changes the parameters.
    poisoned_f[split.train.last] = 1e6
    assert fit_scaling(kind, poisoned_f, targets, split).features != before.features


def test_affine_scaler_inverts_and_round_trips_through_json() -> None:
    rows = np.random.default_rng(1).normal(5, 2, size=(200, 2))
    scaler = fit_affine("standard", rows)
    scaled = scaler.transform(rows)
    assert abs(float(scaled.mean())) < 1e-5
    np.testing.assert_allclose(scaler.inverse_transform(scaled), rows, rtol=1e-5)
    scaling = Scaling("standard", scaler, scaler, ("a", "b"))
    again = Scaling.from_dict(json.loads(json.dumps(scaling.to_dict())))
    assert again == scaling


def test_minmax_maps_training_rows_to_unit_interval_and_constant_columns_stay_finite() -> None:
    rows = np.column_stack([np.linspace(10, 20, 50), np.full(50, 3.0)])
    scaler = fit_affine("minmax", rows)
    out = scaler.transform(rows)
    assert out[:, 0].min() == pytest.approx(0.0)
    assert out[:, 0].max() == pytest.approx(1.0)
    assert np.isfinite(out[:, 1]).all()


def test_window_scaler_has_no_parameters_and_inverts_with_the_first_value() -> None:
    scaling = fit_scaling("window", np.ones((T, 1), np.float32), None, _split())
    assert scaling.features is None
    assert scaling.per_window
    restored = scaling.inverse_targets(np.array([[0.1]]), window_first=np.array([[200.0]]))
    assert restored[0, 0] == pytest.approx(220.0)


def test_bad_scaler_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive scale"):
        AffineScaler("standard", (0.0,), (0.0,))
    with pytest.raises(ValueError, match="unknown format"):
        Scaling.from_dict({"kind": "standard"})
