from __future__ import annotations

import json

import pytest

from predictor.ml.config import ConfigError, TrainConfig


def test_defaults_are_the_original_tools() -> None:
    c = TrainConfig()
    assert (c.window, c.output_size, c.shuffle_buffer, c.train_split) == (15, 1, 1000, 0.8)
    assert (c.units, c.epochs, c.batch_size, c.dropout) == (20, 4, 128, 0.25)
    assert (c.optimizer, c.loss, c.activation, c.scaler) == ("adam", "mse", "tanh", "minmax")
    assert c.arch == "lstm"
    assert c.target == "price"
    assert c.effective_horizon == 1


def test_interval_is_normalised_from_any_spelling() -> None:
    assert TrainConfig(interval="H").interval == "1h"
    assert TrainConfig(interval="15min").interval == "15m"


def test_horizon_defaults_to_15_for_returns_and_sets_the_reach() -> None:
    c = TrainConfig(target="return", output_size=2)
    assert c.effective_horizon == 15
    assert c.reach == 30
    assert c.effective_gap == 30


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"train_split": 0.0}, "train_split"),
        ({"train_split": 1.5}, "train_split"),
        ({"val_split": 1.0}, "val_split"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"shuffle_buffer": -1}, "shuffle_buffer"),
        ({"optimizer": "adamm"}, "optimizer"),
        ({"loss": "hinge"}, "loss"),
        ({"activation": "softmax"}, "activation"),
        ({"scaler": "zscore"}, "scaler"),
        ({"interval": "1 fortnight"}, "interval"),
        ({"arch": "transformer"}, "arch"),
        ({"target": "volatility"}, "target"),
        ({"features": ("close", "magic")}, "features"),
        ({"features": ()}, "features"),
        ({"horizon": 0}, "horizon"),
        ({"target": "return", "horizon": 10, "gap": 5}, "gap"),
        ({"arch": "mlp"}, "target"),
        ({"arch": "mlp", "target": "updown"}, "loss"),
        ({"target": "range", "arch": "range", "output_size": 2}, "output_size"),
        ({"scaler": "window", "features": ("ohlcv",)}, "scaler"),
        ({"features": ("close", "cross")}, "features"),
        ({"up": 0.0}, "up"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")


def test_config_round_trips_through_json() -> None:
    c = TrainConfig(
        arch="cnn",
        target="logreturn",
        horizon=5,
        features=("returns", "cross"),
        markets=("BTCUSDT", "ETHUSDT"),
        dropout=0.1,
        gap=9,
        seed=7,
        early_stopping=3,
    )
    again = TrainConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c


def test_unknown_keys_in_a_saved_config_are_rejected() -> None:
    with pytest.raises(ConfigError, match="neurons"):
        TrainConfig.from_dict({"neurons": 20})


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TrainConfig().window = 3  # type: ignore[misc]


def test_a_production_session_without_early_stopping_holds_no_validation_tail() -> None:
    production = TrainConfig(evaluation=False)
    assert production.val_split == 0.0
    assert production.training_windows_note == "production: training on every window"
    # a config saved with the old default loads as what it trains on
    saved = {**TrainConfig().to_dict(), "evaluation": False, "val_split": 0.1}
    assert TrainConfig.from_dict(saved).val_split == 0.0
    watched = TrainConfig(evaluation=False, early_stopping=3)
    assert watched.val_split == 0.1
    assert "validation tail of 10%" in watched.training_windows_note
    assert TrainConfig(evaluation=True).val_split == 0.1
    with pytest.raises(ConfigError, match="val_split"):
        TrainConfig(evaluation=False, val_split=1.5)  # still checked before it is dropped
