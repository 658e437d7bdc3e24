"""One evaluation report per split: metrics, strategy vs baselines, tests, alarm.

Splits are labelled: ``test`` is out of sample and must start after the span
the threshold was chosen on; ``validation`` is where θ was chosen, so its
strategy figures are optimistic; ``train`` is in-sample and says so; ``forward``
is the forecasts anchored after the training data's end, scored with a θ frozen
before them (the report names where θ came from). The names are
the stored split names (``splits.PART_NAMES``); reports stored when the in-sample
one was called ``training`` read back through :func:`split_name`.
The bootstrap SPA is not run here (it is slow and spans sessions): call
``stats.reality_check`` from a background job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from predictor.ml.evaluation._common import FloatArray, ToDict, as_float_array, same_length
from predictor.ml.evaluation.backtest import (
    BacktestResult,
    backtest,
    backtest_baselines,
    baseline_forecasts,
)
from predictor.ml.evaluation.leakage import LeakageAlarm, leakage_alarm
from predictor.ml.evaluation.metrics import (
    DecileAccuracy,
    DirectionalAccuracy,
    ForecastErrors,
    InformationCoefficient,
    accuracy_by_confidence_decile,
    directional_accuracy,
    forecast_errors,
    information_coefficient,
    to_datetime64,
)
from predictor.ml.evaluation.stats import (
    DieboldMariano,
    HitRateTest,
    Loss,
    PesaranTimmermann,
    SharpeTest,
    binomial_hit_test,
    deflated_sharpe_ratio,
    diebold_mariano,
    hit_rate_t_test,
    pesaran_timmermann,
    probabilistic_sharpe_ratio,
)
from predictor.ml.evaluation.threshold import ChosenThreshold

SplitName = Literal["train", "validation", "test", "forward"]
SECONDS_PER_YEAR = 365 * 86_400  # crypto markets trade every day
# θ is refused on a validation split with fewer real forecasts than this: a threshold
# fitted to a few dozen moves (or to a gap's flat bars) is noise dressed as a choice.
MIN_REAL_VALIDATION_FORECASTS = 100
SPLIT_LABELS: dict[str, str] = {
    "train": "IN-SAMPLE (training split): not evidence of skill",
    "validation": "validation split (θ was chosen here: strategy figures are optimistic)",
    "test": "out-of-sample (test split)",
    "forward": "forward (never seen in training)",
}
OUT_OF_SAMPLE: frozenset[str] = frozenset({"test", "forward"})
_OLD_SPLIT_NAMES = {"training": "train"}


def split_name(name: str) -> SplitName:
    """The split's stored name, also for reports written when ``train`` was ``training``."""
    name = _OLD_SPLIT_NAMES.get(name, name)
    if name not in SPLIT_LABELS:
        raise ValueError(f"split must be one of {sorted(SPLIT_LABELS)}, got {name!r}")
    return name  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class EvaluationInputs:
    """Consecutive bars of one split and the forecast made at each bar's close.

    ``predicted_price[t]`` is the forecast, made at the close of bar ``t``, of the
    close of bar ``t + horizon`` (NaN where none was made). The realised value
    is read from ``close`` itself, so the last ``horizon`` forecasts of the
    arrays are not scored; pass bars beyond the split's end to score them.
    """

    times: npt.NDArray[Any]  # bar open times, int64 unix seconds or datetime64
    open: FloatArray
    close: FloatArray
    predicted_price: FloatArray
    horizon: int
    bar_seconds: int
    real: npt.NDArray[np.bool_] | None = None  # False on bars a gap filled in; None: all real

    def __post_init__(self) -> None:
        n = same_length(
            times=np.asarray(self.times),
            open=np.asarray(self.open),
            close=np.asarray(self.close),
            predicted_price=np.asarray(self.predicted_price),
        )
        if self.real is not None and (self.real.dtype != np.bool_ or self.real.shape != (n,)):
            raise ValueError(f"real must be a bool array of {n} bars")
        if self.horizon < 1 or self.bar_seconds < 1:
            raise ValueError("horizon and bar_seconds must be positive")
        if n < self.horizon + 2:
            raise ValueError(f"need more than horizon + 1 = {self.horizon + 1} bars, got {n}")

    @property
    def realised_return(self) -> FloatArray:
        close = as_float_array(self.close, "close")
        realised = np.full(len(close), np.nan)
        realised[: -self.horizon] = close[self.horizon :] / close[: -self.horizon] - 1.0
        return realised

    @property
    def predicted_return(self) -> FloatArray:
        predicted = as_float_array(self.predicted_price, "predicted_price")
        return predicted / as_float_array(self.close, "close") - 1.0

    @property
    def bars_per_year(self) -> float:
        return SECONDS_PER_YEAR / self.bar_seconds


@dataclass(frozen=True, slots=True)
class GapCounts(ToDict):
    """What one split's scores stand on, given the session's ``max_fill`` rule.

    ``real_bars``/``filled_bars`` are the split's bars; ``windows_dropped`` the bars
    whose forecast was not made or not scored because its window or target read
    more than ``max_fill`` filled bars; ``real_forecasts`` the forecasts scored.
    """

    max_fill: int
    real_bars: int
    filled_bars: int
    windows_dropped: int
    real_forecasts: int

    def sentence(self, split: str) -> str:
        return (
            f"{split} split: {self.real_bars} real bars, {self.filled_bars} filled (gap) bars, "
            f"{self.windows_dropped} windows dropped for reading more than {self.max_fill} "
            f"filled bar(s), {self.real_forecasts} real forecasts scored."
        )


def check_validation_forecasts(
    counts: GapCounts, minimum: int = MIN_REAL_VALIDATION_FORECASTS
) -> None:
    """Refuse to choose θ on a validation split with fewer than ``minimum`` real forecasts."""
    if counts.real_forecasts < minimum:
        raise ValueError(
            f"validation split: only {counts.real_forecasts} real forecasts "
            f"({counts.real_bars} real bars, {counts.filled_bars} filled bars, "
            f"{counts.windows_dropped} windows dropped for gaps); θ is chosen on at least "
            f"{minimum}. Use more data, a larger validation split, or allow filled bars (max_fill)"
        )


@dataclass(frozen=True, slots=True)
class SignificanceTests(ToDict):
    t_test: HitRateTest
    binomial: HitRateTest
    pesaran_timmermann: PesaranTimmermann
    dm_vs_zero_return: DieboldMariano
    dm_vs_persistence: DieboldMariano
    probabilistic_sharpe: SharpeTest
    deflated_sharpe: SharpeTest


@dataclass(frozen=True, slots=True)
class SplitReport:
    """One split's full report: errors, direction, strategy vs baselines, tests and alarm."""

    KIND: ClassVar[str] = "strategy"  # the stored JSON's ``kind`` (see ``kinds.report_kind``)

    split: SplitName
    label: str
    in_sample: bool
    start: str
    end: str
    n_forecasts: int
    horizon: int
    bar_seconds: int
    threshold: ChosenThreshold
    notes: tuple[str, ...]
    errors: ForecastErrors
    direction: DirectionalAccuracy
    ic: InformationCoefficient
    deciles: tuple[DecileAccuracy, ...]
    strategy: BacktestResult
    baselines: dict[str, BacktestResult]
    tests: SignificanceTests
    leakage: LeakageAlarm
    gaps: GapCounts | None = None
    theta_source: str | None = None  # where a θ not chosen on this session's validation came from

    def to_dict(self, max_points: int = 500) -> dict[str, Any]:
        """JSON-safe for storage: curves sampled, trade lists left out."""
        scalars = (
            "split", "label", "in_sample", "start", "end", "n_forecasts", "horizon",
            "bar_seconds", "notes",
        )  # fmt: skip
        result: dict[str, Any] = {"kind": self.KIND}
        result.update((name, getattr(self, name)) for name in scalars)
        result["notes"] = list(self.notes)
        for name in ("threshold", "errors", "direction", "ic", "tests", "leakage"):
            result[name] = getattr(self, name).to_dict()
        result["gaps"] = None if self.gaps is None else self.gaps.to_dict()
        if self.theta_source is not None:
            result["theta_source"] = self.theta_source
        result["deciles"] = [decile.to_dict() for decile in self.deciles]
        result["strategy"] = self.strategy.to_dict(max_points, include_trades=False)
        result["baselines"] = {
            name: run.to_dict(max_points, include_trades=False)
            for name, run in self.baselines.items()
        }
        return result


def _threshold_notes(
    split: SplitName, times: npt.NDArray[Any], threshold: ChosenThreshold, source: str | None
) -> list[str]:
    if split in OUT_OF_SAMPLE:
        threshold.check_out_of_sample(times)  # raises if θ saw any of these bars
    if split == "test":
        notes = ["θ was chosen on the validation split only and frozen before this test."]
    elif split == "forward":
        notes = [
            f"θ comes from the {source or 'validation split'} and was frozen before the forward "
            "period; no bar here was seen in training or in choosing θ."
        ]
    elif split == "validation":
        notes = ["θ was chosen on this split: the strategy figures are in-sample for θ."]
    else:
        notes = ["Training split: every figure here is in-sample."]
    if not threshold.meets_min_trades:
        notes.append(
            f"No θ candidate reached {threshold.min_trades} validation trades; "
            "θ is the one that traded most, so the choice is weak."
        )
    return notes


def _tests(
    inputs: EvaluationInputs,
    strategy: BacktestResult,
    *,
    loss: Loss,
    n_trials: int,
    trial_sharpe_variance: float | None,
) -> SignificanceTests:
    predicted, realised = inputs.predicted_return, inputs.realised_return
    naive = baseline_forecasts(inputs.close, inputs.horizon)
    model_errors = realised - predicted

    def dm(name: str) -> DieboldMariano:
        return diebold_mariano(
            model_errors, realised - naive[name], horizon=inputs.horizon, loss=loss, benchmark=name
        )

    return SignificanceTests(
        t_test=hit_rate_t_test(predicted, realised, horizon=inputs.horizon),
        binomial=binomial_hit_test(predicted, realised, horizon=inputs.horizon),
        pesaran_timmermann=pesaran_timmermann(predicted, realised, horizon=inputs.horizon),
        dm_vs_zero_return=dm("zero_return"),
        dm_vs_persistence=dm("persistence"),
        probabilistic_sharpe=probabilistic_sharpe_ratio(
            strategy.bar_returns, horizon=inputs.horizon
        ),
        deflated_sharpe=deflated_sharpe_ratio(
            strategy.bar_returns,
            n_trials=n_trials,
            trial_sharpe_variance=trial_sharpe_variance,
            horizon=inputs.horizon,
        ),
    )


def _actual_price(close: FloatArray, horizon: int) -> FloatArray:
    actual = np.full(len(close), np.nan)
    actual[:-horizon] = close[horizon:]
    return actual


def _strategy_arguments(inputs: EvaluationInputs, threshold: ChosenThreshold) -> dict[str, Any]:
    """The frozen θ with the costs and holding mode it was chosen under."""
    return {
        "horizon": inputs.horizon,
        "theta": threshold.theta,
        "bars_per_year": inputs.bars_per_year,
        "fee": threshold.fee,
        "slippage": threshold.slippage,
        "mode": threshold.mode,
    }


def evaluation_report(
    inputs: EvaluationInputs,
    *,
    split: SplitName,
    threshold: ChosenThreshold,
    n_trials: int,
    trial_sharpe_variance: float | None = None,
    loss: Loss = "squared",
    gaps: GapCounts | None = None,
    theta_source: str | None = None,
) -> SplitReport:
    """Every metric, the strategy beside its baselines, and the significance tests.

    ``threshold`` comes from ``choose_threshold`` on the validation split (or, for
    the ``forward`` split, any θ frozen before it: ``theta_source`` says which); its
    costs and holding mode are used here too. ``n_trials`` is the number of
    configurations tried on this market and target (sessions, sweep trials and
    walk-forward sessions), this one included.
    """
    split = split_name(split)
    if threshold.horizon != inputs.horizon:
        raise ValueError("the threshold was chosen for a different horizon")
    times = to_datetime64(inputs.times)
    notes = _threshold_notes(split, times, threshold, theta_source)
    notes.append(
        f"The deflated Sharpe ratio counts {n_trials} trained evaluation configuration(s) on "
        "this market and target (evaluation sessions, sweep trials and walk-forward sessions), "
        "as recorded by the application."
    )
    predicted, realised = inputs.predicted_return, inputs.realised_return
    close = as_float_array(inputs.close, "close")
    costs = _strategy_arguments(inputs, threshold)
    strategy = backtest(inputs.open, predicted, tradable=inputs.real, **costs)
    direction = directional_accuracy(predicted, realised)
    ic = information_coefficient(predicted, realised, times)
    return SplitReport(
        split=split,
        label=SPLIT_LABELS[split],
        in_sample=split not in OUT_OF_SAMPLE,
        start=str(times.min()),
        end=str(times.max()),
        n_forecasts=int(np.isfinite(predicted).sum()),
        horizon=inputs.horizon,
        bar_seconds=inputs.bar_seconds,
        threshold=threshold,
        notes=tuple(notes),
        gaps=gaps,
        theta_source=theta_source,
        errors=forecast_errors(_actual_price(close, inputs.horizon), inputs.predicted_price, close),
        direction=direction,
        ic=ic,
        deciles=accuracy_by_confidence_decile(predicted, realised),
        strategy=strategy,
        baselines=backtest_baselines(inputs.open, close, tradable=inputs.real, **costs),
        tests=_tests(
            inputs,
            strategy,
            loss=loss,
            n_trials=n_trials,
            trial_sharpe_variance=trial_sharpe_variance,
        ),
        leakage=leakage_alarm(
            ic=ic.ic,
            rank_ic=ic.rank_ic,
            directional_accuracy=direction.accuracy,
            horizon_seconds=inputs.horizon * inputs.bar_seconds,
        ),
    )
