"""``evaluate``: score an evaluation session's forecasts per split and store the reports.

With ``--forward`` it scores any succeeded session's forecasts after its training data
instead (``services.forward``), θ frozen before them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.commands.forecast import session_from_option
from predictor.management.flags import when
from predictor.models import TrainingSession
from predictor.services.sessions import TrainingError

if TYPE_CHECKING:
    from predictor.ml.evaluation.backtest import Mode
    from predictor.ml.evaluation.kinds import RealityCheckReport
    from predictor.services.evaluation import EvaluationResult
    from predictor.services.forward import ForwardResult

MODES: dict[str, Mode] = {"overlapping": "overlapping", "non-overlapping": "non_overlapping"}


def fraction(text: str) -> float:
    """A cost per side as a fraction in [0, 1) (0.001 = 0.1 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1) (0.001 = 0.1 %)")
    return value


def theta(text: str) -> float:
    """θ, a threshold on |forecast return| (0.001 = 0.1 %)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a threshold ≥ 0 (0.001 = 0.1 %)")
    return value


FORWARD_ONLY = ("start", "end", "theta", "theta_from")


class Command(BaseCommand):
    help = (
        "Evaluate a session on its training (in-sample), validation and test forecasts: errors, "
        "direction, IC, a costed long/short strategy with θ chosen on validation only, baselines, "
        "significance tests and the leakage alarm. Forecasts are made first if none are stored. "
        "--forward scores a session's forecasts after its training data instead (any succeeded "
        "session, production ones too), with θ frozen before them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-T",
            "--training-session-id",
            required=True,
            help="the session's id (an evaluation session; any succeeded one with --forward)",
        )
        parser.add_argument(
            "--fee", type=fraction, default=0.001, help="fee per side, a fraction (default 0.001)"
        )
        parser.add_argument(
            "--slippage", type=fraction, default=0.0, help="slippage per side (default 0)"
        )
        parser.add_argument(
            "--mode",
            choices=sorted(MODES),
            default="non-overlapping",
            help="holding: one position at a time, or h overlapping sleeves",
        )
        parser.add_argument(
            "--spa",
            action="store_true",
            help="also run Hansen's SPA / White's Reality Check across the market's sessions",
        )
        parser.add_argument("--reps", type=int, default=1000, help="SPA bootstrap repetitions")
        forward = parser.add_argument_group("forward evaluation")
        forward.add_argument(
            "--forward",
            action="store_true",
            help="score the forecasts anchored after the session's training data (never seen "
            "in training); missing ones are made first",
        )
        forward.add_argument(
            "--start", type=when, help="first forward anchor (ISO); default: after the data end"
        )
        forward.add_argument(
            "--end", type=when, help="last forward anchor (ISO); default: the newest known outcome"
        )
        forward.add_argument(
            "--theta",
            type=theta,
            help="θ for a session with no validation split, fixed before the forward period",
        )
        forward.add_argument(
            "--theta-from",
            metavar="ID",
            help="take θ from this evaluation session's validation split (the one it was "
            "promoted from)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        session = session_from_option(options["training_session_id"])
        if options["reps"] < 10:
            raise CommandError(f"--reps: {options['reps']} is too few (at least 10)")
        # Imported here: the services load Keras, which --help does not need.
        from predictor.services.evaluation import EvaluationError, session_evaluate
        from predictor.services.forecasting import ForecastError
        from predictor.services.reality_check import sessions_reality_check

        costs = {"fee": options["fee"], "slippage": options["slippage"]}
        mode = MODES[options["mode"]]
        if options["forward"]:
            self._forward(session, mode, options)
            return
        given = [name for name in FORWARD_ONLY if options[name] is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise CommandError(f"{flag} is for forward evaluation: add --forward")
        try:
            result = session_evaluate(session, mode=mode, **costs)
            spa = (
                sessions_reality_check(session, mode=mode, reps=options["reps"], **costs)
                if options["spa"]
                else None
            )
        except (EvaluationError, ForecastError, TrainingError, ValueError) as exc:
            raise CommandError(f"-T/--training-session-id {session.id}: {exc}") from None
        self._summary(result, spa)

    def _summary(self, result: EvaluationResult, spa: RealityCheckReport | None) -> None:
        from predictor.ml.evaluation import format_report_table

        out = self.stdout
        if result.forecast is not None:
            out.write(
                f"No forecasts were stored: made {result.forecast.stored} first "
                f"({result.forecast.future} future points)."
            )
        for split in result.splits:
            out.write("")
            out.write(format_report_table(split.report))
        out.write("")
        alarms = [s.split for s in result.splits if s.leakage_alarm]
        out.write(
            f"Stored {len(result.splits)} report(s) for session {result.session_id}; "
            f"n_trials = {result.n_trials} ({result.splits[0].data.get('n_trials_counts', '')})."
        )
        if alarms:
            out.write(f"!! Leakage alarm on: {', '.join(alarms)}")
        if spa is not None:
            out.write("")
            out.write(f"Across {len(spa.sessions)} session(s), {spa.start} → {spa.end}:")
            out.write(f"  {spa.result.sentence}")
            for session_id, why in spa.skipped.items():
                out.write(f"  skipped {session_id}: {why}")

    def _forward(self, session: TrainingSession, mode: Mode, options: dict[str, Any]) -> None:
        if options["spa"]:
            raise CommandError("--spa compares test splits: run it without --forward")
        start, end = options["start"], options["end"]
        if start is not None and end is not None and start > end:
            raise CommandError(f"--start {start.isoformat()} is after --end {end.isoformat()}")
        other = self._theta_from(options["theta_from"])
        from predictor.services.forecasting import ForecastError
        from predictor.services.forward import session_evaluate_forward
        from predictor.services.split_inputs import EvaluationError

        try:
            result = session_evaluate_forward(
                session,
                start=start,
                end=end,
                theta=options["theta"],
                theta_from=other,
                fee=options["fee"],
                slippage=options["slippage"],
                mode=mode,
            )
        except (EvaluationError, ForecastError, TrainingError, ValueError) as exc:
            raise CommandError(f"-T/--training-session-id {session.id}: {exc}") from None
        self._forward_summary(result)

    @staticmethod
    def _theta_from(value: str | None) -> TrainingSession | None:
        if value is None:
            return None
        try:
            return session_from_option(value)
        except CommandError as exc:
            message = str(exc).replace("-T/--training-session-id", "--theta-from")
            raise CommandError(message) from None

    def _forward_summary(self, result: ForwardResult) -> None:
        from predictor.ml.evaluation import format_report_table

        out = self.stdout
        for made in result.forecasts:
            out.write(
                f"Forecasts were missing: made {made.stored} first for session "
                f"{made.session_id} ({made.future} future points)."
            )
        out.write("")
        out.write(format_report_table(result.split.report))
        note = result.split.data.get("forward_note")
        if note:
            out.write(f"  - {note}")
        out.write("")
        out.write(
            f"Stored the forward report for session {result.session_id}; n_trials = "
            f"{result.n_trials} ({result.split.data['n_trials_counts']})."
        )
        if result.split.leakage_alarm:
            out.write("!! Leakage alarm on: forward")
