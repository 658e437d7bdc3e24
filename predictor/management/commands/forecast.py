"""``forecast``: store a trained session's forecasts for the windows not yet predicted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.flags import when
from predictor.models import TrainingSession
from predictor.services.sessions import TrainingError

if TYPE_CHECKING:
    from predictor.services.forecasting import ForecastResult


def session_from_option(value: str) -> TrainingSession:
    """The session named by ``-T``, or a CommandError that names the flag."""
    try:
        session_id = uuid.UUID(value)
    except ValueError:
        raise CommandError(f"-T/--training-session-id: {value!r} is not a session id") from None
    session = TrainingSession.objects.filter(pk=session_id).first()
    if session is None:
        raise CommandError(f"-T/--training-session-id: no training session {session_id}")
    return session


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "none"


class Command(BaseCommand):
    help = (
        "Forecast every window of a trained session that has no stored forecast yet (from the "
        "bar after the newest one, or from --start), including the future points past the last "
        "candle, and fill in the actual values of older forecasts whose target has arrived."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-T", "--training-session-id", required=True, help="the trained session's id"
        )
        parser.add_argument(
            "--start", type=when, help="first anchor (ISO); default: after the newest stored"
        )
        parser.add_argument("--end", type=when, help="last anchor (ISO); default: the last candle")

    def handle(self, *args: Any, **options: Any) -> None:
        session = session_from_option(options["training_session_id"])
        start, end = options["start"], options["end"]
        if start is not None and end is not None and start > end:
            raise CommandError(f"--start {start.isoformat()} is after --end {end.isoformat()}")
        # Imported here: the service loads Keras, which --help does not need.
        from predictor.services.forecasting import ForecastError, session_forecast

        try:
            result = session_forecast(session, start=start, end=end)
        except (ForecastError, TrainingError, ValueError) as exc:  # ArtifactError is a ValueError
            raise CommandError(f"-T/--training-session-id {session.id}: {exc}") from None
        self._summary(result)

    def _summary(self, result: ForecastResult) -> None:
        out = self.stdout
        out.write(f"session {result.session_id}")
        if result.windows:
            splits = ", ".join(f"{name} {n}" for name, n in sorted(result.splits.items()))
            out.write(
                f"  windows forecast: {result.windows} "
                f"({_time(result.first_anchor)} → {_time(result.last_anchor)})"
            )
            out.write(f"  rows by split: {splits}")
        else:
            out.write(f"  no new windows (last candle {_time(result.last_candle)})")
        out.write(f"  stored: {result.stored}")
        out.write(f"  future points (target past the last candle): {result.future}")
        out.write(f"  actuals filled: {result.actuals_filled}")
