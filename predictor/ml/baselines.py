"""Baselines every network must beat: zero return, persistence, ridge, boosted trees.

They share the bundle's interface: ``fit(windows, targets)`` and
``predict(windows)`` on *raw* (unscaled) windows ``[n, W, channels]`` and raw
targets ``[n, outputs]``; nothing here trains with Keras. Parameters round-trip
through ``to_dict``/``from_dict`` (JSON), like the scalers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

F64 = npt.NDArray[np.float64]
# Ridge materialises its design matrix; past this many values it fits on an even subsample.
RIDGE_MAX_VALUES = 50_000_000


@dataclass(frozen=True)
class BaselineSpec:
    """What the baselines need to know about the data: target layout and close channels."""

    target: str
    horizon: int
    output_size: int
    markets: int
    close_channels: tuple[int, ...]  # raw close per market in the window's channels; () if absent

    @property
    def width(self) -> int:
        per_market = {"updown": 1, "range": 3}.get(self.target, self.output_size)
        return per_market * self.markets

    def last_close(self, windows: npt.NDArray[Any], back: int = 0) -> F64:
        if len(self.close_channels) != self.markets:
            raise ValueError(
                "this baseline needs the raw 'close' feature ('close' or 'ohlcv' sets)"
            )
        return np.asarray(windows[:, -1 - back, list(self.close_channels)], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "horizon": self.horizon,
            "output_size": self.output_size,
            "markets": self.markets,
            "close_channels": list(self.close_channels),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineSpec:
        return cls(
            str(data["target"]),
            int(data["horizon"]),
            int(data["output_size"]),
            int(data["markets"]),
            tuple(int(c) for c in data["close_channels"]),
        )


class ZeroBaseline:
    """No change: return 0, price = last close, range 0, class = hold (as probabilities)."""

    name = "zero"

    def __init__(self, spec: BaselineSpec) -> None:
        self.spec = spec

    def fit(self, windows: npt.NDArray[Any], targets: npt.NDArray[Any]) -> ZeroBaseline:
        return self

    def predict(self, windows: npt.NDArray[Any]) -> F64:
        n = windows.shape[0]
        if self.spec.target == "updown":
            return np.tile(np.array([0.0, 1.0, 0.0]), (n, 1))
        if self.spec.target == "price":
            return np.repeat(self.spec.last_close(windows), self.spec.output_size, axis=1)
        return np.zeros((n, self.spec.width))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec.to_dict()}


class PersistenceBaseline:
    """The last observed value carries on.

    Price: the last close. Return over ``j·h``: the return over the past ``j·h`` rows.
    """

    name = "persistence"

    def __init__(self, spec: BaselineSpec) -> None:
        if spec.target not in ("price", "return", "logreturn"):
            raise ValueError(f"persistence has no forecast for target {spec.target!r}")
        self.spec = spec

    def fit(self, windows: npt.NDArray[Any], targets: npt.NDArray[Any]) -> PersistenceBaseline:
        if (
            self.spec.target != "price"
            and windows.shape[1] <= self.spec.horizon * self.spec.output_size
        ):
            raise ValueError(
                "window: persistence of an h-step return needs a window longer than h·O"
            )
        return self

    def predict(self, windows: npt.NDArray[Any]) -> F64:
        now = self.spec.last_close(windows)
        if self.spec.target == "price":
            return np.repeat(now, self.spec.output_size, axis=1)
        cols = []
        for j in range(1, self.spec.output_size + 1):
            ratio = now / self.spec.last_close(windows, back=j * self.spec.horizon)
            cols.append(np.log(ratio) if self.spec.target == "logreturn" else ratio - 1.0)
        # Market-major like the targets: (market, step).
        return np.stack(cols, axis=-1).reshape(windows.shape[0], -1)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec.to_dict()}


class RidgeBaseline:
    """Ridge regression (scikit-learn) on the flattened, standardised windows."""

    name = "ridge"

    def __init__(self, spec: BaselineSpec, alpha: float = 1.0) -> None:
        self.spec = spec
        self.alpha = alpha
        self.mean: F64 | None = None
        self.scale: F64 | None = None
        self.coef: F64 | None = None
        self.intercept: F64 | None = None

    def fit(self, windows: npt.NDArray[Any], targets: npt.NDArray[Any]) -> RidgeBaseline:
        n = windows.shape[0]
        step = max(1, int(np.ceil(n * windows[0].size / RIDGE_MAX_VALUES)))
        x = np.asarray(windows[::step], dtype=np.float64).reshape(-1, windows[0].size)
        y = np.asarray(targets[::step], dtype=np.float64)
        scaler = StandardScaler().fit(x)
        model = Ridge(alpha=self.alpha).fit(scaler.transform(x), y)
        self.mean, self.scale = scaler.mean_, scaler.scale_
        self.coef = np.atleast_2d(model.coef_)
        self.intercept = np.atleast_1d(model.intercept_)
        return self

    def predict(self, windows: npt.NDArray[Any]) -> F64:
        if self.coef is None or self.mean is None or self.scale is None or self.intercept is None:
            raise RuntimeError("ridge baseline is not fitted")
        x = np.asarray(windows, dtype=np.float64).reshape(windows.shape[0], -1)
        return np.asarray(((x - self.mean) / self.scale) @ self.coef.T + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        if self.coef is None or self.mean is None or self.scale is None or self.intercept is None:
            raise RuntimeError("ridge baseline is not fitted")
        return {
            "name": self.name,
            "spec": self.spec.to_dict(),
            "alpha": self.alpha,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }


GBM_LEARNING_RATE = 0.05  # lgbm's rate when the config's learning_rate is None


@dataclass(frozen=True)
class BoostingParams:
    """LightGBM's settings from the config; fixed threads and ``deterministic`` for repeatability."""

    trees: int = 300
    leaves: int = 15
    learning_rate: float = GBM_LEARNING_RATE
    patience: int = 0  # early-stopping rounds on the validation part; 0 = all ``trees``
    seed: int = 42

    def lgb_params(self) -> dict[str, Any]:
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.leaves,
            # Regularised for noisy returns: big leaves, row and column subsampling.
            "min_data_in_leaf": 200,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "num_threads": GBM_THREADS,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


# Two threads: the development machines' share, and a fixed count keeps a fit reproducible.
GBM_THREADS = 2


class LightGBMBaseline:
    """Gradient-boosted trees (LightGBM), one booster per output column, on flattened windows.

    The windows are not scaled (trees do not care). ``fit`` early-stops on the
    validation windows it is given, when ``patience`` asks for it, and never sees
    the test split. The boosters round-trip as LightGBM's text model format inside
    the baseline's JSON, not as a pickle.
    """

    name = "lgbm"

    def __init__(self, spec: BaselineSpec, params: BoostingParams | None = None) -> None:
        if spec.target not in ("return", "logreturn", "range"):
            raise ValueError(f"lgbm has no forecast for target {spec.target!r}")
        self.spec = spec
        self.params = params or BoostingParams()
        self.boosters: list[lgb.Booster] = []

    def fit(
        self,
        windows: npt.NDArray[Any],
        targets: npt.NDArray[Any],
        validation: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None,
    ) -> LightGBMBaseline:
        x = _flat32(windows)
        y = np.asarray(targets, dtype=np.float64).reshape(len(x), -1)
        stop = self.params.patience > 0 and validation is not None and len(validation[0]) > 0
        if stop and validation is not None:
            vx = _flat32(validation[0])
            vy = np.asarray(validation[1], dtype=np.float64).reshape(len(vx), -1)
        self.boosters = []
        for column in range(y.shape[1]):
            train = lgb.Dataset(x, y[:, column], free_raw_data=True)
            valid = [lgb.Dataset(vx, vy[:, column], reference=train)] if stop else None
            callbacks: list[Callable[..., Any]] = (
                [lgb.early_stopping(self.params.patience, verbose=False)] if stop else []
            )
            booster = lgb.train(
                self.params.lgb_params(),
                train,
                num_boost_round=self.params.trees,
                valid_sets=valid,
                callbacks=callbacks,
            )
            self.boosters.append(booster)
        return self

    def predict(self, windows: npt.NDArray[Any]) -> F64:
        if not self.boosters:
            raise RuntimeError("lgbm baseline is not fitted")
        x = _flat32(windows)
        cols = [
            np.asarray(
                b.predict(x, num_iteration=b.best_iteration or None, num_threads=GBM_THREADS)
            )
            for b in self.boosters
        ]
        return np.stack(cols, axis=-1).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        if not self.boosters:
            raise RuntimeError("lgbm baseline is not fitted")
        return {
            "name": self.name,
            "spec": self.spec.to_dict(),
            "params": dataclasses.asdict(self.params),
            "boosters": [
                b.model_to_string(num_iteration=b.best_iteration or None) for b in self.boosters
            ],
        }


def _flat32(windows: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(np.asarray(windows, dtype=np.float32).reshape(len(windows), -1))


Baseline = ZeroBaseline | PersistenceBaseline | RidgeBaseline | LightGBMBaseline
BASELINES: dict[
    str,
    type[ZeroBaseline] | type[PersistenceBaseline] | type[RidgeBaseline] | type[LightGBMBaseline],
] = {
    "zero": ZeroBaseline,
    "persistence": PersistenceBaseline,
    "ridge": RidgeBaseline,
    "lgbm": LightGBMBaseline,
}


def build_baseline(name: str, spec: BaselineSpec) -> Baseline:
    if name not in BASELINES:
        raise ValueError(f"arch: {name!r} is not a baseline; choose from {sorted(BASELINES)}")
    return BASELINES[name](spec)


def baseline_from_dict(data: dict[str, Any]) -> Baseline:
    """Rebuild a saved baseline from its JSON parameters."""
    spec = BaselineSpec.from_dict(data["spec"])
    model = build_baseline(str(data["name"]), spec)
    if isinstance(model, RidgeBaseline):
        model.alpha = float(data["alpha"])
        model.mean = np.asarray(data["mean"], dtype=np.float64)
        model.scale = np.asarray(data["scale"], dtype=np.float64)
        model.coef = np.asarray(data["coef"], dtype=np.float64)
        model.intercept = np.asarray(data["intercept"], dtype=np.float64)
    if isinstance(model, LightGBMBaseline):
        model.params = BoostingParams(**data["params"])
        model.boosters = [lgb.Booster(model_str=str(text)) for text in data["boosters"]]
        if len(model.boosters) != spec.width:
            raise ValueError(f"lgbm: {len(model.boosters)} boosters for {spec.width} outputs")
    return model
