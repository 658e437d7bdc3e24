"""FollowUpward's classifier: an MLP over feature vectors, softmax over sell/hold/buy."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

CLASSES = 3  # sell, hold, buy, in predictor.ml.targets' encoding


def build_mlp(
    input_shape: tuple[int, int],
    *,
    units: int,
    dropout: float,
) -> Any:
    """Flatten → Dense(U, relu) → Dropout → Dense(U/2, relu) → Dropout → Dense(3, softmax).

    With window 1 the input is exactly one feature vector, as in the original;
    longer windows are flattened into one vector of lagged features.
    """
    inputs = keras.Input(shape=input_shape, name="window")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(units, activation="relu", kernel_initializer="he_uniform", name="dense_1")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(
        max(units // 2, CLASSES), activation="relu", kernel_initializer="he_uniform", name="dense_2"
    )(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    out = layers.Dense(CLASSES, activation="softmax", name="output")(x)
    return keras.Model(inputs, out, name="mlp")
