"""A long/short backtest of h-bar forecasts, with explicit costs.

Which signals are traded, and which legs pay, is decided by the position engine
(``engine.py``) that the paper trader steps live, so the two cannot disagree;
the equity curve and the statistics are vectorised over its holdings.

Timing: the forecast made at the close of bar ``t`` is known only after that
close, so its trade enters at the *open* of bar ``t + 1`` and exits at the open
of bar ``t + 1 + h``. Equity is marked to market at every open.

Costs: every leg (entry or exit) loses ``fee`` and ``slippage`` as fractions of
the position's value at that leg, so one stand-alone round trip turns a gross
return ``g`` into ``(1 + g) * ((1 - fee) * (1 - slippage)) ** 2 - 1``. When a
holding is followed, in the same sleeve, by another of the same side starting
at its exit, nothing is traded at that open and neither leg is charged (an
always-long forecast pays one entry and one exit, like buy-and-hold).

Counting: each traded signal is a *holding* (a row of the trade list, the unit
of the hit rates); a *trade* is a position opened, so same-side holdings that
continue each other are one trade, and buy-and-hold is one trade with a
turnover of 2 (its entry and its exit). The break-even hit rate is a gross hit
rate, computed from the cost each holding actually paid.

Modes:

* ``non_overlapping``: one sleeve holding all capital; signals that arrive while
  a position is open are skipped.
* ``overlapping``: ``h`` sleeves of ``1/h`` of capital each; the signal of bar
  ``t`` goes to sleeve ``t mod h``, so every signal is traded and the portfolio
  position is the average of the last ``h`` signals (Jegadeesh-Titman). Sleeves
  are not netted against each other, which overstates costs slightly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.evaluation._common import (
    BoolArray,
    FloatArray,
    IntArray,
    ToDict,
    as_float_array,
    json_safe,
    same_length,
)
from predictor.ml.evaluation.engine import ClosedHolding, EngineConfig, PositionEngine
from predictor.ml.evaluation.engine import Mode as Mode  # re-exported: callers import it here

DEFAULT_FEE = 0.001


@dataclass(frozen=True, slots=True)
class BacktestConfig(ToDict):
    theta: float
    horizon: int
    fee: float
    slippage: float
    mode: Mode
    bars_per_year: float

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError("horizon must be at least one bar")
        if not (self.theta >= 0):
            raise ValueError("theta must be >= 0")
        if not (0 <= self.fee < 1 and 0 <= self.slippage < 1):
            raise ValueError("fee and slippage are fractions in [0, 1)")
        if self.mode not in ("overlapping", "non_overlapping"):
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.bars_per_year <= 0:
            raise ValueError("bars_per_year must be positive")

    @property
    def leg_factor(self) -> float:
        return (1.0 - self.fee) * (1.0 - self.slippage)


@dataclass(frozen=True, slots=True)
class Trades(ToDict):
    """The holdings, one column per field; indices are bar positions.

    A row is one traded signal held for ``h`` bars. Same-side rows that follow
    each other in a sleeve are one position: only its first entry and last exit
    trade, so ``cost`` is 0 for the rows in between.
    """

    signal_index: IntArray
    entry_index: IntArray
    exit_index: IntArray
    side: IntArray  # +1 long, -1 short
    weight: FloatArray  # fraction of the sleeve capital: 1 or 1/h
    gross_return: FloatArray
    net_return: FloatArray
    cost: FloatArray  # fraction of the holding's value paid at its traded legs (0, 1 or 2)

    def __len__(self) -> int:
        return len(self.entry_index)


@dataclass(frozen=True, slots=True)
class BacktestStats(ToDict):
    total_return: float
    annualised_return: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float  # negative fraction, e.g. -0.25
    profit_factor: float
    hit_rate: float  # share of holdings with net return > 0
    gross_hit_rate: float  # share of holdings with gross return > 0
    break_even_hit_rate: float  # gross hit rate needed at the cost paid; NaN when none can
    break_even_note: str  # why there is no break-even rate ("" when there is one)
    mean_cost: float  # mean cost paid per holding, a fraction of its value
    n_holdings: int  # rows of the trade list: the unit of the hit rates
    n_trades: int  # positions opened (from flat, or by flipping side)
    turnover: float  # traded notional over the run, in multiples of capital
    exposure: float  # mean gross position, 0..1


@dataclass(frozen=True, slots=True)
class BacktestResult:
    config: BacktestConfig
    trades: Trades
    equity: FloatArray  # at each bar's open, starting at 1
    drawdown: FloatArray  # equity / running peak - 1
    bar_returns: FloatArray  # open-to-open returns of the equity, length n - 1
    stats: BacktestStats

    def to_dict(self, max_points: int = 2000, include_trades: bool = True) -> dict[str, Any]:
        """JSON-safe; curves sampled at most ``max_points`` times (for charts)."""
        n = len(self.equity)
        points = np.unique(np.linspace(0, n - 1, min(max_points, n)).round().astype(np.int64))
        result: dict[str, Any] = {
            "config": self.config.to_dict(),
            "stats": self.stats.to_dict(),
            "curve_index": json_safe(points if n else points[:0]),
            "equity": json_safe(self.equity[points] if n else self.equity),
            "drawdown": json_safe(self.drawdown[points] if n else self.drawdown),
        }
        if include_trades:
            result["trades"] = self.trades.to_dict()
        return result


def signals_from_forecast(forecast_return: FloatArray, theta: float) -> IntArray:
    """+1 above ``theta``, -1 below ``-theta``, 0 otherwise (and for NaN)."""
    with np.errstate(invalid="ignore"):
        long = forecast_return > theta
        short = forecast_return < -theta
    return long.astype(np.int64) - short.astype(np.int64)


def _non_overlapping_starts(active: BoolArray, horizon: int) -> IntArray:
    """Signal bars taken when each trade blocks new ones for ``horizon`` bars.

    The vectorised statement of the engine's non-overlapping rule, kept as its check.

    Greedy: take the first signal, then the first at or after ``t + horizon``,
    and so on. The chain is followed by binary lifting over a jump table of the
    signal bars, so the work is O(m log m) in numpy, not a Python loop per trade.
    """
    candidates = np.flatnonzero(active)
    m = len(candidates)
    if m == 0:
        return candidates.astype(np.int64)
    # jump[k]: the candidate taken after candidate k (m = none left)
    jump = np.r_[np.searchsorted(candidates, candidates + horizon), m]
    length = min(m, (int(candidates[-1]) - int(candidates[0])) // horizon + 1)
    steps = np.arange(length)
    path = np.zeros(length, dtype=np.int64)
    table = jump
    bit = 0
    while (1 << bit) < length:
        chosen = ((steps >> bit) & 1).astype(bool)
        path[chosen] = table[path[chosen]]
        table = table[table]
        bit += 1
    return candidates[path[path < m]].astype(np.int64)


def _engine_holdings(
    open_: FloatArray, signal: IntArray, config: BacktestConfig, real: BoolArray | None
) -> list[ClosedHolding]:
    """Every holding the position engine takes, in time order.

    The engine is stepped only at the bars where something can happen: the bar
    after each non-zero signal, and each due exit. ``can_hold`` is False where the
    exit open ``t + 1 + h`` would lie past the data; with ``real``, the engine
    refuses signals on, or entries at, gap-filled bars.
    """
    h, n = config.horizon, len(open_)
    engine = PositionEngine(EngineConfig(h, config.fee, config.slippage, config.mode))
    opens = open_.tolist()
    sides = signal.tolist()
    reals = real.tolist() if real is not None else None
    closed: list[ClosedHolding] = []

    def flush(before: int) -> None:
        while (due := engine.next_exit()) is not None and due < before:
            closed.extend(
                engine.step(due, opens[due], real=True if reals is None else reals[due]).closed
            )

    for bar in (np.flatnonzero(signal[: n - 1] != 0) + 1).tolist():
        flush(bar)
        step = engine.step(
            bar,
            opens[bar],
            real=True if reals is None else reals[bar],
            signal=sides[bar - 1],
            signal_real=True if reals is None else reals[bar - 1],
            can_hold=bar + h <= n - 1,
        )
        closed.extend(step.closed)
    flush(n)
    return closed


def _equity_curve(
    open_: FloatArray,
    entry: IntArray,
    exit_: IntArray,
    sides: IntArray,
    weights: FloatArray,
    sleeves: IntArray,
    entry_cost: FloatArray,
    factor: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Portfolio value at each open, and the gross exposure of each bar.

    While a holding is open its value is linear in the price, ``a + b * P``, so
    the sums over open holdings are difference arrays; flat sleeves hold cash.
    """
    n = len(open_)
    size = n + 1
    grouped = pd.Series(factor).groupby(sleeves).cumprod().to_numpy()
    first = np.r_[True, sleeves[1:] != sleeves[:-1]]
    before = np.r_[1.0, grouped[:-1]]
    before[first] = 1.0
    value_at_entry = weights * before * entry_cost
    slope = value_at_entry * sides / open_[entry]
    level = value_at_entry * (1 - sides)
    has_next = np.r_[~first[1:], False]
    next_entry = np.where(has_next, np.r_[entry[1:], n], n)
    cash_after = weights * grouped

    def net(add_at: IntArray, remove_at: IntArray, values: FloatArray) -> FloatArray:
        """Difference array: +values at ``add_at``, -values at ``remove_at``."""
        index = np.concatenate([add_at, remove_at])
        signed = np.concatenate([values, -values])
        return np.asarray(np.bincount(index, weights=signed, minlength=size), dtype=np.float64)

    cash = net(exit_, next_entry, cash_after)
    cash -= np.bincount(entry[first], weights=weights[first], minlength=size)
    cash[0] += 1.0  # all capital starts as cash, in every sleeve
    levels = net(entry, exit_, level)
    slopes = net(entry, exit_, slope)
    exposure = net(entry, exit_, weights)
    equity = np.cumsum(cash)[:n] + np.cumsum(levels)[:n] + np.cumsum(slopes)[:n] * open_
    return equity, np.cumsum(exposure)[: n - 1]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 and math.isfinite(denominator) else np.nan


@dataclass(frozen=True, slots=True)
class BreakEven(ToDict):
    """The gross hit rate at which the holdings' mean net move is zero.

    ``rate`` is NaN when no rate in [0, 1] breaks even; ``note`` then says why.
    """

    rate: float
    note: str
    mean_cost: float
    mean_win: float
    mean_loss: float


def break_even_hit_rate(gross: FloatArray, cost: FloatArray) -> BreakEven:
    """Solve ``p * W - (1 - p) * L = c`` for the gross hit rate ``p``.

    ``W`` is the mean gross winning move, ``L`` the mean size of the gross
    losing (or flat) moves and ``c`` the mean cost actually paid per holding,
    all fractions of the holding's value: ``p = (c + L) / (W + L)``. The cross
    term of a cost times a move is neglected. When ``c >= W`` not even a
    perfect record earns its costs, and that is said in words.
    """
    if len(gross) == 0:
        return BreakEven(np.nan, "no trades", np.nan, np.nan, np.nan)
    won = gross > 0
    mean_cost = float(cost.mean())
    mean_loss = float(-gross[~won].mean()) if (~won).any() else 0.0
    if not won.any():
        note = "undefined: no holding won before costs"
        return BreakEven(np.nan, note, mean_cost, np.nan, mean_loss)
    mean_win = float(gross[won].mean())
    if mean_cost >= mean_win:
        note = (
            f"impossible: the mean cost paid per holding ({mean_cost * 100:.3g} %) is at least "
            f"the mean winning move ({mean_win * 100:.3g} %), so not even a 100 % hit rate "
            "covers the costs"
        )
        return BreakEven(np.nan, note, mean_cost, mean_win, mean_loss)
    rate = (mean_cost + mean_loss) / (mean_win + mean_loss)
    return BreakEven(rate, "", mean_cost, mean_win, mean_loss)


def trade_counts(
    entry_traded: BoolArray, exit_traded: BoolArray, weights: FloatArray
) -> tuple[int, float]:
    """Positions opened, and turnover: the sum of |position changes| in multiples of capital.

    A traded entry opens a position (from flat, or the second leg of a flip);
    a continuation of the same side trades nothing. Each traded leg moves the
    holding's share of capital once, so a flip counts twice.
    """
    n_trades = int(np.count_nonzero(entry_traded))
    turnover = float(np.sum(weights * (entry_traded.astype(np.float64) + exit_traded)))
    return n_trades, turnover


def _stats(
    equity: FloatArray,
    drawdown: FloatArray,
    bar_returns: FloatArray,
    trades: Trades,
    exposure: FloatArray,
    counts: tuple[int, float],
    config: BacktestConfig,
) -> BacktestStats:
    bars_per_year = config.bars_per_year
    final = float(equity[-1]) if len(equity) else 1.0
    periods = len(bar_returns)
    annualised = np.nan
    if periods and final > 0:
        with np.errstate(over="ignore"):  # a short lucky run can annualise to +inf
            annualised = float(np.float64(final) ** (bars_per_year / periods)) - 1.0
    mean = float(bar_returns.mean()) if periods else np.nan
    spread = float(bar_returns.std(ddof=1)) if periods > 1 else np.nan
    downside = float(np.sqrt(np.mean(np.minimum(bar_returns, 0.0) ** 2))) if periods else np.nan
    root_year = math.sqrt(bars_per_year)
    max_drawdown = float(drawdown.min()) if len(drawdown) else 0.0
    net = trades.net_return
    gains, losses = float(net[net > 0].sum()), float(-net[net < 0].sum())
    even = break_even_hit_rate(trades.gross_return, trades.cost)
    return BacktestStats(
        total_return=final - 1.0,
        annualised_return=annualised,
        sharpe=_ratio(mean, spread) * root_year,
        sortino=_ratio(mean, downside) * root_year,
        calmar=_ratio(annualised, -max_drawdown),
        max_drawdown=max_drawdown,
        profit_factor=_ratio(gains, losses) if len(net) else np.nan,
        hit_rate=float(np.mean(net > 0)) if len(net) else np.nan,
        gross_hit_rate=float(np.mean(trades.gross_return > 0)) if len(net) else np.nan,
        break_even_hit_rate=even.rate,
        break_even_note=even.note,
        mean_cost=even.mean_cost,
        n_holdings=len(net),
        n_trades=counts[0],
        turnover=counts[1],
        exposure=float(exposure.mean()) if len(exposure) else 0.0,
    )


def _readonly(*arrays: npt.NDArray[Any]) -> None:
    for array in arrays:
        array.flags.writeable = False


def backtest(
    open_prices: npt.ArrayLike,
    forecast_return: npt.ArrayLike,
    *,
    horizon: int,
    theta: float,
    bars_per_year: float,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
    tradable: npt.ArrayLike | None = None,
) -> BacktestResult:
    """Trade ``forecast_return[t]`` (made at the close of bar t) from open t+1 to open t+1+h.

    ``open_prices`` are the opens of consecutive bars; a NaN forecast is no signal.
    ``tradable[t]`` (optional, bool) says bar ``t`` is real: no position opens from a
    signal on a bar that is not, nor at the open of one (a gap-filled bar's price
    never existed). Returns the trade list, equity and drawdown at every open, and
    summary stats.
    """
    config = BacktestConfig(theta, horizon, fee, slippage, mode, bars_per_year)
    open_ = as_float_array(open_prices, "open_prices")
    forecast = as_float_array(forecast_return, "forecast_return")
    n = same_length(open_prices=open_, forecast_return=forecast)
    if n < 2:
        raise ValueError("a backtest needs at least two bars")
    real = None
    if tradable is not None:
        real = np.asarray(tradable)
        if real.dtype != np.bool_ or real.shape != (n,):
            raise ValueError(
                f"tradable must be a bool array of {n} bars, got {real.dtype} {real.shape}"
            )
    signal = signals_from_forecast(forecast, theta)
    held = _engine_holdings(open_, signal, config, real)
    # The equity curve groups holdings by sleeve, in time order within each.
    by_sleeve = np.argsort(np.array([c.sleeve for c in held], dtype=np.int64), kind="stable")

    def column(name: str, dtype: type) -> npt.NDArray[Any]:
        return np.array([getattr(c, name) for c in held], dtype=dtype)[by_sleeve]

    starts, sleeves = column("signal_index", np.int64), column("sleeve", np.int64)
    sides, weights = column("side", np.int64), column("weight", np.float64)
    entry, exit_ = column("entry_index", np.int64), column("exit_index", np.int64)
    gross, factor = column("gross_return", np.float64), column("growth", np.float64)
    entry_traded, exit_traded = column("entry_traded", np.bool_), column("exit_traded", np.bool_)
    entry_cost = np.where(entry_traded, config.leg_factor, 1.0)
    exit_cost = np.where(exit_traded, config.leg_factor, 1.0)
    if len(starts):
        equity, exposure = _equity_curve(
            open_, entry, exit_, sides, weights, sleeves, entry_cost, factor
        )
    else:
        equity, exposure = np.ones(n), np.zeros(n - 1)
    order = np.argsort(starts, kind="stable")  # the trade list reads in time order
    trades = Trades(
        signal_index=starts[order],
        entry_index=entry[order],
        exit_index=exit_[order],
        side=sides[order],
        weight=weights[order],
        gross_return=gross[order],
        net_return=factor[order] - 1.0,
        cost=1.0 - (entry_cost * exit_cost)[order],
    )
    counts = trade_counts(entry_traded, exit_traded, weights)
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bar_returns = equity[1:] / equity[:-1] - 1.0
    bar_returns = np.nan_to_num(bar_returns, nan=0.0, posinf=0.0, neginf=0.0)
    stats = _stats(equity, drawdown, bar_returns, trades, exposure, counts, config)
    _readonly(equity, drawdown, bar_returns, *(getattr(trades, f) for f in trades.__slots__))
    return BacktestResult(config, trades, equity, drawdown, bar_returns, stats)


BASELINES: tuple[str, ...] = ("buy_and_hold", "zero_return", "persistence")


def baseline_forecasts(close_prices: npt.ArrayLike, horizon: int) -> dict[str, FloatArray]:
    """Forecast returns of the naive models, aligned like a model's forecasts.

    * ``buy_and_hold``: +inf, i.e. always long whatever the threshold (one
      position per sleeve, entered once and exited at the end);
    * ``zero_return``: 0, the random-walk forecast "the price will not move";
    * ``persistence``: the last h-bar return repeats, ``close[t] / close[t-h] - 1``.
    """
    close = as_float_array(close_prices, "close_prices")
    persistence = np.full(len(close), np.nan)
    persistence[horizon:] = close[horizon:] / close[:-horizon] - 1.0
    return {
        "buy_and_hold": np.full(len(close), np.inf),
        "zero_return": np.zeros(len(close)),
        "persistence": persistence,
    }


def backtest_baselines(
    open_prices: npt.ArrayLike,
    close_prices: npt.ArrayLike,
    *,
    horizon: int,
    theta: float,
    bars_per_year: float,
    fee: float = DEFAULT_FEE,
    slippage: float = 0.0,
    mode: Mode = "non_overlapping",
    tradable: npt.ArrayLike | None = None,
) -> dict[str, BacktestResult]:
    """Each naive forecast through the same engine, threshold, costs and gap rule as the model."""
    return {
        name: backtest(
            open_prices,
            forecast,
            horizon=horizon,
            theta=theta,
            bars_per_year=bars_per_year,
            fee=fee,
            slippage=slippage,
            mode=mode,
            tradable=tradable,
        )
        for name, forecast in baseline_forecasts(close_prices, horizon).items()
    }
