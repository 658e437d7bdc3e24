"""Time-ordered train / validation / test splits of sample anchors, with a purge gap.

Parts follow each other in time: train, then validation, then test. Between the
last anchor of one part and the first of the next lie more than ``gap`` rows,
and ``gap`` is at least the label reach, so no training label reads a row that
a later part is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

IndexArray = npt.NDArray[np.int64]  # as predictor.ml.arrays, without importing Keras


@dataclass(frozen=True)
class Part:
    """The anchors of one part and the times of its first and last anchor."""

    anchors: IndexArray
    first_time: pd.Timestamp | None
    last_time: pd.Timestamp | None

    def __len__(self) -> int:
        return int(self.anchors.shape[0])

    @property
    def first(self) -> int:
        return int(self.anchors[0])

    @property
    def last(self) -> int:
        return int(self.anchors[-1])


@dataclass(frozen=True)
class Split:
    train: Part
    validation: Part
    test: Part
    window: int
    reach: int
    gap: int

    def train_feature_rows(self) -> slice:
        """Rows the training windows read: the only rows a feature scaler may see."""
        return slice(self.train.first - self.window + 1, self.train.last + 1)

    def to_dict(self) -> dict[str, object]:
        def part(p: Part) -> dict[str, object]:
            if not len(p):
                return {"samples": 0}
            return {
                "samples": len(p),
                "first_anchor": p.first,
                "last_anchor": p.last,
                "first_time": p.first_time.isoformat() if p.first_time is not None else None,
                "last_time": p.last_time.isoformat() if p.last_time is not None else None,
            }

        return {
            "train": part(self.train),
            "validation": part(self.validation),
            "test": part(self.test),
            "window": self.window,
            "reach": self.reach,
            "gap": self.gap,
        }


def _part(anchors: IndexArray, index: pd.DatetimeIndex) -> Part:
    if not len(anchors):
        return Part(anchors, None, None)
    return Part(anchors, index[int(anchors[0])], index[int(anchors[-1])])


def _cut_tail(anchors: IndexArray, fraction: float, gap: int) -> tuple[IndexArray, IndexArray]:
    """Split off the last ``fraction`` of anchors and purge ``gap`` rows before it."""
    n_tail = round(len(anchors) * fraction)
    if n_tail == 0:
        return anchors, anchors[:0]
    tail = anchors[len(anchors) - n_tail :]
    head = anchors[anchors < tail[0] - gap]
    return head, tail


def split_samples(
    anchors: IndexArray,
    index: pd.DatetimeIndex,
    *,
    window: int,
    reach: int,
    train_fraction: float = 0.8,
    val_fraction: float = 0.1,
    gap: int | None = None,
    evaluation: bool = True,
) -> Split:
    """Split sorted valid anchors in time order.

    Evaluation: the last ``1 - train_fraction`` of samples is the test part; the
    last ``val_fraction`` of what precedes it (after the purge) is validation.
    Production (``evaluation=False``): no test part; validation, if any, is a
    purged tail used only for early stopping.
    """
    gap = reach if gap is None else gap
    if gap < reach:
        raise ValueError(f"gap: {gap} rows is shorter than the label reach of {reach} rows")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_split: {train_fraction} is not in (0, 1]")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_split: {val_fraction} is not in [0, 1)")
    anchors = np.asarray(anchors, dtype=np.int64)
    if len(anchors) and np.any(np.diff(anchors) <= 0):
        raise ValueError("anchors must be strictly increasing")
    test_fraction = 1.0 - train_fraction if evaluation else 0.0
    rest, test = _cut_tail(anchors, test_fraction, gap)
    train, validation = _cut_tail(rest, val_fraction, gap)
    if not len(train):
        raise ValueError(
            f"no training samples left out of {len(anchors)} after splitting and purging"
        )
    if evaluation and train_fraction < 1.0 and not len(test):
        raise ValueError(
            "evaluation session has no test samples; use more data or a smaller train_split"
        )
    return Split(
        train=_part(train, index),
        validation=_part(validation, index),
        test=_part(test, index),
        window=window,
        reach=reach,
        gap=gap,
    )
