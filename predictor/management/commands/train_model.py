"""``train_model``: the original Crypto Oracle's flags, parsed correctly, plus the new model families.

Parsing and printing only: the request goes to :mod:`predictor.services.runs`,
whose :meth:`TrainConfig.from_request` holds the rules (defaults by target, what
``-X`` keeps, bounds). Walk-forward sessions have their own command,
``walk_forward``, with the same model flags.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.flags import session_id
from predictor.management.training_flags import (
    add_data_flags,
    add_fit_flags,
    add_model_flags,
    flag_of,
    given_config,
    symbols_given,
)
from predictor.ml.config import TrainConfig
from predictor.ml.splits import PART_NAMES
from predictor.models import SessionStatus, TrainingSession
from predictor.services.runs import RunRequest, run_cancel, run_here, run_retry, run_start
from predictor.services.sessions import TrainingError

DEFAULT_SYMBOL = "BTCUSD"  # the original tool's


def _windows_text(samples: dict[str, int]) -> str:
    """'trained on all N windows' when nothing was held out, else the split's counts."""
    if samples and not samples.get("validation") and not samples.get("test"):
        return f"trained on all {samples.get('train', 0):,} windows"
    # PostgreSQL's jsonb stores keys sorted, so the split order is restored here.
    order = [*PART_NAMES, *sorted(set(samples) - set(PART_NAMES))]
    return "windows: " + ", ".join(f"{k} {samples[k]:,}" for k in order if k in samples)


def session_or_error(pk: uuid.UUID, flag: str) -> TrainingSession:
    try:
        return TrainingSession.objects.get(pk=pk)
    except TrainingSession.DoesNotExist:
        raise CommandError(f"{flag}: no training session {pk}") from None


def queued_text(session: TrainingSession) -> str:
    return (
        f"Queued session {session.id} on the training queue. "
        f"Follow it on /training/{session.id}/ or cancel with --cancel {session.id}."
    )


class Command(BaseCommand):
    help = (
        "Train a model on stored candles and record it as a training session. "
        "Evaluation sessions (-V true) split by time into train/validation/test with a purge gap; "
        "production sessions (-V false) train on all data. -X continues a session on newer data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_data_flags(parser)
        add_model_flags(parser)
        add_fit_flags(parser)
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

    def handle(self, *args: Any, **options: Any) -> None:
        if options["cancel"]:
            session = run_cancel(session_or_error(options["cancel"], "--cancel"))
            stopping = session.cancel_requested and session.status == SessionStatus.RUNNING
            self.stdout.write(
                f"Session {session.id}: {session.status}"
                + (" (stops after its current batch)" if stopping else "")
            )
            return
        if options["retry"]:
            session = session_or_error(options["retry"], "--retry")
            try:
                session = run_retry(session, queue=options["run_async"])
            except TrainingError as exc:
                raise CommandError(f"--retry: {exc}") from exc
        else:
            session = self._start(options)
        if options["run_async"]:
            self.stdout.write(queued_text(session))
            return
        self._run(session, verbosity=options["verbosity"])

    def _start(self, options: dict[str, Any]) -> TrainingSession:
        parent = (
            session_or_error(options["existing"], "-X/--existing-id")
            if options["existing"]
            else None
        )
        symbols = symbols_given(options)
        request = RunRequest(
            given=given_config(options),
            symbols=symbols or ([] if parent is not None else [DEFAULT_SYMBOL]),
            exchange=options["exchange"],
            start=options["start"],
            end=options["end"],
            parent=parent,
        )
        try:
            return run_start(request, queue=options["run_async"])
        except TrainingError as exc:
            raise CommandError(f"{flag_of(exc.field, options)}: {exc}") from exc

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

        session = run_here(session, on_epoch=on_epoch, callbacks=callbacks)
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
