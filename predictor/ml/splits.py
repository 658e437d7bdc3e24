"""Time-ordered train / validation / test splits of sample anchors, with a purge gap.

Parts follow each other in time: train, then validation, then test. Between the
last anchor of one part and the first of the next lie more than ``gap`` rows,
and ``gap`` is at least the label reach, so no training label reads a row that
a later part is scored on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

IndexArray = npt.NDArray[np.int64]  # as predictor.ml.arrays, without importing Keras
BoolArray = npt.NDArray[np.bool_]
PART_NAMES: tuple[str, ...] = ("train", "validation", "test")


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
class PartGaps:
    """What one part's samples stand on: the bars they read and the windows gaps cost it.

    ``real_bars``/``filled_bars`` count the rows from the first sample's look-back to
    the last sample's label; ``windows_dropped`` are complete windows inside the part's
    anchor span that were not samples because they read more than ``max_fill`` filled bars.
    """

    real_bars: int
    filled_bars: int
    windows_kept: int
    windows_dropped: int

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GapReport:
    """Per-part :class:`PartGaps` and the rule that produced them."""

    max_fill: int
    parts: Mapping[str, PartGaps]
    windows_dropped: int  # all parts and the spans between them
    filled_bars: int  # on the whole grid

    @property
    def dropped_outside_parts(self) -> int:
        return self.windows_dropped - sum(p.windows_dropped for p in self.parts.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "max_fill": self.max_fill,
            "filled_bars": self.filled_bars,
            "windows_dropped": self.windows_dropped,
            "windows_dropped_outside_parts": self.dropped_outside_parts,
        }


def part_gaps(
    part: Part,
    *,
    candidates: BoolArray,
    kept: BoolArray,
    filled: BoolArray,
    real: BoolArray,
    before: int,
    after: int,
) -> PartGaps:
    """Count one part: ``candidates`` are complete windows, ``kept`` the samples among them."""
    if not len(part):
        return PartGaps(0, 0, 0, 0)
    low, high = max(part.first - before, 0), min(part.last + after + 1, len(filled))
    span = slice(part.first, part.last + 1)
    dropped = int(np.count_nonzero(candidates[span] & ~kept[span]))
    return PartGaps(
        real_bars=int(np.count_nonzero(real[low:high])),
        filled_bars=int(np.count_nonzero(filled[low:high])),
        windows_kept=len(part),
        windows_dropped=dropped,
    )


@dataclass(frozen=True)
class Split:
    train: Part
    validation: Part
    test: Part
    window: int
    reach: int
    gap: int
    gaps: GapReport | None = field(default=None, compare=False)

    def train_feature_rows(self) -> slice:
        """Rows the training windows read: the only rows a feature scaler may see."""
        return slice(self.train.first - self.window + 1, self.train.last + 1)

    def to_dict(self) -> dict[str, object]:
        def part(name: str, p: Part) -> dict[str, object]:
            counts = self.gaps.parts[name].to_dict() if self.gaps is not None else {}
            if not len(p):
                return {"samples": 0, **counts}
            return {
                "samples": len(p),
                "first_anchor": p.first,
                "last_anchor": p.last,
                "first_time": p.first_time.isoformat() if p.first_time is not None else None,
                "last_time": p.last_time.isoformat() if p.last_time is not None else None,
                **counts,
            }

        result: dict[str, object] = {
            "train": part("train", self.train),
            "validation": part("validation", self.validation),
            "test": part("test", self.test),
            "window": self.window,
            "reach": self.reach,
            "gap": self.gap,
        }
        if self.gaps is not None:
            result["gaps"] = self.gaps.to_dict()
        return result


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
