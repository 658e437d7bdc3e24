"""Walk-forward folds: retrain every ``step`` bars, predict the next block out of sample.

Fold ``i`` tests the anchors in rows ``[s_i, s_i + step)``; it trains on anchors
before ``s_i - gap`` (all of them for an *expanding* window, the last
``train_size`` rows for a *sliding* one), so no training label reads a row the
fold is scored on. A purged tail of the training anchors is the fold's
validation part (early stopping only). The test blocks tile the data without
overlap, so the stitched predictions are one out-of-sample series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from predictor.ml.splits import IndexArray, Part, Split

Scheme = Literal["expanding", "sliding"]


class WalkForwardError(ValueError):
    """The data cannot be cut into the folds asked for."""


@dataclass(frozen=True)
class WalkForwardPlan:
    scheme: Scheme
    step: int
    min_train: int
    train_size: int | None
    gap: int
    folds: tuple[Split, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "step": self.step,
            "min_train": self.min_train,
            "train_size": self.train_size,
            "gap": self.gap,
            "folds": [fold.to_dict() for fold in self.folds],
        }


def _part(anchors: IndexArray, index: pd.DatetimeIndex) -> Part:
    if not len(anchors):
        return Part(anchors, None, None)
    return Part(anchors, index[int(anchors[0])], index[int(anchors[-1])])


def plan_walk_forward(
    anchors: IndexArray,
    index: pd.DatetimeIndex,
    *,
    window: int,
    reach: int,
    step: int,
    min_train: int,
    scheme: Scheme = "expanding",
    train_size: int | None = None,
    gap: int | None = None,
    val_fraction: float = 0.1,
    max_folds: int | None = None,
) -> WalkForwardPlan:
    """Cut sorted valid anchors into walk-forward folds (rows are positions in ``index``)."""
    gap = reach if gap is None else gap
    if gap < reach:
        raise WalkForwardError(f"gap: {gap} rows is shorter than the label reach of {reach} rows")
    if step < 1 or min_train < 1:
        raise WalkForwardError("step and min_train must be at least 1 bar")
    if scheme not in ("expanding", "sliding"):
        raise WalkForwardError(f"scheme must be expanding or sliding, not {scheme!r}")
    if scheme == "sliding" and (train_size is None or train_size < 1):
        raise WalkForwardError("a sliding window needs train_size, in bars")
    if not 0.0 <= val_fraction < 1.0:
        raise WalkForwardError(f"val_fraction: {val_fraction} is not in [0, 1)")
    anchors = np.asarray(anchors, dtype=np.int64)
    if not len(anchors):
        raise WalkForwardError("no valid samples")
    first_test = int(anchors[0]) + min_train + gap
    starts = np.arange(first_test, int(anchors[-1]) + 1, step, dtype=np.int64)
    if max_folds is not None:
        starts = starts[-max_folds:] if max_folds > 0 else starts[:0]
    folds = []
    for start in starts:
        test = anchors[(anchors >= start) & (anchors < start + step)]
        end = start - gap  # training anchors stay strictly before this row
        low = int(anchors[0]) if scheme == "expanding" else end - int(train_size or 0)
        train = anchors[(anchors >= low) & (anchors < end)]
        if not len(test) or not len(train):
            continue
        n_val = round(len(train) * val_fraction)
        validation = train[len(train) - n_val :] if n_val else train[:0]
        if n_val:
            train = train[train < validation[0] - gap]
        if not len(train):
            continue
        folds.append(
            Split(
                train=_part(train, index),
                validation=_part(validation, index),
                test=_part(test, index),
                window=window,
                reach=reach,
                gap=gap,
            )
        )
    if not folds:
        raise WalkForwardError(
            f"no fold fits: {len(anchors)} samples, min_train {min_train}, gap {gap}, step {step}"
        )
    return WalkForwardPlan(scheme, step, min_train, train_size, gap, tuple(folds))
