"""``sweep``: search ``train_model``'s options, every trial judged on validation only.

    python manage.py sweep -N BTCUSDT -I 1m --target logreturn --grid units=16,32,64 window=30,60
    python manage.py sweep -N BTCUSDT --method tpe --trials 20 --parallel 2 \\
        --range learning_rate=0.0001:0.01:log units=8:128 --objective val_ic --async
    python manage.py sweep --show ID | --cancel ID | --resume ID [--async]

Every ``train_model`` flag sets the base request; ``--grid KEY=V1,V2`` lists values
(a list-valued option joins its items with ``+``: ``features=returns+time,returns``),
``--range KEY=LOW:HIGH[:log]`` gives a range for random and TPE draws. Each value is
read by the same parser as its ``train_model`` flag.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.commands.train_model import DEFAULT_SYMBOL
from predictor.management.flags import choice, non_negative_int, positive_int, session_id
from predictor.management.training_flags import (
    CONFIG_FLAGS,
    add_data_flags,
    add_fit_flags,
    add_model_flags,
    flag_of,
    given_config,
    symbols_given,
)
from predictor.models import SessionStatus, Sweep, TrainingSession
from predictor.services.runs import RunRequest
from predictor.services.sessions import TrainingError
from predictor.services.split_inputs import EvaluationError
from predictor.services.sweep_objective import OBJECTIVES
from predictor.services.sweep_spa import sweep_reality_check
from predictor.services.sweep_space import METHODS
from predictor.services.sweeps import (
    SweepRequest,
    sweep_cancel,
    sweep_create,
    sweep_progress,
    sweep_queue,
    sweep_resume,
    sweep_run_here,
    trial_params,
)

LIST_FIELDS = ("features",)
# A flag's long name (``neurons``, ``window_length``) → the field it sets (``units``, ``window``).
FLAG_FIELDS = {
    flag.removeprefix("--").replace("-", "_"): field
    for field, flags in CONFIG_FLAGS.items()
    for flag in flags.split("/")
    if flag.startswith("--")
}


class Command(BaseCommand):
    help = (
        "Hyper-parameter sweep: a grid, random draws or Optuna TPE over train_model's options. "
        "Every trial is an evaluation session scored on its validation split only; the winner's "
        "test split alone is evaluated. --async runs the trials as a Celery group on the "
        "training workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        search = parser.add_argument_group("search")
        search.add_argument(
            "--grid",
            nargs="+",
            default=[],
            metavar="KEY=V1,V2",
            help="values to try per option (a grid takes every combination)",
        )
        search.add_argument(
            "--range",
            dest="ranges",
            nargs="+",
            default=[],
            metavar="KEY=LOW:HIGH[:log]",
            help="a range per option (random and tpe draw from it)",
        )
        search.add_argument(
            "--method", type=choice(METHODS), default="grid", help="grid (default), random or tpe"
        )
        search.add_argument("--trials", type=positive_int, help="random and tpe: how many trials")
        search.add_argument(
            "--parallel", type=positive_int, default=1, help="tpe: trials in flight at once"
        )
        search.add_argument(
            "--objective",
            type=choice(tuple(OBJECTIVES)),
            default="val_loss",
            help="validation figure to optimise: val_loss (default), val_ic or val_sharpe",
        )
        search.add_argument(
            "--sweep-seed", type=non_negative_int, default=0, help="seed of the draws (default 0)"
        )
        search.add_argument("--name", default="", help="a name to find the sweep by")
        search.add_argument(
            "--async",
            dest="run_async",
            action="store_true",
            help="send the trials to the training workers and return",
        )
        manage = parser.add_argument_group("an existing sweep").add_mutually_exclusive_group()
        manage.add_argument("--show", type=session_id, metavar="ID", help="print its progress")
        manage.add_argument("--cancel", type=session_id, metavar="ID", help="cancel it")
        manage.add_argument("--resume", type=session_id, metavar="ID", help="carry it on")
        manage.add_argument(
            "--spa",
            type=session_id,
            metavar="ID",
            help="Hansen's SPA across its trials on validation (does the winner beat "
            "no-change after allowing for the search?)",
        )
        parser.add_argument(
            "--reps", type=positive_int, default=1000, help="--spa: bootstrap replications"
        )
        add_data_flags(parser, continuation=False)
        add_model_flags(parser)
        add_fit_flags(parser)
        self._parser = parser

    def handle(self, *args: Any, **options: Any) -> None:
        existing = options["show"] or options["cancel"] or options["resume"] or options["spa"]
        if existing is not None:
            self._existing(existing, options)
            return
        try:
            space = self._space(options)
            request = SweepRequest(
                base=RunRequest(
                    given=given_config(options),
                    symbols=symbols_given(options) or [DEFAULT_SYMBOL],
                    exchange=options["exchange"],
                    start=options["start"],
                    end=options["end"],
                ),
                space=space,
                method=options["method"],
                n_trials=options["trials"] or 0,
                parallel=options["parallel"],
                objective=options["objective"],
                seed=options["sweep_seed"],
                name=options["name"],
            )
            sweep = sweep_create(request)
        except TrainingError as exc:
            raise CommandError(f"{self._flag(exc.field, options)}: {exc}") from exc
        self.stdout.write(
            f"Sweep {sweep.id}: {sweep.method} over {', '.join(sweep.space)}, "
            f"{sweep.n_trials} trial(s), objective {sweep.objective}"
        )
        if options["run_async"]:
            sweep_queue(sweep)
            self.stdout.write(
                f"Queued on the training workers. Follow it on /sweeps/{sweep.id}/ or "
                f"`sweep --show {sweep.id}`; cancel with --cancel {sweep.id}."
            )
            return
        self._run(sweep)

    # --- parsing ------------------------------------------------------------------------------

    def _flag(self, field: str | None, options: dict[str, Any]) -> str:
        if field in ("space", "method", "n_trials", "parallel", "objective"):
            return {"space": "--grid/--range", "n_trials": "--trials"}.get(field, f"--{field}")
        return flag_of(field, options)

    def _reader(self, key: str) -> Any:
        key = FLAG_FIELDS.get(key, key)
        if key not in CONFIG_FLAGS or key == "markets":
            raise TrainingError(f"{key} is not a train_model option", field="space")
        action = next(a for a in self._parser._actions if a.dest == key)
        if action.type is None:
            raise TrainingError(f"{key} is a switch; it cannot be searched", field="space")
        read: Callable[[str], Any] = action.type  # type: ignore[assignment]

        def value(text: str) -> Any:
            try:
                return read(text.replace("+", ",") if key in LIST_FIELDS else text)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise TrainingError(f"{key}={text!r}: {exc}", field=key) from exc

        return key, value

    def _space(self, options: dict[str, Any]) -> dict[str, Any]:
        space: dict[str, Any] = {}
        for item in options["grid"]:
            key, values = _pair(item, "--grid KEY=V1,V2")
            key, read = self._reader(key)
            space[key] = {"values": [_listed(read(v)) for v in values.split(",") if v != ""]}
        for item in options["ranges"]:
            key, text = _pair(item, "--range KEY=LOW:HIGH[:log]")
            key, read = self._reader(key)
            parts = text.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                raise TrainingError(f"--range {item!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log", field="space")  # fmt: skip
            if key in space:
                raise TrainingError(f"{key} is given twice", field="space")
            space[key] = {"low": read(parts[0]), "high": read(parts[1]), "log": len(parts) == 3}
        if not space:
            raise TrainingError("give --grid or --range: there is nothing to search", field="space")
        return space

    # --- running ------------------------------------------------------------------------------

    def _run(self, sweep: Sweep) -> None:
        def on_trial(trial: TrainingSession) -> None:
            progress = sweep_progress(sweep)
            value = trial.objective_value
            shown = f"{sweep.objective} {value:.6g}" if value is not None else trial.error[:200]
            params = " ".join(f"{k}={v}" for k, v in trial_params(sweep, trial).items())
            self.stdout.write(
                f"  trial {trial.trial_number} ({progress['done']}/{sweep.n_trials}) {params}: "
                f"{trial.status}, {shown}; best so far: trial {progress['best_trial']}"
            )

        sweep = sweep_run_here(sweep, on_trial=on_trial)
        self._summary(sweep)
        if sweep.status != SessionStatus.SUCCEEDED:
            raise CommandError(f"sweep {sweep.id} {sweep.status}: {sweep.error}")

    def _summary(self, sweep: Sweep) -> None:
        progress = sweep_progress(sweep)
        counts = ", ".join(f"{n} {s}" for s, n in progress["counts"].items() if n)
        self.stdout.write(
            f"Sweep {sweep.id} [{sweep.status}]: {progress['created']}/{sweep.n_trials} "
            f"trial(s) made ({counts or 'none yet'})"
        )
        winner = sweep.winner
        if winner is not None:
            params = " ".join(f"{k}={v}" for k, v in trial_params(sweep, winner).items())
            self.stdout.write(
                self.style.SUCCESS(f"Winner on validation: trial {winner.trial_number}")
                + f" (session {winner.id}) {params}, {sweep.objective} "
                f"{winner.objective_value:.6g}"
            )
            self.stdout.write(
                f"Its test split, judged once: python manage.py evaluate -T {winner.id} "
                f"or /evaluation/?session={winner.id}"
            )
        if sweep.error:
            self.stdout.write(f"Error: {sweep.error}")

    def _existing(self, pk: uuid.UUID, options: dict[str, Any]) -> None:
        sweep = Sweep.objects.filter(pk=pk).first()
        if sweep is None:
            raise CommandError(f"no sweep {pk}")
        try:
            if options["cancel"]:
                sweep = sweep_cancel(sweep)
            elif options["spa"]:
                report = sweep_reality_check(sweep, reps=options["reps"])
                self.stdout.write(
                    f"SPA across {len(report.sessions)} trial(s) of sweep {sweep.id} on their "
                    f"shared validation bars ({report.start} … {report.end}), benchmark "
                    f"{report.benchmark}: {report.result.sentence}"
                )
                for trial_id, why in report.skipped.items():
                    self.stdout.write(f"  left out {trial_id}: {why}")
                return
            elif options["resume"]:
                sweep = sweep_resume(sweep, queue=options["run_async"])
                if not options["run_async"] and sweep.status in Sweep.ACTIVE:
                    self._run(sweep)
                    return
        except (TrainingError, EvaluationError) as exc:
            raise CommandError(str(exc)) from exc
        self._summary(sweep)


def _pair(item: str, shape: str) -> tuple[str, str]:
    key, sep, rest = item.partition("=")
    if not sep or not key or not rest:
        raise TrainingError(f"{item!r}: expected {shape}", field="space")
    return key.strip().replace("-", "_"), rest.strip()


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
