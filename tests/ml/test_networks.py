from __future__ import annotations

import numpy as np
import pytest

from predictor.ml.config import TrainConfig
from predictor.ml.networks import build_network, output_width

CASES = [
    (TrainConfig(arch="lstm", units=4), (15, 1), 1),
    (TrainConfig(arch="lstm", units=4, output_size=3), (15, 1), 3),
    (TrainConfig(arch="lstm", units=4, target="logreturn", features=("ohlcv",)), (15, 5), 1),
    (
        TrainConfig(
            arch="cnn", units=8, target="return", features=("returns",), markets=("A", "B", "C")
        ),
        (32, 12),
        3,
    ),
    (TrainConfig(arch="cnn", units=8, batch_norm=False, cnn_blocks=1, output_size=2), (16, 1), 2),
    (
        TrainConfig(
            arch="mlp", units=8, target="updown", loss="sparse_categorical_crossentropy", window=1
        ),
        (1, 6),
        3,
    ),
    (TrainConfig(arch="range", units=4, target="range"), (15, 5), 3),
    (TrainConfig(arch="range", units=4, target="range", markets=("A", "B")), (15, 10), 6),
]


@pytest.mark.parametrize(
    ("config", "shape", "outputs"), CASES, ids=lambda c: getattr(c, "arch", None)
)
def test_every_architecture_maps_windows_to_its_target_width(
    config: TrainConfig, shape: tuple[int, int], outputs: int
) -> None:
    model = build_network(config, shape)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    assert y.shape == (2, outputs)
    assert np.isfinite(y).all()
    if config.target != "updown":
        assert output_width(config) == outputs
    else:
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)  # softmax


def test_builders_return_uncompiled_models() -> None:
    model = build_network(TrainConfig(units=4), (15, 1))
    assert not model.compiled


def test_lstm_is_the_original_layer_stack() -> None:
    model = build_network(TrainConfig(units=7, dropout=0.3), (15, 1))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Conv1D", "LSTM", "Dropout", "LSTM", "Dropout", "Dense"]
    conv = model.get_layer("conv")
    assert conv.filters == 25
    assert conv.kernel_size == (5,)
    assert conv.padding == "causal"
    assert model.get_layer("dropout_1").rate == pytest.approx(0.3)


def test_cnn_output_for_a_step_does_not_change_if_only_later_windows_change() -> None:
    # Windows are independent samples: the batch dimension never mixes (batch-norm in inference).
    model = build_network(TrainConfig(arch="cnn", units=4, target="return"), (16, 1))
    x = np.random.default_rng(1).normal(size=(3, 16, 1)).astype(np.float32)
    y1 = np.asarray(model(x, training=False))
    x[2] += 10.0
    y2 = np.asarray(model(x, training=False))
    np.testing.assert_allclose(y1[:2], y2[:2], rtol=1e-6)


def test_baseline_archs_are_not_networks() -> None:
    with pytest.raises(ValueError, match="not a network"):
        build_network(TrainConfig(arch="ridge"), (15, 1))
