"""The flags ``train_model`` and ``walk_forward`` share: data, model and fitting options.

Every option defaults to "not given" (``None``) so that a continuation (``-X``) can
tell what the user changed; :func:`given_config` collects what was given and
:meth:`TrainConfig.from_request` (through ``predictor.services.runs``) decides the
rest. :data:`FLAGS` maps each config or request field back to its flag for
error messages.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from predictor.management.flags import (
    choice,
    fraction,
    interval,
    name_list,
    non_negative_int,
    positive_float,
    positive_int,
    session_id,
    str_to_bool,
    when,
)
from predictor.ml.config import (
    ACTIVATIONS,
    ARCHS,
    FEATURE_SETS,
    OPTIMIZERS,
    SCALERS,
    TARGET_KINDS,
)

# Config field → the flag that sets it.
CONFIG_FLAGS: dict[str, str] = {
    "window": "-W/--window-length",
    "output_size": "-O/--output-size",
    "shuffle_buffer": "-F/--shuffle-size",
    "train_split": "-T/--training-split-size",
    "units": "-U/--neurons",
    "epochs": "-P/--epochs",
    "batch_size": "-B/--batch-size",
    "dropout": "-D/--dropout",
    "optimizer": "-Z/--optimizer",
    "loss": "-L/--loss",
    "activation": "-A/--activation",
    "scaler": "-C/--scaler",
    "interval": "-I/--interval",
    "evaluation": "-V/--evaluation-session",
    "arch": "--arch",
    "target": "--target",
    "horizon": "--horizon",
    "features": "--features",
    "markets": "--markets",
    "val_split": "--val-split",
    "gap": "--gap",
    "seed": "--seed",
    "early_stopping": "--early-stopping",
    "learning_rate": "--learning-rate",
    "up": "--up",
    "down": "--down",
    "cnn_blocks": "--cnn-blocks",
    "batch_norm": "--no-batch-norm",
    "xla": "--xla/--no-xla",
    "max_fill": "--max-fill",
    "gbm_trees": "--gbm-trees",
    "gbm_leaves": "--gbm-leaves",
}
# Request field (``TrainingError.field``) → flag; ``symbols`` depends on how they were given.
REQUEST_FLAGS: dict[str, str] = {
    "exchange": "--exchange",
    "start": "-S/--start-date",
    "end": "-E/--end-date",
    "period": "-S/-E",
    "parent": "-X/--existing-id",
    "step": "--step",
    "min_train": "--min-train",
    "train_size": "--train-size",
}


def flag_of(field: str | None, options: dict[str, Any]) -> str:
    """The flag to name in an error about ``field``."""
    if field == "symbols":
        return "--markets" if options.get("markets") else "-N/--stock-name"
    if field is None:
        return "train_model"
    return CONFIG_FLAGS.get(field) or REQUEST_FLAGS.get(field, field)


def given_config(options: dict[str, Any]) -> dict[str, Any]:
    """The config fields whose flags were given."""
    return {
        name: options[name]
        for name in CONFIG_FLAGS
        if name != "markets" and options.get(name) is not None
    }


def symbols_given(options: dict[str, Any]) -> list[str]:
    """-N or --markets, upper-cased; empty when neither was given."""
    if options.get("markets") and options.get("symbol"):
        raise CommandError("-N/--stock-name and --markets: give one or the other")
    if options.get("markets"):
        return [s.upper() for s in options["markets"]]
    return [options["symbol"].upper()] if options.get("symbol") else []


def add_data_flags(parser: CommandParser, *, continuation: bool = True) -> None:
    """Markets, period, interval and splits; with ``continuation``, ``-X`` too."""
    data = parser.add_argument_group("data")
    if continuation:
        data.add_argument(
            "-X",
            "--existing-id",
            dest="existing",
            type=session_id,
            help="continue this session's model and scaler on the candles after its end",
        )
    data.add_argument(
        "-N",
        "--stock-name",
        "--symbol",
        dest="symbol",
        help="market symbol, e.g. BTCUSD (default BTCUSD)",
    )
    data.add_argument(
        "--markets",
        type=name_list(upper=True),
        help="several symbols, comma-separated (multi-coin cnn)",
    )
    data.add_argument("--exchange", help="the markets' exchange when a symbol is on several")
    data.add_argument(
        "-V",
        "--evaluation-session",
        dest="evaluation",
        type=str_to_bool,
        help="true: split by time and evaluate (default); false: production, all data",
    )
    data.add_argument(
        "-S",
        "--start-date",
        dest="start",
        type=when,
        help="first candle to use (default: the first stored)",
    )
    data.add_argument(
        "-E",
        "--end-date",
        dest="end",
        type=when,
        help="last candle to use, inclusive (default: the last stored)",
    )
    data.add_argument(
        "-I",
        "--interval",
        type=interval,
        help="bar interval: M, H, D or a pandas offset like 5min, 4h (default H)",
    )
    data.add_argument(
        "-T",
        "--training-split-size",
        dest="train_split",
        type=fraction,
        help="train share of an evaluation session, e.g. 0.8 or 80%%",
    )
    data.add_argument(
        "--val-split",
        type=fraction,
        help="validation share (default 0.1), carved from the end of the training part; "
        "production (-V false) cuts one only with --early-stopping, else trains on all windows",
    )
    data.add_argument(
        "--gap",
        type=non_negative_int,
        help="purge gap in bars between parts (default and minimum: the label horizon)",
    )
    data.add_argument(
        "--max-fill",
        dest="max_fill",
        type=non_negative_int,
        help="filled (gap) bars one sample's window, look-back and target may read "
        "(default 0 at every interval: no sample reads a bar that never existed)",
    )


def add_model_flags(parser: CommandParser) -> None:
    model = parser.add_argument_group("model")
    model.add_argument(
        "--arch", type=choice(ARCHS), help=f"one of {', '.join(ARCHS)} (default lstm)"
    )
    model.add_argument(
        "--target",
        type=choice(TARGET_KINDS),
        help=f"one of {', '.join(TARGET_KINDS)} (default price)",
    )
    model.add_argument(
        "--horizon", type=positive_int, help="bars ahead (default 1 for price, 15 otherwise)"
    )
    model.add_argument(
        "--features",
        type=name_list(FEATURE_SETS),
        help=f"comma-separated sets: {', '.join(FEATURE_SETS)} (default close)",
    )
    model.add_argument(
        "-W",
        "--window-length",
        dest="window",
        type=positive_int,
        help="bars per input window (default 15)",
    )
    model.add_argument(
        "-O",
        "--output-size",
        dest="output_size",
        type=positive_int,
        help="future points per forecast (default 1)",
    )
    model.add_argument(
        "-U",
        "--neurons",
        dest="units",
        type=positive_int,
        help="units per hidden layer (default 20)",
    )
    model.add_argument(
        "-D", "--dropout", type=fraction, help="dropout fraction, e.g. 0.25 (default 0.25)"
    )
    model.add_argument(
        "-A", "--activation", type=choice(ACTIVATIONS), help="hidden activation (default tanh)"
    )
    model.add_argument(
        "-C",
        "--scaler",
        type=choice(SCALERS),
        help=f"one of {', '.join(SCALERS)} (default minmax)",
    )
    model.add_argument(
        "--up", type=positive_float, help="updown: rise that means buy (default 0.01)"
    )
    model.add_argument(
        "--down", type=positive_float, help="updown: fall that means sell (default 0.005)"
    )
    model.add_argument("--cnn-blocks", type=positive_int, help="cnn: residual blocks (default 2)")
    model.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_const",
        const=False,
        help="cnn: no batch normalisation",
    )
    model.add_argument(
        "--gbm-trees",
        dest="gbm_trees",
        type=positive_int,
        help="lgbm: boosting rounds, the most when early stopping (default 300)",
    )
    model.add_argument(
        "--gbm-leaves",
        dest="gbm_leaves",
        type=positive_int,
        help="lgbm: leaves per tree, at least 2 (default 15)",
    )


def add_fit_flags(parser: CommandParser) -> None:
    fit = parser.add_argument_group("fitting")
    fit.add_argument("-P", "--epochs", type=positive_int, help="epochs (default 4)")
    fit.add_argument(
        "-B",
        "--batch-size",
        dest="batch_size",
        type=positive_int,
        help="batch size (default 128)",
    )
    fit.add_argument(
        "-F",
        "--shuffle-size",
        dest="shuffle_buffer",
        type=non_negative_int,
        help="shuffle buffer in windows, 0 = no shuffling (default 1000)",
    )
    fit.add_argument("-Z", "--optimizer", type=choice(OPTIMIZERS), help="optimizer (default adam)")
    fit.add_argument(
        "-L",
        "--loss",
        type=str.lower,
        help="loss, e.g. mse, mae, huber (default mse; updown: sparse_categorical_crossentropy)",
    )
    fit.add_argument(
        "--learning-rate", type=positive_float, help="default: the optimizer's (lgbm: 0.05)"
    )
    fit.add_argument("--seed", type=non_negative_int, help="random seed (default 42)")
    fit.add_argument(
        "--early-stopping",
        type=non_negative_int,
        help="patience in epochs on validation loss, best weights kept (lgbm: in boosting "
        "rounds); 0 = off (default)",
    )
    fit.add_argument(
        "--xla", dest="xla", action="store_const", const=True, help="force XLA compilation"
    )
    fit.add_argument(
        "--no-xla", dest="xla", action="store_const", const=False, help="no XLA compilation"
    )
