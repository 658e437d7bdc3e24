"""The range regressor: one trunk, three heads (max rise %, max decline %, end change %)."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

HEADS: tuple[str, ...] = ("max_rise_pct", "max_decline_pct", "end_change_pct")


def build_range(
    input_shape: tuple[int, int],
    markets: int,
    *,
    units: int,
    dropout: float,
    activation: str = "tanh",
) -> Any:
    """Causal Conv1D → LSTM(U) → Dropout, then a small Dense head per outcome.

    Separate heads (the Coinfarm seed used three separate models) let each
    outcome have its own last layers while sharing the sequence encoder. Outputs
    are ordered like the targets: per market, (rise, decline, end).
    """
    inputs = keras.Input(shape=input_shape, name="window")
    x = layers.Conv1D(25, 5, padding="causal", activation="relu", name="conv")(inputs)
    x = layers.LSTM(units, activation=activation, name="lstm")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    heads = []
    for name in HEADS:
        h = layers.Dense(max(units // 2, 4), activation="relu", name=f"{name}_hidden")(x)
        h = layers.Dense(markets, name=name)(h)
        heads.append(layers.Reshape((markets, 1), name=f"{name}_col")(h))
    stacked = layers.Concatenate(axis=-1, name="outcomes")(heads)
    out = layers.Flatten(name="output")(stacked)
    return keras.Model(inputs, out, name="range")
