"""A sweep trial's objective, from its validation split only.

``val_loss`` is the best validation loss of the training history. ``val_ic`` and
``val_sharpe`` forecast the session's windows up to the validation split's last
anchor — never a test window — and score the validation forecasts as every
evaluation reads a split (``split_inputs``): the IC of the forecast against the
realised return, or the after-cost Sharpe of the strategy whose θ is chosen on that
same split. With several markets the objective is their mean.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from django.conf import settings

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.evaluation.metrics import information_coefficient
from predictor.ml.evaluation.report import check_validation_forecasts
from predictor.models import Prediction, TrainingSession
from predictor.services.errors import EvaluationError

OBJECTIVES: dict[str, bool] = {"val_loss": True, "val_ic": False, "val_sharpe": False}
"""Objective → whether lower is better."""


def objective_check(objective: str, config: TrainConfig) -> None:
    """Refuse an objective the trial's model cannot give; ``EvaluationError`` says why."""
    if objective not in OBJECTIVES:
        raise EvaluationError(f"objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if objective == "val_loss" and not config.is_network:
        raise EvaluationError(
            f"objective val_loss: {config.arch} records no validation loss; use val_ic or val_sharpe"
        )
    if objective == "val_sharpe" and config.target == "updown":
        raise EvaluationError("objective val_sharpe: updown forecasts no return to trade")


def _best_val_loss(session: TrainingSession) -> float:
    losses = [h["val_loss"] for h in session.history if h.get("val_loss") is not None]
    if not losses:
        raise EvaluationError(f"session {session.id} recorded no validation loss")
    return float(min(losses))


def validation_forecast(session: TrainingSession, *, refuse_tested: bool = True) -> None:
    """Store the session's forecasts up to its validation split's last anchor, no further.

    ``refuse_tested``: refuse a session whose test split was forecast already (a trial's
    objective must come before any test figure exists; SPA after the sweep reads the
    winner's validation too)."""
    last = (session.split.get("validation") or {}).get("last_time")
    if not last:
        raise EvaluationError(f"session {session.id} has no validation split to judge it on")
    from predictor.services.forecasting import session_forecast  # Keras: where it runs

    if not Prediction.objects.filter(session=session, split="validation").exists():
        # One call stores every window up to the end; a second would find nothing left.
        session_forecast(session, end=pd.Timestamp(last).to_pydatetime())
    if refuse_tested and Prediction.objects.filter(session=session, split="test").exists():
        # A guard, not a path: the forecast stops at the validation end.
        raise EvaluationError(f"session {session.id} has test forecasts; its objective is refused")


def trial_objective(
    session: TrainingSession,
    objective: str,
    *,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
) -> float:
    """The trial's objective value on its validation split (finite, or EvaluationError)."""
    # Keras-backed reads, imported where a trial is scored: the web imports this module.
    from predictor.services.forecasting import session_markets
    from predictor.services.split_inputs import (
        evaluation_config,
        market_array,
        session_inputs,
        validation_threshold,
    )

    config = evaluation_config(session)
    objective_check(objective, config)
    if objective == "val_loss":
        return _best_val_loss(session)
    validation_forecast(session)
    values = []
    for market in session_markets(session):
        array = market_array(market, config.interval, session.data_start)
        parts = session_inputs(session, config, market, array)
        if "validation" not in parts:
            raise EvaluationError(f"session {session.id} has no validation forecasts on {market}")
        if objective == "val_ic":
            try:  # an IC over a handful of forecasts would rank trials by noise
                check_validation_forecasts(
                    parts["validation"].counts, settings.EVALUATION_MIN_VALIDATION_FORECASTS
                )
            except ValueError as exc:
                raise EvaluationError(str(exc)) from exc
            inputs = parts["validation"].inputs
            ic = information_coefficient(inputs.predicted_return, inputs.realised_return)
            values.append(ic.ic)
        else:
            values.append(validation_threshold(parts, fee, slippage, mode).validation_sharpe)
    value = float(np.mean(values))
    if not math.isfinite(value):
        raise EvaluationError(f"session {session.id}: {objective} is not finite on validation")
    return value
