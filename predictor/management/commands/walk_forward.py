"""``walk_forward``: retrain every ``--step`` bars, forecast each next block out of sample.

Retrains on an expanding (or sliding) window with a purge gap, forecasts each
next block out of sample, and evaluates the stitched forecasts as one report.
``train_model``'s data, model and fitting flags apply (all but ``-X``: every fold
trains from scratch).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.commands.train_model import DEFAULT_SYMBOL, queued_text
from predictor.management.flags import choice, positive_int
from predictor.management.training_flags import (
    add_data_flags,
    add_fit_flags,
    add_model_flags,
    flag_of,
    given_config,
    symbols_given,
)
from predictor.models import SessionStatus, TrainingSession
from predictor.services.runs import RunRequest, run_here, run_start
from predictor.services.sessions import TrainingError
from predictor.services.walkforward import WalkForwardSpec


class Command(BaseCommand):
    help = (
        "Walk-forward evaluation: retrain every --step bars (expanding or sliding window, purged), "
        "forecast each next block out of sample and evaluate the stitched forecasts. "
        "Folds run in parallel on Celery workers with --async."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        walk = parser.add_argument_group("walk-forward (out-of-sample retraining)")
        walk.add_argument(
            "--step", type=positive_int, required=True, help="bars per block (retrain interval)"
        )
        walk.add_argument(
            "--min-train",
            type=positive_int,
            required=True,
            help="bars of samples before the first block",
        )
        walk.add_argument(
            "--scheme",
            type=choice(("expanding", "sliding")),
            default="expanding",
            help="expanding (all past data, default) or sliding (the last --train-size bars)",
        )
        walk.add_argument("--train-size", type=positive_int, help="sliding: bars to train on")
        walk.add_argument("--max-folds", type=positive_int, help="keep only the latest folds")
        walk.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="one Celery task per fold on the training workers, in parallel",
        )
        add_data_flags(parser, continuation=False)
        add_model_flags(parser)
        add_fit_flags(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            spec = WalkForwardSpec(
                step=options["step"],
                min_train=options["min_train"],
                scheme=options["scheme"],
                train_size=options["train_size"],
                max_folds=options["max_folds"],
            )
            request = RunRequest(
                given=given_config(options),
                symbols=symbols_given(options) or [DEFAULT_SYMBOL],
                exchange=options["exchange"],
                start=options["start"],
                end=options["end"],
                walk_forward=spec,
            )
            session = run_start(request, queue=options["run_async"])
        except TrainingError as exc:
            raise CommandError(f"{flag_of(exc.field, options)}: {exc}") from exc
        if options["run_async"]:
            self.stdout.write(queued_text(session))
            return
        self._run(session)

    def _run(self, session: TrainingSession) -> None:
        plan = session.split["walk_forward"]
        self.stdout.write(
            f"Walk-forward session {session.id}: {len(session.folds)} folds of "
            f"{plan['step']} bars ({plan['scheme']})"
        )

        def on_fold(done: int, total: int, result: dict[str, Any]) -> None:
            self.stdout.write(
                f"  fold {done}/{total}: {result['status']}"
                + (f", {result['predictions']} forecasts" if "predictions" in result else "")
                + (f" ({result['error']})" if result.get("error") else "")
            )

        session = run_here(session, on_fold=on_fold)
        if session.status != SessionStatus.SUCCEEDED:
            raise CommandError(
                f"walk-forward session {session.id} {session.status}: {session.error}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"Session {session.id} succeeded")
            + f"; report: python manage.py evaluate -T {session.id}"
        )
