"""Hansen's SPA and White's Reality Check across a market's evaluation sessions.

:func:`sessions_reality_check` asks whether any of a market's evaluation sessions
beats holding cash on their common test bars after the search across them
(``arch``). Each session trades its test forecasts with θ chosen on its own
validation split, read as ``split_inputs`` reads every split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictor.ml.arrays import MarketArray
from predictor.ml.config import TrainConfig
from predictor.ml.evaluation import backtest
from predictor.ml.evaluation.backtest import Mode
from predictor.ml.evaluation.kinds import RealityCheckReport
from predictor.ml.evaluation.sharpe import reality_check
from predictor.models import EvaluationReport, Market, SessionMode, SessionStatus, TrainingSession
from predictor.services.forecasting import session_markets
from predictor.services.split_inputs import (
    EvaluationError,
    evaluation_config,
    market_array,
    session_inputs,
    validation_threshold,
)

SPA_SPLIT = "spa"


def sessions_reality_check(
    session: TrainingSession,
    *,
    fee: float = 0.001,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
    reps: int = 1000,
    seed: int = 0,
) -> RealityCheckReport:
    """Hansen SPA / White RC over every evaluation session on this session's first market.

    Each session trades its test forecasts with θ chosen on its own validation
    split; the strategies' net bar returns on the test bars they share are the
    models, cash (zero return) the benchmark. Stored as this session's ``spa``
    report and returned.
    """
    evaluation_config(session)
    market = session_markets(session)[0]
    others = (
        TrainingSession.objects.filter(
            markets=market, status=SessionStatus.SUCCEEDED, interval=session.interval
        )
        .exclude(mode=SessionMode.PRODUCTION)
        .order_by("created")
    )
    starts = [s.data_start for s in others if s.data_start is not None]
    array = market_array(market, session.interval, min(starts, default=None))
    returns: dict[str, pd.Series] = {}
    skipped: dict[str, str] = {}
    horizons = [1]
    for other in others:
        try:
            returns[str(other.pk)] = _strategy_returns(other, market, array, fee, slippage, mode)
        except EvaluationError as exc:
            skipped[str(other.pk)] = str(exc)
            continue
        horizons.append(TrainConfig.from_dict(other.config).effective_horizon)
    if not returns:
        raise EvaluationError(f"no evaluation session on {market} has test forecasts to compare")
    table = pd.concat(returns, axis=1, join="inner")
    if len(table) < 10:
        raise EvaluationError(
            f"the sessions' test periods share {len(table)} bars; SPA needs them to overlap"
        )
    stamps = table.index.to_numpy().astype("datetime64[s]")
    report = RealityCheckReport(
        result=reality_check(
            np.zeros(len(table)), -table.to_numpy(), reps=reps, seed=seed, horizon=max(horizons)
        ),
        market=str(market),
        benchmark="cash: no position, zero return per bar",
        sessions=tuple(str(column) for column in table.columns),
        skipped=skipped,
        start=str(stamps.min()),
        end=str(stamps.max()),
        costs={"fee": fee, "slippage": slippage, "mode": mode},
    )
    EvaluationReport.objects.update_or_create(
        session=session,
        split=SPA_SPLIT,
        defaults={
            "report": report.to_dict(),
            "n_trials": len(table.columns),
            "leakage_alarm": False,
        },
    )
    return report


def _strategy_returns(
    session: TrainingSession,
    market: Market,
    array: MarketArray,
    fee: float,
    slippage: float,
    mode: Mode,
) -> pd.Series:
    """Net open-to-open returns of the session's test strategy, indexed by bar time."""
    config = TrainConfig.from_dict(session.config)
    if config.target == "updown":
        raise EvaluationError("updown forecasts no return to trade")
    parts = session_inputs(session, config, market, array)
    if "test" not in parts:
        raise EvaluationError("no test forecasts stored; run forecast first")
    threshold = validation_threshold(parts, fee, slippage, mode)
    test = parts["test"].inputs
    run = backtest(
        test.open,
        test.predicted_return,
        horizon=test.horizon,
        theta=threshold.theta,
        bars_per_year=test.bars_per_year,
        fee=fee,
        slippage=slippage,
        mode=mode,
        tradable=test.real,
    )
    return pd.Series(run.bar_returns, index=np.asarray(test.times[:-1]))
