"""Scalers fitted on the training split only, stored as JSON parameters (never pickle).

``standard``, ``minmax`` and ``robust`` are fitted with scikit-learn and kept as
an affine map ``(x - center) / scale`` per channel, so transforming, inverting
and saving need no scikit-learn object. ``window`` has no parameters: each
window is divided by its first row, minus 1 (done per batch by
:class:`predictor.ml.arrays.WindowDataset`).

The fitting functions take a :class:`~predictor.ml.splits.Split`, not rows, so
a caller cannot hand them validation or test rows by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from predictor.ml.arrays import Float32Array
from predictor.ml.config import SCALERS
from predictor.ml.splits import Split

_SKLEARN: dict[str, Any] = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
}


@dataclass(frozen=True)
class AffineScaler:
    """``(x - center) / scale`` per channel (last axis)."""

    kind: str
    center: tuple[float, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in _SKLEARN:
            raise ValueError(f"scaler: unknown kind {self.kind!r}")
        if len(self.center) != len(self.scale):
            raise ValueError("scaler: center and scale differ in length")
        if not all(np.isfinite(self.center)) or not all(
            s > 0 and np.isfinite(s) for s in self.scale
        ):
            raise ValueError("scaler: parameters must be finite with positive scale")

    @property
    def channels(self) -> int:
        return len(self.center)

    def transform(self, x: npt.NDArray[Any]) -> Float32Array:
        c = np.asarray(self.center, dtype=np.float64)
        s = np.asarray(self.scale, dtype=np.float64)
        return ((np.asarray(x, dtype=np.float64) - c) / s).astype(np.float32)

    def inverse_transform(self, x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        c = np.asarray(self.center, dtype=np.float64)
        s = np.asarray(self.scale, dtype=np.float64)
        return np.asarray(x, dtype=np.float64) * s + c

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": list(self.center), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AffineScaler:
        return cls(
            str(data["kind"]), tuple(map(float, data["center"])), tuple(map(float, data["scale"]))
        )


def fit_affine(kind: str, rows: npt.NDArray[Any]) -> AffineScaler:
    """Fit a scikit-learn scaler on ``rows [n, channels]`` (NaN rows ignored)."""
    if kind not in _SKLEARN:
        raise ValueError(f"scaler: {kind!r} is not a fitted scaler; choose from {sorted(_SKLEARN)}")
    rows = np.asarray(rows, dtype=np.float64)
    rows = rows[np.isfinite(rows).all(axis=1)]
    if rows.shape[0] == 0:
        raise ValueError("scaler: no finite training rows to fit on")
    fitted = _SKLEARN[kind]().fit(rows)
    if kind == "minmax":
        center, scale = fitted.data_min_, fitted.data_range_
    elif kind == "standard":
        center, scale = fitted.mean_, fitted.scale_
    else:
        center, scale = fitted.center_, fitted.scale_
    # A constant training column has no spread; 1 keeps it finite (scikit-learn does the same).
    scale = np.where(scale > 0, scale, 1.0)
    return AffineScaler(kind, tuple(map(float, center)), tuple(map(float, scale)))


@dataclass(frozen=True)
class Scaling:
    """The feature scaler and, for regression targets, the target scaler of one model."""

    kind: str
    features: AffineScaler | None
    targets: AffineScaler | None
    channel_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in SCALERS:
            raise ValueError(f"scaler: unknown kind {self.kind!r}; choose from {list(SCALERS)}")
        if (self.kind == "window") != (self.features is None):
            raise ValueError("scaler: 'window' has no fitted parameters, the others need them")

    @property
    def per_window(self) -> bool:
        return self.kind == "window"

    def transform_features(self, flat: npt.NDArray[Any]) -> Float32Array:
        """Scale ``[..., channels]``; the window scaler works per batch instead."""
        if self.features is None:
            return np.asarray(flat, dtype=np.float32)
        return self.features.transform(flat)

    def transform_targets(self, flat: npt.NDArray[Any]) -> Float32Array:
        if self.targets is None:
            return np.asarray(flat, dtype=np.float32)
        return self.targets.transform(flat)

    def inverse_targets(
        self, scaled: npt.NDArray[Any], window_first: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[np.float64]:
        """Model outputs back to target units (prices, returns, percents).

        With the window scaler, price outputs were relative to the window's first
        value: pass it as ``window_first [n, 1]``.
        """
        out = np.asarray(scaled, dtype=np.float64)
        if self.targets is not None:
            return self.targets.inverse_transform(out)
        if window_first is not None:
            return (out + 1.0) * np.asarray(window_first, dtype=np.float64)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "cryptooracle.scaling/1",
            "kind": self.kind,
            "features": None if self.features is None else self.features.to_dict(),
            "targets": None if self.targets is None else self.targets.to_dict(),
            "channel_names": list(self.channel_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaling:
        if data.get("format") != "cryptooracle.scaling/1":
            raise ValueError(f"scaler: unknown format {data.get('format')!r}")
        feats, targs = data.get("features"), data.get("targets")
        return cls(
            kind=str(data["kind"]),
            features=None if feats is None else AffineScaler.from_dict(feats),
            targets=None if targs is None else AffineScaler.from_dict(targs),
            channel_names=tuple(data.get("channel_names", ())),
        )


def fit_scaling(
    kind: str,
    features: Float32Array,
    targets: Float32Array | None,
    split: Split,
    channel_names: tuple[str, ...] = (),
    *,
    real_rows: npt.NDArray[np.bool_] | None = None,
) -> Scaling:
    """Fit on the training part of ``split`` only.

    Features: the rows the training windows read, less those where ``real_rows``
    is False (bars the grid filled in a gap never shape the scaler). Targets (regression only, pass
    None for class labels): the training anchors' labels, which end inside the
    purge gap and never reach a validation or test row.
    """
    if kind == "window":
        return Scaling(kind, None, None, channel_names)
    rows = split.train_feature_rows()
    picked = features[rows]
    if real_rows is not None:
        picked = picked[np.asarray(real_rows, dtype=bool)[rows]]
    feature_scaler = fit_affine(kind, picked)
    target_scaler = None if targets is None else fit_affine(kind, targets[split.train.anchors])
    return Scaling(kind, feature_scaler, target_scaler, channel_names)
