"""Forward evaluation: a session's forecasts anchored after its training data, judged honestly.

:func:`session_evaluate_forward` answers "does the model work on data it has never
seen, after fees?" for any succeeded session, evaluation or production. The forward
period starts at the first anchor strictly after ``session.data_end`` (no bar a
forward forecast is scored on was a training target) and ends at ``end`` or at the
newest forecast whose target has an actual. Forecasts missing there are made first.

θ is frozen before the forward period, never chosen on it: the session's own
validation θ when it has a validation split, else the validation θ of the
evaluation session it was promoted from (``theta_from``), else a θ the user gives.
The report is the splits' report (errors, IC, the strategy against the baselines,
every significance test, the deflated Sharpe ratio with the market's trial count),
stored as the session's ``forward`` report with the source of θ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from predictor.ml.arrays import MarketArray, unix_seconds
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import ChosenThreshold, given_threshold
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.intervals import parse_interval
from predictor.models import Market, Prediction, SessionMode, SessionStatus, TrainingSession
from predictor.selectors.sessions import trial_count
from predictor.services.evaluation import (
    SplitEvaluation,
    report_common,
    split_report,
    store_split_report,
)
from predictor.services.forecasting import (
    ForecastResult,
    predictions_fill_actuals,
    session_forecast,
    session_markets,
)
from predictor.services.split_inputs import (
    EvaluationError,
    PartInputs,
    forecast_rows,
    market_array,
    part_inputs,
    session_inputs,
    usable_anchors,
    validation_threshold,
)

FORWARD_SPLIT = "forward"
OWN_VALIDATION = "validation of this session"
GIVEN = "given by the user"


@dataclass(frozen=True)
class ForwardResult:
    session_id: str
    n_trials: int
    split: SplitEvaluation
    theta_source: str  # OWN_VALIDATION, "validation of session <id>", GIVEN; "" for updown
    forecasts: tuple[ForecastResult, ...]  # runs made first: missing forward or validation rows


@dataclass(frozen=True)
class _Theta:
    """Where θ comes from, resolved before any forward bar is read."""

    source: str
    session: TrainingSession | None = None  # whose validation split chooses it
    value: float | None = None  # given by the user


def session_evaluate_forward(
    session: TrainingSession,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    theta: float | None = None,
    theta_from: TrainingSession | None = None,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
) -> ForwardResult:
    """Score the forecasts anchored after ``session.data_end`` (and at or after ``start``,
    at or before ``end``) and store them as the session's ``forward`` report."""
    config = _forward_config(session)
    if start is not None and end is not None and start > end:
        raise EvaluationError(f"start {start.isoformat()} is after end {end.isoformat()}")
    source = _theta_source(session, config, theta, theta_from)
    made = _validation_forecasts(source.session)
    markets = session_markets(session)
    arrays = {m.symbol: market_array(m, config.interval, session.data_start) for m in markets}
    made += _forward_forecasts(session, config, markets[0], arrays[markets[0].symbol], start, end)
    predictions_fill_actuals(session)  # "known outcome" below reads the stored actuals
    n_trials = max(trial_count(markets[0], config.target).total, 1)
    costs = (fee, slippage, mode)
    found = [
        _forward_market(session, config, m, arrays[m.symbol], source, (start, end), costs)
        for m in markets
    ]
    with transaction.atomic():
        stored = store_split_report(session, FORWARD_SPLIT, found, n_trials)
    return ForwardResult(
        str(session.id),
        n_trials,
        stored,
        "" if config.target == "updown" else source.source,
        tuple(m for m in made if m.stored),
    )


def _forward_config(session: TrainingSession) -> TrainConfig:
    if not session.has_model:
        state = (
            "succeeded but lost its model"
            if session.status == SessionStatus.SUCCEEDED
            else session.status
        )
        raise EvaluationError(
            f"session {session.id} is {state}: it has no trained model whose forecasts "
            "could be judged"
        )
    if session.data_end is None:
        raise EvaluationError(f"session {session.id} records no end of its training data")
    return TrainConfig.from_dict(session.config)


def _theta_source(
    session: TrainingSession,
    config: TrainConfig,
    theta: float | None,
    theta_from: TrainingSession | None,
) -> _Theta:
    """The session's own validation, else ``theta_from``'s, else ``theta``; never the forward data."""
    if theta is not None and theta_from is not None:
        raise EvaluationError(
            "give θ (--theta) or the session to take it from (--theta-from), not both"
        )
    if config.target == "updown":
        if theta is not None or theta_from is not None:
            raise EvaluationError("updown forecasts no return to trade: no θ is used")
        return _Theta("")
    if session.split.get("validation", {}).get("samples", 0):
        if theta is not None or theta_from is not None:
            raise EvaluationError(
                f"session {session.id} has its own validation split, and θ is chosen there: "
                "drop --theta/--theta-from"
            )
        return _Theta(OWN_VALIDATION, session=session)
    if theta_from is not None:
        _check_theta_from(config, theta_from)
        return _Theta(f"validation of session {theta_from.id}", session=theta_from)
    if theta is not None:
        return _Theta(GIVEN, value=theta)
    raise EvaluationError(
        f"session {session.id} has no validation split to choose θ on, and θ is never chosen on "
        "the forward data: add --theta-from ID (the evaluation session it was promoted from) "
        "or --theta X (a threshold on |forecast return|)"
    )


def _check_theta_from(config: TrainConfig, other: TrainingSession) -> None:
    where = f"--theta-from {other.id}"
    if other.mode != SessionMode.EVALUATION or other.status != SessionStatus.SUCCEEDED:
        raise EvaluationError(
            f"{where}: θ comes from a succeeded evaluation session, and this one is a "
            f"{other.status} {other.mode} session"
        )
    theirs = TrainConfig.from_dict(other.config)
    for name in ("target", "effective_horizon", "interval"):
        if getattr(theirs, name) != getattr(config, name):
            raise EvaluationError(
                f"{where}: its {name} is {getattr(theirs, name)!r}, not {getattr(config, name)!r}; "
                "θ only carries over between sessions forecasting the same thing"
            )
    if not theirs.val_split or not other.split.get("validation", {}).get("samples", 0):
        raise EvaluationError(f"{where}: that session has no validation split to choose θ on")


def _validation_forecasts(owner: TrainingSession | None) -> list[ForecastResult]:
    """The validation forecasts θ is chosen on, made first when none are stored."""
    if owner is None or Prediction.objects.filter(session=owner, split="validation").exists():
        return []
    return [session_forecast(owner, start=owner.data_start, end=owner.data_end)]


def _forward_forecasts(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    array: MarketArray,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> list[ForecastResult]:
    """Forecast the forward period when a window the gap rule allows has no stored forecast."""
    assert session.data_end is not None  # _forward_config refused it
    first = session.data_end + dt.timedelta(seconds=parse_interval(config.interval).seconds)
    if start is not None and start > first:
        first = start
    times = unix_seconds(array.index)
    # Anchors whose window and target lie on the candles and obey the gap rule.
    scorable = np.zeros(len(times), dtype=bool)
    scorable[: max(len(times) - config.reach, 0)] = True
    scorable &= usable_anchors(config, array) & (times >= int(first.timestamp()))
    if end is not None:
        scorable &= times <= int(end.timestamp())
    stored = forecast_rows(session, market, after=session.data_end, until=end).anchor
    if not np.isin(times[scorable], stored).all():
        return [session_forecast(session, start=first, end=end)]
    return []


def _forward_market(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    array: MarketArray,
    source: _Theta,
    period: tuple[dt.datetime | None, dt.datetime | None],
    costs: tuple[float, float, Mode],
) -> SplitEvaluation:
    part = _forward_part(session, config, market, array, *period)
    threshold = _threshold(session, config, market, array, source, costs)
    common = report_common(market, config, trial_count(market, config.target), _whose(session))
    if part.counts.real_forecasts < settings.EVALUATION_MIN_VALIDATION_FORECASTS:
        common["forward_note"] = (
            f"Only {part.counts.real_forecasts} real forward forecasts (fewer than the "
            f"{settings.EVALUATION_MIN_VALIDATION_FORECASTS} θ is ever chosen on): read the "
            "tests' p-values with their effective n, and add candles to judge more."
        )
    try:
        return split_report(FORWARD_SPLIT, config, part, threshold, common, source.source or None)
    except ValueError as exc:  # θ's span reaches into the forward period
        raise EvaluationError(f"forward split: {exc}") from exc


def _forward_part(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    array: MarketArray,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> PartInputs:
    rows = forecast_rows(session, market, after=session.data_end, until=end)
    if start is not None:
        rows = rows.select(rows.anchor >= int(start.timestamp()))
    known = np.flatnonzero(np.isfinite(rows.actual))
    # The period ends at the newest forecast whose target has arrived.
    rows = rows.select(np.arange(len(rows)) <= (known[-1] if len(known) else -1))
    try:
        part = part_inputs(config, array, usable_anchors(config, array), rows)
    except ValueError as exc:  # fewer bars than the horizon needs
        part, reason = None, str(exc)
    else:
        reason = f"{len(rows)} forecast(s) with a known outcome"
    if part is None:
        raise EvaluationError(
            f"session {session.id} has too few forecasts on {market} after its training data "
            f"(ending {session.data_end:%Y-%m-%d %H:%M} UTC) to judge: {reason}; store newer "
            "candles (update_stocks) or widen --start/--end"
        )
    return part


def _threshold(
    session: TrainingSession,
    config: TrainConfig,
    market: Market,
    array: MarketArray,
    source: _Theta,
    costs: tuple[float, float, Mode],
) -> ChosenThreshold | None:
    fee, slippage, mode = costs
    if config.target == "updown":
        return None
    if source.value is not None:
        assert session.data_end is not None
        return given_threshold(
            source.value,
            frozen_at=int(session.data_end.timestamp()),
            horizon=config.effective_horizon,
            fee=fee,
            slippage=slippage,
            mode=mode,
        )
    owner = source.session
    assert owner is not None
    if owner.pk != session.pk:
        if not owner.markets.filter(pk=market.pk).exists():
            raise EvaluationError(f"--theta-from {owner.id}: that session never forecast {market}")
        array = market_array(market, config.interval, owner.data_start)
    parts = session_inputs(owner, TrainConfig.from_dict(owner.config), market, array)
    return validation_threshold(parts, fee, slippage, mode)


def _whose(session: TrainingSession) -> str:
    if session.mode != SessionMode.PRODUCTION:
        return "this one included"
    return "this production session not among them; at least 1 is allowed for"
