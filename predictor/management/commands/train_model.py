"""``train_model``: the original Crypto Oracle's flags, parsed correctly, plus the new model families.

Every option defaults to "not given" so that ``-X`` (continue a session on newer
data) can tell what the user changed: the base is the parent's config with -X,
else :class:`TrainConfig`'s defaults (the original tool's).
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

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
    ConfigError,
    TrainConfig,
)
from predictor.ml.splits import PART_NAMES
from predictor.models import SessionMode, SessionStatus, TrainingSession
from predictor.services.training import (
    TrainingError,
    session_cancel,
    session_create,
    session_queue,
    session_retry,
    session_run,
)

# Config field → the flag that sets it, for error messages.
FLAGS: dict[str, str] = {
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
}
# What -X cannot change: the saved weights and scaler were built for these.
FIXED_ON_CONTINUE = (
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


def _windows_text(samples: dict[str, int]) -> str:
    """'trained on all N windows' when nothing was held out, else the split's counts."""
    if samples and not samples.get("validation") and not samples.get("test"):
        return f"trained on all {samples.get('train', 0):,} windows"
    # PostgreSQL's jsonb stores keys sorted, so the split order is restored here.
    order = [*PART_NAMES, *sorted(set(samples) - set(PART_NAMES))]
    return "windows: " + ", ".join(f"{k} {samples[k]:,}" for k in order if k in samples)


class Command(BaseCommand):
    help = (
        "Train a model on stored candles and record it as a training session. "
        "Evaluation sessions (-V true) split by time into train/validation/test with a purge gap; "
        "production sessions (-V false) train on all data. -X continues a session on newer data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        data = parser.add_argument_group("data")
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
            "-X",
            "--existing-id",
            dest="existing",
            type=session_id,
            help="continue this session's model and scaler on the candles after its end",
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
        model.add_argument(
            "--cnn-blocks", type=positive_int, help="cnn: residual blocks (default 2)"
        )
        model.add_argument(
            "--no-batch-norm",
            dest="batch_norm",
            action="store_const",
            const=False,
            help="cnn: no batch normalisation",
        )

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
        fit.add_argument(
            "-Z", "--optimizer", type=choice(OPTIMIZERS), help="optimizer (default adam)"
        )
        fit.add_argument(
            "-L",
            "--loss",
            type=str.lower,
            help="loss, e.g. mse, mae, huber (default mse; updown: sparse_categorical_crossentropy)",
        )
        fit.add_argument("--learning-rate", type=positive_float, help="default: the optimizer's")
        fit.add_argument("--seed", type=non_negative_int, help="random seed (default 42)")
        fit.add_argument(
            "--early-stopping",
            type=non_negative_int,
            help="patience in epochs on validation loss, best weights kept; 0 = off (default)",
        )
        fit.add_argument(
            "--xla", dest="xla", action="store_const", const=True, help="force XLA compilation"
        )
        fit.add_argument(
            "--no-xla", dest="xla", action="store_const", const=False, help="no XLA compilation"
        )

        run = parser.add_argument_group("running")
        run.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="queue on a Celery training worker instead of training here",
        )
        run.add_argument(
            "--retry", type=session_id, help="start this failed or cancelled session again"
        )
        run.add_argument("--cancel", type=session_id, help="cancel this queued or running session")

        walk = parser.add_argument_group("walk-forward (out-of-sample retraining)")
        walk.add_argument(
            "--walk-forward",
            action="store_true",
            help="retrain every --step bars and forecast each next block out of sample",
        )
        walk.add_argument("--step", type=positive_int, help="bars per block (retrain interval)")
        walk.add_argument(
            "--min-train", type=positive_int, help="bars of samples before the first block"
        )
        walk.add_argument(
            "--scheme",
            type=choice(("expanding", "sliding")),
            default="expanding",
            help="expanding (all past data, default) or sliding (the last --train-size bars)",
        )
        walk.add_argument("--train-size", type=positive_int, help="sliding: bars to train on")
        walk.add_argument("--max-folds", type=positive_int, help="keep only the latest folds")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["cancel"]:
            session = self._session(options["cancel"], "--cancel")
            session = session_cancel(session)
            self.stdout.write(
                f"Session {session.id}: {session.status}"
                + (
                    " (stops after its current batch)"
                    if session.cancel_requested and session.status == SessionStatus.RUNNING
                    else ""
                )
            )
            return
        if options["retry"]:
            session = self._session(options["retry"], "--retry")
            try:
                session = session_retry(session, queue=options["run_async"])
            except TrainingError as exc:
                raise CommandError(f"--retry: {exc}") from exc
        elif options["walk_forward"]:
            session = self._create_walk_forward(options)
        else:
            session = self._create(options)
        if options["run_async"]:
            self.stdout.write(
                f"Queued session {session.id} on the training queue. "
                f"Follow it on /training/{session.id}/ or cancel with --cancel {session.id}."
            )
            return
        if session.mode == SessionMode.WALK_FORWARD:
            self._run_walk_forward(session)
        else:
            self._run(session, verbosity=options["verbosity"])

    def _session(self, pk: uuid.UUID, flag: str) -> TrainingSession:
        try:
            return TrainingSession.objects.get(pk=pk)
        except TrainingSession.DoesNotExist:
            raise CommandError(f"{flag}: no training session {pk}") from None

    def config_from_options(
        self,
        options: dict[str, Any],
        parent: TrainingSession | None = None,
        symbols: list[str] | None = None,
    ) -> TrainConfig:
        """The parent's config (with -X) or the defaults, overridden by the flags given."""
        given = {name: options[name] for name in FLAGS if options.get(name) is not None}
        if parent is not None:
            base = dict(parent.config)
            for name in FIXED_ON_CONTINUE:
                if (
                    name in given
                    and given[name] != base.get(name)
                    and not (name == "features" and list(given[name]) == list(base.get(name, [])))
                ):
                    raise CommandError(
                        f"{FLAGS[name]}: -X continues session {parent.id}, whose model was built "
                        f"with {name}={base.get(name)!r}; it cannot change"
                    )
        else:
            base = TrainConfig().to_dict()
            if given.get("target") in ("updown", "range") and "arch" not in given:
                given["arch"] = "mlp" if given["target"] == "updown" else "range"
            if given.get("arch") in ("mlp", "range") and "target" not in given:
                given["target"] = "updown" if given["arch"] == "mlp" else "range"
            if given.get("target") == "updown" and "loss" not in given:
                given["loss"] = "sparse_categorical_crossentropy"
        base.update(given)
        base["markets"] = [s.upper() for s in symbols or []]
        try:
            config = TrainConfig.from_dict(base)
        except ConfigError as exc:
            flag = FLAGS.get(exc.field, exc.field)
            raise CommandError(f"{flag}: {str(exc).split(': ', 1)[-1]}") from exc
        if given.get("val_split") and not config.evaluation and not config.early_stopping:
            raise CommandError(
                "--val-split: a production session (-V false) without --early-stopping trains "
                "on every window, so a validation tail would only go unlearned; "
                "add --early-stopping N or leave --val-split out"
            )
        return config

    def _create(self, options: dict[str, Any]) -> TrainingSession:
        parent = (
            self._session(options["existing"], "-X/--existing-id") if options["existing"] else None
        )
        if options["markets"] and options["symbol"]:
            raise CommandError("-N/--stock-name and --markets: give one or the other")
        if parent is not None:
            symbols = list(
                options["markets"] or ([options["symbol"]] if options["symbol"] else parent.symbols)
            )
            exchange = options["exchange"] or parent.exchange
            if options["start"] is not None:
                raise CommandError("-S/--start-date: -X starts after the continued session's end")
        else:
            symbols = list(options["markets"] or [options["symbol"] or "BTCUSD"])
            exchange = options["exchange"]
        config = self.config_from_options(options, parent, symbols)
        try:
            session = session_create(
                config,
                symbols=symbols,
                exchange=exchange,
                start=options["start"],
                end=options["end"],
                parent=parent,
            )
        except TrainingError as exc:
            flag = "--markets" if options["markets"] else "-N/--stock-name"
            message = str(exc)
            if "start" in message and "before end" in message:
                flag = "-S/-E"
            elif parent is not None and "continue" in message:
                flag = "-X/--existing-id"
            raise CommandError(f"{flag}: {message}") from exc
        if options["run_async"]:
            session_queue(session)
        return session

    def _run(self, session: TrainingSession, verbosity: int) -> None:
        from predictor.ml.training import ProgressBar  # Keras: imported only to train

        config = TrainConfig.from_dict(session.config)
        mode = "evaluation" if session.evaluation else "production"
        self.stdout.write(
            f"Training session {session.id} ({mode}): {config.arch}/{config.target} on "
            f"{', '.join(session.symbols)} {session.interval}, window {config.window}, "
            f"{config.epochs} epoch(s)"
            + (f", continuing {session.parent_id}" if session.parent_id else "")
            + f"\n  {config.training_windows_note}"
        )
        callbacks = [ProgressBar(file=sys.stderr)] if verbosity > 0 and config.is_network else []

        def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
            if verbosity > 0:
                shown = ", ".join(
                    f"{k} {v:.5g}"
                    for k, v in logs.items()
                    if k in ("loss", "val_loss", "mae", "val_mae", "accuracy", "val_accuracy")
                )
                self.stdout.write(f"  epoch {epoch}/{total}: {shown}")

        session = session_run(session.pk, on_epoch=on_epoch, callbacks=callbacks)
        if session.status == SessionStatus.FAILED:
            raise CommandError(f"session {session.id} failed: {session.error}")
        samples = _windows_text(session.samples)
        self._write_gaps(session)
        self.stdout.write(
            self.style.SUCCESS(f"Session {session.id} {session.status}")
            + f"\n  data {session.data_start:%Y-%m-%d %H:%M} … {session.data_end:%Y-%m-%d %H:%M} UTC"
            + f" (sha256 {session.data_hash[:12]}…), {samples}"
            + (
                f"\n  {session.samples_per_second:,.0f} samples/s on {session.device} ({session.backend})"
                if session.samples_per_second
                else ""
            )
            + (f"\n  {session.error}" if session.error else "")
            + (
                f"\n  next: python manage.py forecast -T {session.id}"
                if session.status == SessionStatus.SUCCEEDED
                else ""
            )
        )

    def _write_gaps(self, session: TrainingSession) -> None:
        """Per part: the real and filled bars its samples read and the windows gaps dropped."""
        gaps = (session.split or {}).get("gaps")
        if not gaps:
            return
        self.stdout.write(
            f"  gaps: {gaps['filled_bars']} filled bar(s) on the grid; windows reading more than "
            f"--max-fill {gaps['max_fill']} of them are not samples "
            f"({gaps['windows_dropped']} dropped, {gaps['windows_dropped_outside_parts']} of "
            "them between parts)"
        )
        for name in PART_NAMES:
            part = session.split.get(name) or {}
            if "real_bars" not in part:
                continue
            self.stdout.write(
                f"  {name:<10} {part['real_bars']:>9} real bars {part['filled_bars']:>9} filled "
                f"{part['windows_kept']:>9} windows kept {part['windows_dropped']:>9} dropped"
            )

    def _create_walk_forward(self, options: dict[str, Any]) -> TrainingSession:
        from predictor.services.walkforward import walk_forward_create, walk_forward_queue

        if options["existing"]:
            raise CommandError("-X/--existing-id: a walk-forward session retrains from scratch")
        for flag in ("step", "min_train"):
            if options[flag] is None:
                raise CommandError(f"--{flag.replace('_', '-')}: walk-forward needs it (bars)")
        if options["scheme"] == "sliding" and options["train_size"] is None:
            raise CommandError("--train-size: a sliding window needs its length in bars")
        symbols = list(options["markets"] or [options["symbol"] or "BTCUSD"])
        config = self.config_from_options({**options, "evaluation": True}, None, symbols)
        try:
            session = walk_forward_create(
                config,
                symbols=symbols,
                exchange=options["exchange"],
                start=options["start"],
                end=options["end"],
                step=options["step"],
                min_train=options["min_train"],
                scheme=options["scheme"],
                train_size=options["train_size"],
                max_folds=options["max_folds"],
            )
        except TrainingError as exc:
            raise CommandError(f"--walk-forward: {exc}") from exc
        if options["run_async"]:
            walk_forward_queue(session)
        return session

    def _run_walk_forward(self, session: TrainingSession) -> None:
        from predictor.services.walkforward import walk_forward_run

        self.stdout.write(
            f"Walk-forward session {session.id}: {len(session.folds)} folds of "
            f"{session.split['walk_forward']['step']} bars ({session.split['walk_forward']['scheme']})"
        )

        def on_fold(done: int, total: int, result: dict[str, Any]) -> None:
            self.stdout.write(
                f"  fold {done}/{total}: {result['status']}"
                + (f", {result['predictions']} forecasts" if "predictions" in result else "")
                + (f" ({result['error']})" if result.get("error") else "")
            )

        session = walk_forward_run(session.pk, on_fold=on_fold)
        if session.status != SessionStatus.SUCCEEDED:
            raise CommandError(
                f"walk-forward session {session.id} {session.status}: {session.error}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"Session {session.id} succeeded")
            + f"; report: python manage.py evaluate -T {session.id}"
        )
