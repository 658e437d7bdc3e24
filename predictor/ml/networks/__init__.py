"""Network builders: ``build_network(config, input_shape)`` returns an uncompiled model.

Keras 3 layers and ``keras.ops`` only (no ``tf.*``), so every network runs on the
TensorFlow, JAX and torch backends and a saved ``.keras`` file moves between them.
Compiling, callbacks and fitting belong to :mod:`predictor.ml.training`.
"""

from __future__ import annotations

from typing import Any

from predictor.ml.config import TrainConfig
from predictor.ml.networks.cnn import build_cnn
from predictor.ml.networks.heads import build_range
from predictor.ml.networks.lstm import build_lstm
from predictor.ml.networks.mlp import build_mlp

__all__ = ["build_cnn", "build_lstm", "build_mlp", "build_network", "build_range", "output_width"]

_PER_MARKET = {"updown": 1, "range": 3}


def output_width(config: TrainConfig) -> int:
    """Number of regression outputs: output size (or 3 for range) per market."""
    markets = max(1, len(config.markets))
    return _PER_MARKET.get(config.target, config.output_size) * markets


def build_network(config: TrainConfig, input_shape: tuple[int, int]) -> Any:
    """The uncompiled ``keras.Model`` for ``config.arch`` over windows of ``input_shape``."""
    if len(input_shape) != 2:
        raise ValueError(f"input_shape must be (steps, channels), got {input_shape}")
    markets = max(1, len(config.markets))
    if config.arch == "lstm":
        return build_lstm(
            input_shape,
            output_width(config),
            units=config.units,
            dropout=config.dropout,
            activation=config.activation,
        )
    if config.arch == "cnn":
        return build_cnn(
            input_shape,
            output_width(config),
            filters=config.units,
            blocks=config.cnn_blocks,
            batch_norm=config.batch_norm,
            dropout=config.dropout,
        )
    if config.arch == "mlp":
        return build_mlp(input_shape, units=config.units, dropout=config.dropout)
    if config.arch == "range":
        return build_range(
            input_shape,
            markets,
            units=config.units,
            dropout=config.dropout,
            activation=config.activation,
        )
    raise ValueError(
        f"arch: {config.arch!r} is not a network (baselines live in predictor.ml.baselines)"
    )
