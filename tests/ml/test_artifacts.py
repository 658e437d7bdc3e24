from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictor.ml.artifacts import (
    ArtifactError,
    ArtifactPaths,
    Forecaster,
    bundle_from_bytes,
    bundle_to_bytes,
    latest_window,
    load_bundle,
    save_bundle,
)
from predictor.ml.config import TrainConfig
from predictor.ml.training import TrainedBundle, predict_anchors, train_pipeline
from tests.ml.conftest import make_frame

pytestmark = pytest.mark.slow  # one tiny Keras training shared by the module (~5 s)


@pytest.fixture(scope="module")
def bundle() -> TrainedBundle:
    config = TrainConfig(window=8, units=4, epochs=1, batch_size=32, features=("ohlcv",), xla=False)
    return train_pipeline(make_frame(300, seed=9), config)


def _test_windows(b: TrainedBundle) -> tuple[np.ndarray, np.ndarray]:
    assert b.prepared is not None
    return b.prepared.features.flat(), b.prepared.split.test.anchors


def test_save_then_load_gives_identical_predictions(bundle: TrainedBundle, tmp_path: Path) -> None:
    paths = ArtifactPaths.for_id("abc", tmp_path / "model_weights", tmp_path / "scalers")
    manifest = save_bundle(bundle, paths, "abc")
    assert paths.model.name == "abc.keras"
    assert paths.scaler.name == "abc.json"
    assert paths.manifest.name == "abc.manifest.json"
    assert manifest["data_hash"] == bundle.data_hash
    assert manifest["seed"] == bundle.seed
    assert manifest["channel_names"] == list(bundle.channel_names)
    loaded = load_bundle(paths)
    features, anchors = _test_windows(bundle)
    np.testing.assert_array_equal(
        predict_anchors(loaded, features, anchors), predict_anchors(bundle, features, anchors)
    )
    assert loaded.config == bundle.config
    assert loaded.scaling == bundle.scaling
    # Atomic writes leave no temporary files behind.
    assert sorted(p.name for p in (tmp_path / "model_weights").iterdir()) == [
        "abc.keras",
        "abc.manifest.json",
    ]


def test_tampered_weights_are_refused(bundle: TrainedBundle, tmp_path: Path) -> None:
    paths = ArtifactPaths.for_id("x", tmp_path)
    save_bundle(bundle, paths, "x")
    paths.model.write_bytes(paths.model.read_bytes() + b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        load_bundle(paths)


def test_scaler_from_another_session_is_refused(bundle: TrainedBundle, tmp_path: Path) -> None:
    paths = ArtifactPaths.for_id("x", tmp_path)
    save_bundle(bundle, paths, "x")
    scaler = json.loads(paths.scaler.read_text())
    scaler["features"]["center"][0] += 1.0
    paths.scaler.write_text(json.dumps(scaler))
    with pytest.raises(ArtifactError, match="scaler"):
        load_bundle(paths)


def test_manifest_feature_list_must_match_the_scaler(bundle: TrainedBundle) -> None:
    model, scaler, manifest = bundle_to_bytes(bundle, "x")
    meta = json.loads(manifest)
    meta["channel_names"] = list(reversed(meta["channel_names"]))
    with pytest.raises(ArtifactError, match="channels"):
        bundle_from_bytes(model, scaler, json.dumps(meta).encode())


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="missing"):
        load_bundle(ArtifactPaths.for_id("nope", tmp_path))


def test_artifact_ids_cannot_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        ArtifactPaths.for_id("../etc/passwd", tmp_path)


def test_baseline_bundle_round_trips(tmp_path: Path) -> None:
    frame = make_frame(300, seed=3)
    config = TrainConfig(arch="ridge", target="return", horizon=3, window=6, features=("returns",))
    b = train_pipeline(frame, config)
    paths = ArtifactPaths.for_id("r", tmp_path, baseline=True)
    save_bundle(b, paths, "r")
    assert paths.model.name == "r.baseline.json"
    loaded = load_bundle(paths)
    features, anchors = _test_windows(b)
    np.testing.assert_allclose(
        predict_anchors(loaded, features, anchors), predict_anchors(b, features, anchors)
    )


def test_forecaster_forecasts_the_latest_window_like_batch_prediction(
    bundle: TrainedBundle,
) -> None:
    frame: pd.DataFrame = make_frame(300, seed=9)
    when, window = latest_window(bundle, frame)
    assert when == frame.index[-1]
    assert window.shape == (8, 5)
    forecaster = Forecaster(bundle)
    forecaster.warm_up()
    one = forecaster.forecast(window)
    assert one.shape == (1,)
    np.testing.assert_allclose(one, bundle.predict(window[None])[0], rtol=1e-6)
    assert abs(one[0] / frame["close"].iloc[-1] - 1) < 0.5  # a price, not a scaled number


def test_latest_window_takes_a_one_market_mapping_like_a_bare_frame(
    bundle: TrainedBundle,
) -> None:
    frame: pd.DataFrame = make_frame(300, seed=9)
    _, bare = latest_window(bundle, frame)
    _, mapped = latest_window(bundle, {"BTCUSDT": frame})
    np.testing.assert_array_equal(bare, mapped)


def test_lgbm_bundle_round_trips_through_the_artifact_files(tmp_path: Path) -> None:
    frame = make_frame(900, seed=3, freq="1min")
    config = TrainConfig(
        arch="lgbm",
        target="logreturn",
        horizon=5,
        window=2,
        features=("returns", "chance"),
        interval="1min",
        gbm_trees=30,
        early_stopping=5,
    )
    b = train_pipeline(frame, config)
    paths = ArtifactPaths.for_id("g", tmp_path, baseline=True)
    manifest = save_bundle(b, paths, "g")
    assert manifest["kind"] == "baseline"
    saved = json.loads(paths.model.read_text())
    assert saved["name"] == "lgbm"
    assert saved["boosters"][0].startswith("tree")
    loaded = load_bundle(paths)
    features, anchors = _test_windows(b)
    np.testing.assert_array_equal(
        predict_anchors(loaded, features, anchors), predict_anchors(b, features, anchors)
    )
    paths.model.write_text(paths.model.read_text().replace("tree", "TREE", 1))
    with pytest.raises(ArtifactError, match="sha256"):
        load_bundle(paths)
