from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from predictor.ml.config import TrainConfig
from predictor.ml.scaling import fit_scaling
from predictor.ml.training import (
    ProgressCallback,
    make_callbacks,
    predict_anchors,
    prepare_data,
    resolve_jit_compile,
    train_pipeline,
)
from tests.ml.conftest import make_frame

TINY = {"window": 8, "units": 4, "epochs": 2, "batch_size": 32, "interval": "1h", "xla": False}


@pytest.mark.slow
def test_tiny_lstm_trains_with_finite_losses_and_reports_every_epoch(frame: pd.DataFrame) -> None:
    calls: list[tuple[int, int, dict[str, float]]] = []
    bundle = train_pipeline(
        frame, TrainConfig(**TINY), on_epoch=lambda e, n, logs: calls.append((e, n, logs))
    )
    assert bundle.fit is not None
    assert bundle.fit.epochs_run == 2
    assert [(e, n) for e, n, _ in calls] == [(1, 2), (2, 2)]
    for _, _, logs in calls:
        assert np.isfinite(logs["loss"])
        assert np.isfinite(logs["val_loss"])
    assert len(bundle.history) == 2
    assert set(bundle.history[0]) >= {"loss", "val_loss", "mae"}
    assert bundle.backend == keras.backend.backend()
    assert len(bundle.data_hash) == 64
    assert bundle.versions["keras"] == keras.__version__


@pytest.mark.slow
def test_should_stop_cancels_training_within_one_batch(frame: pd.DataFrame) -> None:
    checks = {"n": 0}

    def should_stop() -> bool:
        checks["n"] += 1
        return checks["n"] >= 3

    config = TrainConfig(**{**TINY, "epochs": 5, "batch_size": 16})
    bundle = train_pipeline(frame, config, should_stop=should_stop)
    assert bundle.fit is not None
    assert bundle.fit.cancelled
    # Three batches ran: the third check said stop, and no fourth batch followed.
    assert int(bundle.model.optimizer.iterations) == 3
    assert bundle.fit.epochs_run <= 1


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed(frame: pd.DataFrame) -> None:
    a = train_pipeline(frame, TrainConfig(**TINY, seed=5))
    b = train_pipeline(frame, TrainConfig(**TINY, seed=5))
    assert a.history[-1]["loss"] == pytest.approx(b.history[-1]["loss"], rel=1e-4)


@pytest.mark.slow
def test_lstm_trains_under_xla_when_asked(frame: pd.DataFrame) -> None:
    if keras.backend.backend() != "tensorflow":
        pytest.skip("XLA is opted into on the TensorFlow backend only")
    bundle = train_pipeline(frame, TrainConfig(**{**TINY, "epochs": 1, "xla": True}))
    assert bundle.model.jit_compile is True
    assert np.isfinite(bundle.history[-1]["loss"])


def test_xla_is_keras_auto_unless_the_config_says_otherwise() -> None:
    # Forced XLA made the LSTM with dropout 5x slower on CPU (docs/benchmarks.md).
    assert resolve_jit_compile("lstm") == "auto"
    assert resolve_jit_compile("cnn") == "auto"
    assert resolve_jit_compile("lstm", True) is True
    assert resolve_jit_compile("lstm", False) is False


def test_early_stopping_restores_best_weights_on_validation_loss() -> None:
    config = TrainConfig(early_stopping=3)
    callbacks = make_callbacks(config, True, ProgressCallback(4, None, None))
    stopper = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    assert stopper.monitor == "val_loss"
    assert stopper.restore_best_weights
    assert stopper.patience == 3
    assert any(isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in callbacks)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "width"),
    [
        ({"target": "return", "horizon": 3, "features": ("returns", "time")}, 1),
        ({"scaler": "window"}, 1),
        (
            {
                "arch": "range",
                "target": "range",
                "horizon": 4,
                "features": ("ohlcv",),
                "scaler": "robust",
            },
            3,
        ),
        (
            {
                "arch": "mlp",
                "target": "updown",
                "horizon": 5,
                "window": 1,
                "features": ("returns",),
                "loss": "sparse_categorical_crossentropy",
                "scaler": "standard",
            },
            3,
        ),
        ({"arch": "ridge", "target": "logreturn", "horizon": 3, "features": ("returns",)}, 1),
        ({"arch": "zero", "target": "return", "horizon": 3}, 1),
        ({"arch": "lgbm", "target": "return", "horizon": 3, "gbm_trees": 10}, 1),
        ({"arch": "lgbm", "target": "range", "horizon": 3, "features": ("ohlcv",)}, 3),
        ({"arch": "persistence", "target": "return", "horizon": 3, "window": 10}, 1),
    ],
)
def test_pipeline_predicts_the_test_part_for_every_arch(
    frame: pd.DataFrame, overrides: dict[str, object], width: int
) -> None:
    config = TrainConfig(**{**TINY, "epochs": 1, **overrides})  # type: ignore[arg-type]
    bundle = train_pipeline(frame, config)
    prep = bundle.prepared
    assert prep is not None
    test = prep.split.test.anchors
    assert prep.split.test.first - prep.split.validation.last > config.reach
    preds = predict_anchors(bundle, prep.features.flat(), test)
    assert preds.shape == (len(test), width)
    assert np.isfinite(preds).all()
    if config.target == "price":  # back in price units, not scaled units
        closes = prep.market.field("close")[test, 0]
        assert np.all(np.abs(preds[:, 0] / closes - 1) < 0.5)


@pytest.mark.slow
def test_multi_coin_cnn_gives_one_output_per_coin(two_markets: dict[str, pd.DataFrame]) -> None:
    config = TrainConfig(
        **{**TINY, "epochs": 1},
        arch="cnn",
        target="return",
        horizon=2,
        features=("returns", "cross"),
        markets=("ETHUSDT", "BTCUSDT"),
        scaler="standard",
    )
    bundle = train_pipeline(two_markets, config)
    assert bundle.channel_names[0].startswith("ETHUSDT:")  # the config's market order
    prep = bundle.prepared
    assert prep is not None
    preds = predict_anchors(bundle, prep.features.flat(), prep.split.test.anchors[:5])
    assert preds.shape == (5, 2)


def test_production_trains_on_every_window_unless_early_stopping_asks_for_a_tail() -> None:
    data = make_frame(400, seed=6)
    everything = prepare_data(data, TrainConfig(**TINY, evaluation=False))
    np.testing.assert_array_equal(everything.split.train.anchors, everything.anchors)
    assert len(everything.split.validation) == len(everything.split.test) == 0
    stopping = TrainConfig(**TINY, evaluation=False, early_stopping=2)
    watched = prepare_data(data, stopping)
    assert len(watched.split.test) == 0
    assert len(watched.split.validation) == round(len(watched.anchors) * 0.1)
    assert watched.split.validation.first - watched.split.train.last > stopping.reach


@pytest.mark.slow
def test_continuing_a_session_keeps_its_scaler() -> None:
    old_data = make_frame(400, seed=4)
    new_data = make_frame(300, seed=5, start="2024-01-17 16:00", price=300.0)
    config = TrainConfig(**{**TINY, "epochs": 1}, evaluation=False)
    first = train_pipeline(old_data, config)
    cont = train_pipeline(new_data, config, continue_from=first)
    assert cont.scaling == first.scaling
    assert cont.model is first.model  # the saved weights go on training
    # The check above can fail: a scaler fitted on the new slice differs.
    prep = prepare_data(new_data, config)
    fresh = fit_scaling(config.scaler, prep.features.flat(), prep.targets.flat(), prep.split)
    assert fresh != first.scaling
    with pytest.raises(ValueError, match="window"):
        train_pipeline(new_data, TrainConfig(**{**TINY, "window": 9}), continue_from=first)


@pytest.mark.slow
def test_pipeline_runs_unchanged_on_the_jax_backend(tmp_path: Path) -> None:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    script = textwrap.dedent(
        """
        import keras
        from predictor.ml.config import TrainConfig
        from tests.ml.conftest import make_frame
        from predictor.ml.training import train_pipeline
        assert keras.backend.backend() == "jax"
        b = train_pipeline(make_frame(300), TrainConfig(window=8, units=4, epochs=1, batch_size=32))
        print("ok", b.history[-1]["loss"])
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok" in done.stdout


def test_lgbm_early_stopping_never_reads_the_test_split() -> None:
    """The fitted trees are identical when every candle of the test part changes."""
    frame = make_frame(1500, seed=8, freq="1min")
    config = TrainConfig(
        arch="lgbm",
        target="return",
        horizon=5,
        window=1,
        interval="1min",
        features=("returns", "volume"),
        gbm_trees=200,
        learning_rate=0.3,
        early_stopping=3,
    )
    first = train_pipeline(frame, config)
    assert first.prepared is not None
    test_start = first.prepared.market.index[int(first.prepared.split.test.anchors[0])]
    changed = frame.copy()
    later = changed.index >= test_start
    rng = np.random.default_rng(1)
    changed.loc[later, ["open", "high", "low", "close"]] *= rng.lognormal(0, 0.5, (later.sum(), 1))
    changed.loc[later, "volume"] = rng.lognormal(6, 2, later.sum())
    second = train_pipeline(changed, config)
    assert second.prepared is not None
    np.testing.assert_array_equal(
        second.prepared.split.validation.anchors, first.prepared.split.validation.anchors
    )
    assert first.model.to_dict() == second.model.to_dict()
    # And it did early-stop on the validation part.
    assert 0 < first.model.boosters[0].best_iteration < 200
