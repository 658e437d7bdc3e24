"""Compile, callbacks, seeds and fit — and the whole pipeline from candles to a bundle.

This is the one place that compiles and fits Keras models. Network builders
return uncompiled models; the Django side calls :func:`train_pipeline` with a
progress function and a cancel check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.arrays import (
    BoolArray,
    Float32Array,
    IndexArray,
    MarketArray,
    WindowDataset,
    align_markets,
    filled_reads,
    filled_rows,
    finite_windows,
    window_view,
)
from predictor.ml.baselines import (
    GBM_LEARNING_RATE,
    Baseline,
    BaselineSpec,
    BoostingParams,
    LightGBMBaseline,
    build_baseline,
)
from predictor.ml.config import FIXED_ON_CONTINUE, LEARNING_BASELINES, TrainConfig
from predictor.ml.features import FeatureMatrix, build_features
from predictor.ml.networks import build_network
from predictor.ml.scaling import Scaling, fit_scaling
from predictor.ml.splits import PART_NAMES, GapReport, Part, Split, part_gaps, split_samples
from predictor.ml.targets import REGRESSION_TARGETS, TargetArray, make_targets

EpochFn = Callable[[int, int, dict[str, float]], None]
StopFn = Callable[[], bool]
PREDICT_CHUNK = 4096


def set_seeds(seed: int) -> None:
    """Seed Python, numpy and the Keras backend in one call."""
    keras.utils.set_random_seed(seed)


def resolve_jit_compile(arch: str, xla: bool | None = None) -> bool | str:
    """Keras' "auto" unless the config asks for XLA on (``True``) or off (``False``).

    Forcing XLA for the LSTM on CPU TensorFlow was measured to hurt, not help
    (``bench/train_bench.py``, docs/benchmarks.md): under XLA, Keras' dropout draw
    compiles to a slow random kernel (250-540 ms per batch against 4-7 ms), so the
    product's LSTM ran at 0.2x of the same script without XLA; without dropout XLA
    still gained nothing on 2 cores. ``arch`` is kept for callers and future rules.
    """
    if xla is not None:
        return xla
    return "auto"


def compile_model(model: Any, config: TrainConfig) -> Any:
    """Compile with the optimizer and loss named in the config."""
    optimizer = keras.optimizers.get(config.optimizer)
    if config.learning_rate is not None:
        optimizer.learning_rate = config.learning_rate
    metrics = ["accuracy"] if config.target == "updown" else ["mae"]
    model.compile(
        optimizer=optimizer,
        loss=config.loss,
        metrics=metrics,
        jit_compile=resolve_jit_compile(config.arch, config.xla),
    )
    return model


class ProgressCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Reports each epoch and stops within one batch once ``should_stop()`` says so."""

    def __init__(
        self, total_epochs: int, on_epoch: EpochFn | None, should_stop: StopFn | None
    ) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.on_epoch = on_epoch
        self.should_stop = should_stop
        self.cancelled = False

    def _check(self) -> None:
        if self.should_stop is not None and not self.cancelled and self.should_stop():
            self.cancelled = True
        if self.cancelled:
            self.model.stop_training = True
            # Keras still evaluates after a stopped epoch; this cuts that short too.
            self.model.stop_evaluating = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.on_epoch is not None and not self.cancelled:
            self.on_epoch(epoch + 1, self.total_epochs, _floats(logs or {}))


class ProgressBar(keras.callbacks.Callback):  # type: ignore[misc]
    """A live bar per epoch (batches done, loss, speed) for the command line."""

    def __init__(self, file: Any = None) -> None:
        super().__init__()
        self.file = file
        self.bar: Any = None
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from tqdm import tqdm

        self.epoch = epoch + 1
        total = (self.params or {}).get("epochs")
        self.bar = tqdm(
            total=(self.params or {}).get("steps"),
            desc=f"epoch {self.epoch}/{total}",
            unit="batch",
            file=self.file,
            leave=True,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            loss = (logs or {}).get("loss")
            if loss is not None and batch % 10 == 0:
                self.bar.set_postfix(loss=f"{float(loss):.5g}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            shown = {k: f"{float(v):.5g}" for k, v in (logs or {}).items() if "loss" in k}
            self.bar.set_postfix(shown, refresh=True)
            self.bar.close()
            self.bar = None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _floats(logs: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}


def make_callbacks(
    config: TrainConfig, has_validation: bool, progress: ProgressCallback
) -> list[Any]:
    """Early stopping (best weights back) and LR reduction watch val_loss when there is one."""
    monitor = "val_loss" if has_validation else "loss"
    callbacks: list[Any] = [progress]
    if config.early_stopping > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.early_stopping, restore_best_weights=True
            )
        )
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                factor=0.5,
                patience=max(1, config.early_stopping // 2),
                min_lr=1e-6,
            )
        )
    return callbacks


@dataclass(frozen=True)
class FitResult:
    history: tuple[dict[str, float], ...]
    epochs_run: int
    cancelled: bool
    stopped_early: bool
    seconds: float
    samples_per_second: float


def fit_model(
    model: Any,
    train: WindowDataset,
    validation: WindowDataset | None,
    config: TrainConfig,
    on_epoch: EpochFn | None = None,
    should_stop: StopFn | None = None,
    extra_callbacks: Sequence[Any] = (),
) -> FitResult:
    """Fit a compiled model on window datasets; never prints (``verbose=0``).

    ``extra_callbacks`` (a progress bar, say) run after the built-in ones.
    """
    progress = ProgressCallback(config.epochs, on_epoch, should_stop)
    callbacks = make_callbacks(config, validation is not None, progress) + list(extra_callbacks)
    start = time.perf_counter()
    history = model.fit(
        train, validation_data=validation, epochs=config.epochs, callbacks=callbacks, verbose=0
    )
    seconds = time.perf_counter() - start
    logs = history.history
    epochs_run = len(next(iter(logs.values()), []))
    per_epoch = tuple({k: float(v[i]) for k, v in logs.items()} for i in range(epochs_run))
    samples = len(train.anchors) * max(epochs_run, 1)
    return FitResult(
        history=per_epoch,
        epochs_run=epochs_run,
        cancelled=progress.cancelled,
        stopped_early=not progress.cancelled and epochs_run < config.epochs,
        seconds=seconds,
        samples_per_second=samples / seconds if seconds > 0 else 0.0,
    )


@dataclass(frozen=True)
class PreparedData:
    """Everything derived from the candles before any fitting.

    ``filled[t]`` marks rows the grid invented (a gap in any market); ``anchors``
    are the samples: complete windows with a known label that read at most
    ``config.max_fill`` filled rows (window, feature look-back and label together).
    """

    market: MarketArray
    features: FeatureMatrix
    targets: TargetArray
    anchors: IndexArray
    split: Split
    filled: BoolArray | None = field(default=None, compare=False, repr=False)


def _order_markets(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame], config: TrainConfig
) -> pd.DataFrame | dict[str, pd.DataFrame]:
    if isinstance(frames, pd.DataFrame) or not config.markets:
        return frames if isinstance(frames, pd.DataFrame) else dict(frames)
    if set(frames) != set(config.markets):
        raise ValueError(f"markets: config names {list(config.markets)}, data has {list(frames)}")
    return {m: frames[m] for m in config.markets}


def sample_reach(config: TrainConfig, lookback: int) -> tuple[int, int]:
    """Rows a sample anchored at ``t`` reads before and after ``t``: window plus look-back, label."""
    return config.window - 1 + lookback, config.reach


def _gap_note(candidates: int, kept: int, config: TrainConfig) -> str:
    return (
        f"{kept} of {candidates} complete windows are samples; {candidates - kept} read more "
        f"than max_fill={config.max_fill} filled (gap) bars"
    )


def prepare_data(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame], config: TrainConfig
) -> PreparedData:
    """Align, build features and labels, pick valid anchors and split them.

    A window or label that reads more than ``config.max_fill`` bars the grid
    filled in (gaps) is not a sample; each part's real and filled bars and
    dropped windows go into ``split.gaps``. A part the session needs that ends up
    with no samples is refused, with the counts.
    """
    market = align_markets(_order_markets(frames, config), config.interval)
    features = build_features(market, config.features)
    targets = make_targets(
        market, config.target, config.effective_horizon, config.output_size, config.up, config.down
    )
    candidates = finite_windows(features.flat(), config.window) & targets.valid
    filled = filled_rows(market)
    before, after = sample_reach(config, features.lookback)
    ok = candidates & (filled_reads(filled, before, after) <= config.max_fill)
    anchors = np.flatnonzero(ok).astype(np.int64)
    n_candidates = int(np.count_nonzero(candidates))
    try:
        split = split_samples(
            anchors,
            market.index,
            window=config.window,
            reach=config.reach,
            train_fraction=config.train_split if config.evaluation else 1.0,
            val_fraction=config.val_split,
            gap=config.effective_gap,
            evaluation=config.evaluation,
        )
    except ValueError as exc:
        raise ValueError(f"{exc} ({_gap_note(n_candidates, len(anchors), config)})") from exc
    real = np.asarray(market.observed.all(axis=1))
    counts = {
        name: part_gaps(
            getattr(split, name),
            candidates=candidates,
            kept=ok,
            filled=filled,
            real=real,
            before=before,
            after=after,
        )
        for name in PART_NAMES
    }
    gaps = GapReport(
        config.max_fill, counts, n_candidates - len(anchors), int(np.count_nonzero(filled))
    )
    split = dataclasses.replace(split, gaps=gaps)
    if config.evaluation and config.val_split > 0 and not len(split.validation):
        raise ValueError(
            "validation split: no samples of real data to choose θ on "
            f"({_gap_note(n_candidates, len(anchors), config)}); use more data, a larger "
            "val_split, or allow filled bars with max_fill"
        )
    return PreparedData(market, features, targets, anchors, split, filled)


def data_hash(market: MarketArray) -> str:
    """sha256 of the aligned float32 candle array the session was built from."""
    return hashlib.sha256(
        np.ascontiguousarray(market.values, dtype=np.float32).tobytes()
    ).hexdigest()


def library_versions() -> dict[str, str]:
    names = ("keras", "numpy", "pandas", "scikit-learn", "scipy", "tensorflow", "jax", "torch")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class TrainedBundle:
    """A trained model with everything needed to use, save and audit it."""

    model: Any  # a keras.Model or a baseline
    scaling: Scaling
    config: TrainConfig
    channel_names: tuple[str, ...]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    data_hash: str
    versions: dict[str, str]
    backend: str
    seed: int
    history: tuple[dict[str, float], ...] = ()
    split: dict[str, object] = field(default_factory=dict)
    fit: FitResult | None = field(default=None, compare=False)
    prepared: PreparedData | None = field(default=None, compare=False, repr=False)

    @property
    def is_network(self) -> bool:
        return self.config.is_network

    def predict(self, windows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Raw windows ``[n, W, channels]`` → outputs in target units.

        For ``updown`` the outputs are class probabilities (sell, hold, buy).
        """
        windows = np.asarray(windows, dtype=np.float32)
        if not self.is_network:
            baseline_out: npt.NDArray[np.float64] = self.model.predict(windows)
            return baseline_out
        outs = [
            self._predict_chunk(windows[i : i + PREDICT_CHUNK])
            for i in range(0, len(windows), PREDICT_CHUNK)
        ]
        return np.concatenate(outs) if outs else np.empty((0, 0))

    def _predict_chunk(self, windows: Float32Array) -> npt.NDArray[np.float64]:
        first = None
        if self.scaling.per_window:
            first = windows[:, 0, :1].astype(np.float64)
            x = windows / windows[:, :1, :] - 1.0
        else:
            x = self.scaling.transform_features(windows)
        # predict_on_batch: one compiled call, not predict()'s per-call setup (40-80 ms on TF).
        raw = keras.ops.convert_to_numpy(self.model.predict_on_batch(x))
        if self.config.target not in REGRESSION_TARGETS:
            return np.asarray(raw, dtype=np.float64)
        scale_back = first if self.config.target == "price" else None
        return self.scaling.inverse_targets(raw, window_first=scale_back)


def predict_anchors(
    bundle: TrainedBundle, raw_features: Float32Array, anchors: IndexArray
) -> npt.NDArray[np.float64]:
    """Predictions for the windows ending at ``anchors``, gathered one chunk at a time."""
    view = window_view(raw_features, bundle.config.window)
    starts = np.asarray(anchors, dtype=np.int64) - (bundle.config.window - 1)
    outs = [
        bundle.predict(view[starts[i : i + PREDICT_CHUNK]])
        for i in range(0, len(starts), PREDICT_CHUNK)
    ]
    return np.concatenate(outs) if outs else np.empty((0, 0))


def _datasets(
    config: TrainConfig, prep: PreparedData, scaling: Scaling
) -> tuple[WindowDataset, WindowDataset | None]:
    raw = prep.features.flat()
    x = raw if scaling.per_window else scaling.transform_features(raw)
    if config.target in REGRESSION_TARGETS:
        y: npt.NDArray[Any] = scaling.transform_targets(prep.targets.flat())
    else:
        # Invalid anchors never reach a batch; -1 only keeps the cast defined.
        y = np.nan_to_num(prep.targets.flat(), nan=-1.0).astype(np.int32)

    def dataset(part: Part, shuffle_buffer: int, fill_last: bool) -> WindowDataset:
        return WindowDataset(
            x,
            y,
            part.anchors,
            config.window,
            config.batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=config.seed,
            window_scale=scaling.per_window,
            scale_targets=config.target == "price",
            fill_last=fill_last,
        )

    val = prep.split.validation
    # fill_last only for training: padding validation batches would bias val_loss.
    train = dataset(prep.split.train, config.shuffle_buffer, fill_last=True)
    return train, dataset(val, 0, fill_last=False) if len(val) else None


def _baseline_spec(config: TrainConfig, prep: PreparedData) -> BaselineSpec:
    names = prep.features.names
    markets = len(prep.features.markets)
    close: tuple[int, ...] = ()
    if "close" in names:
        k = names.index("close")
        close = tuple(m * len(names) + k for m in range(markets))
    return BaselineSpec(config.target, config.effective_horizon, config.output_size, markets, close)


def _fit_baseline(config: TrainConfig, prep: PreparedData) -> Baseline:
    spec = _baseline_spec(config, prep)
    anchors = prep.split.train.anchors
    view = window_view(prep.features.flat(), config.window)
    targets = prep.targets.flat()
    if config.arch == "lgbm":
        params = BoostingParams(
            trees=config.gbm_trees,
            leaves=config.gbm_leaves,
            learning_rate=config.learning_rate or GBM_LEARNING_RATE,
            patience=config.early_stopping,
            seed=config.seed,
        )
        # Early stopping watches the validation part only: the test split never reaches here.
        val = prep.split.validation.anchors
        return LightGBMBaseline(spec, params).fit(
            view[anchors - (config.window - 1)],
            targets[anchors],
            (view[val - (config.window - 1)], targets[val]) if len(val) else None,
        )
    model = build_baseline(config.arch, spec)
    # Only the ridge needs the windows themselves; the others just check their shape.
    sample = anchors if config.arch in LEARNING_BASELINES else anchors[:1]
    return model.fit(view[sample - (config.window - 1)], targets[sample])


def train_pipeline(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame],
    config: TrainConfig,
    *,
    on_epoch: EpochFn | None = None,
    should_stop: StopFn | None = None,
    continue_from: TrainedBundle | None = None,
    callbacks: Sequence[Any] = (),
    split: Split | None = None,
) -> TrainedBundle:
    """Candles → features/labels → split → scaler (train rows only) → fit → bundle.

    ``continue_from`` keeps that bundle's scaler and weights and trains on
    ``frames`` (the newer data), instead of refitting the scaler on the new slice
    only as the original tool did. ``split`` replaces the config's split (the
    scaler is then fitted on that split's training rows).
    """
    set_seeds(config.seed)
    prep = prepare_data(frames, config)
    if split is not None:  # a walk-forward fold: its own parts of the same anchors
        prep = dataclasses.replace(prep, split=split)
    if continue_from is not None:
        _check_continuation(continue_from, config, prep)
        scaling = continue_from.scaling
    else:
        regression = config.target in REGRESSION_TARGETS
        scaling = fit_scaling(
            config.scaler,
            prep.features.flat(),
            prep.targets.flat() if regression else None,
            prep.split,
            prep.features.channel_names,
            real_rows=None if prep.filled is None else ~prep.filled,
        )
    fit: FitResult | None = None
    if config.is_network:
        train, val = _datasets(config, prep, scaling)
        if continue_from is not None:
            model = continue_from.model
        else:
            model = build_network(config, (config.window, prep.features.flat().shape[1]))
        compile_model(model, config)
        fit = fit_model(model, train, val, config, on_epoch, should_stop, callbacks)
    else:
        model = _fit_baseline(config, prep)
    return TrainedBundle(
        model=model,
        scaling=scaling,
        config=config,
        channel_names=prep.features.channel_names,
        data_start=prep.market.index[0],
        data_end=prep.market.index[-1],
        data_hash=data_hash(prep.market),
        versions=library_versions(),
        backend=keras.backend.backend(),
        seed=config.seed,
        history=fit.history if fit else (),
        split=prep.split.to_dict(),
        fit=fit,
        prepared=prep,
    )


def _check_continuation(old: TrainedBundle, config: TrainConfig, prep: PreparedData) -> None:
    if not old.is_network or not config.is_network:
        raise ValueError("continue_from: only networks can continue training")
    if old.channel_names != prep.features.channel_names:
        raise ValueError(
            "continue_from: the new data gives other feature channels than the saved model"
        )
    same = (*FIXED_ON_CONTINUE, "markets")
    changed = [name for name in same if getattr(old.config, name) != getattr(config, name)]
    if changed:
        raise ValueError(f"continue_from: {changed[0]} differs from the saved session")
