from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.splits import split_samples

INDEX = pd.date_range("2024-01-01", periods=1000, freq="1h", tz="UTC")


def test_parts_are_in_time_order_with_a_purge_gap_of_at_least_the_reach() -> None:
    anchors = np.arange(14, 980, dtype=np.int64)
    split = split_samples(anchors, INDEX, window=15, reach=20, train_fraction=0.8, val_fraction=0.1)
    assert split.train.last < split.validation.first < split.validation.last < split.test.first
    assert split.validation.first - split.train.last > 20
    assert split.test.first - split.validation.last > 20
    # No training label (t, t + reach] reaches a validation or test anchor.
    assert split.train.last + 20 < split.validation.first
    assert split.validation.last + 20 < split.test.first
    assert len(split.test) == round(len(anchors) * 0.2)
    assert split.test.first_time == INDEX[split.test.first]


def test_a_larger_gap_than_the_reach_is_honoured() -> None:
    anchors = np.arange(0, 1000, dtype=np.int64)
    split = split_samples(anchors, INDEX, window=1, reach=5, val_fraction=0.1, gap=50)
    assert split.validation.first - split.train.last > 50
    assert split.test.first - split.validation.last > 50


def test_gap_shorter_than_the_label_reach_is_rejected() -> None:
    with pytest.raises(ValueError, match="gap"):
        split_samples(np.arange(100), INDEX, window=1, reach=15, gap=10)


def test_production_split_trains_on_everything_but_a_purged_tail() -> None:
    anchors = np.arange(10, 1000, dtype=np.int64)
    split = split_samples(anchors, INDEX, window=11, reach=3, evaluation=False, val_fraction=0.05)
    assert len(split.test) == 0
    assert split.train.first == 10
    assert split.validation.last == 999
    assert split.validation.first - split.train.last > 3
    no_val = split_samples(anchors, INDEX, window=11, reach=3, evaluation=False, val_fraction=0.0)
    np.testing.assert_array_equal(no_val.train.anchors, anchors)


def test_holes_in_the_valid_anchors_do_not_shrink_the_gap() -> None:
    anchors = np.concatenate([np.arange(0, 500), np.arange(700, 1000)]).astype(np.int64)
    split = split_samples(anchors, INDEX, window=1, reach=10, val_fraction=0.0, train_fraction=0.7)
    assert split.test.first - split.train.last > 10
    assert split.to_dict()["test"]["samples"] == len(split.test)
