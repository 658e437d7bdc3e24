"""binancepredict's 1D ResNet over many coins × features × steps, one output per coin."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers


def _conv_bn(x: Any, filters: int, kernel: int, batch_norm: bool, name: str) -> Any:
    # The bias is redundant right before batch-norm, which has its own shift.
    x = layers.Conv1D(filters, kernel, padding="same", use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return x


def residual_block(x: Any, filters: int, kernel: int, batch_norm: bool, name: str) -> Any:
    """[Conv1D + BN + ReLU, Conv1D + BN] + shortcut, then ReLU."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv1D(filters, 1, name=f"{name}_proj")(x)
    y = _conv_bn(x, filters, kernel, batch_norm, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv_bn(y, filters, kernel, batch_norm, f"{name}_conv2")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(y)


def build_cnn(
    input_shape: tuple[int, int],
    outputs: int,
    *,
    filters: int,
    blocks: int,
    batch_norm: bool = True,
    dropout: float = 0.0,
    kernel: int = 3,
) -> Any:
    """Stem conv → ``blocks`` residual blocks → global average pooling → Dense(outputs).

    Channels are markets × features (market-major); ``outputs`` is one value per
    coin (times the output size).
    """
    inputs = keras.Input(shape=input_shape, name="window")
    x = _conv_bn(inputs, filters, 7, batch_norm, "stem")
    x = layers.ReLU(name="stem_relu")(x)
    for i in range(blocks):
        x = residual_block(x, filters, kernel, batch_norm, f"block{i + 1}")
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(outputs, name="output")(x)
    return keras.Model(inputs, out, name="cnn")
