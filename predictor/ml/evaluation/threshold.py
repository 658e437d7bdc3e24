"""Choosing the trading threshold θ on validation data only, then freezing it.

``choose_threshold`` accepts nothing but validation arrays and returns a frozen
``ChosenThreshold`` that remembers the time span it was chosen on. The report
refuses to apply it to a test split that starts on or before that span's end,
so a threshold tuned on the test period cannot be passed off as out of sample.
``given_threshold`` freezes a θ a person names, as of a time before the bars it
will trade (the forward split's: the end of the training data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.ml.evaluation._common import ToDict, as_float_array, same_length
from predictor.ml.evaluation.backtest import DEFAULT_FEE, Mode, backtest
from predictor.ml.evaluation.metrics import to_datetime64

DEFAULT_QUANTILES: tuple[float, ...] = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99)


@dataclass(frozen=True, slots=True)
class ThresholdCandidate(ToDict):
    quantile: float
    theta: float
    sharpe: float
    n_trades: int  # holdings (traded signals): the outcomes the Sharpe rests on


@dataclass(frozen=True, slots=True)
class ChosenThreshold(ToDict):
    """θ frozen after validation; ``validation_end`` guards the test split."""

    theta: float
    quantile: float
    validation_sharpe: float
    validation_trades: int
    meets_min_trades: bool
    min_trades: int
    validation_start: int  # unix seconds, first forecast of the validation split
    validation_end: int  # unix seconds, last forecast of the validation split
    horizon: int
    fee: float
    slippage: float
    mode: Mode
    candidates: tuple[ThresholdCandidate, ...]

    def check_out_of_sample(self, times: npt.ArrayLike) -> None:
        """Raise unless every time in ``times`` lies after the validation span."""
        stamps = to_datetime64(times).astype(np.int64)
        if len(stamps) and int(stamps.min()) <= self.validation_end:
            raise ValueError(
                "the threshold was chosen on data up to unix time "
                f"{self.validation_end}, which overlaps this split (starts {int(stamps.min())}); "
                "choose it on a validation split that ends before the test split begins"
            )


def choose_threshold(
    *,
    validation_open: npt.ArrayLike,
    validation_forecast: npt.ArrayLike,
    validation_times: npt.ArrayLike,
    horizon: int,
    bars_per_year: float,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    min_trades: int = 30,
    validation_tradable: npt.ArrayLike | None = None,
) -> ChosenThreshold:
    """Pick θ among quantiles of |forecast| to maximise net Sharpe on validation.

    Candidates with fewer than ``min_trades`` traded holdings are not eligible; if none
    is, the candidate with the most trades is returned with
    ``meets_min_trades=False`` so the report can say the choice is weak.
    ``validation_tradable`` marks the real bars (see ``backtest``'s ``tradable``).
    """
    open_ = as_float_array(validation_open, "validation_open")
    forecast = as_float_array(validation_forecast, "validation_forecast")
    stamps = to_datetime64(validation_times).astype(np.int64)
    same_length(validation_open=open_, validation_forecast=forecast, validation_times=stamps)
    magnitude = np.abs(forecast[np.isfinite(forecast)])
    if len(magnitude) == 0:
        raise ValueError("the validation split has no finite forecasts")
    thetas = np.quantile(magnitude, np.asarray(quantiles, dtype=np.float64))
    candidates = []
    for quantile, theta in zip(quantiles, thetas.tolist(), strict=True):
        # One backtest per grid point (about ten), each vectorised over bars.
        stats = backtest(
            open_,
            forecast,
            horizon=horizon,
            theta=float(theta),
            bars_per_year=bars_per_year,
            fee=fee,
            slippage=slippage,
            mode=mode,
            tradable=validation_tradable,
        ).stats
        # The eligibility count is of holdings, not positions opened: a run of same-side
        # holdings is one position but as many outcomes, and outcomes are the evidence.
        candidates.append(
            ThresholdCandidate(quantile, float(theta), stats.sharpe, stats.n_holdings)
        )
    eligible = [c for c in candidates if c.n_trades >= min_trades]
    if eligible:
        best = max(eligible, key=lambda c: c.sharpe if np.isfinite(c.sharpe) else -np.inf)
    else:
        best = max(candidates, key=lambda c: c.n_trades)
    return ChosenThreshold(
        theta=best.theta,
        quantile=best.quantile,
        validation_sharpe=best.sharpe,
        validation_trades=best.n_trades,
        meets_min_trades=bool(eligible),
        min_trades=min_trades,
        validation_start=int(stamps.min()),
        validation_end=int(stamps.max()),
        horizon=horizon,
        fee=fee,
        slippage=slippage,
        mode=mode,
        candidates=tuple(candidates),
    )


def given_threshold(
    theta: float,
    *,
    frozen_at: int,
    horizon: int,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
) -> ChosenThreshold:
    """A θ named by a person, frozen at unix time ``frozen_at``: no data chose it here.

    Its span is the single instant ``frozen_at``, so the report refuses it on any bar
    at or before then; there are no candidates and no validation figures (NaN).
    """
    if not np.isfinite(theta) or theta < 0:
        raise ValueError(f"θ must be a finite number ≥ 0, got {theta}")
    return ChosenThreshold(
        theta=float(theta),
        quantile=float("nan"),
        validation_sharpe=float("nan"),
        validation_trades=0,
        meets_min_trades=True,  # no search was made, so there is no weak choice to flag
        min_trades=0,
        validation_start=int(frozen_at),
        validation_end=int(frozen_at),
        horizon=horizon,
        fee=fee,
        slippage=slippage,
        mode=mode,
        candidates=(),
    )
