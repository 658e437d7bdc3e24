"""Hansen's SPA across a sweep's trials, on the validation split the winner was chosen on.

A sweep picks its winner as the best of N trials on validation; the best of N
no-skill models looks good by chance. This test asks whether any trial's forecasts
beat the no-change forecast (a zero return) in squared error on the validation bars
every trial shares, allowing for the search across all of them. It reads the
validation split only, so it never touches a test window: the winner's test split
stays the one judged once.

Losses are per bar on the real (not gap-filled) bars every trial forecast; the
forecasts' horizons overlap, so consecutive losses are dependent, which the SPA's
stationary block bootstrap allows for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import transaction

from predictor.ml.evaluation.kinds import RealityCheckReport
from predictor.ml.evaluation.sharpe import reality_check
from predictor.models import SessionStatus, Sweep, TrainingSession
from predictor.services.forecasting import session_markets
from predictor.services.split_inputs import (
    EvaluationError,
    evaluation_config,
    market_array,
    session_inputs,
)
from predictor.services.sweep_objective import validation_forecast

BENCHMARK = "no change: a zero return forecast"
MIN_SHARED_BARS = 30


def _validation_losses(trial: TrainingSession) -> tuple[pd.Series, pd.Series]:
    """(model, benchmark) squared errors of the trial's validation forecasts, by bar time."""
    config = evaluation_config(trial)
    if config.target == "updown":
        raise EvaluationError("updown forecasts a class, not a return to score")
    validation_forecast(trial, refuse_tested=False)  # the winner's test was judged already
    market = session_markets(trial)[0]
    parts = session_inputs(trial, config, market, market_array(market, config.interval, trial.data_start))  # fmt: skip
    if "validation" not in parts:
        raise EvaluationError("no validation forecasts")
    inputs = parts["validation"].inputs
    predicted, realised = inputs.predicted_return, inputs.realised_return
    real = inputs.real if inputs.real is not None else np.ones(len(predicted), dtype=bool)
    keep = np.isfinite(predicted) & np.isfinite(realised) & real
    times = np.asarray(inputs.times)[keep]
    model = pd.Series((realised[keep] - predicted[keep]) ** 2, index=times)
    return model, pd.Series(realised[keep] ** 2, index=times)


def sweep_reality_check(sweep: Sweep, *, reps: int = 1000, seed: int = 0) -> RealityCheckReport:
    """SPA of every succeeded trial against the no-change forecast; stored on the sweep."""
    if sweep.status in Sweep.ACTIVE:
        raise EvaluationError(f"sweep {sweep.id} is {sweep.status}; run SPA once it has ended")
    trials = list(sweep.trials.filter(status=SessionStatus.SUCCEEDED).order_by("trial_number"))
    losses: dict[str, pd.Series] = {}
    benchmark: pd.Series | None = None
    skipped: dict[str, str] = {}
    for trial in trials:
        try:
            model, bench = _validation_losses(trial)
        except EvaluationError as exc:
            skipped[str(trial.pk)] = str(exc)
            continue
        losses[str(trial.pk)] = model
        benchmark = bench if benchmark is None else benchmark.combine_first(bench)
    if len(losses) < 2 or benchmark is None:
        raise EvaluationError(
            f"sweep {sweep.id}: {len(losses)} trial(s) with validation forecasts; "
            "SPA compares two or more"
        )
    table = pd.concat(losses, axis=1, join="inner").dropna()
    if len(table) < MIN_SHARED_BARS:
        raise EvaluationError(
            f"the trials' validation forecasts share {len(table)} bars; SPA needs {MIN_SHARED_BARS}"
        )
    stamps = (
        pd.to_datetime(table.index, unit="s") if table.index.dtype.kind in "iu" else table.index
    )
    report = RealityCheckReport(
        result=reality_check(
            benchmark.loc[table.index].to_numpy(),
            table.to_numpy(),
            reps=reps,
            seed=seed,
            horizon=max(evaluation_config(t).effective_horizon for t in trials),
        ),
        market=", ".join(trials[0].symbols) if trials else "",
        benchmark=BENCHMARK,
        sessions=tuple(str(column) for column in table.columns),
        skipped=skipped,
        start=str(stamps.min()),
        end=str(stamps.max()),
        extra={"split": "validation", "loss": "squared error of the forecast return"},
    )
    with transaction.atomic():
        Sweep.objects.filter(pk=sweep.pk).update(spa=report.to_dict())
    sweep.refresh_from_db()
    return report
