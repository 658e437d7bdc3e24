"""``TrainConfig.from_request``: the rules every training request shares."""

from __future__ import annotations

import pytest

from predictor.ml.config import FIXED_ON_CONTINUE, REQUEST_MAXIMA, ConfigError, TrainConfig


def test_a_fresh_request_gets_the_partner_of_a_target_or_arch_given_alone() -> None:
    updown = TrainConfig.from_request({"target": "updown"}, markets=["btcusd"])
    assert (updown.arch, updown.loss) == ("mlp", "sparse_categorical_crossentropy")
    assert updown.markets == ("BTCUSD",)
    assert TrainConfig.from_request({"arch": "range"}).target == "range"
    assert TrainConfig.from_request({"arch": "mlp"}).target == "updown"
    # Both given: nothing is guessed, and a pair that cannot learn is refused.
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_request({"arch": "mlp", "target": "price"})
    assert caught.value.field == "target"


def test_none_counts_as_not_given() -> None:
    config = TrainConfig.from_request({"window": None, "horizon": None, "units": 8})
    assert (config.window, config.horizon, config.units) == (15, None, 8)


@pytest.mark.parametrize("name", sorted(REQUEST_MAXIMA))
def test_every_bounded_count_is_refused_past_its_maximum(name: str) -> None:
    most = REQUEST_MAXIMA[name]
    with pytest.raises(ConfigError, match=f"must be at most {most:,}") as caught:
        TrainConfig.from_request({name: most + 1})
    assert caught.value.field == name


def test_unknown_fields_are_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_request({"epoch": 3})
    assert caught.value.field == "epoch"


def test_a_validation_share_asked_of_production_without_early_stopping_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_request({"evaluation": False, "val_split": 0.2})
    assert caught.value.field == "val_split"
    kept = TrainConfig.from_request({"evaluation": False, "val_split": 0.2, "early_stopping": 2})
    assert kept.val_split == 0.2
    # Not asked for: production trains on every window, as TrainConfig itself decides.
    assert TrainConfig.from_request({"evaluation": False}).val_split == 0.0


PARENT = TrainConfig(window=8, units=4, interval="1h", cnn_blocks=2, markets=("BTCUSD",)).to_dict()
CHANGES = {
    "arch": "cnn",
    "window": 16,
    "output_size": 2,
    "target": "return",
    "features": ["close", "time"],
    "scaler": "standard",
    "units": 8,
    "interval": "1d",
    "horizon": 3,
    "cnn_blocks": 3,
    "batch_norm": False,
    "activation": "relu",
}


def test_the_changes_table_covers_every_fixed_field() -> None:
    assert set(CHANGES) == set(FIXED_ON_CONTINUE)


@pytest.mark.parametrize("name", FIXED_ON_CONTINUE)
def test_a_continuation_cannot_change_what_the_saved_model_was_built_with(name: str) -> None:
    with pytest.raises(ConfigError, match="a continuation cannot change it") as caught:
        TrainConfig.from_request({name: CHANGES[name]}, markets=["BTCUSD"], parent=PARENT)
    assert caught.value.field == name


def test_a_continuation_starts_from_the_parent_and_may_change_the_fit() -> None:
    config = TrainConfig.from_request(
        {"epochs": 9, "learning_rate": 0.01, "interval": "H", "window": 8},
        markets=["BTCUSD"],
        parent=PARENT,
    )
    assert (config.epochs, config.learning_rate) == (9, 0.01)
    assert (config.window, config.units, config.interval) == (8, 4, "1h")  # the same, spelt anew
