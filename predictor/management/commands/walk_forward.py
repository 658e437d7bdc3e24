"""``walk_forward``: ``train_model --walk-forward`` under its own name.

Retrains on an expanding (or sliding) window every ``--step`` bars with a purge
gap, forecasts each next block out of sample, and evaluates the stitched
forecasts as one report. All of ``train_model``'s model flags apply.
"""

from __future__ import annotations

from typing import Any

from predictor.management.commands.train_model import Command as TrainModelCommand


class Command(TrainModelCommand):
    help = (
        "Walk-forward evaluation: retrain every --step bars (expanding or sliding window, purged), "
        "forecast each next block out of sample and evaluate the stitched forecasts. "
        "Folds run in parallel on Celery workers with --async."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        options["walk_forward"] = True
        super().handle(*args, **options)
