"""A sweep's space: grid expansion, seeded draws, refusal of bad keys and values, TPE asks."""

from __future__ import annotations

import pytest

from predictor.services.runs import RunRequest
from predictor.services.sessions import TrainingError
from predictor.services.sweep_space import space_check, space_normalise, tpe_ask

BASE = RunRequest(given={"epochs": 1, "val_split": 0.15}, symbols=["BTCUSDT"])


def test_grid_expands_to_every_combination_in_order() -> None:
    space = space_normalise({"units": [16, 32, 64], "window": [30, 60]})
    planned = space_check(BASE, space, "grid", 0, 0)
    assert planned == [{"units": u, "window": w} for u in (16, 32, 64) for w in (30, 60)]


def test_random_draws_are_seeded_and_inside_the_range() -> None:
    space = space_normalise({"units": {"low": 4, "high": 64}, "dropout": {"low": 0.0, "high": 0.5}})
    first = space_check(BASE, space, "random", 5, 7)
    assert first == space_check(BASE, space, "random", 5, 7)
    assert first != space_check(BASE, space, "random", 5, 8)
    assert all(4 <= p["units"] <= 64 and isinstance(p["units"], int) for p in first)
    assert all(0.0 <= p["dropout"] <= 0.5 for p in first)


@pytest.mark.parametrize(
    ("space", "named"),
    [
        ({"nonsense": [1, 2]}, "nonsense"),
        ({"units": [16, -3]}, "units"),
        ({"dropout": [0.1, 1.5]}, "dropout"),
        ({"target": ["price", "return"]}, "target"),
        ({"horizon": [4, "abc"]}, "horizon"),  # a raw JSON value of the wrong type
        ({"up": ["x"]}, "up"),
    ],
)
def test_a_bad_key_or_value_is_refused_by_name(space: dict, named: str) -> None:
    with pytest.raises(TrainingError) as caught:
        space_check(BASE, space_normalise(space), "grid", 0, 0)
    assert caught.value.field == named
    assert named in str(caught.value)


def test_tpe_asks_inside_the_space_from_the_finished_trials() -> None:
    space = space_normalise({"units": {"low": 4, "high": 64}, "arch": {"values": ["lstm", "gru"]}})
    finished = [({"units": 8, "arch": "lstm"}, 0.5), ({"units": 60, "arch": "gru"}, None)]
    asked = tpe_ask(space, finished, minimise=True, seed=1, n=3)
    assert len(asked) == 3
    assert all(4 <= p["units"] <= 64 and p["arch"] in ("lstm", "gru") for p in asked)
    assert asked == tpe_ask(space, finished, minimise=True, seed=1, n=3)


def test_a_huge_grid_is_refused_before_it_is_built() -> None:
    axes = {name: list(range(1, 11)) for name in ("units", "window", "epochs", "batch_size")}
    with pytest.raises(TrainingError, match="10000 combinations; at most 500") as caught:
        space_check(BASE, space_normalise(axes), "grid", 0, 0)
    assert caught.value.field == "space"
