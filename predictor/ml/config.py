"""``TrainConfig``: every hyper-parameter of a training session, validated once.

Field names follow the original tool's ``train_model`` flags (letters in the
comments) plus the new model families. Errors name the field so the command
can map them back to its flag.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from predictor.ml.intervals import IntervalError, parse_interval

# The names live here, not in the modules that implement them, so that parsing a
# config (in a management command) does not import Keras or scikit-learn.
FEATURE_SETS: tuple[str, ...] = (
    "close",
    "ohlcv",
    "returns",
    "trend",
    "time",
    "cross",
    "chance",
    "multiscale",
    "volume",
    "market",
)
# Sets that compare markets with each other: they need two or more.
MULTI_MARKET_SETS: frozenset[str] = frozenset({"cross", "market"})
TARGET_KINDS: tuple[str, ...] = ("price", "return", "logreturn", "updown", "range")
SCALERS: tuple[str, ...] = ("standard", "minmax", "robust", "window")
# Every architecture: whether it is a Keras network (built by ``predictor.ml.networks``)
# or a baseline (``predictor.ml.baselines``), and which targets it can learn. A new
# network adds its line here and its builder there.
ARCH_TABLE: dict[str, tuple[bool, frozenset[str]]] = {
    "lstm": (True, frozenset({"price", "return", "logreturn"})),
    "cnn": (True, frozenset({"price", "return", "logreturn"})),
    "mlp": (True, frozenset({"updown"})),
    "range": (True, frozenset({"range"})),
    "ridge": (False, frozenset({"price", "return", "logreturn", "range"})),
    "zero": (False, frozenset({"price", "return", "logreturn", "updown", "range"})),
    "persistence": (False, frozenset({"price", "return", "logreturn"})),
    # Gradient-boosted trees: returns and ranges; trees cannot extrapolate a price level.
    "lgbm": (False, frozenset({"return", "logreturn", "range"})),
}
# The baselines that fit anything to the data (the others only check its shape).
LEARNING_BASELINES: frozenset[str] = frozenset({"ridge", "lgbm"})
ARCHS: tuple[str, ...] = tuple(ARCH_TABLE)
NETWORK_ARCHS: frozenset[str] = frozenset(a for a, (network, _) in ARCH_TABLE.items() if network)
ARCH_TARGETS: dict[str, frozenset[str]] = {a: targets for a, (_, targets) in ARCH_TABLE.items()}


OPTIMIZERS: tuple[str, ...] = (
    "adam",
    "adamw",
    "sgd",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
)
REGRESSION_LOSSES: tuple[str, ...] = (
    "mse",
    "mae",
    "huber",
    "log_cosh",
    "mean_absolute_percentage_error",
)
CLASSIFICATION_LOSSES: tuple[str, ...] = ("sparse_categorical_crossentropy",)
# The most filled (gap) bars one sample may read, for ``max_fill``: a bound on requests, not a
# recommendation (the default, 0, admits no invented bar at all).
MAX_FILL_LIMIT = 100_000
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "sigmoid", "elu", "selu", "gelu", "silu", "linear")
# The allowed values of each named-choice setting: the one table that the config
# check, the web form and the API serializer read.
NAME_CHOICES: dict[str, tuple[str, ...]] = {
    "arch": ARCHS,
    "target": TARGET_KINDS,
    "optimizer": OPTIMIZERS,
    "loss": REGRESSION_LOSSES + CLASSIFICATION_LOSSES,
    "activation": ACTIVATIONS,
    "scaler": SCALERS,
}

# Upper bounds of a training request (the command, the form, the API): against requests that
# would tie a worker up for ever or overflow a database column. The web form and the API
# serializer show them; :meth:`TrainConfig.from_request` enforces them for every entry.
REQUEST_MAXIMA: dict[str, int] = {
    "window": 4096,
    "output_size": 512,
    "shuffle_buffer": 10_000_000,
    "units": 4096,
    "epochs": 10_000,
    "batch_size": 65_536,
    "horizon": 100_000,
    "gap": 1_000_000,
    "seed": 2**31 - 1,
    "early_stopping": 10_000,
    "cnn_blocks": 32,
    "max_fill": MAX_FILL_LIMIT,
    "gbm_trees": 100_000,
    "gbm_leaves": 4096,
}
# What a continuation (``-X``, the API's ``parent``) cannot change: the saved weights and
# scaler were built for these.
FIXED_ON_CONTINUE: tuple[str, ...] = (
    "arch",
    "window",
    "output_size",
    "target",
    "features",
    "scaler",
    "units",
    "interval",
    "horizon",
    "cnn_blocks",
    "batch_norm",
    "activation",
)
# A target that only one architecture learns, and the loss a classification target needs:
# the defaults a request gets when it names one side and not the other.
_ARCH_FOR_TARGET: dict[str, str] = {"updown": "mlp", "range": "range"}
_TARGET_FOR_ARCH: dict[str, str] = {"mlp": "updown", "range": "range"}


class ConfigError(ValueError):
    """A bad hyper-parameter; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class TrainConfig:
    window: int = 15  # -W
    output_size: int = 1  # -O
    shuffle_buffer: int = 1000  # -F
    train_split: float = 0.8  # -T
    units: int = 20  # -U
    epochs: int = 4  # -P
    batch_size: int = 128  # -B
    dropout: float = 0.25  # -D, a fraction
    optimizer: str = "adam"  # -Z
    loss: str = "mse"  # -L
    activation: str = "tanh"  # -A
    scaler: str = "minmax"  # -C
    interval: str = "1h"  # -I
    evaluation: bool = True  # -V
    arch: str = "lstm"
    target: str = "price"
    horizon: int | None = None  # None: 1 for price (the original), 15 otherwise
    features: tuple[str, ...] = ("close",)
    markets: tuple[str, ...] = ()
    # Evaluation: the validation tail before the test part. Production: a tail only
    # when early stopping watches it; without, it is 0 and every window is learned.
    val_split: float = 0.1
    gap: int | None = None  # None: the label reach
    seed: int = 42
    early_stopping: int = 0  # patience in epochs; 0 = off
    learning_rate: float | None = None  # None: the optimizer's default
    up: float = 0.01  # updown: rise that means buy
    down: float = 0.005  # updown: fall that means sell
    cnn_blocks: int = 2
    batch_norm: bool = True
    # XLA: None = Keras' "auto" (off on CPU TensorFlow). Forcing it on made the LSTM with
    # dropout 5x slower on CPU (docs/benchmarks.md, training); True/False force it.
    xla: bool | None = None
    # Filled bars (gaps the grid filled with flat candles) one sample's window, feature
    # look-back and target may read; 0 at every interval: a sample never reads an invented bar.
    max_fill: int = 0
    # lgbm: boosting rounds (the most, with early stopping), leaves per tree; its learning
    # rate is ``learning_rate`` (None: 0.05) and its patience ``early_stopping`` in rounds.
    gbm_trees: int = 300
    gbm_leaves: int = 15

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "markets", tuple(self.markets))
        try:
            object.__setattr__(self, "interval", parse_interval(self.interval).code)
        except IntervalError as exc:
            raise ConfigError("interval", str(exc)) from exc
        self._check_numbers()
        self._check_names()
        self._check_combinations()
        if not self.evaluation and self.early_stopping == 0:
            object.__setattr__(self, "val_split", 0.0)

    def _check_numbers(self) -> None:
        for name in (
            "window",
            "output_size",
            "units",
            "epochs",
            "batch_size",
            "cnn_blocks",
            "gbm_trees",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be a whole number >= 1, got {value!r}")
        for name in ("shuffle_buffer", "early_stopping", "seed", "max_fill"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, f"must be a whole number >= 0, got {value!r}")
        if (
            isinstance(self.gbm_leaves, bool)
            or not isinstance(self.gbm_leaves, int)
            or (self.gbm_leaves < 2)
        ):
            raise ConfigError("gbm_leaves", f"must be a whole number >= 2, got {self.gbm_leaves!r}")
        if self.max_fill > MAX_FILL_LIMIT:
            raise ConfigError(
                "max_fill", f"must be at most {MAX_FILL_LIMIT}, got {self.max_fill!r}"
            )
        _fraction("train_split", self.train_split, low_open=True, high_closed=True)
        _fraction("val_split", self.val_split, low_open=False, high_closed=False)
        _fraction("dropout", self.dropout, low_open=False, high_closed=False)
        for name in ("up", "down"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(name, f"must be a positive fraction, got {getattr(self, name)!r}")
        if self.horizon is not None and (isinstance(self.horizon, bool) or self.horizon < 1):
            raise ConfigError("horizon", f"must be >= 1, got {self.horizon!r}")
        if self.learning_rate is not None and not (0 < self.learning_rate < 10):
            raise ConfigError("learning_rate", f"must be in (0, 10), got {self.learning_rate!r}")
        if self.gap is not None and self.gap < self.reach:
            raise ConfigError("gap", f"{self.gap} is shorter than the label reach {self.reach}")

    def _check_names(self) -> None:
        for name, allowed in NAME_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(name, f"{getattr(self, name)!r} is not one of {list(allowed)}")
        if not self.features:
            raise ConfigError("features", "give at least one feature set")
        for name in self.features:
            if name not in FEATURE_SETS:
                raise ConfigError("features", f"{name!r} is not one of {list(FEATURE_SETS)}")
        if len(set(self.features)) != len(self.features) or len(set(self.markets)) != len(
            self.markets
        ):
            raise ConfigError(
                "features" if len(set(self.features)) != len(self.features) else "markets",
                "contains a duplicate",
            )

    def _check_combinations(self) -> None:
        if self.target not in ARCH_TARGETS[self.arch]:
            raise ConfigError(
                "target",
                f"arch {self.arch} cannot learn target {self.target!r}; "
                f"use one of {sorted(ARCH_TARGETS[self.arch])}",
            )
        classification = self.target == "updown"
        if classification and self.loss not in CLASSIFICATION_LOSSES:
            raise ConfigError(
                "loss", f"updown is a classification target; use {CLASSIFICATION_LOSSES[0]}"
            )
        if not classification and self.loss in CLASSIFICATION_LOSSES:
            raise ConfigError("loss", f"{self.loss} needs the updown target")
        if self.target in ("updown", "range") and self.output_size != 1:
            raise ConfigError("output_size", f"target {self.target} has a fixed output; use 1")
        if self.scaler == "window" and (self.features != ("close",) or len(self.markets) > 1):
            raise ConfigError(
                "scaler",
                "'window' divides by the window's first price: "
                "use it with features=('close',) and one market",
            )
        for name in sorted(MULTI_MARKET_SETS & set(self.features)):
            if len(self.markets) < 2:
                raise ConfigError("features", f"{name!r} needs at least two markets")
        if self.target == "updown" and len(self.markets) > 1:
            raise ConfigError("markets", "the updown classifier takes one market")

    @property
    def effective_horizon(self) -> int:
        if self.horizon is not None:
            return self.horizon
        return 1 if self.target == "price" else 15

    @property
    def reach(self) -> int:
        """Rows after the anchor that a label reads (minimum purge gap)."""
        return label_reach(self.target, self.effective_horizon, self.output_size)

    @property
    def effective_gap(self) -> int:
        return self.reach if self.gap is None else self.gap

    @property
    def training_windows_note(self) -> str:
        """What a session trains on, in words, before the counts are known."""
        if self.evaluation:
            return (
                f"evaluation: train {self.train_split:.0%} of windows, then a test tail; "
                f"the last {self.val_split:.0%} of the train part validates"
            )
        if self.val_split > 0:
            return (
                f"production with early stopping: a validation tail of {self.val_split:.0%} "
                "of windows (after a purge gap) is held out for it and never learned"
            )
        return "production: training on every window"

    @property
    def is_network(self) -> bool:
        return self.arch in NETWORK_ARCHS

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if True}
        data["features"] = list(self.features)
        data["markets"] = list(self.markets)
        return data

    @classmethod
    def from_request(
        cls,
        given: Mapping[str, Any],
        *,
        markets: Sequence[str] = (),
        parent: Mapping[str, Any] | None = None,
        parent_id: str = "",
    ) -> TrainConfig:
        """The config of a training request: the one set of rules every entry uses.

        ``given`` holds only what the user set (``None`` counts as not set). A fresh
        request starts from the defaults, and a target or arch given alone brings its
        partner and loss (``target=updown`` trains the ``mlp`` classifier with
        cross-entropy). A continuation (``parent``: the continued session's stored
        config) starts from that config, and none of :data:`FIXED_ON_CONTINUE` may
        change. Counts are bounded by :data:`REQUEST_MAXIMA`, and a validation share
        asked of a production session that nothing would watch is refused rather than
        silently dropped. Errors are :class:`ConfigError` naming the field.
        """
        values = {name: value for name, value in given.items() if value is not None}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], "is not a training parameter")
        _check_bounds(values)
        base = dict(parent) if parent is not None else cls().to_dict()
        if parent is None:
            values = _request_defaults(values)
        config = cls.from_dict({**base, **values, "markets": [m.upper() for m in markets]})
        if parent is not None:
            before = cls.from_dict({**parent, "markets": [m.upper() for m in markets]})
            for name in FIXED_ON_CONTINUE:
                if getattr(config, name) != getattr(before, name):
                    value = before.to_dict()[name]
                    raise ConfigError(
                        name,
                        f"the continued session {parent_id or '(parent)'} built its model with "
                        f"{name}={value!r}; a continuation cannot change it",
                    )
        if values.get("val_split") and not config.evaluation and not config.early_stopping:
            raise ConfigError(
                "val_split",
                "a production session without early stopping trains on every window, so a "
                "validation tail would only go unlearned; set early stopping or leave it out",
            )
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], "is not a training parameter")
        values = dict(data)
        for name in ("features", "markets"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def _request_defaults(given: dict[str, Any]) -> dict[str, Any]:
    """Fill the settings a fresh request leaves out that its target or arch decide."""
    out = dict(given)
    if out.get("target") in _ARCH_FOR_TARGET and "arch" not in out:
        out["arch"] = _ARCH_FOR_TARGET[out["target"]]
    if out.get("arch") in _TARGET_FOR_ARCH and "target" not in out:
        out["target"] = _TARGET_FOR_ARCH[out["arch"]]
    if out.get("target") == "updown" and "loss" not in out:
        out["loss"] = CLASSIFICATION_LOSSES[0]
    return out


def _check_bounds(given: Mapping[str, Any]) -> None:
    for name, most in REQUEST_MAXIMA.items():
        value = given.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > most:
            raise ConfigError(name, f"must be at most {most:,}, got {value!r}")


def label_reach(kind: str, horizon: int, output_size: int) -> int:
    """How many rows after the anchor a label reads: the minimum purge gap."""
    if kind in ("updown", "range"):
        return horizon
    return horizon * output_size


def _fraction(name: str, value: float, *, low_open: bool, high_closed: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(name, f"must be a number, got {value!r}")
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value <= 1 if high_closed else value < 1
    if not (low_ok and high_ok):
        interval = ("(" if low_open else "[") + "0, 1" + ("]" if high_closed else ")")
        raise ConfigError(name, f"must be a fraction in {interval}, got {value!r}")
