from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictor.ml.walkforward import WalkForwardError, plan_walk_forward

INDEX = pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC")


def anchors(first: int = 10, last: int = 190) -> np.ndarray:
    return np.arange(first, last + 1, dtype=np.int64)


def test_expanding_folds_tile_the_test_range_without_overlap() -> None:
    plan = plan_walk_forward(anchors(), INDEX, window=8, reach=3, step=20, min_train=60)
    tests = np.concatenate([f.test.anchors for f in plan.folds])
    assert tests[0] == 10 + 60 + 3
    assert np.all(np.diff(tests) == 1)  # contiguous, no anchor twice, no hole
    assert tests[-1] == 190
    assert [len(f.test) for f in plan.folds][:-1] == [20] * (len(plan.folds) - 1)
    for fold in plan.folds:
        assert fold.train.first == 10  # expanding: always from the start


def test_training_labels_never_reach_the_fold_they_are_scored_on() -> None:
    plan = plan_walk_forward(
        anchors(), INDEX, window=8, reach=5, step=15, min_train=50, val_fraction=0.2
    )
    for fold in plan.folds:
        # A label of anchor a reads rows up to a + reach.
        assert fold.train.last + fold.reach < fold.validation.first
        assert fold.validation.last + fold.reach < fold.test.first


def test_sliding_window_keeps_a_fixed_training_length() -> None:
    plan = plan_walk_forward(
        anchors(), INDEX, window=8, reach=2, step=30, min_train=80, scheme="sliding",
        train_size=50, val_fraction=0.0,
    )  # fmt: skip
    for fold in plan.folds:
        assert len(fold.train) == 50
        assert fold.test.first - fold.train.last == 2 + 1


def test_gap_shorter_than_the_label_reach_is_refused() -> None:
    with pytest.raises(WalkForwardError, match="gap"):
        plan_walk_forward(anchors(), INDEX, window=8, reach=5, step=10, min_train=20, gap=4)


def test_too_little_data_for_one_fold_is_refused() -> None:
    with pytest.raises(WalkForwardError, match="no fold fits"):
        plan_walk_forward(anchors(), INDEX, window=8, reach=1, step=10, min_train=500)


def test_max_folds_keeps_the_latest_folds() -> None:
    every = plan_walk_forward(anchors(), INDEX, window=8, reach=1, step=20, min_train=40)
    last2 = plan_walk_forward(
        anchors(), INDEX, window=8, reach=1, step=20, min_train=40, max_folds=2
    )
    assert [f.test.first for f in last2.folds] == [f.test.first for f in every.folds[-2:]]
    assert last2.to_dict()["folds"][0]["test"]["samples"] == len(last2.folds[0].test)
