"""The original Crypto Oracle network: causal Conv1D, two LSTMs, a linear head."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers


def build_lstm(
    input_shape: tuple[int, int],
    outputs: int,
    *,
    units: int,
    dropout: float,
    activation: str = "tanh",
) -> Any:
    """Conv1D(25, 5, causal, relu) → LSTM(U, seq) → Dropout(D) → LSTM(U) → Dropout(D) → Dense(O).

    Causal padding keeps step ``s`` of the convolution from reading steps after ``s``,
    as in the original (the window is all past data either way, but the LSTM then
    sees the same sequence order as the candles).
    """
    inputs = keras.Input(shape=input_shape, name="window")
    x = layers.Conv1D(25, 5, padding="causal", activation="relu", name="conv")(inputs)
    x = layers.LSTM(units, activation=activation, return_sequences=True, name="lstm_1")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.LSTM(units, activation=activation, name="lstm_2")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    out = layers.Dense(outputs, name="output")(x)
    return keras.Model(inputs, out, name="lstm")
