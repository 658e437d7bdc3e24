"""Data for the page tests: sessions, predictions and reports made from a market's candles.

Shared by ``test_pages`` and ``test_browser``. Sessions are created by the
training service and then marked trained (no Keras); reports are real
``evaluation_report`` output on the stored candles.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import numpy as np

from predictor.ml.config import TrainConfig
from predictor.ml.evaluation.leakage import leakage_alarm
from predictor.ml.evaluation.metrics import (
    classification_metrics,
    directional_accuracy,
    information_coefficient,
)
from predictor.ml.evaluation.report import EvaluationInputs, evaluation_report
from predictor.ml.evaluation.sharpe import reality_check
from predictor.ml.evaluation.threshold import choose_threshold
from predictor.models import EvaluationReport, Market, Prediction, TrainingSession
from predictor.selectors.candles import candles_frame
from predictor.services.sessions import session_create
from tests.predictor.conftest import TINY

HORIZON = 3
FIGURE = re.compile(r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>', re.S)


def make_session(
    market: Market, *, evaluation: bool, status: str = "succeeded", **config: Any
) -> TrainingSession:
    """A session row made by the service, then marked as trained (no Keras here)."""
    session = session_create(
        TrainConfig(**{**TINY, "evaluation": evaluation, "epochs": 3, **config}),
        symbols=[market.symbol],
        exchange=market.exchange,
    )
    if status != "queued":
        history = [{"epoch": float(e), "loss": 1 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]
        TrainingSession.objects.filter(pk=session.pk).update(
            status=status, epoch=3, loss=1 / 3, val_loss=0.4, history=history
        )
        session.refresh_from_db()
    return session


def _bars(market: Market) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = candles_frame(market)
    times = frame.index.as_unit("s").asi8.astype(np.int64)
    return times, frame["open"].to_numpy(), frame["close"].to_numpy()


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def store_predictions(session: TrainingSession, market: Market, *, seed: int = 0) -> int:
    """One forecast per candle, ``HORIZON`` bars ahead, labelled like the forecast service.

    Production sessions get ``production`` rows; evaluation sessions train /
    validation / test by halves and quarters. The last ``HORIZON`` anchors aim past
    the last candle: ``future`` rows without an actual.
    """
    times, _, close = _bars(market)
    n, bar = len(times), int(times[1] - times[0])
    rng = np.random.default_rng(seed)
    noise = 1 + rng.normal(0, 0.003, n)
    rows = []
    for i in range(TINY["window"] - 1, n):
        target = int(times[i]) + HORIZON * bar
        known = i + HORIZON < n
        if not known:
            split = "future"
        elif not session.evaluation:
            split = "production"
        else:
            split = "train" if i < n // 2 else "validation" if i < 3 * n // 4 else "test"
        rows.append(
            Prediction(
                session=session,
                market=market,
                anchor_time=_utc(times[i]),
                issued_at=_utc(times[i] + bar),
                target_time=_utc(target),
                step=1,
                horizon=HORIZON,
                split=split,
                predicted=float(close[min(i + HORIZON, n - 1)] * noise[i]),
                actual=float(close[i + HORIZON]) if known else None,
            )
        )
    Prediction.objects.bulk_create(rows)
    return len(rows)


def store_report(
    session: TrainingSession, market: Market, split: str, *, leak: bool = False, n_trials: int = 3
) -> EvaluationReport:
    """A real ``evaluation_report`` on the market's candles: noise forecasts, or the future."""
    times, opens, close = _bars(market)
    n = len(times)
    if leak:
        predicted = np.r_[close[HORIZON:], np.full(HORIZON, np.nan)]
    else:
        predicted = close * (1 + np.random.default_rng(1).normal(0, 0.003, n))
    parts = {"validation": slice(n // 2, 3 * n // 4), "test": slice(3 * n // 4, n)}

    def inputs(part: slice) -> EvaluationInputs:
        return EvaluationInputs(
            times=times[part],
            open=opens[part],
            close=close[part],
            predicted_price=predicted[part],
            horizon=HORIZON,
            bar_seconds=int(times[1] - times[0]),
        )

    validation = inputs(parts["validation"])
    threshold = choose_threshold(
        validation_open=validation.open,
        validation_forecast=validation.predicted_return,
        validation_times=validation.times,
        horizon=HORIZON,
        bars_per_year=validation.bars_per_year,
        min_trades=5,
    )
    report = evaluation_report(
        inputs(parts[split]), split=split, threshold=threshold, n_trials=n_trials
    )
    return EvaluationReport.objects.create(
        session=session,
        split=split,
        report=report.to_dict(),
        n_trials=n_trials,
        leakage_alarm=report.leakage.flagged,
    )


def store_classification_report(session: TrainingSession, market: Market) -> EvaluationReport:
    """An updown report as the evaluation service stores it: no strategy, a confusion matrix."""
    rng = np.random.default_rng(2)
    truth, guess = rng.integers(0, 3, 120), rng.integers(0, 3, 120)
    score, realised = rng.normal(0, 1, 120), rng.normal(0, 0.01, 120)
    direction = directional_accuracy(score, realised)
    ic = information_coefficient(score, realised)
    report = {
        "split": "test",
        "label": "out-of-sample (test split)",
        "in_sample": False,
        "start": "2024-01-10T00:00:00",
        "end": "2024-01-14T23:00:00",
        "n_forecasts": 120,
        "horizon": HORIZON,
        "bar_seconds": 3600,
        "classification": classification_metrics(truth, guess).to_dict(),
        "direction": direction.to_dict(),
        "ic": ic.to_dict(),
        "leakage": leakage_alarm(
            ic=ic.ic,
            rank_ic=ic.rank_ic,
            directional_accuracy=direction.accuracy,
            horizon_seconds=HORIZON * 3600,
        ).to_dict(),
        "notes": ["updown forecasts no price: no strategy or θ."],
    }
    return EvaluationReport.objects.create(session=session, split="test", report=report)


def store_spa_report(session: TrainingSession) -> EvaluationReport:
    """A Reality Check / SPA report across sessions (noise strategies against cash)."""
    returns = np.random.default_rng(3).normal(0, 0.01, (200, 3))
    report = reality_check(np.zeros(200), -returns, reps=200, seed=0).to_dict()
    report.update(
        sessions=["a", "b", "c"],
        start="2024-01-10T00:00:00",
        end="2024-01-18T07:00:00",
        benchmark="cash: no position, zero return per bar",
    )
    return EvaluationReport.objects.create(session=session, split="spa", report=report, n_trials=3)


def figures(html: str) -> dict[str, dict[str, Any]]:
    """The Plotly figures a page embeds, by chart id."""
    return {name: json.loads(body) for name, body in FIGURE.findall(html)}


def trace_length(trace: dict[str, Any], axis: str = "x") -> int:
    values = trace.get(axis)
    if isinstance(values, dict):  # plotly's typed array: {"dtype": "f8", "bdata": ...}
        return len(base64.b64decode(values["bdata"])) // np.dtype(values["dtype"]).itemsize
    return len(values or [])
